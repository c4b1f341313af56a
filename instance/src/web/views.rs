//! The pages' markup (maud: checked at compile time, every interpolation escaped).
//! No inline script or style anywhere: the Content-Security-Policy forbids both.

use maud::{html, Markup, DOCTYPE};
use uuid::Uuid;

use super::i18n::{self, Lang};
use super::static_files::{APP_CSS, APP_JS, FAVICON, HTMX};
use crate::bff::left_out::Reason;
use crate::bff::{Coverage, Federated};
use crate::group::DirectoryPage;
use crate::http::bff_api::UserPage;
use crate::http::groups_of_api::{RealmGroupMembership, RealmPolicyOffer};
use crate::membership::GroupMembership;
use crate::profile::{BasicProfile, ProfileData, Scope, UserView};

pub mod directory;
pub mod evaluation;
pub mod group;
pub mod guidelines;
pub mod identities;
pub mod realm_admin;

/// What every page's frame needs.
pub struct Frame<'a> {
    pub lang: Lang,
    pub title: &'a str,
    pub csrf: &'a str,
    /// The signed-in person (id, display name), if any.
    pub me: Option<(&'a str, String)>,
    /// This page's path and query, for the language switch to come back to.
    pub here: &'a str,
    /// What an action has just done (or why it was refused), for the page's live region:
    /// an htmx action swaps only `main`, and this region outside it (updated out of band,
    /// so it stays the same element) is what a screen reader announces.
    pub announce: Option<&'a str>,
}

fn htmx_config() -> &'static str {
    // No inline styles (CSP), no eval, no scripts from answers.
    r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true}"#
}

pub fn page(f: &Frame, body: Markup) -> Markup {
    let t = f.lang.t();
    let headers = serde_json::json!({ "X-CSRF-Token": f.csrf }).to_string();
    html! {
        (DOCTYPE)
        html lang=(f.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(htmx_config());
                title { (f.title) " · PéK" }
                link rel="stylesheet" href=(APP_CSS.href);
                link rel="icon" href=(FAVICON.href) type="image/svg+xml";
                script src=(HTMX.href) defer {}
                script src=(APP_JS.href) defer {}
            }
            body hx-headers=(headers) {
                a.skip href="#main" { (t.skip_to_content) }
                header.top {
                    a.brand href="/" { "PéK" }
                    @if let Some((id, name)) = &f.me {
                        nav aria-label=(t.nav_label) {
                            ul {
                                li { a href="/" { (t.home) } }
                                li { a href="/search" { (t.search) } }
                                li { a href="/groups" { (f.lang.dir().nav) } }
                                li { a href="/evaluation" { (f.lang.eval().nav) } }
                                li { a href={ "/people/" (id) } { (t.my_page) } }
                            }
                        }
                        span.who { (name) }
                    }
                    div.tools {
                        a lang=(f.lang.other().code()) hreflang=(f.lang.other().code())
                            href={ "/lang?to=" (f.lang.other().code()) "&back=" (super::api::enc(f.here)) } {
                            (t.switch_language)
                        }
                        @if f.me.is_some() {
                            form method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(f.csrf);
                                button type="submit" { (t.sign_out) }
                            }
                        }
                    }
                }
                // Where an htmx action says that the session has ended (the rest of the
                // page, what the person typed included, stays as it was).
                div #session-notice aria-live="assertive" {}
                div #announce .visually-hidden aria-live="polite" hx-swap-oob="innerHTML" {
                    @if let Some(a) = f.announce { (a) }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

pub fn error_body(lang: Lang, message: &str, detail: &str) -> Markup {
    let t = lang.t();
    html! {
        h1 { (t.error_title) }
        p.notice role="alert" { (message) }
        @if !detail.is_empty() { p.detail { (detail) } }
        p { a href="/" { (t.back_home) } }
    }
}

/// What failed, by the API's answer's status (its error code), in the page's language.
pub fn failure_text(lang: Lang, status: axum::http::StatusCode) -> &'static str {
    use axum::http::StatusCode;
    let t = lang.t();
    match status {
        StatusCode::FORBIDDEN => t.forbidden,
        StatusCode::NOT_FOUND => t.not_found,
        StatusCode::CONFLICT => t.conflict,
        StatusCode::PAYLOAD_TOO_LARGE => t.too_large,
        s if s.is_server_error() => t.internal,
        _ => t.bad_request,
    }
}

/// An irreversible action behind a second step that works without JavaScript: the
/// summary names the action; opened, it says what will happen, and `form` holds the yes.
pub fn confirm(summary: &str, warning: &str, form: Markup) -> Markup {
    html! {
        details.confirm {
            summary { (summary) }
            p.warning { (warning) }
            (form)
        }
    }
}

/// A person's display name from a user view (`profile` may be absent).
pub fn person_name(lang: Lang, user: &UserView) -> String {
    let p = basic_profile(user);
    name_of(
        lang,
        p.and_then(|p| p.first_name.as_deref()),
        p.and_then(|p| p.last_name.as_deref()),
    )
}

/// The name fields every profile view has, full or basic.
fn basic_profile(user: &UserView) -> Option<&BasicProfile> {
    match &user.profile {
        Some(ProfileData::Full(f)) => Some(&f.basic),
        Some(ProfileData::Basic(b)) => Some(b),
        None => None,
    }
}

fn name_of(lang: Lang, first: Option<&str>, last: Option<&str>) -> String {
    let (first, last) = (first.unwrap_or("").trim(), last.unwrap_or("").trim());
    // Hungarian order: family name first.
    let full = match lang {
        Lang::Hu => format!("{last} {first}"),
        Lang::En => format!("{first} {last}"),
    };
    let full = full.trim().to_string();
    if full.is_empty() {
        lang.t().unnamed.to_string()
    } else {
        full
    }
}

/// A person's name as a list shows it: with the nickname when they have one, the way
/// pek-next shows people, so that two people of the same name are told apart.
pub fn person_label(lang: Lang, user: &UserView) -> String {
    with_nickname(
        person_name(lang, user),
        basic_profile(user).and_then(|p| p.nickname.as_deref()),
    )
}

fn with_nickname(name: String, nickname: Option<&str>) -> String {
    match nickname.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => format!("{name} ({n})"),
        None => name,
    }
}

