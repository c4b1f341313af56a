//! The realm's running page: data in, markup out.

use maud::{html, Markup};

use super::super::api::enc;
use super::super::i18n::{self, Lang};
use super::super::realm_admin::Refusal;
use crate::evaluation::{Season, Settings};
use crate::realm::RealmId;
use crate::semester::Semester;

pub struct Admin<'a> {
    pub realm: &'a RealmId,
    pub realm_name: String,
    pub semesters: &'a [Semester],
    pub settings: &'a Settings,
    /// The API lets the person run the realm (manageRealm).
    pub manage: bool,
    pub csrf: &'a str,
    pub done: Option<&'static str>,
    pub refusal: Option<&'a Refusal>,
}

/// A season in PéK's words.
pub fn season_name(lang: Lang, s: Season) -> &'static str {
    let a = lang.admin();
    match s {
        Season::Off => a.season_off,
        Season::Submission => a.season_submission,
        Season::Judging => a.season_judging,
    }
}

/// The names the API quotes in its refusal of a season change (the groups whose work
/// would be left unfinished), so the page can list them in its own language.
pub(in crate::web) fn quoted(message: &str) -> Vec<&str> {
    let list = message.split("; finish").next().unwrap_or("");
    list.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| !s.is_empty())
        .collect()
}

fn action(realm: &RealmId, what: &str) -> String {
    format!("/realms/{}/admin/{what}", enc(realm.as_str()))
}

