//! PéK instance: hub, worker and BFF in one crate.
pub use localpg;
