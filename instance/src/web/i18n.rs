//! The pages' words, Hungarian first, English switchable. Each text is a field, so a
//! missing translation is a compile error, not a blank on the page.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Hu,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Hu => "hu",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "hu" => Some(Lang::Hu),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Hu => Lang::En,
            Lang::En => Lang::Hu,
        }
    }

    /// The first of hu/en in an `Accept-Language` header, by preference (Hungarian
    /// when neither is named).
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, part) in header.split(',').enumerate() {
            let mut it = part.trim().split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=").map(str::to_string))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let Some(lang) = Lang::parse(primary) else {
                continue;
            };
            if q <= 0.0 {
                continue;
            }
            let better = match best {
                None => true,
                Some((bq, bi, _)) => q > bq || (q == bq && i < bi),
            };
            if better {
                best = Some((q, i, lang));
            }
        }
        best.map(|(_, _, l)| l).unwrap_or(Lang::Hu)
    }

    pub fn t(self) -> &'static Texts {
        match self {
            Lang::Hu => &HU,
            Lang::En => &EN,
        }
    }
}

pub struct Texts {
    pub skip_to_content: &'static str,
    pub nav_label: &'static str,
    pub home: &'static str,
    pub search: &'static str,
    pub my_page: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub switch_language: &'static str,
    pub sign_in_title: &'static str,
    pub sign_in_with_authsch: &'static str,
    pub no_login_configured: &'static str,
    pub dev_login_title: &'static str,
    pub dev_login_warning: &'static str,
    pub dev_login_as: &'static str,
    pub dev_login_other: &'static str,
    pub dev_login_id: &'static str,
    pub hello: &'static str,
    pub my_groups: &'static str,
    pub no_groups: &'static str,
    pub partial_notice: &'static str,
    pub more_not_shown: &'static str,
    pub status: &'static str,
    pub posts: &'static str,
    pub search_label: &'static str,
    pub search_hint: &'static str,
    pub search_button: &'static str,
    pub people: &'static str,
    pub groups: &'static str,
    pub no_people: &'static str,
    pub no_groups_found: &'static str,
    pub too_short: &'static str,
    pub more_people: &'static str,
    pub more_groups: &'static str,
    pub first_name: &'static str,
    pub last_name: &'static str,
    pub nickname: &'static str,
    pub cell_phone: &'static str,
    pub room: &'static str,
    pub dormitory: &'static str,
    pub gender: &'static str,
    pub student_status: &'static str,
    pub external_accounts: &'static str,
    pub account_kind: &'static str,
    pub account_name: &'static str,
    pub no_profile: &'static str,
    pub basic_profile_only: &'static str,
    pub their_groups: &'static str,
    pub my_groups_here: &'static str,
    pub edit_profile: &'static str,
    pub save: &'static str,
    pub saved: &'static str,
    pub not_set: &'static str,
    pub unnamed: &'static str,
    pub realm: &'static str,
    pub purpose: &'static str,
    pub archived: &'static str,
    pub parent_group: &'static str,
    pub sub_groups: &'static str,
    pub no_sub_groups: &'static str,
    pub members: &'static str,
    pub no_members: &'static str,
    pub members_hidden: &'static str,
    pub no_description: &'static str,
    pub error_title: &'static str,
    pub not_found: &'static str,
    pub forbidden: &'static str,
    pub unavailable: &'static str,
    pub bad_request: &'static str,
    pub internal: &'static str,
    pub back_home: &'static str,
    pub session_expired: &'static str,
    pub csrf_failed: &'static str,
    // The group page's membership actions.
    pub my_membership: &'static str,
    pub not_member: &'static str,
    pub apply: &'static str,
    pub you_applied: &'static str,
    pub withdraw: &'static str,
    pub you_are_invited: &'static str,
    pub accept_invitation: &'static str,
    pub decline_invitation: &'static str,
    pub you_are_member: &'static str,
    pub leave: &'static str,
    pub you_were_member: &'static str,
    pub archived_no_join: &'static str,
    pub applications: &'static str,
    pub no_applications: &'static str,
    pub accept: &'static str,
    pub reject: &'static str,
    pub invitations: &'static str,
    pub no_invitations: &'static str,
    pub cancel_invitation: &'static str,
    pub invite_title: &'static str,
    pub invite_search_label: &'static str,
    pub invite: &'static str,
    pub new_status: &'static str,
    pub change_status: &'static str,
    pub posts_label: &'static str,
    pub save_posts: &'static str,
    pub edit_group: &'static str,
    pub group_name: &'static str,
    pub description: &'static str,
    pub archived_label: &'static str,
    pub action_failed: &'static str,
    pub conflict: &'static str,
    pub done_applied: &'static str,
    pub done_withdrawn: &'static str,
    pub done_accepted: &'static str,
    pub done_rejected: &'static str,
    pub done_declined: &'static str,
    pub done_left: &'static str,
    pub done_invited: &'static str,
    pub done_cancelled: &'static str,
    pub done_updated: &'static str,
    pub done_saved: &'static str,
}

