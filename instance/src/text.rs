//! Text input, validated once at the edge, and search text folding.
//!
//! # Validated text: [`Text`]
//!
//! Every piece of text a client sends (JSON body fields, `?q=` and other query strings,
//! cursors, text path segments) is deserialized into a [`Text`], so nothing unchecked
//! reaches the domain code or PostgreSQL. A `Text<MAX>` is:
//! - valid UTF-8 (guaranteed by `String`) without NUL, which PostgreSQL cannot store;
//! - at most `MAX` characters (Unicode scalar values, not bytes);
//! - free of control characters. Single-line text (`Text<MAX>`, alias [`Line`]) allows
//!   none; free text (`Text<MAX, true>`, alias [`Prose`]) allows newline (`\n`, `\r\n`)
//!   and tab.
//!
//! A refusal is a serde error, so the extractors turn it into a 422 (JSON body) or 400
//! (query, path) whose message names the field (`name: text must not contain …`).
//!
//! Adopting it in a request struct is a type change, nothing more:
//! ```ignore
//! #[derive(Deserialize, utoipa::ToSchema)]
//! struct NewThing {
//!     name: Line<200>,              // required, single line, ≤ 200 chars
//!     description: Option<Prose<4000>>, // optional free text
//!     tags: Vec<Line<50>>,
//! }
//! ```
//! A `Text` derefs to `&str`, binds to SQL like a `String` (also in arrays), serializes
//! as a string, and documents itself in OpenAPI as a string with `maxLength`. Emptiness
//! and trimming stay the domain's call (an empty nickname clears it; an empty group name
//! is refused by the group code). Build one in code with [`Text::new`] /
//! `"…".parse()` / `String::try_into()`. Use the [`LINE`]/[`PROSE`] bounds below for new
//! fields unless the field has a reason of its own.
//!
//! Dates and timestamps in bodies and queries go through [`date`], which refuses years
//! outside 1–9999 (PostgreSQL and chrono accept more, but no such date is meaningful
//! here and several are not storable).

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The usual bound for a single-line field (names, titles, posts, account names).
pub const LINE: usize = 200;
/// The usual bound for free text (descriptions, comments, justifications).
pub const PROSE: usize = 10_000;

/// Validated text: see the module documentation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Text<const MAX: usize, const MULTILINE: bool = false>(String);

/// Single-line text of at most `MAX` characters.
pub type Line<const MAX: usize = LINE> = Text<MAX, false>;
/// Free text (newlines and tabs allowed) of at most `MAX` characters.
pub type Prose<const MAX: usize = PROSE> = Text<MAX, true>;

/// Why a text was refused (without the field name, which the caller adds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("text must not contain NUL bytes")]
    Nul,
    #[error("text must not contain control characters (found U+{0:04X})")]
    Control(u32),
    #[error("text must be at most {0} characters")]
    TooLong(usize),
}

/// Checks `s` against the rules of a `Text<max, multiline>`.
pub fn check(s: &str, max: usize, multiline: bool) -> Result<(), TextError> {
    let mut count = 0usize;
    let mut prev_cr = false;
    for c in s.chars() {
        count += 1;
        if c == '\0' {
            return Err(TextError::Nul);
        }
        if prev_cr && c != '\n' {
            return Err(TextError::Control('\r' as u32));
        }
        prev_cr = false;
        if c.is_control() {
            match c {
                '\n' | '\t' if multiline => {}
                '\r' if multiline => prev_cr = true,
                _ => return Err(TextError::Control(c as u32)),
            }
        }
    }
    if prev_cr {
        return Err(TextError::Control('\r' as u32));
    }
    if count > max {
        return Err(TextError::TooLong(max));
    }
    Ok(())
}

