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
    pub group: &'static str,
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
    pub since: &'static str,
    pub error_title: &'static str,
    pub not_found: &'static str,
    pub forbidden: &'static str,
    pub unavailable: &'static str,
    pub bad_request: &'static str,
    pub internal: &'static str,
    pub back_home: &'static str,
    pub session_expired: &'static str,
    pub csrf_failed: &'static str,
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
    group: "Kör",
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
    since: "óta",
    error_title: "Hiba",
    not_found: "Nincs ilyen oldal, vagy nem láthatod.",
    forbidden: "Ehhez nincs jogosultságod.",
    unavailable: "Ez most nem érhető el, próbáld újra később.",
    bad_request: "Hibás kérés.",
    internal: "Váratlan hiba történt.",
    back_home: "Vissza a kezdőlapra",
    session_expired: "A munkamenet lejárt, jelentkezz be újra.",
    csrf_failed: "Az űrlap elavult vagy nem innen jött. Töltsd újra az oldalt, és próbáld újra.",
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
    group: "Group",
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
    since: "since",
    error_title: "Error",
    not_found: "No such page, or you may not see it.",
    forbidden: "You are not allowed to do this.",
    unavailable: "This is not available right now; try again later.",
    bad_request: "Bad request.",
    internal: "Something unexpected went wrong.",
    back_home: "Back to the home page",
    session_expired: "Your session has expired; please sign in again.",
    csrf_failed: "The form is stale or did not come from this site. Reload the page and try again.",
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

// --- community evaluation pages (one block: their own texts) ----------------------

/// The community evaluation pages' words.
pub struct EvalTexts {
    pub nav: &'static str,
    pub title: &'static str,
    pub my_points: &'static str,
    pub my_points_intro: &'static str,
    pub no_points: &'static str,
    pub their_points: &'static str,
    pub their_points_intro: &'static str,
    pub semester: &'static str,
    pub previous_semester: &'static str,
    pub points: &'static str,
    pub points_integer: &'static str,
    pub group: &'static str,
    pub realm: &'static str,
    pub group_total: &'static str,
    pub my_scoreboards: &'static str,
    pub my_scoreboards_intro: &'static str,
    pub to_judge: &'static str,
    pub to_judge_intro: &'static str,
    pub nothing_to_judge: &'static str,
    pub scoreboard: &'static str,
    pub scoreboard_of: &'static str,
    pub open_scoreboard: &'static str,
    pub start_scoreboard: &'static str,
    pub no_scoreboard: &'static str,
    pub no_semester: &'static str,
    pub season: &'static str,
    pub season_off: &'static str,
    pub season_submission: &'static str,
    pub season_judging: &'static str,
    pub version: &'static str,
    pub status: &'static str,
    pub member: &'static str,
    pub work: &'static str,
    pub responsibility: &'static str,
    pub total: &'static str,
    pub max_per_member: &'static str,
    pub limits: &'static str,
    pub no_guidelines: &'static str,
    pub no_members: &'static str,
    pub read_only: &'static str,
    pub save: &'static str,
    pub saved: &'static str,
    pub submit: &'static str,
    pub submit_hint: &'static str,
    pub submitted: &'static str,
    pub accept: &'static str,
    pub accepted: &'static str,
    pub reject: &'static str,
    pub rejected: &'static str,
    pub reason: &'static str,
    pub rejection_reason: &'static str,
    pub new_version: &'static str,
    pub comments: &'static str,
    pub comments_of_cell: &'static str,
    pub comments_short: &'static str,
    pub guideline: &'static str,
    pub no_comments: &'static str,
    pub add_comment: &'static str,
    pub comment: &'static str,
    pub back_to_scoreboard: &'static str,
    pub refused: &'static str,
    pub not_a_number: &'static str,
    pub table_label: &'static str,
}

/// Scoreboard statuses: (value, Hungarian, English).
pub const SCOREBOARD_STATUSES: &[(&str, &str, &str)] = &[
    ("NOT_SUBMITTED", "nincs beküldve", "not submitted"),
    (
        "NOT_YET_EVALUATED",
        "elbírálásra vár",
        "awaiting evaluation",
    ),
    ("ACCEPTED", "elfogadva", "accepted"),
    ("REJECTED", "elutasítva", "rejected"),
];

impl Lang {
    pub fn eval(self) -> &'static EvalTexts {
        match self {
            Lang::Hu => &EVAL_HU,
            Lang::En => &EVAL_EN,
        }
    }
}

