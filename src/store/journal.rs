//! The IXFR journal (RFC 1995): one row per serial change, holding the difference sequence the
//! zone layer computed (`crate::zone::journal`). It is written in the same transaction as the
//! change it describes, so after a restart the journal and the zone agree. The zone layer
//! decides what to keep (by count and by age) and trims in that transaction too.

use rusqlite::{Connection, params};

use super::Error;

/// One stored serial change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    /// Increases with every entry of the store; orders the entries.
    pub id: i64,
    pub serial_from: u32,
    pub serial_to: u32,
    /// Unix seconds.
    pub created: u64,
    pub diff: Vec<u8>,
}

/// Appends an entry and returns its id.
pub(super) fn append(
    conn: &Connection,
    zone: &str,
    serial_from: u32,
    serial_to: u32,
    created: u64,
    diff: &[u8],
) -> Result<i64, Error> {
    conn.prepare_cached(
        "INSERT INTO journal (zone, serial_from, serial_to, created, diff)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![zone, serial_from, serial_to, created, diff])?;
    Ok(conn.last_insert_rowid())
}

/// Deletes the entries of `zone` older than entry `first_kept`. Returns how many went.
pub(super) fn trim(conn: &Connection, zone: &str, first_kept: i64) -> Result<usize, Error> {
    let n = conn
        .prepare_cached("DELETE FROM journal WHERE zone = ?1 AND id < ?2")?
        .execute(params![zone, first_kept])?;
    Ok(n)
}

/// Every entry of `zone`, oldest first.
pub(super) fn load(conn: &Connection, zone: &str) -> Result<Vec<JournalRow>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, serial_from, serial_to, created, diff FROM journal WHERE zone = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([zone], |r| {
        Ok(JournalRow {
            id: r.get(0)?,
            serial_from: r.get(1)?,
            serial_to: r.get(2)?,
            created: r.get(3)?,
            diff: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