impl<const MAX: usize, const MULTILINE: bool> Text<MAX, MULTILINE> {
    pub fn new(s: impl Into<String>) -> Result<Self, TextError> {
        let s = s.into();
        check(&s, MAX, MULTILINE)?;
        Ok(Text(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize, const MULTILINE: bool> Deref for Text<MAX, MULTILINE> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize, const MULTILINE: bool> AsRef<str> for Text<MAX, MULTILINE> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize, const MULTILINE: bool> fmt::Debug for Text<MAX, MULTILINE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const MAX: usize, const MULTILINE: bool> fmt::Display for Text<MAX, MULTILINE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize, const MULTILINE: bool> FromStr for Text<MAX, MULTILINE> {
    type Err = TextError;
    fn from_str(s: &str) -> Result<Self, TextError> {
        Text::new(s)
    }
}

impl<const MAX: usize, const MULTILINE: bool> TryFrom<String> for Text<MAX, MULTILINE> {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, TextError> {
        Text::new(s)
    }
}

impl<const MAX: usize, const MULTILINE: bool> TryFrom<&str> for Text<MAX, MULTILINE> {
    type Error = TextError;
    fn try_from(s: &str) -> Result<Self, TextError> {
        Text::new(s)
    }
}

impl<const MAX: usize, const MULTILINE: bool> From<Text<MAX, MULTILINE>> for String {
    fn from(t: Text<MAX, MULTILINE>) -> String {
        t.0
    }
}

impl<const MAX: usize, const MULTILINE: bool> PartialEq<str> for Text<MAX, MULTILINE> {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl<const MAX: usize, const MULTILINE: bool> PartialEq<&str> for Text<MAX, MULTILINE> {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl<const MAX: usize, const MULTILINE: bool> Serialize for Text<MAX, MULTILINE> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize, const MULTILINE: bool> Deserialize<'de> for Text<MAX, MULTILINE> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Text::new(s).map_err(serde::de::Error::custom)
    }
}

impl<const MAX: usize, const MULTILINE: bool> sqlx::Type<sqlx::Postgres> for Text<MAX, MULTILINE> {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::Type<sqlx::Postgres>>::type_info()
    }
    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<const MAX: usize, const MULTILINE: bool> sqlx::postgres::PgHasArrayType
    for Text<MAX, MULTILINE>
{
    fn array_type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::postgres::PgHasArrayType>::array_type_info()
    }
}

impl<'q, const MAX: usize, const MULTILINE: bool> sqlx::Encode<'q, sqlx::Postgres>
    for Text<MAX, MULTILINE>
{
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <&str as sqlx::Encode<sqlx::Postgres>>::encode(self.0.as_str(), buf)
    }
}

/// Reading back what we stored: the value was checked on its way in, so it is taken as
/// it is (for types shared by requests and answers, such as external accounts).
impl<'r, const MAX: usize, const MULTILINE: bool> sqlx::Decode<'r, sqlx::Postgres>
    for Text<MAX, MULTILINE>
{
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Text(<String as sqlx::Decode<sqlx::Postgres>>::decode(
            value,
        )?))
    }
}

impl<const MAX: usize, const MULTILINE: bool> utoipa::PartialSchema for Text<MAX, MULTILINE> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        // The pattern states the character rule of `check` (C0 and C1 controls and DEL
        // refused; free text keeps tab, newline and CR only before newline).
        let (what, pattern) = if MULTILINE {
            (
                "Text: no NUL or control characters except newline and tab.",
                r"^(?:[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]|\r\n)*$",
            )
        } else {
            (
                "Single-line text: no NUL or control characters.",
                r"^[^\u0000-\u001F\u007F-\u009F]*$",
            )
        };
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .max_length(Some(MAX))
            .pattern(Some(pattern))
            .description(Some(what))
            .into()
    }
}

impl<const MAX: usize, const MULTILINE: bool> utoipa::ToSchema for Text<MAX, MULTILINE> {}

/// Dates and timestamps from clients, with years 1–9999 only. Use with
/// `#[serde(deserialize_with = "…")]` (and `default` for the `Option` forms).
pub mod date {
    use chrono::{DateTime, Datelike, NaiveDate, Utc};
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    fn year_ok<E: serde::de::Error>(year: i32) -> Result<(), E> {
        if (1..=9999).contains(&year) {
            Ok(())
        } else {
            Err(E::custom(format!("year {year} is outside 1-9999")))
        }
    }

    /// RFC 3339 (`2025-09-01T08:00:00Z`, two-digit month, day and time fields), as the
    /// OpenAPI document's `format: date-time` says; chrono's own deserializer would also
    /// take looser forms.
    fn parse_timestamp<E: serde::de::Error>(s: &str) -> Result<DateTime<Utc>, E> {
        let t = DateTime::parse_from_rfc3339(s)
            .map_err(|_| {
                E::custom(format!(
                    "{s:?} is not an RFC 3339 timestamp (e.g. 2025-09-01T08:00:00Z)"
                ))
            })?
            .with_timezone(&Utc);
        year_ok(t.year())?;
        Ok(t)
    }

    pub fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        parse_timestamp(&s)
    }

    pub fn opt_timestamp<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<std::borrow::Cow<str>>::deserialize(d)?
            .map(|s| parse_timestamp(&s))
            .transpose()
    }

    /// A calendar day as `YYYY-MM-DD`, zero-padded (`format: date`, RFC 3339's
    /// full-date); chrono alone would also take `2025-1-1`.
    pub fn day<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        let shape_ok = s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            });
        let t = shape_ok
            .then(|| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok())
            .flatten()
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "{s:?} is not a date as YYYY-MM-DD (e.g. 2025-09-01)"
                ))
            })?;
        year_ok(t.year())?;
        Ok(t)
    }
}

// --- search folding ------------------------------------------------------------------

/// Search text folding: lower case, accents removed ("Áron" → "aron"), so search is
/// case- and accent-insensitive and still uses a plain b-tree / LIKE index.
pub fn fold(s: &str) -> String {
    deunicode::deunicode(s).to_lowercase()
}

