//! The group page's markup: what a group is and who is in it, and the membership
//! lifecycle as buttons (see `web/groups.rs` for the actions they post to). Pure
//! functions of the API's answers; the controls offered are those the API said the
//! person may use.

use std::collections::HashMap;

use axum::http::StatusCode;
use maud::{html, Markup};
use uuid::Uuid;

use super::super::api::enc;
use super::super::i18n::{self, Lang};
use crate::group::Group;
use crate::http::bff_api::UserPage;
use crate::membership::{Membership, Status};
use crate::page::Page;
use crate::realm::RealmId;
use crate::web::views;

/// What the page says above everything else after an action.
pub enum Notice {
    Done(&'static str),
    /// The API refused: its status and what to say of it (see `Api::refusal`).
    Failed(StatusCode, String),
}

/// The group page's data, every part as the API answered it.
pub struct GroupView<'a> {
    pub realm: &'a RealmId,
    pub realm_name: String,
    pub group: &'a Group,
    pub parent: Option<&'a Group>,
    /// The sub-groups; None when the API did not answer them.
    pub children: Option<&'a Page<Group>>,
    /// Memberships of every status; None when the caller may not see them.
    pub members: Option<&'a [Membership]>,
    pub members_more: bool,
    /// The group's own post names (the leader's apart), in the API's order.
    pub post_names: Vec<String>,
    /// People's names by id, as the caller may see them, told apart.
    pub labels: HashMap<Uuid, String>,
    /// The caller's own membership here.
    pub mine: Option<&'a Membership>,
    /// The API lets the caller edit the members / the group.
    pub edit_members: bool,
    pub edit_group: bool,
    pub csrf: &'a str,
    pub notice: Option<&'a Notice>,
    pub find: Option<&'a str>,
    /// The invitation search's people.
    pub found: Option<&'a UserPage>,
    pub found_error: Option<&'a str>,
}

impl GroupView<'_> {
    fn id(&self) -> String {
        self.group.id.to_string()
    }

    /// A member's name, told apart from the others of the page (see
    /// [`views::distinct_labels`]).
    fn name_of(&self, lang: Lang, m: &Membership) -> Markup {
        html! {
            @match self.labels.get(&m.user_id) {
                Some(l) => a.title href={ "/people/" (m.user_id) } { (l) },
                None => span.title { (lang.t().unnamed) },
            }
        }
    }

    /// Whether `m` is the group's only current leader (as far as the caller sees the
    /// members): the API refuses their leaving, so the page says why up front.
    fn only_leader(&self, m: &Membership) -> bool {
        let Some(members) = self.members else {
            return false;
        };
        holds_leader(m)
            && !members.iter().any(|o| {
                o.id != m.id && matches!(o.status.as_str(), "NEWBIE" | "ACTIVE") && holds_leader(o)
            })
    }

    fn with_status(&self, statuses: &[Status]) -> Vec<&Membership> {
        self.members
            .into_iter()
            .flatten()
            .filter(|m| Status::parse(&m.status).is_some_and(|s| statuses.contains(&s)))
            .collect()
    }
}

/// The id of the button that posts `fields` to `action`: the same in the page an
/// action answers with, so the person's focus and place stay on it (see `app.js`).
fn control_id(action: &str, fields: &[(&str, &str)]) -> String {
    let mut id = String::from("do");
    // The group is the page's own; the csrf token changes nothing.
    let parts = std::iter::once(action).chain(
        fields
            .iter()
            .filter(|(k, _)| *k != "group")
            .map(|(_, v)| *v),
    );
    for part in parts {
        for c in part.chars() {
            if c.is_ascii_alphanumeric() {
                id.push(c);
            } else if !id.ends_with('-') {
                id.push('-');
            }
        }
    }
    id
}

