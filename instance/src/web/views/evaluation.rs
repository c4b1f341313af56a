//! The community evaluation pages: data in (the API's own answers), markup out — a
//! person's semester points, the overview, a group's scoreboard (members × guidelines),
//! its entry awards and the comments on one cell.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use maud::{html, Markup};
use uuid::Uuid;

use super::super::api::enc;
use super::super::i18n::{self, Lang};
use super::{confirm, coverage_notice, failure_text, Coverage};
use crate::evaluation::guideline::Guideline;
use crate::evaluation::points::MemberPoints;
use crate::evaluation::request::{CellComment, EntryAwardRequest};
use crate::evaluation::scoreboard::{MemberScore, Scoreboard, ScoreboardDetail};
use crate::evaluation::{Season, Settings};
use crate::group::Group;
use crate::http::bff_api::{FederatedSemester, MyPoints, PersonPoints};
use crate::membership::GroupMembership;
use crate::profile::UserView;
use crate::realm::RealmId;

/// A figure as people read it: two decimals, with the language's decimal mark.
pub fn decimal(lang: Lang, v: f64) -> String {
    let t = format!("{v:.2}");
    match lang {
        Lang::Hu => t.replace('.', ","),
        Lang::En => t,
    }
}

fn season_text(lang: Lang, season: Season) -> &'static str {
    let e = lang.eval();
    match season {
        Season::Off => e.season_off,
        Season::Submission => e.season_submission,
        Season::Judging => e.season_judging,
    }
}

/// A guideline's category in the page's language.
pub(super) fn category(lang: Lang, c: &str) -> &'static str {
    let e = lang.eval();
    if c == "RESPONSIBILITY" {
        e.responsibility
    } else {
        e.work
    }
}

pub fn scoreboard_href(realm: &str, id: &str) -> String {
    format!("/realms/{}/scoreboards/{}", enc(realm), enc(id))
}

pub fn group_href(realm: &str, id: &str) -> String {
    format!("/realms/{}/groups/{}", enc(realm), enc(id))
}

/// A message on top of a page: a confirmation or the API's refusal.
#[derive(Clone)]
pub enum Notice {
    Ok(&'static str),
    Refused(StatusCode, String),
}

pub fn notice(lang: Lang, n: Option<&Notice>) -> Markup {
    html! {
        @match n {
            Some(Notice::Ok(m)) => p.notice.ok role="status" { (m) },
            Some(Notice::Refused(status, m)) => p.notice #refused role="alert" {
                (lang.eval().refused) " " (failure_text(lang, *status))
                @if !m.is_empty() { " " (m) }
            },
            None => {},
        }
    }
}

// --- a person's points ---------------------------------------------------------------

/// Semester figures across the federation (`/api/v1/me/points` or
/// `/api/v1/users/{id}/points`) and which realms did not answer.
pub struct Points<'a> {
    pub semesters: &'a [FederatedSemester],
    pub coverage: &'a Coverage,
}

impl<'a> From<&'a MyPoints> for Points<'a> {
    fn from(p: &'a MyPoints) -> Self {
        Points {
            semesters: &p.semesters,
            coverage: &p.coverage,
        }
    }
}

impl<'a> From<&'a PersonPoints> for Points<'a> {
    fn from(p: &'a PersonPoints) -> Self {
        Points {
            semesters: &p.semesters,
            coverage: &p.coverage,
        }
    }
}

