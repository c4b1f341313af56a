//! The person's own ways to sign in and the people merged into them, on their page: data
//! in (the API's `/api/v1/me/identities` answer), markup out.

use maud::{html, Markup};

use super::super::api::enc;
use super::super::i18n::Lang;
use crate::http::identities_api::MyIdentities;

/// The section of the person's own page.
pub fn section(lang: Lang, v: &MyIdentities, csrf: &str) -> Markup {
    let t = lang.t();
    let name_of = |id: &str| -> String {
        v.providers
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.display_name.as_str())
            .unwrap_or(id)
            .to_string()
    };
    let linked: Vec<&str> = v.identities.iter().map(|i| i.provider.as_str()).collect();
    let last = v.identities.len() <= 1;
    html! {
        section #identities aria-labelledby="identities-title" {
            h2 #identities-title { (t.identities_title) }
            p.muted { (t.identities_intro) }
            ul.identities {
                @for i in &v.identities {
                    li {
                        strong { (name_of(&i.provider)) }
                        " " span.muted { (i.subject) }
                        @if !last {
                            form.inline method="post"
                                action={ "/me/identities/" (enc(&i.key)) "/unlink" } {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { (t.identity_unlink) }
                            }
                        }
                    }
                }
            }
            @for p in v.providers.iter().filter(|p| !linked.contains(&p.id.as_str())) {
                form.inline method="post" action="/me/identities/link" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="provider" value=(p.id);
                    button type="submit" {
                        (t.identity_link_with) " " (p.display_name)
                    }
                }
            }
            @if !v.events.is_empty() {
                h3 { (t.identity_events) }
                ul.identity-events {
                    @for e in &v.events {
                        li {
                            time { (e.at.format("%Y-%m-%d %H:%M")) }
                            " " (name_of(&e.provider))
                            " " span.muted { (e.subject) }
                            " "
                            (match e.action.as_str() {
                                "unlink" => t.identity_unlinked,
                                "merge" => t.identity_merged,
                                _ => t.identity_linked,
                            })
                        }
                    }
                }
            }
            @if !v.merges.is_empty() {
                h3 { (t.merges_title) }
                ul.merges {
                    @for m in &v.merges {
                        @let pending: Vec<&str> = m.realms.iter()
                            .filter(|r| r.done_at.is_none())
                            .map(|r| r.realm.as_str())
                            .collect();
                        li {
                            time { (m.started_at.format("%Y-%m-%d %H:%M")) }
                            " "
                            a href={ "/people/" (m.from) } {
                                (m.from_name.clone().unwrap_or_else(|| m.from.to_string()))
                            }
                            @if let Some(actor) = m.actor {
                                " " span.muted { (t.merged_by) " "
                                    a href={ "/people/" (actor) } { (actor) }
                                }
                            }
                            @if !pending.is_empty() {
                                " " span.muted { (t.merge_pending) " " (pending.join(", ")) }
                            }
                        }
                    }
                }
            }
        }
    }
}
