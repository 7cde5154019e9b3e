//! Backups of the store, and the epoch step after a restore.
//!
//! A backup is a consistent copy made while Herald serves: SQLite's online backup API copies
//! the pages of one read transaction into a new file ([`backup_into`]), which is then stamped
//! with the time it was made (`meta.backup_us`).
//!
//! Restoring a backup loses whatever was published after it. Nodes may already have applied a
//! seq from that lost interval: if Herald handed the same seq out again for different content,
//! those nodes would take the new publish for one they already have (a replay, DESIGN.md "The
//! record") and never run their hook. So a restored store is marked ([`mark_restored`]), and
//! the first start after it takes an epoch step ([`step_after_restore`]), in one transaction:
//!
//! - **seq.** Every publish takes at least one SQLite write in the single writer, which costs
//!   more than a microsecond, so the lost interval cannot have published any node more often
//!   than once per microsecond of its length. Each zone's `seq_floor` is set above its highest
//!   stored seq by the microseconds between the backup and this start: no node's next seq can
//!   be one the lost interval used. Records served stay as they were (nothing is re-signed);
//!   only the next publish of each node jumps.
//! - **serial.** Secondaries may hold serials of the lost interval. The serial moves on by
//!   100,000 per second elapsed (far more changes per second than the writer makes), and at
//!   most by 2^30, a quarter of the serial space: RFC 1982 arithmetic reads it as newer even
//!   from secondaries somewhat behind the backup.
//! - **zones born in the lost interval** have no row in the backup; the step records the
//!   highest floor store-wide (`meta.seq_floor`), and a zone row created later starts there.
//!
//! The copy was made no earlier than its `backup_us` stamp and than its newest publish; the
//! later of the two dates it (a Litestream replica has no stamp of its own, and a store
//! restored once keeps none: the step deletes it). It relies on the restoring machine's clock
//! not running behind the one that made the copy.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::backup::Backup;
use rusqlite::{Connection, OptionalExtension, params};

use super::Error;

/// Serial increase per second since the backup: more changes than the writer makes per second.
const SERIAL_PER_SECOND: u64 = 100_000;
/// The largest serial step taken: a quarter of the serial space, well inside RFC 1982 §3.1's
/// half, so that the start's own re-signing bump and secondaries a little behind the backup
/// still read the new serial as newer.
const MAX_SERIAL_STEP: u64 = 1 << 30;

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Copies the store behind `source` into a new SQLite file at `dest`, consistently (one read
/// transaction, while others write), and stamps the copy with `taken_us`.
pub fn backup_into(source: &Connection, dest: &Path, taken_us: u64) -> Result<(), Error> {
    let marked: Option<i64> = source
        .query_row("SELECT value FROM meta WHERE key = 'restored'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if marked.is_some() {
        // Its epoch step is still to come; a copy of it would be dated after the copy it came
        // from and step too little.
        return Err(Error::Corrupt(
            "this store was restored and has not started since: start it once, then back it up"
                .into(),
        ));
    }
    let mut out = Connection::open(dest).map_err(|cause| Error::Open {
        path: dest.to_owned(),
        cause,
    })?;
    // All pages in one step: one read transaction, which a writer in WAL mode does not
    // disturb (steps of a few pages restart whenever another connection commits).
    let backup = Backup::new(source, &mut out)?;
    loop {
        match backup.step(-1)? {
            rusqlite::backup::StepResult::Done => break,
            rusqlite::backup::StepResult::More => {}
            _ => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    drop(backup);
    out.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('backup_us', ?1)",
        [taken_us],
    )?;
    // One file: no WAL beside it.
    out.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

/// The backup time stamped into the store at `path`, if it is a backup.
pub fn backup_time(path: &Path) -> Result<Option<u64>, Error> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|cause| Error::Open {
            path: path.to_owned(),
            cause,
        })?;
    let has_meta: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
        [],
        |r| r.get(0),
    )?;
    if !has_meta {
        return Ok(None);
    }
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = 'backup_us'", [], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Marks the store at `path` as restored: its next start takes the epoch step.
pub fn mark_restored(path: &Path) -> Result<(), Error> {
    let conn = Connection::open(path).map_err(|cause| Error::Open {
        path: path.to_owned(),
        cause,
    })?;
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('restored', 1)",
        [],
    )?;
    Ok(())
}

/// What an epoch step did, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Microseconds between the backup (or its newest publish) and now.
    pub elapsed_us: u64,
    /// Per zone: the new seq floor and the new serial.
    pub zones: Vec<(String, u64, u32)>,
}

/// Takes the epoch step if the store was marked restored, and clears the mark; `None` when
/// it was not. Runs inside one transaction.
pub fn step_after_restore(conn: &mut Connection, now_us: u64) -> Result<Option<Step>, Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let restored: Option<i64> = tx
        .query_row("SELECT value FROM meta WHERE key = 'restored'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if restored.is_none() {
        return Ok(None);
    }
    let stamped: Option<u64> = tx
        .query_row("SELECT value FROM meta WHERE key = 'backup_us'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let newest_publish_us: Option<u64> = tx
        .query_row("SELECT MAX(ts) FROM history", [], |r| {
            r.get::<_, Option<u64>>(0)
        })?
        .map(|s| s.saturating_mul(1_000_000));
    let taken = stamped.max(newest_publish_us).unwrap_or(0);
    let elapsed_us = now_us.saturating_sub(taken).max(1);
    let serial_step = (elapsed_us / 1_000_000 + 1)
        .saturating_mul(SERIAL_PER_SECOND)
        .min(MAX_SERIAL_STEP) as u32;
    let mut zones = Vec::new();
    {
        let mut stmt = tx.prepare(
            "SELECT z.name, z.serial, z.seq_floor, \
             (SELECT MAX(seq) FROM history h WHERE h.zone = z.name) FROM zone z",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, u64>(2)?,
                r.get::<_, Option<u64>>(3)?,
            ))
        })?;
        for row in rows {
            let (name, serial, floor, max_seq) = row?;
            let floor = floor.max(
                max_seq
                    .unwrap_or(0)
                    .saturating_add(elapsed_us)
                    .saturating_add(1),
            );
            zones.push((name, floor, serial.wrapping_add(serial_step)));
        }
    }
    for (name, floor, serial) in &zones {
        tx.execute(
            "UPDATE zone SET seq_floor = ?2, serial = ?3 WHERE name = ?1",
            params![name, floor, serial],
        )?;
    }
    let global = zones.iter().map(|(_, f, _)| *f).max().unwrap_or(0);
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('seq_floor', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = MAX(value, ?1)",
        [global],
    )?;
    tx.execute(
        "DELETE FROM meta WHERE key IN ('restored', 'backup_us')",
        [],
    )?;
    tx.commit()?;
    Ok(Some(Step { elapsed_us, zones }))
}