/// What every htmx form of the page has: the answer's `main` swapped in place, its
/// submit button disabled and showing that it works while the request is in flight
/// (htmx's `htmx-request` class on the form; see `.spinner` in app.css).
fn htmx_form(action: &str, fields: &[(&str, &str)], csrf: &str, body: Markup) -> Markup {
    html! {
        form.action method="post" action=(action)
            hx-post=(action) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
            hx-disabled-elt="find button" {
            input type="hidden" name="csrf" value=(csrf);
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            (body)
        }
    }
}

/// The "working" mark inside a submit button (shown while its request is in flight).
fn spinner() -> Markup {
    html! { span.spinner.htmx-indicator aria-hidden="true" {} }
}

/// A one-button form that posts to `action` (htmx swaps the answer's `main` in place).
fn button_form(
    csrf: &str,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    secondary: bool,
) -> Markup {
    let id = control_id(action, fields);
    htmx_form(
        action,
        fields,
        csrf,
        html! { button.secondary[secondary] id=(id) type="submit" { (label) (spinner()) } },
    )
}

/// [`button_form`] behind a confirmation (see [`views::confirm`]).
fn confirmed_form(
    csrf: &str,
    action: &str,
    fields: &[(&str, &str)],
    (summary, warning, yes): (&str, &str, &str),
) -> Markup {
    let id = control_id(action, fields);
    views::confirm(
        summary,
        warning,
        htmx_form(
            action,
            fields,
            csrf,
            html! { button.danger id=(id) type="submit" { (yes) (spinner()) } },
        ),
    )
}

fn membership_href(realm: &RealmId, id: Uuid, action: &str) -> String {
    format!("/realms/{}/memberships/{id}/{action}", enc(realm.as_str()))
}

/// The status changes a leader may make (the API's rule; it answers 409 for others).
pub fn next_statuses(current: &str) -> &'static [Status] {
    match current {
        "NEWBIE" => &[Status::Active, Status::Former],
        "ACTIVE" => &[Status::Former],
        "FORMER" => &[Status::Archived],
        "ARCHIVED" => &[Status::Former],
        _ => &[],
    }
}

/// A membership's posts as shown, "leader" in the page's language.
fn posts_text(lang: Lang, m: &Membership) -> String {
    views::post_list(lang, &m.posts)
}

fn holds(m: &Membership, post: &str) -> bool {
    m.posts.iter().any(|p| p == post)
}

/// The posts `m` holds that are neither the leader's nor among the group's names (held
/// from before the group listed them, e.g. imported): kept when their posts are saved.
fn unlisted_posts<'a>(m: &'a Membership, names: &[String]) -> Vec<&'a str> {
    m.posts
        .iter()
        .map(String::as_str)
        .filter(|p| *p != views::LEADER_POST && !names.iter().any(|n| n == p))
        .collect()
}

fn holds_leader(m: &Membership) -> bool {
    holds(m, views::LEADER_POST)
}

/// The group page's `main`.
pub fn page(lang: Lang, g: &GroupView) -> Markup {
    let t = lang.t();
    let desc = g.group.description.as_str();
    let archived = g.group.archived;
    html! {
        div #group {
            h1 {
                (g.group.name)
                @if archived { " " span.tag { (t.archived) } }
            }
            @match g.notice {
                Some(Notice::Done(text)) => p.notice.ok role="status" { (text) },
                Some(Notice::Failed(status, message)) => div.notice role="alert" #action-error {
                    p { strong { (t.action_failed) } " " (views::failure_text(lang, *status)) }
                    @if !message.is_empty() { p.detail { (message) } }
                },
                None => {},
            }
            dl.facts {
                dt { (t.realm) } dd {
                    (g.realm_name) " " span.muted { "(" (g.realm) ")" }
                    " · " a href={ "/realms/" (enc(g.realm.as_str())) "/admin" } { (lang.admin().manage_link) }
                }
                dt { (t.purpose) } dd { (i18n::label(lang, i18n::PURPOSES, &g.group.purpose)) }
                @if let Some(p) = g.parent {
                    dt { (t.parent_group) }
                    dd { a href=(group_href(g.realm, &p.id.to_string())) { (p.name) } }
                }
            }
            @if desc.trim().is_empty() { p.muted { (t.no_description) } } @else {
                div.description { @for line in desc.lines() { p { (line) } } }
            }
            (my_membership(lang, g, archived))
            section #children aria-labelledby="children-title" {
                h2 #children-title { (t.sub_groups) }
                @let children: &[Group] = g.children.map(|c| c.items.as_slice()).unwrap_or_default();
                @if children.is_empty() { p { (t.no_sub_groups) } }
                ul.plain {
                    @for c in children {
                        li { a href=(group_href(g.realm, &c.id.to_string())) { (c.name) } }
                    }
                }
            }
            @if g.edit_members { (applications(lang, g)) }
            (members(lang, g))
            @if g.edit_members { (post_names(lang, g)) }
            @if g.edit_members { (invitations(lang, g, archived)) }
            @if g.edit_group { (edit_form(lang, g)) }
        }
    }
}

