//! Phase 2, for a Realm with `spec.database.restoreFrom`: the new database gets the dump before
//! the worker starts and before the realm is registered, exactly once.
//!
//! Where a restore stands is kept in the `<name>-db` Secret (annotation
//! `pek.sch.bme.hu/restore`), written before each step, so an operator killed at any point
//! resumes cleanly:
//!
//! - no mark: a database that already holds tables is never restored over (a Realm re-created
//!   with `restoreFrom` onto a retained database fails with `RestoreFailed` and changes
//!   nothing); an empty one gets the mark `restoring <file>`, then the restore;
//! - `restoring <file>`: pg_restore runs in one transaction, so the database is either still
//!   empty (the restore was cut off: it is done again, after ending a pg_restore a killed
//!   operator may have left running) or complete (it committed before the mark could say so);
//! - `restored <file>`: done, never again — also when the database is emptied later.
//!
//! Everything that can be checked before touching the database is: the dump exists and is a
//! readable archive, its rows are of this realm id, and its schema is not newer than this
//! version's. A failure is the condition `DatabaseReady=False` with reason `RestoreFailed` and a
//! Warning Event; the phases after this one (worker, registration) do not run.

use pek_crds::Realm;

use super::dereference::References;
use super::rotation::store;
use super::{publish_changes, Context};
use crate::db::{Change, DbCredentials};
use crate::dump::known_migrations;
use crate::Error;

const RESTORING: &str = "restoring ";
const RESTORED: &str = "restored ";

/// What the mark in the Secret says about `file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// No restore started yet.
    None,
    /// A restore of this file started (and may have committed).
    Restoring,
    /// The restore is done.
    Restored,
}

pub(crate) fn mark(value: Option<&str>, file: &str) -> Mark {
    match value {
        Some(v) if v.strip_prefix(RESTORED) == Some(file) => Mark::Restored,
        // A restore is done once; restoreFrom is immutable, so another file here cannot
        // happen through the API — and would not be restored over a restored database.
        Some(v) if v.starts_with(RESTORED) => Mark::Restored,
        Some(v) if v.strip_prefix(RESTORING) == Some(file) => Mark::Restoring,
        _ => Mark::None,
    }
}

/// What to do, given the mark and whether the database holds tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing: restored already.
    Done,
    /// The database is empty: restore (after marking it when not marked yet).
    Restore,
    /// A restore committed before its mark was written: only mark it done.
    MarkDone,
    /// The database holds data this operator did not restore: never restore over it.
    Refuse,
}

pub(crate) fn step(mark: Mark, has_tables: bool) -> Step {
    match (mark, has_tables) {
        (Mark::Restored, _) => Step::Done,
        (_, false) => Step::Restore,
        (Mark::Restoring, true) => Step::MarkDone,
        (Mark::None, true) => Step::Refuse,
    }
}

/// Restores `spec.database.restoreFrom` into the realm's (just provisioned) database when that
/// has not been done; an error stops the reconcile before the worker and the registration.
pub(crate) async fn restore(
    ctx: &Context,
    realm: &Realm,
    refs: &References,
    creds: &mut DbCredentials,
) -> Result<(), Error> {
    let Some(source) = &realm.spec.database.restore_from else {
        return Ok(());
    };
    let file = source.dump_file.as_str();
    let current = mark(creds.restore.as_deref(), file);
    if current == Mark::Restored {
        return Ok(());
    }
    let database = creds.names.database.clone();
    match step(current, ctx.db.database_has_tables(creds).await?) {
        Step::Done => return Ok(()),
        Step::Refuse => {
            return Err(Error::Restore(format!(
                "database {database} already holds data, and spec.database.restoreFrom only \
                 fills a new, empty database (it never restores over data). Restore by hand, \
                 or give this Realm another spec.database.name"
            )))
        }
        Step::MarkDone => {}
        Step::Restore => {
            let dumps = ctx.config.dumps.as_ref().ok_or_else(|| {
                Error::Restore(
                    "the operator has no dump place to restore from (operator PEK_DUMP_DIR; \
                     chart: operator.dumps.persistentVolumeClaim)"
                        .into(),
                )
            })?;
            let path = dumps.restore_path(file)?;
            dumps
                .inspect(&path)
                .await?
                .check(&realm.spec.realm_id, &known_migrations())
                .map_err(|why| {
                    Error::Restore(format!("cannot restore from {}: {why}", path.display()))
                })?;
            if current == Mark::None {
                creds.restore = Some(format!("{RESTORING}{file}"));
                store(ctx, realm, refs, creds).await?;
            }
            if ctx.db.restore(creds, dumps, &path).await? {
                publish_changes(
                    ctx,
                    realm,
                    "RestoreDatabase",
                    &[Change::DatabaseRestored {
                        database: database.clone(),
                        file: path.display().to_string(),
                    }],
                )
                .await;
            }
        }
    }
    creds.restore = Some(format!("{RESTORED}{file}"));
    store(ctx, realm, refs, creds).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_happens_once_and_never_over_data() {
        let f = "ns_x_pek_x-20261207T120000Z.dump";
        assert_eq!(mark(None, f), Mark::None);
        assert_eq!(mark(Some(&format!("restoring {f}")), f), Mark::Restoring);
        assert_eq!(mark(Some(&format!("restored {f}")), f), Mark::Restored);
        assert_eq!(mark(Some("restored other.dump"), f), Mark::Restored);
        assert_eq!(mark(Some("restoring other.dump"), f), Mark::None);
        // A new Realm: an empty database is restored.
        assert_eq!(step(Mark::None, false), Step::Restore);
        // A database with data and no restore of ours: never restored over.
        assert_eq!(step(Mark::None, true), Step::Refuse);
        // Killed mid-restore: the transaction rolled back, so the database is empty; again.
        assert_eq!(step(Mark::Restoring, false), Step::Restore);
        // Killed after the commit, before the mark: done, not a second restore.
        assert_eq!(step(Mark::Restoring, true), Step::MarkDone);
        // Done: never again, even if the database were emptied afterwards.
        assert_eq!(step(Mark::Restored, false), Step::Done);
        assert_eq!(step(Mark::Restored, true), Step::Done);
    }
}
