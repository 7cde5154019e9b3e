//! The durable state of a zone's key rollover: which key files sign and are published, the
//! step, and when it began (see `crate::dnssec::roll` for what the steps mean).

use rusqlite::{Connection, OptionalExtension, params};

use super::Error;

/// One zone's row of `key_roll`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRollRow {
    /// The key file (a name inside `keys/`) that signs the zone.
    pub active: String,
    /// The other key file published during a rollover.
    pub other: Option<String>,
    /// `publish`, `switch`, `revoke` or `done`.
    pub step: String,
    pub revoke_old: bool,
    pub started_at: u64,
    pub step_at: u64,
    /// When the switch's re-signing with the new key was complete.
    pub resigned_at: Option<u64>,
    /// Whether the old key waits for the parent's DS to name the new one.
    pub wait_ds: bool,
    /// From when the parent's new DS is in every cache.
    pub ds_seen_at: Option<u64>,
    /// The new key has another algorithm.
    pub algorithm_change: bool,
}

pub(super) fn get(conn: &Connection, zone: &str) -> Result<Option<KeyRollRow>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT active, other, step, revoke_old, started_at, step_at, resigned_at, \
             wait_ds, ds_seen_at, algorithm_change FROM key_roll WHERE zone = ?1",
        )?
        .query_row([zone], |r| {
            Ok(KeyRollRow {
                active: r.get(0)?,
                other: r.get(1)?,
                step: r.get(2)?,
                revoke_old: r.get(3)?,
                started_at: r.get(4)?,
                step_at: r.get(5)?,
                resigned_at: r.get(6)?,
                wait_ds: r.get(7)?,
                ds_seen_at: r.get(8)?,
                algorithm_change: r.get(9)?,
            })
        })
        .optional()?)
}

pub(super) fn put(conn: &Connection, zone: &str, row: &KeyRollRow) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO key_roll (zone, active, other, step, revoke_old, started_at, step_at, \
         resigned_at, wait_ds, ds_seen_at, algorithm_change) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT (zone) DO UPDATE SET active = ?2, other = ?3, step = ?4, revoke_old = ?5, \
         started_at = ?6, step_at = ?7, resigned_at = ?8, wait_ds = ?9, ds_seen_at = ?10, \
         algorithm_change = ?11",
    )?
    .execute(params![
        zone,
        row.active,
        row.other,
        row.step,
        row.revoke_old,
        row.started_at,
        row.step_at,
        row.resigned_at,
        row.wait_ds,
        row.ds_seen_at,
        row.algorithm_change
    ])?;
    Ok(())
}
