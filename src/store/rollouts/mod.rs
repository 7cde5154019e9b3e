//! Rollouts and the deny-list (DESIGN.md, "Rollouts").
//!
//! A rollout publishes one commit to a set of nodes in waves. It is made in one transaction
//! ([`Writer::create_rollout`]): its row, and one `rollout_node` row per node with the wave the
//! node was placed in ([`place`]). A wave is published by the writer thread as a
//! [`super::Change::Rollout`], whose transaction both publishes the nodes and marks them
//! published, so a crash either did all of it or none of it: a restart never repeats or skips
//! a node. Everything else (pause, resume, halt, abort, moving to the next wave) only changes
//! the rollout's row ([`Writer::rollout_action`]), and is checked against the state the row
//! has inside the transaction, so it cannot race a wave.
//!
//! A commit on the deny-list ([`Writer::deny_commit`]) is refused by every publish of the
//! zone, whatever path it comes by ([`denied_among`], called by `nodes::apply`).

mod steps;

use steps::{act, create};
pub(super) use steps::{finish, mark_published, plan};

use std::collections::HashSet;
use std::fmt;

use rusqlite::{Connection, OptionalExtension, params};

use super::{Error, Refusal, Store, Writer};
use crate::record::{NodeLabel, NodePattern};

/// Which nodes of the zone a rollout covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `*` or `prefix*`: the matching nodes that exist when the rollout is made.
    Pattern(NodePattern),
    /// These nodes, each of which must exist.
    List(Vec<NodeLabel>),
}

impl Selector {
    /// The stored form: the pattern, or the names joined by commas (labels hold no commas and
    /// no `*`).
    fn to_stored(&self) -> String {
        match self {
            Self::Pattern(p) => p.to_string(),
            Self::List(nodes) => nodes
                .iter()
                .map(NodeLabel::as_str)
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    fn from_stored(text: &str) -> Result<Self, Error> {
        let bad = || Error::Corrupt(format!("stored rollout selector {text:?}"));
        if text.ends_with('*') {
            return NodePattern::parse(text)
                .map(Self::Pattern)
                .map_err(|_| bad());
        }
        labels(text).map(Self::List).map_err(|_| bad())
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_stored())
    }
}

fn labels(text: &str) -> Result<Vec<NodeLabel>, crate::record::RecordError> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(NodeLabel::parse)
        .collect()
}

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    /// Publishing its waves as their gates open.
    Running,
    /// Stopped by the operator; `resume` goes on.
    Paused,
    /// Stopped by its halt rule or the deny-list; `resume` goes on, `abort` ends it.
    Halted,
    /// Every wave published and its gate passed.
    Completed,
    /// Ended by `abort`, reverted or not.
    Aborted,
}

impl RolloutState {
    pub const ALL: [Self; 5] = [
        Self::Running,
        Self::Paused,
        Self::Halted,
        Self::Completed,
        Self::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Halted => "halted",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the rollout still holds its nodes: running, paused or halted. A node belongs to
    /// at most one such rollout.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Running | Self::Paused | Self::Halted)
    }
}

/// A rollout as asked for, checked by the API.
#[derive(Debug, Clone)]
pub struct NewRollout {
    pub zone: String,
    pub commit: crate::record::Commit,
    pub selector: Selector,
    /// Published first, as a wave of their own, before the percentages.
    pub canary: Vec<NodeLabel>,
    /// Cumulative percentages, strictly rising, the last 100.
    pub waves: Vec<u8>,
    /// Seconds a wave must have been published before the next one starts.
    pub interval: u64,
    /// The percentage of a wave's nodes that must report `applied` before the next one starts.
    pub min_applied: u8,
    /// The rollout halts when more nodes than this reported `failed`.
    pub max_failed: u64,
    /// At most this many nodes published and not yet reported; `None`: no cap.
    pub max_in_flight: Option<u64>,
    /// Who made it: `admin` or the token id.
    pub created_by: String,
}