fn points_table(lang: Lang, p: &Points, realm_names: &dyn Fn(&str) -> String) -> Markup {
    let e = lang.eval();
    // Realms that want another sign-in are said where the page lists groups.
    let coverage = Coverage {
        sign_in_required: Vec::new(),
        ..p.coverage.clone()
    };
    html! {
        (coverage_notice(lang, &coverage, realm_names))
        @if p.semesters.is_empty() { p { (e.no_points) } }
        @for sem in p.semesters {
            @let name = &sem.semester_name;
            section.semester aria-label={ (e.semester) " " (name) } {
                h3 {
                    (name) ": "
                    strong.figure data-semester=(name) { (decimal(lang, sem.figure.points)) }
                    " " span.muted { "(" (e.points_integer) ": " (sem.figure.points_integer) ")" }
                }
                @if !sem.groups.is_empty() {
                    ul.plain {
                        @for g in &sem.groups {
                            li {
                                a href=(group_href(&g.realm_id, &g.group_id.to_string())) { (g.group_name) }
                                " " span.muted { "(" (realm_names(&g.realm_id)) ")" }
                                ": " (g.points)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The points section of a person's page, for those the API lets see them.
pub fn person_points(lang: Lang, p: &Points, realm_names: &dyn Fn(&str) -> String) -> Markup {
    let e = lang.eval();
    html! {
        section aria-labelledby="points-title" {
            h2 #points-title { (e.their_points) }
            p.muted { (e.their_points_intro) }
            (points_table(lang, p, realm_names))
        }
    }
}

// --- the overview ----------------------------------------------------------------------

/// A submitted scoreboard this person may judge.
pub struct Pending {
    pub realm: RealmId,
    pub scoreboard: Scoreboard,
    pub group_name: String,
}

pub struct Overview<'a> {
    pub csrf: &'a str,
    pub notice: Option<&'a Notice>,
    pub points: Points<'a>,
    /// The groups whose scoreboard this person fills (the API lets them edit scores).
    pub led: &'a [&'a GroupMembership],
    /// The person judges in a realm that is judging now.
    pub judging: bool,
    pub pending: &'a [Pending],
    /// Realms that did not say what they have to judge.
    pub judged: &'a Coverage,
}

pub fn overview(lang: Lang, o: &Overview, realm_names: &dyn Fn(&str) -> String) -> Markup {
    let e = lang.eval();
    html! {
        h1 { (e.title) }
        (notice(lang, o.notice))
        section aria-labelledby="my-points-title" {
            h2 #my-points-title { (e.my_points) }
            p.muted { (e.my_points_intro) }
            (points_table(lang, &o.points, realm_names))
        }
        @if !o.led.is_empty() {
            section aria-labelledby="my-boards-title" {
                h2 #my-boards-title { (e.my_scoreboards) }
                p.muted { (e.my_scoreboards_intro) }
                ul.plain {
                    @for m in o.led {
                        li {
                            a href={ (group_href(&m.realm_id, &m.group_id.to_string())) "/scoreboard" } {
                                (m.group_name) " — " (e.scoreboard)
                            }
                            " " span.muted { "(" (realm_names(&m.realm_id)) ")" }
                        }
                    }
                }
            }
        }
        @if o.judging || !o.pending.is_empty() || o.judged.partial {
        section aria-labelledby="judge-title" {
            h2 #judge-title { (e.to_judge) }
            p.muted { (e.to_judge_intro) }
            (coverage_notice(lang, o.judged, realm_names))
            @if o.pending.is_empty() { p { (e.nothing_to_judge) } }
            ul.cards {
                @for p in o.pending {
                    @let (realm, id) = (p.realm.as_str(), p.scoreboard.id.to_string());
                    li.judge {
                        a.title href=(scoreboard_href(realm, &id)) { (p.group_name) " — " (e.scoreboard) }
                        dl.facts {
                            dt { (e.realm) } dd { (realm_names(realm)) }
                            dt { (e.version) } dd { (p.scoreboard.version) }
                        }
                        (judge_forms(lang, o.csrf, realm, &id, &p.group_name, "/evaluation"))
                    }
                }
            }
        }
        }
    }
}

/// Accept, and reject with a reason, for one submitted scoreboard.
fn judge_forms(lang: Lang, csrf: &str, realm: &str, id: &str, group: &str, back: &str) -> Markup {
    let e = lang.eval();
    let base = scoreboard_href(realm, id);
    let reason_id = format!("reason-{id}");
    html! {
        div.judge-actions {
            form method="post" action={ (base) "/accept" } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="back" value=(back);
                button type="submit" aria-label={ (e.accept) ": " (group) } { (e.accept) }
            }
            form.reject method="post" action={ (base) "/reject" } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="back" value=(back);
                label for=(reason_id) { (e.reason) }
                textarea id=(reason_id) name="reason" required maxlength="5000" rows="2" {}
                button type="submit" aria-label={ (e.reject) ": " (group) } { (e.reject) }
            }
        }
    }
}

// --- a group without a scoreboard yet -------------------------------------------------------

/// A group's scoreboard page before the semester's scoreboard exists: start it.
pub fn no_scoreboard(
    lang: Lang,
    csrf: &str,
    realm: &str,
    group: &Group,
    settings: &Settings,
    n: Option<&Notice>,
) -> Markup {
    let e = lang.eval();
    html! {
        h1 { (group.name) " — " (e.scoreboard) }
        (notice(lang, n))
        dl.facts {
            dt { (e.season) } dd { (season_text(lang, settings.season)) }
        }
        @match settings.semester_id {
            None => p { (e.no_semester) },
            Some(semester) => {
                p { (e.no_scoreboard) }
                form method="post" action={ (group_href(realm, &group.id.to_string())) "/scoreboard" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="semesterId" value=(semester);
                    button type="submit" { (e.start_scoreboard) }
                }
            }
        }
    }
}

// --- the scoreboard --------------------------------------------------------------------

/// One row of the scoreboard: a person, by the membership their requests are on.
pub struct Row {
    pub membership: Uuid,
    /// Their name as the list tells them apart.
    pub name: String,
}

/// Everything the scoreboard page shows, from the API.
pub struct Board {
    pub me: UserView,
    pub detail: ScoreboardDetail,
    pub settings: Settings,
    pub group: Group,
    pub semester_name: String,
    /// Current members and anyone with requests, in name order.
    pub rows: Vec<Row>,
    /// What the API says this person may do with the group's scores.
    pub may_edit: bool,
    pub may_judge: bool,
}

/// A person's score under each of their memberships with requests on the scoreboard.
pub fn scores_by_membership(members: &[MemberScore]) -> HashMap<Uuid, &MemberPoints> {
    members
        .iter()
        .flat_map(|m| {
            m.membership_ids
                .iter()
                .chain(std::iter::once(&m.membership_id))
                .map(move |id| (*id, &m.score))
        })
        .collect()
}

/// The member's totals cell content: an `<output>` htmx replaces after a change.
pub fn total_output(lang: Lang, membership: &str, score: Option<&MemberPoints>) -> Markup {
    let e = lang.eval();
    let (work, resp, points) = score
        .map(|m| (m.work, m.responsibility, m.points))
        .unwrap_or((0, 0, 0));
    html! {
        output id={ "total-" (membership) } data-points=(points) {
            strong { (points) }
            " " span.muted.parts { "(" (e.work) " " (work) " + " (e.responsibility) " " (resp) ")" }
        }
    }
}

/// What a saving htmx request gets: the status line and every row's new total (swapped
/// in by id, out of band).
pub fn cells_saved(
    lang: Lang,
    saved: Result<(), Option<(StatusCode, &str)>>,
    rows: &[String],
    scores: &HashMap<Uuid, &MemberPoints>,
) -> Markup {
    let status = match saved {
        Ok(()) => html! { p #cells-status { (lang.eval().saved) } },
        Err(Some((status, m))) => html! {
            p.notice #cells-status role="alert" {
                (lang.eval().refused) " " (failure_text(lang, status))
                @if !m.is_empty() { " " (m) }
            }
        },
        Err(None) => html! {
            p.notice #cells-status role="alert" { (lang.t().unavailable) }
        },
    };
    html! {
        (status)
        @for m in rows {
            @let score = Uuid::parse_str(m).ok().and_then(|id| scores.get(&id).copied());
            @let out = total_output(lang, m, score);
            // Swapped in by id, out of band.
            div hx-swap-oob={ "innerHTML:#total-cell-" (m) } { (out) }
        }
    }
}

pub struct ScoreboardPage<'a> {
    pub csrf: &'a str,
    pub realm: &'a str,
    pub realm_name: &'a str,
    pub board: &'a Board,
    pub notice: Option<&'a Notice>,
    /// What was typed into the cells, by (membership, guideline), when a save failed.
    pub typed: Option<&'a BTreeMap<(String, String), String>>,
}

pub fn scoreboard(lang: Lang, p: &ScoreboardPage) -> Markup {
    let (b, realm, csrf, typed) = (p.board, p.realm, p.csrf, p.typed);
    let e = lang.eval();
    let d = &b.detail;
    let sb = &d.scoreboard;
    let id = sb.id.to_string();
    let group_id = sb.group_id.to_string();
    let base = scoreboard_href(realm, &id);
    let status = sb.status.as_str();
    let read_only = d.read_only;
    let editable = status == "NOT_SUBMITTED" && b.may_edit;
    let guidelines: &[Guideline] = &d.guidelines;
    let requested: HashMap<(Uuid, Uuid), i32> = d
        .point_requests
        .iter()
        .map(|p| ((p.membership_id, p.guideline_id), p.points))
        .collect();
    let scores = scores_by_membership(&d.members);
    let group_name = b.group.name.as_str();
    html! {
        h1 { (group_name) " — " (e.scoreboard) }
        (notice(lang, p.notice))
        dl.facts {
            dt { (e.group) } dd { a href=(group_href(realm, &group_id)) { (group_name) } }
            dt { (e.realm) } dd { (p.realm_name) " " span.muted { "(" (realm) ")" } }
            @if !b.semester_name.is_empty() { dt { (e.semester) } dd { (b.semester_name) } }
            dt { (e.season) } dd { (season_text(lang, b.settings.season)) }
            dt { (e.version) } dd { (sb.version) }
            dt { (e.status) } dd #sb-status { (i18n::label(lang, i18n::SCOREBOARD_STATUSES, status)) }
            @if let Some(r) = &sb.rejection_reason {
                dt { (e.rejection_reason) } dd { (r) }
            }
        }
        p.muted { (e.limits) }
        p { a #guidelines-link href={ (group_href(realm, &group_id)) "/guidelines" } { (lang.admin().guidelines) } }
        @if editable && read_only { p.notice role="status" { (e.read_only) } }
        @if guidelines.is_empty() {
            p { (e.no_guidelines) }
        } @else if b.rows.is_empty() {
            p { (e.no_members) }
        } @else {
            form #cells method="post" action={ (base) "/cells" } {
                input type="hidden" name="csrf" value=(csrf);
                // Cells are named by row and column (`p:{i}:{j}`), these say which member
                // and guideline each is: a big group's form stays small.
                @for r in &b.rows { input type="hidden" name="m" value=(r.membership); }
                @for g in guidelines { input type="hidden" name="g" value=(g.id); }
                div.table-wrap role="region" aria-label=(e.table_label) tabindex="0" {
                    table.scoreboard {
                        caption.visually-hidden { (e.table_label) }
                        thead {
                            tr {
                                th scope="col" { (e.member) }
                                @for g in guidelines {
                                    th scope="col" {
                                        (g.title)
                                        br;
                                        span.muted.small {
                                            (category(lang, &g.category)) ", " (e.max_per_member) " "
                                            (g.max_per_member)
                                        }
                                    }
                                }
                                th scope="col" { (e.total) }
                            }
                        }
                        tbody {
                            @for (i, r) in b.rows.iter().enumerate() {
                                @let (m, name) = (r.membership.to_string(), r.name.as_str());
                                tr {
                                    th scope="row" { (name) }
                                    @for (j, g) in guidelines.iter().enumerate() {
                                        @let key = format!("p:{i}:{j}");
                                        @let stored = requested.get(&(r.membership, g.id)).copied();
                                        @let shown = typed
                                            .and_then(|t| t.get(&(m.clone(), g.id.to_string())).cloned())
                                            .unwrap_or_else(|| stored.map(|v| v.to_string()).unwrap_or_default());
                                        td {
                                            @if editable && !read_only {
                                                input.points type="number" name=(key) value=(shown)
                                                    min="0" max=(g.max_per_member)
                                                    step="1" inputmode="numeric"
                                                    aria-label={ (name) " — " (g.title) }
                                                    hx-post={ (base) "/cells" }
                                                    hx-trigger="change"
                                                    hx-target="#cells-status"
                                                    hx-swap="outerHTML"
                                                    hx-indicator="#cells-saving";
                                                input type="hidden" name={ "o:" (i) ":" (j) }
                                                    value=(stored.map(|v| v.to_string()).unwrap_or_default());
                                            } @else {
                                                (stored.map(|v| v.to_string()).unwrap_or_else(|| "–".into()))
                                            }
                                            " "
                                            a.cell-comments href={ (base) "/cells/" (m) "/" (g.id) } {
                                                (e.comments_short)
                                                span.visually-hidden { " — " (e.comments) ": " (name) ", " (g.title) }
                                            }
                                        }
                                    }
                                    td id={ "total-cell-" (m) } { (total_output(lang, &m, scores.get(&r.membership).copied())) }
                                }
                            }
                        }
                    }
                }
                // The live region stays; the answer replaces only what it says.
                div #cells-live aria-live="polite" {
                    p #cells-status {}
                    p #cells-saving .htmx-indicator { (e.saving) }
                }
                @if editable && !read_only {
                    button type="submit" { (e.save) }
                }
            }
        }
        (entry_awards(lang, csrf, b, &base, editable && !read_only, status))
        @if editable {
            p.muted { (e.submit_hint) }
            div #submit-confirm {
                (confirm(e.submit, e.submit_confirm, html! {
                    form.submit method="post" action={ (base) "/submit" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button.danger type="submit" #submit-scoreboard { (e.submit_yes) }
                    }
                }))
            }
        }
        @if status == "NOT_YET_EVALUATED" && b.may_judge {
            (judge_forms(lang, csrf, realm, &id, group_name, &base))
        }
        @if status == "REJECTED" && b.may_edit {
            form method="post" action={ (base) "/versions" } {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { (e.new_version) }
            }
        }
    }
}

fn entry_kind_label(kind: &str) -> &str {
    match kind {
        "AB" => "ÁB",
        k => k,
    }
}

/// The entry awards (KDO / KB / ÁB) of a scoreboard, one per member with its
/// justification: requested while the scoreboard is editable, reviewed on their own by
/// the judges once it is submitted.
fn entry_awards(
    lang: Lang,
    csrf: &str,
    b: &Board,
    base: &str,
    editable: bool,
    status: &str,
) -> Markup {
    let a = lang.admin();
    let entries: HashMap<Uuid, &EntryAwardRequest> = b
        .detail
        .entry_award_requests
        .iter()
        .map(|e| (e.membership_id, e))
        .collect();
    let judging = status == "NOT_YET_EVALUATED" || status == "ACCEPTED";
    let status_text = |st: &str| match st {
        "ACCEPTED" => a.entry_accepted,
        "REJECTED" => a.entry_rejected,
        _ => a.entry_pending,
    };
    html! {
        @if editable || !entries.is_empty() {
            section #entry-awards aria-labelledby="entry-awards-title" {
                h2 #entry-awards-title { (a.entry_awards) }
                p.muted { (a.entry_awards_intro) }
                ul.cards #entry-list {
                    @for (i, r) in b.rows.iter().enumerate() {
                        @let entry = entries.get(&r.membership).copied();
                        @if editable || entry.is_some() {
                            li data-membership=(r.membership) {
                                span.title { (r.name) }
                                @if let Some(e) = entry {
                                    dl.facts {
                                        dt { (a.entry_kind) } dd { (entry_kind_label(&e.kind)) }
                                        dt { (a.justification) } dd { (e.justification) }
                                        dt { (a.entry_status) } dd.entry-status { (status_text(&e.status)) }
                                        @if let Some(r) = &e.rejection_reason {
                                            dt { (a.entry_reject_reason) } dd { (r) }
                                        }
                                    }
                                }
                                @let action = format!("{base}/entries/{}", r.membership);
                                @if editable {
                                    form.entry method="post" action=(action) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="do" value="save";
                                        div.field {
                                            label for={ "ek-" (i) } { (a.entry_kind) }
                                            select id={ "ek-" (i) } name="kind" {
                                                option value="" { (a.entry_none) }
                                                @for k in ["KDO", "KB", "AB"] {
                                                    option value=(k) selected[entry.is_some_and(|e| e.kind == k)] { (entry_kind_label(k)) }
                                                }
                                            }
                                        }
                                        div.field {
                                            label for={ "ej-" (i) } { (a.justification) }
                                            textarea id={ "ej-" (i) } name="justification" rows="2" maxlength="10000" {
                                                (entry.map(|e| e.justification.as_str()).unwrap_or(""))
                                            }
                                        }
                                        button.secondary type="submit" { (a.save_entry) }
                                    }
                                } @else if judging && b.may_judge && entry.is_some_and(|e| e.status == "PENDING") {
                                    div.controls {
                                        form.action method="post" action=(action) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="do" value="accept";
                                            button type="submit" { (a.entry_accept) }
                                        }
                                        form.action method="post" action=(action) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="do" value="reject";
                                            label for={ "er-" (i) } { (a.entry_reject_reason) }
                                            input id={ "er-" (i) } type="text" name="reason" maxlength="2000" required;
                                            button.secondary type="submit" { (a.entry_reject) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @if !editable && entries.is_empty() { p { (a.no_entry) } }
            }
        }
    }
}

// --- comments on one cell --------------------------------------------------------------

pub struct CellPage<'a> {
    pub csrf: &'a str,
    pub realm: &'a str,
    pub board: &'a Board,
    pub membership: Uuid,
    pub guideline: Uuid,
    pub comments: &'a [CellComment],
    /// The comments' authors' names, by user id.
    pub authors: &'a HashMap<Uuid, String>,
    pub notice: Option<&'a Notice>,
}

impl CellPage<'_> {
    /// The member's name on the scoreboard.
    pub fn member(&self) -> &str {
        self.board
            .rows
            .iter()
            .find(|r| r.membership == self.membership)
            .map(|r| r.name.as_str())
            .unwrap_or("")
    }

    /// The guideline's title.
    pub fn guideline_title(&self) -> &str {
        self.board
            .detail
            .guidelines
            .iter()
            .find(|g| g.id == self.guideline)
            .map(|g| g.title.as_str())
            .unwrap_or("")
    }
}

pub fn cell(lang: Lang, c: &CellPage) -> Markup {
    let e = lang.eval();
    let base = scoreboard_href(c.realm, &c.board.detail.scoreboard.id.to_string());
    html! {
        h1 { (e.comments_of_cell) }
        (notice(lang, c.notice))
        dl.facts {
            dt { (e.group) } dd { (c.board.group.name) }
            dt { (e.member) } dd { (c.member()) }
            dt { (lang.eval().scoreboard) } dd { a href=(base) { (e.back_to_scoreboard) } }
            dt { (e.guideline) } dd { (c.guideline_title()) }
        }
        @if c.comments.is_empty() { p { (e.no_comments) } }
        ul.cards {
            @for x in c.comments {
                li {
                    strong { (c.authors.get(&x.author_id).cloned().unwrap_or_default()) }
                    " " span.muted { (x.created_at.format("%Y-%m-%d %H:%M")) }
                    @for line in x.body.lines() { p { (line) } }
                }
            }
        }
        form.comment method="post" action={ (base) "/cells/" (c.membership) "/" (c.guideline) } {
            input type="hidden" name="csrf" value=(c.csrf);
            label for="comment-body" { (e.comment) }
            textarea #comment-body name="body" required maxlength="5000" rows="3" {}
            button type="submit" { (e.add_comment) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_use_the_languages_decimal_mark() {
        assert_eq!(decimal(Lang::Hu, 5.0), "5,00");
        assert_eq!(decimal(Lang::En, 43.58), "43.58");
    }
}