/// The words of a search as [`fold`] writes them: letters and digits only, anything else
/// separates words ("Szabó Áron" and "aron, szabo" are both `["szabo", "aron"]` in their
/// own order).
pub fn search_words(q: &str) -> Vec<String> {
    fold(q)
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// Escapes LIKE wildcards in user input.
pub fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_hungarian_accents() {
        assert_eq!(super::fold("Áron Ődön Űrhajós"), "aron odon urhajos");
        assert_eq!(super::like_escape("a%b_c"), "a\\%b\\_c");
    }

    #[test]
    fn search_words_are_folded_and_split_on_anything_but_letters() {
        assert_eq!(search_words("Szabó Áron"), ["szabo", "aron"]);
        assert_eq!(search_words("  kir-DEV, web "), ["kir", "dev", "web"]);
        assert!(search_words(" %_ ").is_empty());
    }

    #[test]
    fn text_rules() {
        assert!(
            Line::<5>::new("Árvíz").is_ok(),
            "counts characters, not bytes"
        );
        assert_eq!(Line::<4>::new("Árvíz"), Err(TextError::TooLong(4)));
        assert_eq!(Line::<9>::new("a\0"), Err(TextError::Nul));
        assert_eq!(Line::<9>::new("a\nb"), Err(TextError::Control(10)));
        assert_eq!(Line::<9>::new("a\tb"), Err(TextError::Control(9)));
        assert_eq!(Line::<9>::new("\u{1b}[0m"), Err(TextError::Control(0x1b)));
        assert_eq!(Line::<9>::new("\u{85}"), Err(TextError::Control(0x85)));
        assert!(Prose::<20>::new("a\nb\tc\r\nd").is_ok());
        assert_eq!(Prose::<9>::new("a\rb"), Err(TextError::Control(13)));
        assert_eq!(Prose::<9>::new("a\r"), Err(TextError::Control(13)));
        assert_eq!(Prose::<9>::new("a\0"), Err(TextError::Nul));
        assert_eq!(Prose::<9>::new("\u{7f}"), Err(TextError::Control(0x7f)));
        assert!(Line::<9>::new("").is_ok(), "emptiness is the domain's call");
    }

    #[test]
    fn documented_pattern_matches_the_rules() {
        // Checked by a JSON Schema validator, as clients and fuzzers read it.
        fn pattern<T: utoipa::PartialSchema>() -> jsonschema::Validator {
            let mut schema = serde_json::to_value(T::schema()).expect("schema");
            schema["maxLength"] = serde_json::json!(1000);
            jsonschema::validator_for(&schema).expect("schema compiles")
        }
        let line = pattern::<Line<100>>();
        let prose = pattern::<Prose<100>>();
        let samples = [
            "Kör",
            "",
            "a b",
            "a\nb",
            "a\tb",
            "a\r\nb",
            "a\rb",
            "a\r",
            "\0",
            "\u{1b}[0m",
            "\u{7f}",
            "\u{85}",
            "\u{9f}",
            "\u{a0}",
            "Árvíz 🏆",
        ];
        for s in samples {
            assert_eq!(
                line.is_valid(&serde_json::json!(s)),
                check(s, 100, false).is_ok(),
                "line {s:?}"
            );
            assert_eq!(
                prose.is_valid(&serde_json::json!(s)),
                check(s, 100, true).is_ok(),
                "prose {s:?}"
            );
        }
    }

    #[test]
    fn text_deserializes_with_the_rules() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Body {
            name: Line<10>,
        }
        let err = serde_json::from_str::<Body>(r#"{"name": "a\u0000"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("NUL"), "{err}");
        let ok: Body = serde_json::from_str(r#"{"name": "Kör"}"#).expect("valid");
        assert_eq!(ok.name, "Kör");
    }

    #[test]
    fn years_outside_1_to_9999_are_refused() {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Body {
            #[serde(default, deserialize_with = "date::opt_timestamp")]
            at: Option<chrono::DateTime<chrono::Utc>>,
        }
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Day {
            #[serde(deserialize_with = "date::day")]
            on: chrono::NaiveDate,
        }
        for bad in [
            r#"{"at": "0000-01-01T00:00:00Z"}"#,
            r#"{"at": "+10000-01-01T00:00:00Z"}"#,
        ] {
            assert!(serde_json::from_str::<Body>(bad).is_err(), "{bad}");
        }
        for bad in [r#"{"on": "-0001-01-01"}"#, r#"{"on": "+10000-01-01"}"#] {
            assert!(serde_json::from_str::<Day>(bad).is_err(), "{bad}");
        }
        for ok in [
            r#"{"at": "0001-01-01T00:00:00Z"}"#,
            r#"{}"#,
            r#"{"at": null}"#,
        ] {
            assert!(serde_json::from_str::<Body>(ok).is_ok(), "{ok}");
        }
        assert!(serde_json::from_str::<Day>(r#"{"on": "9999-12-31"}"#).is_ok());
    }
}