/// One rollout as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutRow {
    pub id: u64,
    pub zone: String,
    pub commit: String,
    pub selector: Selector,
    pub canary: Vec<NodeLabel>,
    pub waves: Vec<u8>,
    pub interval: u64,
    pub min_applied: u8,
    pub max_failed: u64,
    pub max_in_flight: Option<u64>,
    pub state: RolloutState,
    /// Why it halted or ended, when it did.
    pub reason: Option<String>,
    /// The current wave's index: 0 is the canary wave when there is one.
    pub wave: u32,
    /// When the current wave's last node was published (Unix seconds).
    pub wave_done: Option<u64>,
    /// How many nodes an `abort` with revert published back.
    pub reverted: u64,
    pub created: u64,
    pub updated: u64,
    pub created_by: String,
}

impl RolloutRow {
    /// How many waves it has, the canary wave included.
    pub fn wave_count(&self) -> u32 {
        self.waves.len() as u32 + u32::from(!self.canary.is_empty())
    }

    /// What wave `i` is: `canary`, or its cumulative percentage (`10%`).
    pub fn wave_label(&self, i: u32) -> String {
        let offset = u32::from(!self.canary.is_empty());
        match i.checked_sub(offset) {
            None => "canary".to_owned(),
            Some(p) => format!("{}%", self.waves.get(p as usize).copied().unwrap_or(100)),
        }
    }
}

/// The nodes of one wave, by what their reports say of the rollout's publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaveCounts {
    pub nodes: u64,
    /// Published by the rollout.
    pub published: u64,
    /// Reported `applied` for the rollout's seq or a later one.
    pub applied: u64,
    /// Reported `failed` for the rollout's seq or a later one.
    pub failed: u64,
}

impl WaveCounts {
    /// Published and not reported either way yet.
    pub fn in_flight(&self) -> u64 {
        self.published.saturating_sub(self.applied + self.failed)
    }
}

/// What a [`super::Change::Rollout`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutStep {
    /// Publish up to `limit` nodes of wave `wave` not yet published.
    Wave { wave: u32, limit: u64 },
    /// End the rollout as aborted, publishing back the previous commit of every node it
    /// published that still has the rollout's seq (a node published since is left alone).
    Revert,
}

/// What an operator or the rollout driver does to a rollout's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutAction {
    Pause,
    Resume,
    /// End it without publishing anything.
    Abort,
    /// Stop it for this reason (its halt rule, the deny-list).
    Halt(String),
    /// Wave `from`'s gate passed: start the next wave, or complete after the last.
    Advance {
        from: u32,
    },
}

impl RolloutAction {
    fn name(&self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Abort => "abort",
            Self::Halt(_) => "halt",
            Self::Advance { .. } => "advance",
        }
    }
}

/// One commit on the deny-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedRow {
    pub commit: String,
    pub reason: String,
    pub created: u64,
}