pub static HU: Texts = Texts {
    skip_to_content: "Ugrás a tartalomra",
    nav_label: "Fő menü",
    home: "Kezdőlap",
    search: "Keresés",
    my_page: "Adatlapom",
    sign_in: "Bejelentkezés",
    sign_out: "Kijelentkezés",
    switch_language: "English",
    sign_in_title: "Bejelentkezés a PéK-be",
    sign_in_with_authsch: "Bejelentkezés AuthSCH-val",
    no_login_configured: "Ezen a hubon nincs bejelentkezési szolgáltató beállítva.",
    dev_login_title: "Fejlesztői bejelentkezés",
    dev_login_warning: "Csak fejlesztéshez: bárki bárkinek bejelentkezhet jelszó nélkül.",
    dev_login_as: "Belépés mint",
    dev_login_other: "Más azonosítóval",
    dev_login_id: "AuthSCH-azonosító",
    hello: "Szia",
    my_groups: "Köreim",
    no_groups: "Még egyik körnek sem vagy tagja.",
    partial_notice: "Nem minden realm válaszolt, ezért a lista hiányos. Nem válaszolt:",
    more_not_shown: "Van még több is, ami itt nem fért el.",
    status: "Státusz",
    posts: "Posztok",
    search_label: "Emberek és körök keresése",
    search_hint: "Név vagy becenév (ékezet nélkül is)",
    search_button: "Keresés",
    people: "Emberek",
    groups: "Körök",
    no_people: "Nincs ilyen ember.",
    no_groups_found: "Nincs ilyen kör.",
    too_short: "Emberek kereséséhez írj legalább 2 betűt.",
    more_people: "További emberek",
    more_groups: "További körök",
    first_name: "Keresztnév",
    last_name: "Vezetéknév",
    nickname: "Becenév",
    cell_phone: "Telefon",
    room: "Szoba",
    dormitory: "Kollégium",
    gender: "Nem",
    student_status: "Hallgatói státusz",
    external_accounts: "Külső fiókok",
    account_kind: "Fiók fajtája",
    account_name: "Fióknév",
    no_profile: "Még nem töltötte ki az adatlapját.",
    basic_profile_only: "Az alap adatlapot látod; a teljeshez jogosultság kell.",
    their_groups: "Körei a közös realmokban",
    my_groups_here: "Köreim",
    edit_profile: "Adatlapom szerkesztése",
    save: "Mentés",
    saved: "Elmentve.",
    not_set: "nincs megadva",
    unnamed: "(névtelen)",
    realm: "Realm",
    purpose: "Típus",
    archived: "archivált",
    parent_group: "Szülő kör",
    sub_groups: "Alkörök",
    no_sub_groups: "Nincsenek alkörök.",
    members: "Tagok",
    no_members: "Nincsenek tagok.",
    members_hidden: "A tagokat nem láthatod.",
    no_description: "Nincs leírás.",
    error_title: "Hiba",
    not_found: "Nincs ilyen oldal, vagy nem láthatod.",
    forbidden: "Ehhez nincs jogosultságod.",
    unavailable: "Ez most nem érhető el, próbáld újra később.",
    bad_request: "Hibás kérés.",
    internal: "Váratlan hiba történt.",
    back_home: "Vissza a kezdőlapra",
    session_expired: "A munkamenet lejárt, jelentkezz be újra.",
    csrf_failed: "Az űrlap elavult vagy nem innen jött. Töltsd újra az oldalt, és próbáld újra.",
    // The group page's membership actions.
    my_membership: "Tagságom",
    not_member: "Nem vagy tagja ennek a körnek.",
    apply: "Jelentkezem a körbe",
    you_applied: "Jelentkeztél ebbe a körbe; egy körvezető bírálja el.",
    withdraw: "Jelentkezés visszavonása",
    you_are_invited: "Meghívtak ebbe a körbe. Elfogadod?",
    accept_invitation: "Elfogadom a meghívást",
    decline_invitation: "Nem kérem",
    you_are_member: "Tagja vagy ennek a körnek, státuszod:",
    leave: "Kilépés a körből",
    you_were_member: "Korábban tagja voltál, státuszod:",
    archived_no_join: "Archivált kör: nem vesz fel új tagokat.",
    applications: "Jelentkezések",
    no_applications: "Nincs elbírálatlan jelentkezés.",
    accept: "Felvétel",
    reject: "Elutasítás",
    invitations: "Meghívások",
    no_invitations: "Nincs függő meghívás.",
    cancel_invitation: "Meghívás visszavonása",
    invite_title: "Meghívás a körbe",
    invite_search_label: "Kit hívsz meg? (név vagy becenév)",
    invite: "Meghívom",
    new_status: "Új státusz",
    change_status: "Státusz módosítása",
    posts_label: "Posztok (vesszővel elválasztva)",
    save_posts: "Posztok mentése",
    edit_group: "A kör szerkesztése",
    group_name: "Név",
    description: "Leírás",
    archived_label: "Archivált (nem vesz fel új tagokat)",
    action_failed: "Nem sikerült.",
    conflict: "Ez most nem lehetséges.",
    done_applied: "Jelentkezésedet elküldtük.",
    done_withdrawn: "Visszavontad a jelentkezésedet.",
    done_accepted: "Elfogadva: újoncként tag.",
    done_rejected: "A jelentkezést elutasítottad.",
    done_declined: "A meghívást nem fogadtad el.",
    done_left: "Kiléptél a körből.",
    done_invited: "Meghívó elküldve; akkor lesz tag, ha elfogadja.",
    done_cancelled: "A meghívást visszavontad.",
    done_updated: "Tagság módosítva.",
    done_saved: "A kör adatai elmentve.",
};