/// The labels of the people of one list ([`person_label`]), by id: where two still read
/// the same (same name, no nickname), each gets the start of their id, which their page's
/// address shows too.
pub fn distinct_labels<'a>(
    lang: Lang,
    people: impl IntoIterator<Item = &'a UserView>,
) -> std::collections::HashMap<Uuid, String> {
    let labelled: Vec<(Uuid, String)> = people
        .into_iter()
        .map(|u| (u.id, person_label(lang, u)))
        .collect();
    told_apart(labelled)
}

fn told_apart<K: ToString + Eq + std::hash::Hash>(
    labelled: Vec<(K, String)>,
) -> std::collections::HashMap<K, String> {
    let mut count = std::collections::HashMap::<&str, usize>::new();
    for (_, l) in &labelled {
        *count.entry(l.as_str()).or_default() += 1;
    }
    let twice: std::collections::HashSet<String> = count
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(l, _)| l.to_string())
        .collect();
    labelled
        .into_iter()
        .map(|(id, l)| {
            let l = if twice.contains(&l) {
                let id_text = id.to_string();
                format!("{l} · {}", id_text.get(..8).unwrap_or(&id_text))
            } else {
                l
            };
            (id, l)
        })
        .collect()
}

/// The notice an htmx action gets when the session has ended: what happened and the
/// sign-in that comes back to the page.
pub fn session_ended(lang: Lang, sign_in: &str) -> Markup {
    let t = lang.dir();
    html! {
        div #session-ended .notice role="alert" {
            p { strong { (t.session_ended_title) } }
            p { (t.session_ended) }
            p { a.button href=(sign_in) { (t.sign_in_again) } }
        }
    }
}