fn group_href(realm: &RealmId, id: &str) -> String {
    format!("/realms/{}/groups/{}", enc(realm.as_str()), enc(id))
}

fn my_membership(lang: Lang, g: &GroupView, archived: bool) -> Markup {
    let gid = g.id();
    let t = lang.t();
    let apply = format!("{}/apply", group_href(g.realm, gid.as_str()));
    let open = g.group.users_can_apply;
    let group_field = [("group", gid.as_str())];
    html! {
        section #mine aria-labelledby="mine-title" {
            h2 #mine-title { (t.my_membership) }
            @match g.mine {
                Some(m) => {
                    @let id = m.id;
                    @let status = m.status.as_str();
                    @match status {
                        "APPLIED" => {
                            p { (t.you_applied) }
                            (button_form(g.csrf, &membership_href(g.realm, id, "withdraw"), &group_field, t.withdraw, true))
                        }
                        "INVITED" => {
                            p { (t.you_are_invited) }
                            div.controls {
                                (button_form(g.csrf, &membership_href(g.realm, id, "accept"), &group_field, t.accept_invitation, false))
                                (button_form(g.csrf, &membership_href(g.realm, id, "decline"), &group_field, t.decline_invitation, true))
                            }
                        }
                        "NEWBIE" | "ACTIVE" => {
                            p { (t.you_are_member) " " strong #my-status { (i18n::status(lang, status)) } }
                            @let posts = posts_text(lang, m);
                            @if !posts.is_empty() { p { (t.posts) ": " (posts) } }
                            @if g.only_leader(m) {
                                p.notice #only-leader { (t.only_leader) }
                            } @else {
                                (confirmed_form(g.csrf, &membership_href(g.realm, id, "leave"), &group_field, (t.leave, t.leave_confirm, t.leave_yes)))
                            }
                        }
                        _ => {
                            p { (t.you_were_member) " " strong #my-status { (i18n::status(lang, status)) } }
                            @if archived { p { (t.archived_no_join) } }
                            @else if !open { p { (lang.dir().closed) } }
                            @else { (button_form(g.csrf, &apply, &[], t.apply, false)) }
                        }
                    }
                }
                None => {
                    p { (t.not_member) }
                    @if archived { p { (t.archived_no_join) } }
                    @else if !open { p { (lang.dir().closed) } }
                    @else { (button_form(g.csrf, &apply, &[], t.apply, false)) }
                }
            }
        }
    }
}

fn members(lang: Lang, g: &GroupView) -> Markup {
    let t = lang.t();
    html! {
        section #members aria-labelledby="members-title" {
            h2 #members-title { (t.members) }
            @match &g.members {
                None => p { (t.members_hidden) },
                Some(_) => {
                    @let list = g.with_status(&[Status::Newbie, Status::Active, Status::Former, Status::Archived]);
                    @if list.is_empty() { p { (t.no_members) } }
                    ul.cards #member-list {
                        @for m in &list {
                            @let id = m.id;
                            @let status = m.status.as_str();
                            li id={ "member-" (id) } data-membership=(id) {
                                (g.name_of(lang, m))
                                dl.facts {
                                    dt { (t.status) }
                                    dd.status { (i18n::status(lang, status)) }
                                    @let p = posts_text(lang, m);
                                    @if !p.is_empty() { dt { (t.posts) } dd { (p) } }
                                }
                                @if g.edit_members { (member_controls(lang, g, m)) }
                            }
                        }
                    }
                    @if g.members_more { p.muted { (t.more_not_shown) } }
                }
            }
        }
    }
}

