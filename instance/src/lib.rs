//! PéK instance: hub, worker and BFF in one crate. Modules follow the domain: realms and
//! their isolation (`realm`, `db`), `policy`, `group`, `membership`, `semester`,
//! `feature`, `profile`, `auth`, the `http` API over them and the `web` pages on top.

pub use localpg;

pub mod app;
pub mod auth;
pub mod bench;
pub mod bff;
pub mod cache;
pub mod config;
pub mod db;
pub mod demo;
pub mod directory;
pub mod error;
pub mod evaluation;
pub mod feature;
pub mod federation;
pub mod group;
pub mod http;
pub mod login;
pub mod membership;
pub mod page;
pub mod policy;
pub mod profile;
pub mod realm;
mod realm_id;
pub mod registry;
pub mod semester;
pub mod service_directory;
pub mod text;
pub mod web;
