//! Search text folding: lower case, accents removed ("Áron" → "aron"), so search is
//! case- and accent-insensitive and still uses a plain b-tree / LIKE index.

pub fn fold(s: &str) -> String {
    deunicode::deunicode(s).to_lowercase()
}

/// Escapes LIKE wildcards in user input.
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    #[test]
    fn folds_hungarian_accents() {
        assert_eq!(super::fold("Áron Ődön Űrhajós"), "aron odon urhajos");
        assert_eq!(super::like_escape("a%b_c"), "a\\%b\\_c");
    }
}