pub struct SignIn<'a> {
    /// The sign-in providers (id, display name), the default one first.
    pub providers: Vec<(String, String)>,
    pub dev: Option<Vec<(String, String)>>,
    pub csrf: &'a str,
    pub message: Option<&'a str>,
    /// Where to go after signing in (a path of this site).
    pub back: &'a str,
}

pub fn sign_in(lang: Lang, s: &SignIn) -> Markup {
    let t = lang.t();
    html! {
        h1 { (t.sign_in_title) }
        @if let Some(m) = s.message { p.notice role="status" { (m) } }
        @if !s.providers.is_empty() {
            ul.providers {
                @for (id, name) in &s.providers {
                    li {
                        a.button href={ "/auth/login?provider=" (super::api::enc(id)) "&returnTo=" (super::api::enc(s.back)) } {
                            @if id == crate::auth::DEFAULT_PROVIDER && name == "AuthSCH" {
                                (t.sign_in_with_authsch)
                            } @else {
                                (t.sign_in_with) " " (name)
                            }
                        }
                    }
                }
            }
        } @else if s.dev.is_none() {
            p { (t.no_login_configured) }
        }
        @if let Some(people) = &s.dev {
            section aria-labelledby="dev-title" {
                h2 #dev-title { (t.dev_login_title) }
                p.warning { (t.dev_login_warning) }
                ul.people {
                    @for (id, name) in people {
                        li {
                            form method="post" action="/sign-in/dev" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                input type="hidden" name="back" value=(s.back);
                                input type="hidden" name="authSchId" value=(id);
                                button type="submit" {
                                    (t.dev_login_as) " " strong { (name) }
                                    " " span.muted { "(" (id) ")" }
                                }
                            }
                        }
                    }
                }
                form.inline method="post" action="/sign-in/dev" {
                    input type="hidden" name="csrf" value=(s.csrf);
                    input type="hidden" name="back" value=(s.back);
                    label for="dev-id" { (t.dev_login_other) ": " (t.dev_login_id) }
                    input #dev-id type="text" name="authSchId" required maxlength="200" autocomplete="username";
                    button type="submit" { (t.sign_in) }
                }
            }
        }
    }
}

/// The post that makes its holder the group's leader (the API's name for it, which the
/// pages never show: it is "Körvezető" / "Leader" on screen).
pub const LEADER_POST: &str = "leader";

/// A post's name as the page shows it.
pub fn post_name(lang: Lang, post: &str) -> String {
    if post == LEADER_POST {
        lang.t().leader_post.to_string()
    } else {
        post.to_string()
    }
}

/// Posts as the page shows them (the leader post in the page's words).
pub fn post_list(lang: Lang, posts: &[String]) -> String {
    posts
        .iter()
        .map(|p| post_name(lang, p))
        .collect::<Vec<_>>()
        .join(", ")
}

fn group_href(realm: &str, id: &str) -> String {
    format!(
        "/realms/{}/groups/{}",
        super::api::enc(realm),
        super::api::enc(id)
    )
}

/// The realms a merged answer is missing, and those that want another sign-in.
pub(super) fn coverage_notice(
    lang: Lang,
    c: &Coverage,
    realm_names: &dyn Fn(&str) -> String,
) -> Markup {
    let t = lang.t();
    let missing: Vec<String> = c
        .left_out
        .iter()
        .map(|l| {
            let why = t.left_out[match l.reason {
                Reason::Timeout => 0,
                Reason::Unreachable => 1,
                Reason::Failing => 2,
                Reason::BadAnswer => 3,
                Reason::Down => 4,
                Reason::Maintenance => 5,
            }];
            format!("{} ({why})", realm_names(l.realm.as_str()))
        })
        .collect();
    html! {
        @if c.partial {
            p.notice.partial role="status" {
                (t.partial_notice) " " (missing.join(", "))
            }
        }
        // Realms that accept only other sign-in providers: not a failure, a way in.
        @for r in &c.sign_in_required {
            p.notice.sign-in-required role="status" {
                (realm_names(r.realm.as_str())) " " (t.sign_in_to_see)
                @for (i, id) in r.providers.iter().enumerate() {
                    " "
                    a href={ "/auth/login?provider=" (super::api::enc(id)) } {
                        (r.provider_names.get(i).unwrap_or(id))
                    }
                }
            }
        }
    }
}

