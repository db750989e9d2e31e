//! `tessera ledger migrate`: copies a ledger into a new PostgreSQL ledger
//! and verifies the copy. The copy is the same ledger moved, not a new
//! one: the same ledger id, the same entries with the same hashes, the
//! same signed checkpoints; its views are folded again from the journal by
//! the one fold ([`views::apply`]), so they are PostgreSQL's own.
//!
//! 1. The source is read in one snapshot and verified first (a ledger that
//!    does not verify is not copied: exit 4 names its first bad entry).
//! 2. The target database must hold no ledger; schema, entries and
//!    checkpoints go in in one transaction (an interrupted copy leaves
//!    nothing).
//! 3. The copy is verified with the same keyring and must end at the
//!    source's entry count and head; otherwise its tables are removed
//!    again and the error says why.

use std::path::Path;

use tessera_verifier::KeyEntry;

use super::postgres::{self, PgBackend};
use super::views::{self, FoldError};
use super::{Entry, Ledger, LedgerError, VerifyReport, BUSY_TIMEOUT};

/// What [`migrate`] copied and checked.
#[derive(Clone, Debug)]
pub struct MigrateReport {
    /// The source, as verified before the copy.
    pub source: VerifyReport,
    /// The copy, as verified after it.
    pub copy: VerifyReport,
}

/// Copies the ledger `from` (opened read-only: one snapshot) into a new
/// ledger in the PostgreSQL database `to`, and verifies both with
/// `keyring`.
///
/// # Errors
/// [`LedgerError::Integrity`] when the source does not verify (nothing is
/// copied) or the copy does not (it is removed),
/// [`LedgerError::Conflict`] for a target that is not a PostgreSQL URL,
/// [`LedgerError::Exists`] when the target database holds a ledger, the
/// errors of reaching it.
pub fn migrate(
    from: &Ledger,
    to: &Path,
    keyring: &[KeyEntry],
) -> Result<MigrateReport, LedgerError> {
    if !postgres::is_url(to) {
        return Err(LedgerError::Conflict {
            path: to.to_owned(),
            reason: "ledger migrate copies a ledger into PostgreSQL: name the target as postgres://USER@HOST/DATABASE (an SQLite ledger is copied as a file with `sqlite3 FILE '.backup COPY'`)".into(),
        });
    }
    let source = from.verify(keyring, None)?;
    let mut target = PgBackend::create(to)?;
    {
        let mut tx = target.begin(BUSY_TIMEOUT, &|_| {})?;
        let mut copied = 0u64;
        from.backend.journal(&mut |position, body, hash| {
            let position = u64::try_from(position).unwrap_or(0);
            let hash: [u8; 32] = hash.try_into().map_err(|_| LedgerError::Integrity {
                entry: position,
                reason: "the entry's hash is not 32 bytes".into(),
            })?;
            let entry = Entry::decode(body).map_err(|e| LedgerError::Integrity {
                entry: position,
                reason: format!("the entry cannot be read: {}", e.0),
            })?;
            views::apply(&mut tx, position, &entry).map_err(|e| match e {
                FoldError::Invalid(reason) => LedgerError::Integrity {
                    entry: position,
                    reason,
                },
                FoldError::Store(e) => e,
            })?;
            tx.append_entry(position, body, &hash)?;
            copied += 1;
            Ok(())
        })?;
        if copied != source.entries {
            return Err(LedgerError::Integrity {
                entry: copied.min(source.entries).saturating_add(1),
                reason: format!(
                    "the source held {} entries when verified and {copied} when copied; nothing was copied: stop every writer of the source and run the command again",
                    source.entries
                ),
            });
        }
        for (entries, bytes) in from.backend.checkpoints()? {
            tx.add_checkpoint(entries, &bytes)?;
        }
        tx.commit()?;
    }
    drop(target);
    let checked = Ledger::open_read_only(to).and_then(|copy| {
        let r = copy.verify(keyring, None)?;
        if (r.entries, r.head, &r.identity) != (source.entries, source.head, &source.identity) {
            return Err(LedgerError::Integrity {
                entry: r.entries.min(source.entries),
                reason: format!(
                    "the copy ends at entry {} with head {}, the source at entry {} with head {}",
                    r.entries,
                    hex::encode(r.head),
                    source.entries,
                    hex::encode(source.head)
                ),
            });
        }
        Ok(r)
    });
    match checked {
        Ok(copy) => Ok(MigrateReport { source, copy }),
        Err(e) => {
            PgBackend::drop_tables(to)?;
            Err(e)
        }
    }
}