pub static EN: Texts = Texts {
    skip_to_content: "Skip to content",
    nav_label: "Main menu",
    home: "Home",
    search: "Search",
    my_page: "My profile",
    sign_in: "Sign in",
    sign_out: "Sign out",
    switch_language: "Magyar",
    sign_in_title: "Sign in to PéK",
    sign_in_with_authsch: "Sign in with AuthSCH",
    no_login_configured: "This hub has no login provider configured.",
    dev_login_title: "Development sign-in",
    dev_login_warning: "Development only: anyone can sign in as anyone without a password.",
    dev_login_as: "Sign in as",
    dev_login_other: "Another id",
    dev_login_id: "AuthSCH id",
    hello: "Hello",
    my_groups: "My groups",
    no_groups: "You are not a member of any group yet.",
    partial_notice: "Not every realm answered, so this list is incomplete. No answer from:",
    more_not_shown: "There is more that did not fit here.",
    status: "Status",
    posts: "Posts",
    search_label: "Search people and groups",
    search_hint: "Name or nickname (accents optional)",
    search_button: "Search",
    people: "People",
    groups: "Groups",
    no_people: "No such person.",
    no_groups_found: "No such group.",
    too_short: "Type at least 2 letters to search people.",
    more_people: "More people",
    more_groups: "More groups",
    first_name: "First name",
    last_name: "Last name",
    nickname: "Nickname",
    cell_phone: "Phone",
    room: "Room",
    dormitory: "Dormitory",
    gender: "Gender",
    student_status: "Student status",
    external_accounts: "External accounts",
    account_kind: "Account kind",
    account_name: "Account name",
    no_profile: "Has not filled in a profile yet.",
    basic_profile_only: "You see the basic profile; the full one needs a permission.",
    their_groups: "Groups in realms you share",
    my_groups_here: "My groups",
    edit_profile: "Edit my profile",
    save: "Save",
    saved: "Saved.",
    not_set: "not set",
    unnamed: "(no name)",
    realm: "Realm",
    purpose: "Kind",
    archived: "archived",
    parent_group: "Parent group",
    sub_groups: "Sub-groups",
    no_sub_groups: "No sub-groups.",
    members: "Members",
    no_members: "No members.",
    members_hidden: "You may not see the members.",
    no_description: "No description.",
    error_title: "Error",
    not_found: "No such page, or you may not see it.",
    forbidden: "You are not allowed to do this.",
    unavailable: "This is not available right now; try again later.",
    bad_request: "Bad request.",
    internal: "Something unexpected went wrong.",
    back_home: "Back to the home page",
    session_expired: "Your session has expired; please sign in again.",
    csrf_failed: "The form is stale or did not come from this site. Reload the page and try again.",
    // The group page's membership actions.
    my_membership: "My membership",
    not_member: "You are not a member of this group.",
    apply: "Apply to join",
    you_applied: "You applied to this group; a leader will decide.",
    withdraw: "Withdraw my application",
    you_are_invited: "You are invited to this group. Do you accept?",
    accept_invitation: "Accept the invitation",
    decline_invitation: "Decline",
    you_are_member: "You are a member of this group, your status:",
    leave: "Leave the group",
    you_were_member: "You were a member, your status:",
    archived_no_join: "An archived group takes no new members.",
    applications: "Applications",
    no_applications: "No pending applications.",
    accept: "Accept",
    reject: "Reject",
    invitations: "Invitations",
    no_invitations: "No pending invitations.",
    cancel_invitation: "Cancel the invitation",
    invite_title: "Invite to the group",
    invite_search_label: "Whom do you invite? (name or nickname)",
    invite: "Invite",
    new_status: "New status",
    change_status: "Change status",
    posts_label: "Posts (comma-separated)",
    save_posts: "Save posts",
    edit_group: "Edit the group",
    group_name: "Name",
    description: "Description",
    archived_label: "Archived (takes no new members)",
    action_failed: "That did not work.",
    conflict: "This is not possible now.",
    done_applied: "Your application has been sent.",
    done_withdrawn: "You withdrew your application.",
    done_accepted: "Accepted: now a member (newbie).",
    done_rejected: "The application was rejected.",
    done_declined: "You declined the invitation.",
    done_left: "You left the group.",
    done_invited: "Invitation sent; they become a member when they accept.",
    done_cancelled: "The invitation was cancelled.",
    done_updated: "Membership updated.",
    done_saved: "The group has been saved.",
};