/// Memberships grouped by realm (the BFF answers them ordered by realm).
fn memberships_by_realm(lang: Lang, items: &[&RealmGroupMembership], heading: &str) -> Markup {
    let t = lang.t();
    let mut realms: Vec<(&str, &str, Vec<&GroupMembership>)> = Vec::new();
    for m in items {
        let realm = m.membership.realm_id.as_str();
        match realms.last_mut() {
            Some((r, _, list)) if *r == realm => list.push(&m.membership),
            _ => realms.push((realm, m.realm_name.as_str(), vec![&m.membership])),
        }
    }
    html! {
        @for (realm, name, list) in &realms {
            section.realm aria-label={ (heading) ": " (name) } {
                h3 { (name) " " span.muted { "(" (realm) ")" } }
                ul.cards {
                    @for m in list {
                        li {
                            a.title href=(group_href(realm, &m.group_id.to_string())) {
                                (m.group_name)
                            }
                            @if m.group_archived {
                                " " span.tag { (t.archived) }
                            }
                            dl.facts {
                                dt { (t.status) }
                                dd { (i18n::status(lang, &m.status)) }
                                @let p = post_list(lang, &m.posts);
                                @if !p.is_empty() {
                                    dt { (t.posts) }
                                    dd { (p) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What waits for the person's own decision, in any realm (also one they are not in
/// yet): invitations, offers to bring back an archived membership, role offers — and
/// their own open applications.
fn waiting(
    lang: Lang,
    csrf: &str,
    items: &[RealmGroupMembership],
    offers: &[RealmPolicyOffer],
) -> Markup {
    let t = lang.t();
    let pending: Vec<&RealmGroupMembership> = items
        .iter()
        .filter(|m| {
            matches!(m.membership.status.as_str(), "INVITED" | "APPLIED")
                || m.membership.reopen_offered_at.is_some()
        })
        .collect();
    let action = |m: &GroupMembership, what: &str| {
        format!(
            "/realms/{}/memberships/{}/{what}",
            super::api::enc(&m.realm_id),
            m.id
        )
    };
    html! {
        @if !pending.is_empty() || !offers.is_empty() {
            section #waiting aria-labelledby="waiting-title" {
                h2 #waiting-title { (t.waiting_for_you) }
                ul.cards {
                    @for rm in &pending {
                        @let m = &rm.membership;
                        @let group = m.group_id.to_string();
                        li {
                            p {
                                @match m.status.as_str() {
                                    "INVITED" => { (t.invited_to) " " }
                                    "APPLIED" => { (t.applied_to) " " }
                                    _ => { (t.reopen_offered) " " }
                                }
                                a.title href=(group_href(&m.realm_id, &group)) { (m.group_name) }
                                " " span.muted { "(" (rm.realm_name) ")" }
                            }
                            div.row {
                                @if m.status == "APPLIED" {
                                    form method="post" action=(action(m, "withdraw")) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="group" value=(group);
                                        button type="submit" { (t.withdraw) }
                                    }
                                } @else {
                                    form method="post" action=(action(m, "accept")) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="group" value=(group);
                                        button type="submit" { (t.accept_invitation) }
                                    }
                                    form method="post" action=(action(m, "decline")) {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="group" value=(group);
                                        button type="submit" { (t.decline_invitation) }
                                    }
                                }
                            }
                        }
                    }
                    @for o in offers {
                        @let base = format!(
                            "/realms/{}/policy-offers/{}",
                            super::api::enc(&o.realm_id),
                            o.policy_id
                        );
                        li {
                            p {
                                (t.role_offered) " " strong { (o.policy_name) }
                                " " span.muted { "(" (o.realm_name) ")" }
                            }
                            div.row {
                                form method="post" action={ (base) "/accept" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { (t.accept_role) }
                                }
                                form method="post" action={ (base) "/decline" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { (t.decline_role) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub fn home(
    lang: Lang,
    csrf: &str,
    done: Option<&str>,
    me: &UserView,
    groups: &Federated<RealmGroupMembership>,
    offers: &Federated<RealmPolicyOffer>,
    realm_names: &dyn Fn(&str) -> String,
) -> Markup {
    let t = lang.t();
    // "My groups" are the consented ones; what waits for a decision is listed apart.
    let items: Vec<&RealmGroupMembership> = groups
        .items
        .iter()
        .filter(|m| {
            !matches!(m.membership.status.as_str(), "INVITED" | "APPLIED")
                && m.membership.reopen_offered_at.is_none()
        })
        .collect();
    html! {
        h1 { (t.hello) ", " (person_name(lang, me)) "!" }
        @if let Some(d) = done { p.notice role="status" { (d) } }
        (coverage_notice(lang, &groups.coverage, realm_names))
        (waiting(lang, csrf, &groups.items, &offers.items))
        section aria-labelledby="groups-title" {
            h2 #groups-title { (t.my_groups) }
            @if items.is_empty() {
                p { (t.no_groups) }
            }
            (memberships_by_realm(lang, &items, t.my_groups))
            @if groups.truncated { p.muted { (t.more_not_shown) } }
        }
    }
}

pub struct SearchView<'a> {
    pub q: &'a str,
    pub people: Option<&'a UserPage>,
    pub people_error: Option<String>,
    pub groups: Option<&'a DirectoryPage>,
}

pub fn search(lang: Lang, s: &SearchView, realm_names: &dyn Fn(&str) -> String) -> Markup {
    let t = lang.t();
    html! {
        h1 { (t.search) }
        form.search role="search" method="get" action="/search"
            hx-get="/search" hx-target="#results" hx-select="#results" hx-swap="outerHTML"
            hx-push-url="true" hx-trigger="input changed delay:250ms from:#q, submit" {
            label for="q" { (t.search_label) }
            div.row {
                input #q type="search" name="q" value=(s.q) autocomplete="off"
                    aria-describedby="q-hint" maxlength="200";
                button type="submit" { (t.search_button) }
            }
            p #q-hint .muted { (t.search_hint) }
        }
        (search_results(lang, s, realm_names))
    }
}

pub fn search_results(lang: Lang, s: &SearchView, realm_names: &dyn Fn(&str) -> String) -> Markup {
    let t = lang.t();
    html! {
        div #results aria-live="polite" {
            @if !s.q.trim().is_empty() {
                section aria-labelledby="people-title" {
                    h2 #people-title { (t.people) }
                    @if let Some(e) = &s.people_error {
                        p { (e) }
                    }
                    @if let Some(people) = s.people {
                        (coverage_notice(lang, &people.coverage, realm_names))
                        @if people.items.is_empty() { p { (t.no_people) } }
                        @let labels = distinct_labels(lang, &people.items);
                        ul.cards #people-list {
                            @for u in &people.items {
                                li { (person_card(lang, u, labels.get(&u.id))) }
                            }
                        }
                        @if let Some(c) = &people.next_cursor {
                            p { a href={ "/search?q=" (super::api::enc(s.q)) "&people=" (super::api::enc(c)) } { (t.more_people) } }
                        }
                    }
                }
                section aria-labelledby="groups-found-title" {
                    h2 #groups-found-title { (t.groups) }
                    @if let Some(groups) = s.groups {
                        (coverage_notice(lang, &groups.coverage, realm_names))
                        @if groups.items.is_empty() { p { (t.no_groups_found) } }
                        ul.cards {
                            @for e in &groups.items {
                                @let g = &e.group;
                                li {
                                    a.title href=(group_href(&g.realm_id, &g.id.to_string())) {
                                        (g.name)
                                    }
                                    " " span.muted { (realm_names(&g.realm_id)) }
                                }
                            }
                        }
                        @if let Some(c) = &groups.next_cursor {
                            p { a href={ "/search?q=" (super::api::enc(s.q)) "&groups=" (super::api::enc(c)) } { (t.more_groups) } }
                        }
                    }
                }
            }
        }
    }
}

/// The profile fields the API answered, and only those: a basic profile's nickname, a
/// full profile's every field.
fn profile_facts(lang: Lang, profile: &ProfileData) -> Markup {
    let t = lang.t();
    let nickname = match profile {
        ProfileData::Full(f) => &f.basic.nickname,
        ProfileData::Basic(b) => &b.nickname,
    };
    let text = |v: &Option<String>| or_not_set(lang, v.as_deref().unwrap_or(""));
    html! {
        dl.facts {
            dt { (t.nickname) } dd { (text(nickname)) }
            @if let ProfileData::Full(f) = profile {
                dt { (t.cell_phone) } dd { (text(&f.cell_phone)) }
                dt { (t.room) } dd { (text(&f.room)) }
                dt { (t.dormitory) } dd { (i18n::label(lang, i18n::DORMITORIES, &wire(&f.dormitory))) }
                dt { (t.gender) } dd { (i18n::label(lang, i18n::GENDERS, &wire(&f.gender))) }
                dt { (t.student_status) } dd { (i18n::label(lang, i18n::STUDENT_STATUSES, &wire(&f.student_status))) }
                dt { (t.external_accounts) }
                dd {
                    @if f.external_accounts.is_empty() { (t.not_set) }
                    ul.plain {
                        @for a in &f.external_accounts {
                            li {
                                (i18n::label(lang, i18n::PROTOCOLS, &wire(&a.protocol)))
                                ": " (a.account_name.as_str())
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An API enum as the API writes it (the pages' label tables are keyed by that).
fn wire<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn or_not_set(lang: Lang, v: &str) -> String {
    if v.trim().is_empty() {
        lang.t().not_set.to_string()
    } else {
        v.to_string()
    }
}

/// One person found; `label` is their name as told apart from the others of the list.
fn person_card(lang: Lang, u: &UserView, label: Option<&String>) -> Markup {
    html! {
        a.title href={ "/people/" (u.id) } {
            @match label { Some(l) => (l), None => (person_name(lang, u)) }
        }
        @if let Some(p) = &u.profile { (profile_facts(lang, p)) }
    }
}

/// The profile form's values: the stored profile, or what the person typed when a save
/// was refused (so it is not lost). Serialized, it is the API's profile input
/// (`PUT /api/v1/me/profile`; an empty field is null).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileForm {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub nickname: Option<String>,
    pub cell_phone: Option<String>,
    pub room: Option<String>,
    pub dormitory: Option<String>,
    pub gender: Option<String>,
    pub student_status: Option<String>,
    pub external_accounts: Vec<AccountField>,
}

/// One row of the profile form's external accounts.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountField {
    pub protocol: String,
    pub account_name: String,
}

impl ProfileForm {
    /// The form filled with the profile the API answered.
    pub fn of(user: &UserView) -> ProfileForm {
        match &user.profile {
            Some(ProfileData::Full(f)) => ProfileForm {
                first_name: f.basic.first_name.clone(),
                last_name: f.basic.last_name.clone(),
                nickname: f.basic.nickname.clone(),
                cell_phone: f.cell_phone.clone(),
                room: f.room.clone(),
                dormitory: Some(wire(&f.dormitory)),
                gender: Some(wire(&f.gender)),
                student_status: Some(wire(&f.student_status)),
                external_accounts: f
                    .external_accounts
                    .iter()
                    .map(|a| AccountField {
                        protocol: wire(&a.protocol),
                        account_name: a.account_name.as_str().to_string(),
                    })
                    .collect(),
            },
            Some(ProfileData::Basic(b)) => ProfileForm {
                first_name: b.first_name.clone(),
                last_name: b.last_name.clone(),
                nickname: b.nickname.clone(),
                ..ProfileForm::default()
            },
            None => ProfileForm::default(),
        }
    }
}

pub struct PersonView<'a> {
    pub user: &'a UserView,
    pub groups: &'a Federated<RealmGroupMembership>,
    pub is_me: bool,
    pub csrf: &'a str,
    pub saved: bool,
    pub error: Option<&'a str>,
    /// The form's values when a save failed (otherwise the stored profile).
    pub form: Option<&'a ProfileForm>,
}

pub fn person(lang: Lang, p: &PersonView, realm_names: &dyn Fn(&str) -> String) -> Markup {
    let t = lang.t();
    let items: Vec<&RealmGroupMembership> = p.groups.items.iter().collect();
    let heading = if p.is_me {
        t.my_groups_here
    } else {
        t.their_groups
    };
    let stored = ProfileForm::of(p.user);
    html! {
        h1 { (person_name(lang, p.user)) }
        @if p.saved { p.notice.ok role="status" { (t.saved) } }
        @match &p.user.profile {
            Some(profile) => (profile_facts(lang, profile)),
            None => p { (t.no_profile) },
        }
        @if p.user.scope == Scope::Basic { p.muted { (t.basic_profile_only) } }
        section aria-labelledby="their-groups" {
            h2 #their-groups { (heading) }
            (coverage_notice(lang, &p.groups.coverage, realm_names))
            @if items.is_empty() { p { (t.no_groups_found) } }
            (memberships_by_realm(lang, &items, heading))
        }
        @if p.is_me {
            (profile_form(lang, p.form.unwrap_or(&stored), p.csrf, p.error, p.user.id))
        }
    }
}

fn select(lang: Lang, name: &str, id: &str, table: &[(&str, &str, &str)], current: &str) -> Markup {
    html! {
        select #(id) name=(name) {
            @for (v, hu, en) in table {
                option value=(v) selected[*v == current] { (match lang { Lang::Hu => *hu, Lang::En => *en }) }
            }
        }
    }
}

fn profile_form(lang: Lang, f: &ProfileForm, csrf: &str, error: Option<&str>, id: Uuid) -> Markup {
    let t = lang.t();
    let v = |x: &Option<String>| x.clone().unwrap_or_default();
    let accounts = &f.external_accounts;
    // Two empty rows to add accounts without JavaScript.
    let rows = accounts.len() + 2;
    html! {
        section aria-labelledby="edit-title" {
            h2 #edit-title { (t.edit_profile) }
            @if let Some(e) = error { p.notice role="alert" #form-error { (e) } }
            form.profile method="post" action={ "/people/" (id) "/profile" } {
                input type="hidden" name="csrf" value=(csrf);
                div.fields {
                    (text_field("lastName", t.last_name, &v(&f.last_name), "family-name"))
                    (text_field("firstName", t.first_name, &v(&f.first_name), "given-name"))
                    (text_field("nickname", t.nickname, &v(&f.nickname), "nickname"))
                    (text_field("cellPhone", t.cell_phone, &v(&f.cell_phone), "tel"))
                    (text_field("room", t.room, &v(&f.room), "off"))
                    div.field {
                        label for="f-dormitory" { (t.dormitory) }
                        (select(lang, "dormitory", "f-dormitory", i18n::DORMITORIES, &v(&f.dormitory)))
                    }
                    div.field {
                        label for="f-gender" { (t.gender) }
                        (select(lang, "gender", "f-gender", i18n::GENDERS, &v(&f.gender)))
                    }
                    div.field {
                        label for="f-studentStatus" { (t.student_status) }
                        (select(lang, "studentStatus", "f-studentStatus", i18n::STUDENT_STATUSES, &v(&f.student_status)))
                    }
                }
                fieldset {
                    legend { (t.external_accounts) }
                    @for i in 0..rows {
                        @let a = accounts.get(i);
                        @let proto = a.map(|a| a.protocol.as_str()).unwrap_or("SCH_MAIL");
                        @let name = a.map(|a| a.account_name.as_str()).unwrap_or("");
                        div.account {
                            label for={ "f-acc-kind-" (i) } { (t.account_kind) " " (i + 1) }
                            (select(lang, "accountProtocol", &format!("f-acc-kind-{i}"), i18n::PROTOCOLS, proto))
                            label for={ "f-acc-name-" (i) } { (t.account_name) " " (i + 1) }
                            input id={ "f-acc-name-" (i) } type="text" name="accountName" value=(name) maxlength="200";
                        }
                    }
                }
                button type="submit" { (t.save) }
            }
        }
    }
}

fn text_field(name: &str, label: &str, value: &str, autocomplete: &str) -> Markup {
    let id = format!("f-{name}");
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) type="text" name=(name) value=(value) maxlength="100" autocomplete=(autocomplete);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realm::RealmId;

    /// A user view as the API answers it.
    fn user(v: serde_json::Value) -> UserView {
        serde_json::from_value(v).expect("a user view")
    }

    #[test]
    fn values_from_the_api_are_escaped() {
        let user = user(serde_json::json!({
            "id": "11111111-2222-3333-4444-555555555555",
            "scope": "full",
            "profile": {"firstName": "<img src=x onerror=alert(1)>", "lastName": "O'Brien & co",
                        "nickname": "<script>alert(1)</script>", "cellPhone": "<b>1</b>",
                        "room": null, "dormitory": "SCH", "gender": "UNKNOWN",
                        "studentStatus": "ACTIVE", "externalAccounts": [], "email": null,
                        "neptun": null, "bmeId": null}
        }));
        let html = person_card(Lang::En, &user, None).into_string();
        assert!(!html.contains("<script>") && !html.contains("<img") && !html.contains("<b>"));
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(html.contains("O'Brien &amp; co"), "{html}");
        assert!(html.contains("&lt;b&gt;1&lt;/b&gt;"), "{html}");
    }

    #[test]
    fn people_of_the_same_name_are_told_apart() {
        let id = |n: char| Uuid::parse_str(&n.to_string().repeat(32)).expect("uuid");
        let p = |n: char, nick: Option<&str>| {
            user(serde_json::json!({"id": id(n), "scope": "basic",
                "profile": {"firstName": "Frida", "lastName": "Friss", "nickname": nick}}))
        };
        let people = [
            p('1', Some("fri")),
            p('2', None),
            p('3', None),
            p('4', Some("frici")),
        ];
        let l = distinct_labels(Lang::Hu, &people);
        assert_eq!(l[&id('1')], "Friss Frida (fri)");
        assert_eq!(l[&id('4')], "Friss Frida (frici)");
        assert_eq!(l[&id('2')], "Friss Frida · 22222222");
        assert_eq!(l[&id('3')], "Friss Frida · 33333333");
    }

    #[test]
    fn a_partial_answer_names_each_missing_realm_with_why_in_the_pages_language() {
        use crate::bff::left_out::LeftOut;
        let realm = |id: &str| RealmId::parse(id).expect("realm id");
        let c = Coverage::new(
            vec![
                LeftOut {
                    realm: realm("kszk"),
                    reason: Reason::Maintenance,
                },
                LeftOut {
                    realm: realm("kir-dev"),
                    reason: Reason::Timeout,
                },
            ],
            Vec::new(),
        );
        let names = |id: &str| format!("«{id}»");
        let hu = coverage_notice(Lang::Hu, &c, &names).into_string();
        assert!(
            hu.contains("«kir-dev» (nem válaszolt időben), «kszk» (karbantartás alatt)"),
            "{hu}"
        );
        let en = coverage_notice(Lang::En, &c, &names).into_string();
        assert!(
            en.contains("«kir-dev» (did not answer in time), «kszk» (is in maintenance)"),
            "{en}"
        );
        let whole = coverage_notice(Lang::Hu, &Coverage::default(), &names).into_string();
        assert!(whole.is_empty(), "{whole}");
    }

    #[test]
    fn only_the_profile_fields_given_are_shown() {
        let basic = user(serde_json::json!({
            "id": "11111111-2222-3333-4444-555555555555", "scope": "basic",
            "profile": {"firstName": "Áron", "lastName": "Szabó", "nickname": "ari"}
        }));
        let html = person_card(Lang::Hu, &basic, None).into_string();
        assert!(html.contains("ari") && html.contains("Szabó Áron"));
        for absent in ["Telefon", "Szoba", "Kollégium", "Külső fiókok"] {
            assert!(!html.contains(absent), "{absent} in {html}");
        }
    }
}
