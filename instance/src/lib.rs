//! PéK instance: hub, worker and BFF in one crate.
pub mod localpg;