/// A leader's controls on one member: the status changes allowed from here, and posts.
fn member_controls(lang: Lang, g: &GroupView, m: &Membership) -> Markup {
    let gid = g.id();
    let t = lang.t();
    let id = m.id;
    let next = next_statuses(&m.status);
    let status_action = membership_href(g.realm, id, "status");
    let posts_action = membership_href(g.realm, id, "posts");
    html! {
        div.controls {
            @if !next.is_empty() {
                form.status method="post" action=(status_action)
                    hx-post=(status_action) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                    hx-disabled-elt="find button" {
                    input type="hidden" name="csrf" value=(g.csrf);
                    input type="hidden" name="group" value=(gid.as_str());
                    label for={ "st-" (id) } { (t.new_status) }
                    div.row {
                        select id={ "st-" (id) } name="status" {
                            @for s in next { option value=(s.as_str()) { (i18n::status(lang, s.as_str())) } }
                        }
                        button id=(control_id(&status_action, &[])) type="submit" { (t.change_status) (spinner()) }
                    }
                }
            }
            form.posts method="post" action=(posts_action)
                hx-post=(posts_action) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                hx-disabled-elt="find button" {
                input type="hidden" name="csrf" value=(g.csrf);
                input type="hidden" name="group" value=(gid.as_str());
                @for p in unlisted_posts(m, &g.post_names) {
                    input type="hidden" name="post" value=(p);
                }
                fieldset.posts {
                    legend { (t.posts_label) }
                    div.check {
                        input id={ "pl-" (id) } type="checkbox" name="leader" value="on" checked[holds_leader(m)];
                        label for={ "pl-" (id) } { (t.leader_post) }
                    }
                    @for (i, p) in g.post_names.iter().enumerate() {
                        div.check {
                            input id={ "pp-" (id) "-" (i) } type="checkbox" name="post" value=(p) checked[holds(m, p)];
                            label for={ "pp-" (id) "-" (i) } { (p) }
                        }
                    }
                }
                button.secondary id=(control_id(&posts_action, &[])) type="submit" { (t.save_posts) (spinner()) }
            }
        }
    }
}

/// The group's post names, for whoever may manage its members: add, rename, delete
/// (the API refuses deleting one that members hold, and says why).
fn post_names(lang: Lang, g: &GroupView) -> Markup {
    let gid = g.id();
    let t = lang.t();
    let page = group_href(g.realm, gid.as_str());
    let add = format!("{page}/post-add");
    let rename = format!("{page}/post-rename");
    let delete = format!("{page}/post-delete");
    html! {
        section #posts aria-labelledby="posts-title" {
            h2 #posts-title { (t.post_names) }
            p.muted { (t.post_names_intro) }
            @if g.post_names.is_empty() { p { (t.no_post_names) } }
            ul.cards #post-list {
                @for (i, p) in g.post_names.iter().enumerate() {
                    li data-post=(p) {
                        span.title { (p) }
                        form.post-rename method="post" action=(rename)
                            hx-post=(rename) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                            hx-disabled-elt="find button" {
                            input type="hidden" name="csrf" value=(g.csrf);
                            input type="hidden" name="post" value=(p);
                            label for={ "pn-" (i) } { (t.rename_post_label) }
                            div.row {
                                input id={ "pn-" (i) } type="text" name="name" value=(p) required maxlength="50";
                                button.secondary id=(control_id(&rename, &[("post", p)])) type="submit" { (t.rename_post) (spinner()) }
                            }
                        }
                        (button_form(g.csrf, &delete, &[("post", p.as_str())], t.delete_post, true))
                    }
                }
            }
            form.post-add method="post" action=(add)
                hx-post=(add) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                hx-disabled-elt="find button" {
                input type="hidden" name="csrf" value=(g.csrf);
                label for="new-post" { (t.new_post_name) }
                div.row {
                    input #new-post type="text" name="name" required maxlength="50";
                    button #add-post type="submit" { (t.add_post) (spinner()) }
                }
            }
        }
    }
}