pub fn page(lang: Lang, d: &Admin) -> Markup {
    let a = lang.admin();
    let semester_name = |id: Option<uuid::Uuid>| {
        id.and_then(|id| d.semesters.iter().find(|s| s.id == id))
            .map(|s| s.name.clone())
            .unwrap_or_default()
    };
    html! {
        h1 { (a.title) ": " (d.realm_name) }
        @if let Some(text) = d.done { p.notice.ok role="status" { (text) } }
        @if let Some(r) = d.refusal {
            div.notice role="alert" #action-error {
                p { strong { (a.refused) } }
                @if r.confirm.is_some() {
                    p { (a.season_would_lose_work) }
                    ul #stranded { @for g in &r.stranded { li { (g) } } }
                } @else if !r.message.is_empty() {
                    p.detail { (r.message) }
                }
                @if let Some((season, semester)) = &r.confirm {
                    form method="post" action=(action(d.realm, "season")) {
                        input type="hidden" name="csrf" value=(d.csrf);
                        input type="hidden" name="season" value=(season);
                        @if let Some(s) = semester { input type="hidden" name="semesterId" value=(s); }
                        input type="hidden" name="force" value="on";
                        button type="submit" { (a.season_confirm) }
                    }
                }
            }
        }
        @if !d.manage { p { (a.not_allowed) } }
        section aria-labelledby="season-title" {
            h2 #season-title { (a.season) }
            p #season-now {
                (a.season_now) " " strong { (season_name(lang, d.settings.season)) }
                @let sem = semester_name(d.settings.semester_id);
                @if !sem.is_empty() { " · " (sem) }
            }
            @if d.manage {
                @let current = d.semesters.iter().find(|s| s.is_current).map(|s| s.id);
                @let offered_semester = match d.settings.season {
                    Season::Off => current.or(d.settings.semester_id),
                    _ => d.settings.semester_id.or(current),
                };
                form.season method="post" action=(action(d.realm, "season")) {
                    input type="hidden" name="csrf" value=(d.csrf);
                    fieldset {
                        legend { (a.change_season) }
                        @for s in Season::ALL {
                            div.check {
                                input type="radio" name="season" value=(s.as_str())
                                    id={ "season-" (s.as_str()) } checked[s == d.settings.season];
                                label for={ "season-" (s.as_str()) } { (season_name(lang, s)) }
                            }
                        }
                    }
                    @if !d.semesters.is_empty() {
                        div.field {
                            label for="season-semester" { (a.season_semester) }
                            select #season-semester name="semesterId" {
                                @for s in d.semesters {
                                    // From the quiet season the next one to evaluate is
                                    // usually the current semester; otherwise the season
                                    // stays on the semester it evaluates.
                                    option value=(s.id)
                                        selected[Some(s.id) == offered_semester] {
                                        (s.name)
                                    }
                                }
                            }
                        }
                    }
                    button type="submit" { (a.change_season) }
                }
            }
        }
        section aria-labelledby="semesters-title" {
            h2 #semesters-title { (a.semesters) }
            @if d.semesters.is_empty() { p { (a.no_semesters) } }
            ul.cards #semester-list {
                @for s in d.semesters {
                    li {
                        span.title { (s.name) }
                        @if s.is_current { " " span.tag { (a.current) } }
                        p.muted { (s.starts_on) " – " (s.ends_on) }
                        @if d.manage && !s.is_current {
                            form.action method="post" action=(action(d.realm, "current")) {
                                input type="hidden" name="csrf" value=(d.csrf);
                                input type="hidden" name="semesterId" value=(s.id);
                                button.secondary type="submit" aria-label={ (a.make_current) ": " (s.name) } { (a.make_current) }
                            }
                        }
                    }
                }
            }
            @if d.manage {
                h3 #new-semester-title { (a.new_semester) }
                form.semester method="post" action=(action(d.realm, "semester")) aria-labelledby="new-semester-title" {
                    input type="hidden" name="csrf" value=(d.csrf);
                    div.field {
                        label for="sem-name" { (a.semester_name) }
                        input #sem-name type="text" name="name" required maxlength="50";
                    }
                    div.field {
                        label for="sem-start" { (a.starts_on) }
                        input #sem-start type="date" name="startsOn" required;
                    }
                    div.field {
                        label for="sem-end" { (a.ends_on) }
                        input #sem-end type="date" name="endsOn" required;
                    }
                    div.check {
                        input #sem-current type="checkbox" name="current" value="on";
                        label for="sem-current" { (a.make_current) }
                    }
                    button type="submit" { (a.create_semester) }
                }
            }
        }
        @if d.manage {
            section aria-labelledby="exports-title" {
                h2 #exports-title { (a.exports) }
                p { (a.exports_intro) }
                @let sem = semester_name(d.settings.semester_id.or_else(|| d.semesters.iter().find(|s| s.is_current).map(|s| s.id)));
                @let base = format!("/api/v1/realms/{}/exports", enc(d.realm.as_str()));
                ul.plain #exports {
                    @if !sem.is_empty() {
                        li { a href={ (base) "/point-history.csv?semester=" (enc(&sem)) } download { (a.export_points) " (" (sem) ")" } }
                        li { a href={ (base) "/entry-awards.csv?semester=" (enc(&sem)) } download { (a.export_entry_awards) " (" (sem) ")" } }
                    }
                    li { a href={ (base) "/active-members.csv" } download { (a.export_members) } }
                }
            }
            section aria-labelledby="new-group-title" {
                h2 #new-group-title { (a.new_group) }
                form.group-new method="post" action=(action(d.realm, "group")) {
                    input type="hidden" name="csrf" value=(d.csrf);
                    div.field {
                        label for="ng-name" { (lang.t().group_name) }
                        input #ng-name type="text" name="name" required maxlength="200";
                    }
                    div.field {
                        label for="ng-purpose" { (lang.t().purpose) }
                        select #ng-purpose name="purpose" {
                            @for (v, hu, en) in i18n::PURPOSES {
                                option value=(v) { (match lang { Lang::Hu => *hu, Lang::En => *en }) }
                            }
                        }
                    }
                    div.field {
                        label for="ng-description" { (lang.t().description) }
                        textarea #ng-description name="description" rows="3" maxlength="10000" {}
                    }
                    button type="submit" { (a.create_group) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_names_the_groups() {
        let m = "changing the season from JUDGING to OFF would lose work on 2 scoreboard(s): \
                 \"Kir-Dev Web\" (a submission not yet judged), \"Üzem\" (a draft); finish \
                 them first, or pass \"force\": true to change anyway";
        assert_eq!(quoted(m), ["Kir-Dev Web", "Üzem"]);
    }
}
