//! Node reports: the latest one per node (DESIGN.md, "Rollouts"). They are never served and
//! never part of the zone; the report writer (`publish::reports`) stores them in batches, and
//! the API reads them into the node JSON's `applied`.

use rusqlite::{OptionalExtension, params};

use super::{Error, Store};

/// One node's latest report, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub zone: String,
    pub node: String,
    pub seq: u64,
    pub commit: String,
    /// `applied` or `failed`.
    pub status: String,
    /// The hook's exit code, -1 when it had none.
    pub code: i32,
    /// When the hook ended, by the node's clock (Unix seconds).
    pub at: u64,
    /// The time in the report message's TSIG record (Unix seconds).
    pub signed: u64,
    /// When the server took the report (Unix seconds).
    pub received: u64,
}

const COLUMNS: &str = "zone, name, seq, commit_id, status, code, at, signed, received";

fn report_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReportRow> {
    Ok(ReportRow {
        zone: r.get(0)?,
        node: r.get(1)?,
        seq: r.get(2)?,
        commit: r.get(3)?,
        status: r.get(4)?,
        code: r.get(5)?,
        at: r.get(6)?,
        signed: r.get(7)?,
        received: r.get(8)?,
    })
}

impl Store {
    /// Stores `reports` in one transaction: each replaces its node's row when it is for a
    /// higher seq, or for the same seq and its message was signed later (TSIG time, whole
    /// seconds). Returns how many were stored; the rest were replays or older than what the
    /// store holds.
    pub fn save_reports(&mut self, reports: &[ReportRow]) -> Result<usize, Error> {
        let tx = self.conn.transaction()?;
        let mut changed = 0;
        {
            let mut stmt = tx.prepare_cached(&format!(
                "INSERT INTO report ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (zone, name) DO UPDATE SET seq = excluded.seq, \
                 commit_id = excluded.commit_id, status = excluded.status, code = excluded.code, \
                 at = excluded.at, signed = excluded.signed, received = excluded.received \
                 WHERE excluded.seq > report.seq \
                 OR (excluded.seq = report.seq AND excluded.signed > report.signed)"
            ))?;
            for r in reports {
                changed += stmt.execute(params![
                    r.zone, r.node, r.seq, r.commit, r.status, r.code, r.at, r.signed, r.received
                ])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// The latest report of `node`, if it sent one.
    pub fn report(&self, zone: &str, node: &str) -> Result<Option<ReportRow>, Error> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM report WHERE zone = ?1 AND name = ?2"
            ))?
            .query_row([zone, node], report_row)
            .optional()?)
    }

    /// The latest reports of the nodes named from `first` to `last` (inclusive), in name
    /// order: one page of the node list.
    pub fn reports_between(
        &self,
        zone: &str,
        first: &str,
        last: &str,
    ) -> Result<Vec<ReportRow>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM report WHERE zone = ?1 AND name >= ?2 AND name <= ?3 \
             ORDER BY name"
        ))?;
        let rows = stmt.query_map([zone, first, last], report_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