/// The wave of `node` in rollout `id` among cumulative percentages `waves`: a hash of the two
/// places the node at a point in [0, 100), and it joins the first wave whose percentage lies
/// above that point. The same rollout places a node the same way whatever the fleet's size or
/// order; another rollout places it anew. FNV-1a with a SplitMix64 finish: stable across
/// versions and platforms, which the standard library's hasher does not promise.
pub fn place(id: u64, node: &str, waves: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.to_be_bytes().iter().chain(node.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    // The top 53 bits as a fraction of 100.
    let point = (h >> 11) as f64 / (1u64 << 53) as f64 * 100.0;
    waves
        .iter()
        .position(|p| point < f64::from(*p))
        .unwrap_or(waves.len().saturating_sub(1)) as u32
}

const COLUMNS: &str = "id, zone, commit_id, selector, canary, waves, interval_s, min_applied, \
     max_failed, max_in_flight, state, reason, wave, wave_done, reverted, created, updated, created_by";

fn rollout_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RolloutRow, Error>> {
    let selector: String = r.get(3)?;
    let canary: String = r.get(4)?;
    let waves: String = r.get(5)?;
    let state: String = r.get(10)?;
    let row = (|| {
        Ok(RolloutRow {
            id: r.get(0)?,
            zone: r.get(1)?,
            commit: r.get(2)?,
            selector: Selector::from_stored(&selector)?,
            canary: labels(&canary)
                .map_err(|_| Error::Corrupt(format!("stored rollout canary {canary:?}")))?,
            waves: waves
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| Error::Corrupt(format!("stored rollout waves {waves:?}")))?,
            interval: r.get(6)?,
            min_applied: r.get(7)?,
            max_failed: r.get(8)?,
            max_in_flight: r.get(9)?,
            state: RolloutState::parse(&state)
                .ok_or_else(|| Error::Corrupt(format!("stored rollout state {state:?}")))?,
            reason: r.get(11)?,
            wave: r.get(12)?,
            wave_done: r.get(13)?,
            reverted: r.get(14)?,
            created: r.get(15)?,
            updated: r.get(16)?,
            created_by: r.get(17)?,
        })
    })();
    Ok(row)
}

fn get(conn: &Connection, zone: &str, id: u64) -> Result<Option<RolloutRow>, Error> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM rollout WHERE id = ?1 AND zone = ?2"
    ))?
    .query_row(params![id, zone], rollout_row)
    .optional()?
    .transpose()
}

fn list(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<RolloutRow>, Error> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM rollout {sql}"))?;
    let rows = stmt.query_map(args, rollout_row)?;
    rows.map(|r| r?).collect()
}

/// The first of `commits` that is on the zone's deny-list, if any.
pub(in crate::store) fn denied_among<'a>(
    conn: &Connection,
    zone: &str,
    commits: impl IntoIterator<Item = &'a str>,
) -> Result<Option<String>, Error> {
    let mut seen = HashSet::new();
    let mut stmt =
        conn.prepare_cached("SELECT 1 FROM denied_commit WHERE zone = ?1 AND commit_id = ?2")?;
    for commit in commits {
        if seen.insert(commit) && stmt.exists(params![zone, commit])? {
            return Ok(Some(commit.to_owned()));
        }
    }
    Ok(None)
}

