//! A group's guidelines page: data in, markup out.

use maud::{html, Markup};
use uuid::Uuid;

use super::super::api::enc;
use super::super::i18n::Lang;
use super::evaluation::category;
use super::failure_text;
use super::realm_admin::season_name;
use crate::evaluation::guideline::{CollectionWithGuidelines, Guideline};
use crate::evaluation::Season;
use crate::realm::RealmId;
use crate::semester::Semester;

pub struct Guidelines<'a> {
    pub realm: &'a RealmId,
    pub group: Uuid,
    pub group_name: &'a str,
    /// The semester the realm evaluates.
    pub semester: Option<&'a Semester>,
    pub season: Season,
    pub collections: &'a [CollectionWithGuidelines],
    /// The API lets the person edit the group's scores (and so its guidelines).
    pub edit: bool,
    pub csrf: &'a str,
    pub done: Option<&'static str>,
    /// The API's refusal of the last action: its status and message.
    pub refused: Option<(axum::http::StatusCode, &'a str)>,
}

/// A guideline's fields, empty for a new one or filled with `g`'s values; `key` makes
/// the ids unique on the page.
fn fields(lang: Lang, key: &str, g: Option<&Guideline>) -> Markup {
    let a = lang.admin();
    let kind = g.map(|g| g.category.as_str()).unwrap_or("WORK");
    html! {
        div.field {
            label for={ "gt-" (key) } { (a.guideline_title) }
            input id={ "gt-" (key) } type="text" name="title" required maxlength="200" value=[g.map(|g| &g.title)];
        }
        div.field {
            label for={ "gk-" (key) } { (a.category) }
            select id={ "gk-" (key) } name="category" {
                @for c in ["WORK", "RESPONSIBILITY"] {
                    option value=(c) selected[c == kind] { (category(lang, c)) }
                }
            }
        }
        div.field {
            label for={ "gm-" (key) } { (a.max_per_member) }
            input id={ "gm-" (key) } type="number" name="maxPerMember" required min="1" step="1" inputmode="numeric" value=[g.map(|g| g.max_per_member)];
        }
        div.field {
            label for={ "gg-" (key) } { (a.max_per_guideline) }
            input id={ "gg-" (key) } type="number" name="maxPerGuideline" required min="1" step="1" inputmode="numeric" value=[g.map(|g| g.max_per_guideline)];
        }
        div.field {
            label for={ "gd-" (key) } { (lang.t().description) }
            textarea id={ "gd-" (key) } name="description" rows="2" maxlength="10000" { (g.map(|g| g.description.as_str()).unwrap_or("")) }
        }
    }
}

pub fn page(lang: Lang, d: &Guidelines) -> Markup {
    let a = lang.admin();
    let group_href = format!("/realms/{}/groups/{}", enc(d.realm.as_str()), d.group);
    let action = |what: &str| format!("{group_href}/guidelines/{what}");
    html! {
        h1 { (d.group_name) " — " (a.guidelines) }
        @if let Some(text) = d.done { p.notice.ok role="status" { (text) } }
        @if let Some((status, m)) = d.refused {
            div.notice role="alert" #action-error {
                p { strong { (a.refused) } " " (failure_text(lang, status)) }
                @if !m.is_empty() { p.detail { (m) } }
            }
        }
        p { (a.guidelines_intro) }
        dl.facts {
            dt { (lang.eval().group) } dd { a href=(group_href) { (d.group_name) } }
            dt { (lang.eval().semester) } dd { (d.semester.map(|s| s.name.as_str()).unwrap_or(a.no_evaluated_semester)) }
            dt { (a.season) } dd #season-now { (season_name(lang, d.season)) }
        }
        @if let Some(sem) = d.semester {
            @if d.collections.is_empty() {
                p { (a.no_collection) }
                @if d.edit {
                    div.controls {
                        form.collection method="post" action=(action("collection")) {
                            input type="hidden" name="csrf" value=(d.csrf);
                            input type="hidden" name="semesterId" value=(sem.id);
                            div.field {
                                label for="gc-name" { (a.collection_name) }
                                input #gc-name type="text" name="name" required maxlength="200" value=(a.guidelines);
                            }
                            button type="submit" { (a.create_collection) }
                        }
                        form.action method="post" action=(action("copy")) {
                            input type="hidden" name="csrf" value=(d.csrf);
                            input type="hidden" name="semesterId" value=(sem.id);
                            button.secondary type="submit" { (a.copy_previous) }
                        }
                    }
                }
            }
            @for c in d.collections {
                section.collection aria-labelledby={ "c-" (c.collection.id) } {
                    h2 id={ "c-" (c.collection.id) } { (c.collection.name) }
                    @if c.guidelines.is_empty() { p { (a.no_guideline_items) } }
                    ul.cards #guideline-list {
                        @for g in &c.guidelines {
                            li {
                                span.title { (g.title) }
                                dl.facts {
                                    dt { (a.category) } dd { (category(lang, &g.category)) }
                                    dt { (a.max_per_member) } dd { (g.max_per_member) }
                                    dt { (a.max_per_guideline) } dd { (g.max_per_guideline) }
                                }
                                @if !g.description.is_empty() { p.description { (g.description) } }
                                @if d.edit {
                                    details.edit {
                                        summary { (a.edit_guideline) span.visually-hidden { ": " (g.title) } }
                                        form.guideline-edit method="post" action=(action("edit")) {
                                            input type="hidden" name="csrf" value=(d.csrf);
                                            input type="hidden" name="guideline" value=(g.id);
                                            (fields(lang, &g.id.to_string(), Some(g)))
                                            button type="submit" { (a.save_guideline) }
                                        }
                                    }
                                    // Removing is for good (and takes the points asked on it
                                    // with it): a second, explicit step.
                                    details.confirm {
                                        summary { (a.remove_guideline) span.visually-hidden { ": " (g.title) } }
                                        form.action method="post" action=(action("remove")) {
                                            input type="hidden" name="csrf" value=(d.csrf);
                                            input type="hidden" name="guideline" value=(g.id);
                                            p { (a.remove_guideline_confirm) }
                                            button.danger type="submit" aria-label={ (a.remove_guideline_yes) ": " (g.title) } { (a.remove_guideline_yes) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if d.edit {
                        @let fid = c.collection.id;
                        h3 id={ "add-" (fid) } { (a.add_guideline) }
                        form.guideline method="post" action=(action("add")) aria-labelledby={ "add-" (fid) } {
                            input type="hidden" name="csrf" value=(d.csrf);
                            input type="hidden" name="collection" value=(fid);
                            (fields(lang, &fid.to_string(), None))
                            button type="submit" { (a.add_guideline) }
                        }
                    }
                }
            }
        }
    }
}