fn applications(lang: Lang, g: &GroupView) -> Markup {
    let gid = g.id();
    let t = lang.t();
    let list = g.with_status(&[Status::Applied]);
    let group_field = [("group", gid.as_str())];
    html! {
        section #applications aria-labelledby="applications-title" {
            h2 #applications-title { (t.applications) }
            @if g.members.is_none() { p { (t.members_hidden) } }
            @else if list.is_empty() { p { (t.no_applications) } }
            ul.cards #application-list {
                @for m in &list {
                    @let id = m.id;
                    li id={ "application-" (id) } data-membership=(id) {
                        (g.name_of(lang, m))
                        div.controls {
                            (button_form(g.csrf, &membership_href(g.realm, id, "accept"), &group_field, t.accept, false))
                            (confirmed_form(g.csrf, &membership_href(g.realm, id, "reject"), &group_field, (t.reject, t.reject_confirm, t.reject_yes)))
                        }
                    }
                }
            }
        }
    }
}

fn invitations(lang: Lang, g: &GroupView, archived: bool) -> Markup {
    let gid = g.id();
    let t = lang.t();
    let list = g.with_status(&[Status::Invited]);
    let group_field = [("group", gid.as_str())];
    let page = group_href(g.realm, gid.as_str());
    let invite = format!("{page}/invite");
    html! {
        section #invitations aria-labelledby="invitations-title" {
            h2 #invitations-title { (t.invitations) }
            @if g.members.is_none() { p { (t.members_hidden) } }
            @else if list.is_empty() { p { (t.no_invitations) } }
            ul.cards #invitation-list {
                @for m in &list {
                    @let id = m.id;
                    li id={ "invitation-" (id) } data-membership=(id) {
                        (g.name_of(lang, m))
                        @let p = posts_text(lang, m);
                        @if !p.is_empty() { dl.facts { dt { (t.posts) } dd { (p) } } }
                        (button_form(g.csrf, &membership_href(g.realm, id, "cancel"), &group_field, t.cancel_invitation, true))
                    }
                }
            }
            @if !archived {
                h3 #invite-title { (t.invite_title) }
                form.search method="get" action=(page)
                    hx-get=(page) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                    hx-disabled-elt="find button" {
                    label for="find" { (t.invite_search_label) }
                    div.row {
                        input #find type="search" name="find" value=(g.find.unwrap_or("")) autocomplete="off" maxlength="200";
                        button #find-button type="submit" { (t.search_button) (spinner()) }
                    }
                }
                @if let Some(e) = g.found_error { p { (e) } }
                @if let Some(found) = g.found {
                    @if found.items.is_empty() { p { (t.no_people) } }
                    @let labels = views::distinct_labels(lang, &found.items);
                    ul.cards #invite-results {
                        @for u in &found.items {
                            @let uid = u.id.to_string();
                            li {
                                a.title href={ "/people/" (uid) } {
                                    (labels.get(&u.id).cloned().unwrap_or_else(|| views::person_name(lang, u)))
                                }
                                (button_form(g.csrf, &invite, &[("userId", &uid)], t.invite, false))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn edit_form(lang: Lang, g: &GroupView) -> Markup {
    let gid = g.id();
    let t = lang.t();
    let action = format!("{}/edit", group_href(g.realm, gid.as_str()));
    let purpose = g.group.purpose.as_str();
    html! {
        section #edit-group aria-labelledby="edit-group-title" {
            h2 #edit-group-title { (t.edit_group) }
            form.group-edit method="post" action=(action)
                hx-post=(action) hx-target="#main" hx-select="#main" hx-swap="outerHTML"
                hx-disabled-elt="find button" {
                input type="hidden" name="csrf" value=(g.csrf);
                div.field {
                    label for="g-name" { (t.group_name) }
                    input #g-name type="text" name="name" required maxlength="200"
                        value=(g.group.name);
                }
                div.field {
                    label for="g-purpose" { (t.purpose) }
                    select #g-purpose name="purpose" {
                        @for (v, hu, en) in i18n::PURPOSES {
                            option value=(v) selected[*v == purpose] { (match lang { Lang::Hu => *hu, Lang::En => *en }) }
                        }
                    }
                }
                div.field {
                    label for="g-description" { (t.description) }
                    textarea #g-description name="description" rows="5" maxlength="10000" {
                        (g.group.description)
                    }
                }
                input type="hidden" name="switches" value="on";
                div.check {
                    input #g-listed type="checkbox" name="listed" value="on"
                        checked[g.group.listed];
                    label for="g-listed" { (lang.admin().listed_label) }
                }
                div.check {
                    input #g-apply type="checkbox" name="usersCanApply" value="on"
                        checked[g.group.users_can_apply];
                    label for="g-apply" { (lang.admin().users_can_apply_label) }
                }
                button #save-group type="submit" { (t.save) (spinner()) }
            }
            div #archive {
                @if g.group.archived {
                    (button_form(g.csrf, &format!("{}/unarchive", group_href(g.realm, gid.as_str())), &[], t.unarchive, true))
                } @else {
                    (confirmed_form(g.csrf, &format!("{}/archive", group_href(g.realm, gid.as_str())), &[], (t.archive, t.archive_confirm, t.archive_yes)))
                }
            }
        }
        @if !g.group.archived { (sub_group_form(lang, g)) }
    }
}

/// Creating a group under this one (the API lets whoever may edit this group).
fn sub_group_form(lang: Lang, g: &GroupView) -> Markup {
    let gid = g.id();
    let a = lang.admin();
    let t = lang.t();
    let action = format!("{}/subgroup", group_href(g.realm, gid.as_str()));
    html! {
        section aria-labelledby="new-sub-group-title" {
            h2 #new-sub-group-title { (a.new_sub_group) }
            form.group-new method="post" action=(action) {
                input type="hidden" name="csrf" value=(g.csrf);
                div.field {
                    label for="sg-name" { (t.group_name) }
                    input #sg-name type="text" name="name" required maxlength="200";
                }
                div.field {
                    label for="sg-purpose" { (t.purpose) }
                    select #sg-purpose name="purpose" {
                        @for (v, hu, en) in i18n::PURPOSES {
                            option value=(v) { (match lang { Lang::Hu => *hu, Lang::En => *en }) }
                        }
                    }
                }
                button type="submit" { (a.create_sub_group) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership(posts: &[&str]) -> Membership {
        serde_json::from_value(serde_json::json!({
            "id": Uuid::nil(), "realmId": "kir-dev", "groupId": Uuid::nil(),
            "userId": Uuid::nil(), "status": "ACTIVE", "posts": posts,
            "startAt": "2026-01-01T00:00:00Z", "until": null,
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z",
            "reopenOfferedAt": null
        }))
        .expect("a membership as the API answers it")
    }

    #[test]
    fn posts_held_outside_the_groups_names_are_kept_apart() {
        let m = membership(&["leader", "pr", "régi"]);
        assert_eq!(unlisted_posts(&m, &["pr".to_string()]), vec!["régi"]);
        assert!(holds(&m, "pr") && !holds(&m, "gazdaságis"));
    }

    #[test]
    fn the_page_offers_the_status_changes_the_api_allows() {
        assert_eq!(next_statuses("NEWBIE"), [Status::Active, Status::Former]);
        assert_eq!(next_statuses("ACTIVE"), [Status::Former]);
        assert_eq!(next_statuses("FORMER"), [Status::Archived]);
        assert_eq!(next_statuses("ARCHIVED"), [Status::Former]);
        assert!(next_statuses("APPLIED").is_empty());
    }
}