static EVAL_HU: EvalTexts = EvalTexts {
    nav: "Értékelés",
    title: "Közösségi értékelés",
    my_points: "Közösségi pontjaim",
    my_points_intro: "Félévenként, minden realm minden körének pontjaiból a PéK képletével (az adott és az előző félév elfogadott pontozásai).",
    no_points: "Még nincs elfogadott közösségi pontod.",
    their_points: "Közösségi pontok",
    their_points_intro: "Azoknak a köröknek a pontjaiból, amelyek pontjait láthatod.",
    semester: "Félév",
    previous_semester: "előző félév",
    points: "Pont",
    points_integer: "egészre csonkítva",
    group: "Kör",
    realm: "Realm",
    group_total: "A kör pontja (két félév)",
    my_scoreboards: "Köreim pontozása",
    my_scoreboards_intro: "A körök, amelyekben vezető vagy. A pontozást az tölti ki, akinek a realmban erre joga van.",
    to_judge: "Elbírálandó pontozások",
    to_judge_intro: "A beküldött pontozások, amelyeket elbírálhatsz: elfogadás, vagy elutasítás indoklással.",
    nothing_to_judge: "Nincs elbírálásra váró pontozás.",
    scoreboard: "Pontozás",
    scoreboard_of: "pontozása",
    open_scoreboard: "Pontozás megnyitása",
    start_scoreboard: "Pontozás indítása",
    no_scoreboard: "Ennek a körnek még nincs pontozása ebben a félévben.",
    no_semester: "A realm most nem értékel egy félévet sem.",
    season: "Időszak",
    season_off: "szünet (semmi sem szerkeszthető)",
    season_submission: "leadás (a körök kitöltik és beküldik a pontozást)",
    season_judging: "elbírálás (a bírálók elfogadják vagy elutasítják)",
    version: "Változat",
    status: "Állapot",
    member: "Tag",
    work: "Munka",
    responsibility: "Felelősség",
    total: "Összesen",
    max_per_member: "legfeljebb",
    limits: "Munka legfeljebb 30, felelősség legfeljebb 20 tagonként; 1–2 pont 0-t, 3–4 pont 5-öt ér; egy tag legfeljebb 50 pontot kaphat.",
    no_guidelines: "Ehhez a körhöz és félévhez még nincsenek irányelvek.",
    no_members: "A körnek nincs tagja.",
    read_only: "Ez a pontozás most csak olvasható.",
    save: "Mentés és újraszámolás",
    saved: "Elmentve.",
    submit: "Beküldés elbírálásra",
    submit_hint: "Beküldés után a pontozás nem szerkeszthető.",
    submitted: "Beküldve elbírálásra.",
    accept: "Elfogadás",
    accepted: "Elfogadva.",
    reject: "Elutasítás",
    rejected: "Elutasítva.",
    reason: "Indoklás",
    rejection_reason: "Az elutasítás indoka",
    new_version: "Új változat a javításhoz",
    comments: "Megjegyzések",
    comments_of_cell: "Megjegyzések a cellához",
    comments_short: "megj.",
    guideline: "Irányelv",
    no_comments: "Még nincs megjegyzés.",
    add_comment: "Megjegyzés hozzáadása",
    comment: "Megjegyzés",
    back_to_scoreboard: "Vissza a pontozáshoz",
    refused: "A PéK nem fogadta el:",
    not_a_number: "a pont egész szám legyen",
    table_label: "Pontozótábla: tagok és irányelvek",
};

static EVAL_EN: EvalTexts = EvalTexts {
    nav: "Evaluation",
    title: "Community evaluation",
    my_points: "My community points",
    my_points_intro: "Per semester, from every group of every realm by the PéK formula (accepted scoreboards of the semester and the one before).",
    no_points: "You have no accepted community points yet.",
    their_points: "Community points",
    their_points_intro: "From the groups whose points you may see.",
    semester: "Semester",
    previous_semester: "previous semester",
    points: "Points",
    points_integer: "truncated to an integer",
    group: "Group",
    realm: "Realm",
    group_total: "Group total (two semesters)",
    my_scoreboards: "My groups' scoreboards",
    my_scoreboards_intro: "The groups you lead. Those with the right to edit scores in the realm fill the scoreboard.",
    to_judge: "Scoreboards to evaluate",
    to_judge_intro: "Submitted scoreboards you may evaluate: accept, or reject with a reason.",
    nothing_to_judge: "No scoreboard awaits evaluation.",
    scoreboard: "Scoreboard",
    scoreboard_of: "scoreboard",
    open_scoreboard: "Open the scoreboard",
    start_scoreboard: "Start the scoreboard",
    no_scoreboard: "This group has no scoreboard in this semester yet.",
    no_semester: "The realm is not evaluating any semester now.",
    season: "Season",
    season_off: "off (nothing is editable)",
    season_submission: "submission (groups fill and submit scoreboards)",
    season_judging: "judging (evaluators accept or reject)",
    version: "Version",
    status: "Status",
    member: "Member",
    work: "Work",
    responsibility: "Responsibility",
    total: "Total",
    max_per_member: "at most",
    limits: "Work counts up to 30, responsibility up to 20 per member; 1–2 points count 0, 3–4 count 5; a member gets at most 50.",
    no_guidelines: "This group has no guidelines for this semester yet.",
    no_members: "The group has no members.",
    read_only: "This scoreboard is read-only now.",
    save: "Save and recompute",
    saved: "Saved.",
    submit: "Submit for evaluation",
    submit_hint: "Once submitted, the scoreboard is read-only.",
    submitted: "Submitted for evaluation.",
    accept: "Accept",
    accepted: "Accepted.",
    reject: "Reject",
    rejected: "Rejected.",
    reason: "Reason",
    rejection_reason: "Reason for the rejection",
    new_version: "New version to correct it",
    comments: "Comments",
    comments_of_cell: "Comments on the cell",
    comments_short: "notes",
    guideline: "Guideline",
    no_comments: "No comments yet.",
    add_comment: "Add a comment",
    comment: "Comment",
    back_to_scoreboard: "Back to the scoreboard",
    refused: "PéK refused:",
    not_a_number: "points must be a whole number",
    table_label: "Scoreboard: members and guidelines",
};

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
