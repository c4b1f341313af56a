//! The group directory's markup: data in, markup out.

use std::collections::HashMap;

use maud::{html, Markup};

use super::super::api::enc;
use super::super::i18n::{self, Lang};
use crate::group::{DirectoryEntry, DirectoryPage};
use crate::profile::{ProfileData, UserView};

pub struct Directory<'a> {
    pub q: &'a str,
    pub page: &'a DirectoryPage,
    /// The person's own membership status per (realm id, group id).
    pub mine: &'a HashMap<(String, String), String>,
    pub csrf: &'a str,
    /// The realms that did not answer, and those that accept only other sign-in
    /// providers ([`super::coverage_notice`]).
    pub notice: Markup,
}

pub fn page(lang: Lang, d: &Directory) -> Markup {
    let t = lang.dir();
    html! {
        h1 { (t.title) }
        p { (t.intro) }
        form.search role="search" method="get" action="/groups"
            hx-get="/groups" hx-target="#directory" hx-select="#directory" hx-swap="outerHTML"
            hx-push-url="true" hx-trigger="input changed delay:250ms from:#dq, submit" {
            label for="dq" { (t.search_label) }
            div.row {
                input #dq type="search" name="q" value=(d.q) autocomplete="off"
                    aria-describedby="dq-hint" maxlength="200";
                button type="submit" { (lang.t().search_button) }
            }
            p #dq-hint .muted { (t.search_hint) }
        }
        (results(lang, d))
    }
}

/// A leader's name as the directory shows it (family name first in Hungarian), with the
/// nickname to tell people with the same name apart.
fn leader_name(lang: Lang, u: &UserView) -> String {
    let basic = match &u.profile {
        Some(ProfileData::Basic(b)) => Some(b),
        Some(ProfileData::Full(f)) => Some(&f.basic),
        None => None,
    };
    let Some(b) = basic else {
        return lang.t().unnamed.to_string();
    };
    let first = b.first_name.as_deref().unwrap_or("").trim();
    let last = b.last_name.as_deref().unwrap_or("").trim();
    let name = match lang {
        Lang::Hu => format!("{last} {first}"),
        Lang::En => format!("{first} {last}"),
    };
    let name = name.trim();
    let name = if name.is_empty() {
        lang.t().unnamed
    } else {
        name
    };
    match b
        .nickname
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(n) => format!("{name} ({n})"),
        None => name.to_string(),
    }
}

fn group_href(g: &DirectoryEntry) -> String {
    format!("/realms/{}/groups/{}", enc(&g.group.realm_id), g.group.id)
}

/// The first lines of a description, cut at a word near `max` characters.
fn summary(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > max / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end())
}

pub fn results(lang: Lang, d: &Directory) -> Markup {
    let t = lang.dir();
    let tt = lang.t();
    html! {
        div #directory aria-live="polite" {
            (d.notice)
            @if d.page.items.is_empty() {
                p { @if d.q.is_empty() { (t.none) } @else { (t.none_found) } }
            }
            ul.cards #directory-list {
                @for g in &d.page.items {
                    @let key = (g.group.realm_id.clone(), g.group.id.to_string());
                    li data-group=(g.group.id) {
                        a.title href=(group_href(g)) { (g.group.name) }
                        " " span.muted { (g.realm_name) }
                        dl.facts {
                            dt { (tt.purpose) }
                            dd { (i18n::label(lang, i18n::PURPOSES, &g.group.purpose)) }
                            dt { (t.leaders) }
                            dd {
                                @if g.leaders.is_empty() { (t.no_leaders) }
                                @else {
                                    (g.leaders.iter().map(|u| leader_name(lang, u)).collect::<Vec<_>>().join(", "))
                                }
                            }
                            dt { (t.members) }
                            dd { (g.group.member_count) }
                        }
                        @let desc = summary(&g.group.description, 240);
                        @if !desc.is_empty() { p.description { (desc) } }
                        @match d.mine.get(&key) {
                            Some(status) => p { (t.your_status) ": " strong { (i18n::status(lang, status)) } },
                            None if g.group.users_can_apply => {
                                @let action = format!("{}/apply", group_href(g));
                                form.action method="post" action=(action) {
                                    input type="hidden" name="csrf" value=(d.csrf);
                                    button type="submit" aria-label={ (tt.apply) ": " (g.group.name) } { (tt.apply) }
                                }
                            },
                            None => p.muted { (t.closed) },
                        }
                    }
                }
            }
            @if let Some(c) = &d.page.next_cursor {
                p { a href={ "/groups?q=" (enc(d.q)) "&cursor=" (enc(c)) } { (t.more) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_description_is_cut_at_a_word() {
        assert_eq!(summary("rövid", 240), "rövid");
        assert_eq!(summary("egy kettő három négy", 12), "egy kettő…");
        assert_eq!(summary(&"á".repeat(30), 10), format!("{}…", "á".repeat(10)));
    }
}