impl Writer<'_> {
    /// Makes a rollout and places its nodes in waves, or refuses it: the commit is denied, a
    /// node does not exist or is held by another active rollout, or it selects no node.
    pub fn create_rollout(
        &mut self,
        new: &NewRollout,
        now: u64,
    ) -> Result<Result<RolloutRow, Refusal>, Error> {
        let sp = self.tx.savepoint()?;
        let result = create(&sp, new, now)?;
        if result.is_ok() {
            sp.commit()?;
        }
        Ok(result)
    }

    /// Changes a rollout's state, if its current state allows `action`.
    pub fn rollout_action(
        &mut self,
        zone: &str,
        id: u64,
        action: &RolloutAction,
        now: u64,
    ) -> Result<Result<RolloutRow, Refusal>, Error> {
        act(&self.tx, zone, id, action, now)
    }

    /// Puts `commit` on the zone's deny-list; `false` when it was on it already (the reason
    /// stays the first one).
    pub fn deny_commit(
        &mut self,
        zone: &str,
        commit: &str,
        reason: &str,
        now: u64,
    ) -> Result<bool, Error> {
        Ok(self
            .tx
            .prepare_cached(
                "INSERT INTO denied_commit (zone, commit_id, reason, created) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![zone, commit, reason, now])?
            == 1)
    }

    /// Halts the zone's running rollouts of `commit` for `reason`; returns their ids.
    pub fn halt_rollouts_of(
        &mut self,
        zone: &str,
        commit: &str,
        reason: &str,
        now: u64,
    ) -> Result<Vec<u64>, Error> {
        let ids: Vec<u64> = self
            .tx
            .prepare_cached(
                "SELECT id FROM rollout WHERE zone = ?1 AND commit_id = ?2 AND state = 'running'",
            )?
            .query_map([zone, commit], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for id in &ids {
            // Running, as just read in this transaction: the halt cannot be refused.
            let _ = act(
                &self.tx,
                zone,
                *id,
                &RolloutAction::Halt(reason.to_owned()),
                now,
            )?;
        }
        Ok(ids)
    }

    /// Takes `commit` off the deny-list; `false` when it was not on it.
    pub fn allow_commit(&mut self, zone: &str, commit: &str) -> Result<bool, Error> {
        Ok(self
            .tx
            .prepare_cached("DELETE FROM denied_commit WHERE zone = ?1 AND commit_id = ?2")?
            .execute([zone, commit])?
            == 1)
    }
}

impl Store {
    /// One rollout of `zone`.
    pub fn rollout(&self, zone: &str, id: u64) -> Result<Option<RolloutRow>, Error> {
        get(&self.conn, zone, id)
    }

    /// Up to `limit` rollouts of `zone`, newest first.
    pub fn rollouts(&self, zone: &str, limit: usize) -> Result<Vec<RolloutRow>, Error> {
        list(
            &self.conn,
            "WHERE zone = ?1 ORDER BY id DESC LIMIT ?2",
            params![zone, limit as i64],
        )
    }

    /// Every running rollout, oldest first: the driver's work.
    pub fn running_rollouts(&self) -> Result<Vec<RolloutRow>, Error> {
        list(&self.conn, "WHERE state = 'running' ORDER BY id", [])
    }

    /// The rollout's nodes per wave (index = wave), by their reports: one pass over its nodes.
    pub fn rollout_counts(&self, rollout: &RolloutRow) -> Result<Vec<WaveCounts>, Error> {
        let mut counts = vec![WaveCounts::default(); rollout.wave_count() as usize];
        let mut stmt = self.conn.prepare_cached(
            "SELECT m.wave, count(*), count(m.seq), \
             coalesce(sum(r.status = 'applied' AND r.seq >= m.seq), 0), \
             coalesce(sum(r.status = 'failed' AND r.seq >= m.seq), 0) \
             FROM rollout_node m LEFT JOIN report r ON r.zone = m.zone AND r.name = m.name \
             WHERE m.rollout = ?1 GROUP BY m.wave",
        )?;
        let rows = stmt.query_map([rollout.id], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                WaveCounts {
                    nodes: r.get(1)?,
                    published: r.get(2)?,
                    applied: r.get(3)?,
                    failed: r.get(4)?,
                },
            ))
        })?;
        for row in rows {
            let (wave, c) = row?;
            if let Some(slot) = counts.get_mut(wave as usize) {
                *slot = c;
            }
        }
        Ok(counts)
    }

    /// How many rollouts of `zone` are in each state, in the order of [`RolloutState::ALL`].
    pub fn rollout_states(&self, zone: &str) -> Result<[u64; 5], Error> {
        let mut counts = [0; 5];
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM rollout WHERE zone = ?1 GROUP BY state")?;
        let rows = stmt.query_map([zone], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?))
        })?;
        for row in rows {
            let (state, n) = row?;
            if let Some(i) = RolloutState::ALL.iter().position(|s| s.as_str() == state) {
                counts[i] = n;
            }
        }
        Ok(counts)
    }

    /// The zone's deny-list, oldest first.
    pub fn denied_commits(&self, zone: &str) -> Result<Vec<DeniedRow>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT commit_id, reason, created FROM denied_commit WHERE zone = ?1 ORDER BY created, commit_id",
        )?;
        let rows = stmt.query_map([zone], |r| {
            Ok(DeniedRow {
                commit: r.get(0)?,
                reason: r.get(1)?,
                created: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether `commit` is on the zone's deny-list.
    pub fn is_denied(&self, zone: &str, commit: &str) -> Result<bool, Error> {
        Ok(denied_among(&self.conn, zone, [commit])?.is_some())
    }
}

#[cfg(test)]
mod tests;
