//! PéK instance: hub, worker and BFF in one crate. Modules follow the domain: realms and
//! their isolation (`realm`, `db`), `policy`, `group`, `membership`, `semester`,
//! `feature`, `profile`, `auth`, the `http` API over them and the `web` pages on top.
//!
//! Modules are private unless the `pek` binary, the integration tests (`instance/tests`,
//! the `pek-tests` crate) or the `pek-bench` benchmarks use them, so the compiler
//! reports code nothing uses.

pub mod app;
pub mod auth;
mod bff;
pub mod cache;
pub mod config;
mod csrf;
pub mod db;
pub mod demo;
mod dev_provider;
mod directory;
pub mod error;
mod evaluation;
mod feature;
pub mod federation;
pub mod group;
pub mod http;
mod identity;
mod legacy;
mod login;
mod membership;
mod page;
pub mod pek_next;
mod person_merge;
pub mod policy;
mod post;
pub mod profile;
pub mod realm;
mod realm_id;
mod registry;
mod semester;
mod service_directory;
pub mod session;
mod text;
mod web;

/// The folding group search matches on (`groups.name_folded`); `pek-bench` seeds groups
/// with it.
pub use text::fold;

/// The largest page a list answers (`limit`); `pek-bench group-search` checks its `--limit`.
pub use page::MAX_LIMIT;

/// The evaluation steps `pek-bench point-history` times in-process (the domain code without
/// HTTP in between), and the points formula it checks their results against.
pub mod scoring {
    pub use crate::evaluation::guideline::Category;
    pub use crate::evaluation::history::semester_totals;
    pub use crate::evaluation::points::{member_points, semester_points, Requested};
    pub use crate::evaluation::scoreboard::accept;
    pub use crate::evaluation::season::{change as change_season, SeasonInput};
    pub use crate::evaluation::Season;
    pub use crate::page::decode_cursor;
}
