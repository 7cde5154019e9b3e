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

/// Where a node stands, by its latest report against what is published (the fleet view).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// It applied the published seq (or a later one).
    Current,
    /// Its latest report is for an older seq.
    Behind,
    /// Its hook failed on the published seq.
    Failed,
    /// It never reported, or not for longer than the silence limit.
    Silent,
}

impl NodeState {
    pub const ALL: [NodeState; 4] = [Self::Current, Self::Behind, Self::Failed, Self::Silent];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Behind => "behind",
            Self::Failed => "failed",
            Self::Silent => "silent",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The state of node `n` with report `r` (NULL when none) in SQL, as [`NodeState::as_str`]
/// names it; `?2` is the time before which a report is too old (silent).
const STATE: &str = "CASE \
     WHEN r.name IS NULL OR r.received < ?2 THEN 'silent' \
     WHEN r.status = 'failed' AND r.seq = n.seq THEN 'failed' \
     WHEN r.status = 'applied' AND r.seq >= n.seq THEN 'current' \
     ELSE 'behind' END";

impl Store {
    /// How many nodes of `zone` are in each state, in the order of [`NodeState::ALL`]; a
    /// report received before `silent_before` (Unix seconds) counts as none. One pass over
    /// the zone's nodes.
    pub fn node_states(&self, zone: &str, silent_before: u64) -> Result<[u64; 4], Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {STATE} AS state, count(*) FROM node n \
             LEFT JOIN report r ON r.zone = n.zone AND r.name = n.name \
             WHERE n.zone = ?1 GROUP BY state"
        ))?;
        let mut counts = [0u64; 4];
        let rows = stmt.query_map(params![zone, silent_before], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
        })?;
        for row in rows {
            let (state, n) = row?;
            if let Some(i) = NodeState::ALL.iter().position(|s| s.as_str() == state) {
                counts[i] = n;
            }
        }
        Ok(counts)
    }

    /// Up to `limit` nodes of `zone` named after `after` (and starting with `prefix`), in
    /// `state`, in name order, each with its latest report.
    #[allow(clippy::too_many_arguments)]
    pub fn nodes_in_state(
        &self,
        zone: &str,
        state: NodeState,
        silent_before: u64,
        after: &str,
        prefix: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(super::NodeRow, Option<ReportRow>)>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT n.name, n.commit_id, n.seq, n.ts, n.serial, \
             r.seq, r.commit_id, r.status, r.code, r.at, r.signed, r.received \
             FROM node n LEFT JOIN report r ON r.zone = n.zone AND r.name = n.name \
             WHERE n.zone = ?1 AND n.name > ?3 AND n.name >= ?6 AND n.name < ?7 \
             AND {STATE} = ?4 ORDER BY n.name LIMIT ?5"
        ))?;
        // Labels sort below '~': [prefix, prefix~) is every name that starts with it.
        let (low, high) = match prefix {
            Some(p) => (p.to_owned(), format!("{p}~")),
            None => (String::new(), "~".to_owned()),
        };
        let rows = stmt.query_map(
            params![
                zone,
                silent_before,
                after,
                state.as_str(),
                limit as i64,
                low,
                high
            ],
            |r| {
                let node = super::nodes::node_row(r)?;
                let report = match r.get::<_, Option<u64>>(5)? {
                    None => None,
                    Some(seq) => Some(ReportRow {
                        zone: zone.to_owned(),
                        node: node.node.clone(),
                        seq,
                        commit: r.get(6)?,
                        status: r.get(7)?,
                        code: r.get(8)?,
                        at: r.get(9)?,
                        signed: r.get(10)?,
                        received: r.get(11)?,
                    }),
                };
                Ok((node, report))
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