/// A membership status in words (unknown statuses as they are).
pub fn status(lang: Lang, s: &str) -> String {
    let hu = match s {
        "NEWBIE" => ("Újonc", "Newbie"),
        "ACTIVE" => ("Aktív", "Active"),
        "FORMER" => ("Öregtag", "Former member"),
        "ARCHIVED" => ("Archivált", "Archived"),
        "APPLIED" | "APPLICATION" => ("Jelentkezett", "Applied"),
        "INVITED" | "INVITATION" => ("Meghívva", "Invited"),
        other => return other.to_string(),
    };
    match lang {
        Lang::Hu => hu.0.into(),
        Lang::En => hu.1.into(),
    }
}

/// Labels of the profile's enumerations: (value, Hungarian, English).
pub const DORMITORIES: &[(&str, &str, &str)] = &[
    ("UNKNOWN", "nincs megadva", "not set"),
    ("SCH", "Schönherz", "Schönherz"),
    ("KARMAN", "Kármán", "Kármán"),
    ("TETENY", "Tétényi", "Tétényi"),
    ("BAROSS", "Baross", "Baross"),
    ("BERCSENYI", "Bercsényi", "Bercsényi"),
    ("VASARHELYI", "Vásárhelyi", "Vásárhelyi"),
    ("EXTERNAL", "külsős", "external"),
];

pub const GENDERS: &[(&str, &str, &str)] = &[
    ("UNKNOWN", "nincs megadva", "not set"),
    ("FEMALE", "nő", "female"),
    ("MALE", "férfi", "male"),
    ("OTHER", "egyéb", "other"),
];

pub const STUDENT_STATUSES: &[(&str, &str, &str)] = &[
    ("UNKNOWN", "nincs megadva", "not set"),
    ("ACTIVE", "aktív", "active"),
    ("GRADUATED", "végzett", "graduated"),
    ("OTHER", "egyéb", "other"),
];

pub const PURPOSES: &[(&str, &str, &str)] = &[
    ("UNKNOWN", "ismeretlen", "unknown"),
    ("CIRCLE", "Kör", "Circle"),
    ("COMMITTEE", "Bizottság", "Committee"),
    ("DEPARTMENT", "Szakosztály", "Department"),
    ("EVENT", "Rendezvény", "Event"),
    ("PROJECT", "Projekt", "Project"),
    ("PARTY", "Buli", "Party"),
    ("RESORT", "Reszort", "Resort"),
    ("OTHER", "Egyéb", "Other"),
];

pub const PROTOCOLS: &[(&str, &str, &str)] = &[
    ("SCH_MAIL", "SCH e-mail", "SCH mail"),
    ("GMAIL", "Gmail", "Gmail"),
    ("TELEGRAM", "Telegram", "Telegram"),
    ("META_FORMERLY_FACEBOOK", "Facebook", "Facebook"),
    ("X_FORMERLY_TWITTER", "X (Twitter)", "X (Twitter)"),
    ("SKYPE", "Skype", "Skype"),
    ("IRC", "IRC", "IRC"),
    ("JABBER", "Jabber", "Jabber"),
    ("GTALK", "Google Talk", "Google Talk"),
    ("CALL_SIGN", "Hívójel", "Call sign"),
    ("HIMZO", "Hímző", "Hímző"),
    ("EASTER_EGG", "🏆", "🏆"),
];

/// The label of an enumeration value (the value itself when unknown).
pub fn label(lang: Lang, table: &[(&str, &str, &str)], value: &str) -> String {
    table
        .iter()
        .find(|(v, ..)| *v == value)
        .map(|(_, hu, en)| match lang {
            Lang::Hu => *hu,
            Lang::En => *en,
        })
        .unwrap_or(value)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_of_hu_and_en() {
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,hu;q=0.8"),
            Lang::En
        );
        assert_eq!(Lang::from_accept_language("de,hu;q=0.5,en;q=0.4"), Lang::Hu);
        assert_eq!(Lang::from_accept_language("en;q=0.2,hu;q=0.9"), Lang::Hu);
        assert_eq!(Lang::from_accept_language("de-DE"), Lang::Hu);
        assert_eq!(Lang::from_accept_language("en;q=0,hu;q=0"), Lang::Hu);
        assert_eq!(Lang::from_accept_language(""), Lang::Hu);
    }
}
