//! Node rows: reads, and the writes behind [`super::Change`].
//!
//! Writes run inside a transaction or savepoint owned by [`super::Writer::apply`]; they check their
//! preconditions (If-Match, existence) inside it, so a check and its write cannot interleave with
//! another writer.

use rusqlite::{Connection, OptionalExtension, params};

use super::rollouts::{self, RolloutStep};
use super::{Applied, Change, Condition, Error, Expect, HistoryRow, IfMatch, NodeRow, Refusal};
use crate::record::{Commit, NodeLabel, render_into};

const NODE_COLUMNS: &str = "name, commit_id, seq, ts, serial";

/// A node row from columns 0–4 in the order of `NODE_COLUMNS`.
pub(super) fn node_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NodeRow> {
    Ok(NodeRow {
        node: r.get(0)?,
        commit: r.get(1)?,
        seq: r.get(2)?,
        ts: r.get(3)?,
        serial: r.get(4)?,
    })
}

pub(super) fn get(conn: &Connection, zone: &str, node: &str) -> Result<Option<NodeRow>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {NODE_COLUMNS} FROM node WHERE zone = ?1 AND name = ?2"
        ))?
        .query_row([zone, node], node_row)
        .optional()?)
}

pub(super) fn list(
    conn: &Connection,
    zone: &str,
    after: Option<&str>,
    prefix: Option<&str>,
    limit: usize,
) -> Result<Vec<NodeRow>, Error> {
    let after = after.unwrap_or("");
    let Some(prefix) = prefix else {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {NODE_COLUMNS} FROM node WHERE zone = ?1 AND name > ?2 ORDER BY name LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![zone, after, limit as i64], node_row)?;
        return Ok(rows.collect::<Result<_, _>>()?);
    };
    // Labels are a-z, 0-9 and '-', all below '~': [prefix, prefix~) holds exactly the names
    // that start with prefix, and stays a range on the primary key.
    let end = format!("{prefix}~");
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {NODE_COLUMNS} FROM node WHERE zone = ?1 AND name > ?2 AND name >= ?3 \
         AND name < ?4 ORDER BY name LIMIT ?5"
    ))?;
    let rows = stmt.query_map(params![zone, after, prefix, end, limit as i64], node_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn history(
    conn: &Connection,
    zone: &str,
    node: &str,
    limit: usize,
) -> Result<Vec<HistoryRow>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT commit_id, seq, ts FROM history WHERE zone = ?1 AND name = ?2 \
         ORDER BY seq DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![zone, node, limit as i64], |r| {
        Ok(HistoryRow {
            commit: r.get(0)?,
            seq: r.get(1)?,
            ts: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Applies one change. `Ok(Err(_))` is a refusal: the caller rolls back the savepoint.
pub(super) fn apply(
    conn: &Connection,
    zone: &str,
    change: &Change,
    now: u64,
) -> Result<Result<Applied, Refusal>, Error> {
    let Some((serial, count, floor)) = conn
        .prepare_cached("SELECT serial, node_count, seq_floor FROM zone WHERE name = ?1")?
        .query_row([zone], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, u64>(2)?,
            ))
        })
        .optional()?
    else {
        return Ok(Err(Refusal::UnknownZone(zone.to_owned())));
    };
    let serial = serial.wrapping_add(1);
    let mut applied = Applied {
        serial,
        set: Vec::new(),
        deleted: Vec::new(),
    };
    // Every publish of this change: the same zone, time and serial.
    let publish_node = |node: &NodeLabel, commit: &Commit, last| {
        publish(
            conn,
            zone,
            node.as_str(),
            commit.as_str(),
            now,
            serial,
            last,
            floor,
        )
    };
    // A denied commit is refused whatever path it came by.
    let commits: Vec<&str> = match change {
        Change::Put { commit, .. } => vec![commit.as_str()],
        Change::Batch { set, .. } | Change::Update { set, .. } => {
            set.iter().map(|(_, c)| c.as_str()).collect()
        }
        Change::Delete { .. } | Change::Rollout { .. } => Vec::new(),
    };
    if let Some(commit) = super::rollouts::denied_among(conn, zone, commits)? {
        return Ok(Err(Refusal::Denied { commit }));
    }
    match change {
        Change::Put {
            node,
            commit,
            if_match,
        } => {
            let current = get(conn, zone, node.as_str())?;
            if let Err(r) = precondition(node.as_str(), current.as_ref(), *if_match) {
                return Ok(Err(r));
            }
            applied
                .set
                .push(publish_node(node, commit, current.as_ref().map(|n| n.seq))?);
        }
        Change::Delete { node, if_match } => {
            let current = get(conn, zone, node.as_str())?;
            if current.is_none() {
                return Ok(Err(Refusal::NoSuchNode(node.to_string())));
            }
            if let Err(r) = precondition(node.as_str(), current.as_ref(), *if_match) {
                return Ok(Err(r));
            }
            delete(conn, zone, node.as_str())?;
            applied.deleted.push(node.clone());
        }
        Change::Batch { set, delete: dels } => {
            for node in dels {
                if get(conn, zone, node.as_str())?.is_none() {
                    return Ok(Err(Refusal::NoSuchNode(node.to_string())));
                }
                delete(conn, zone, node.as_str())?;
                applied.deleted.push(node.clone());
            }
            for (node, commit) in set {
                let last = get(conn, zone, node.as_str())?.map(|n| n.seq);
                applied.set.push(publish_node(node, commit, last)?);
            }
        }
        Change::Update {
            require,
            serial: want,
            set,
            delete: dels,
        } => {
            let current = serial.wrapping_sub(1);
            if let Some(want) = *want
                && want != current
            {
                return Ok(Err(Refusal::SerialMoved { want, current }));
            }
            for condition in require {
                let current = get(conn, zone, condition.node.as_str())?;
                if !holds(condition, current.as_ref()) {
                    return Ok(Err(Refusal::Unmet {
                        node: condition.node.to_string(),
                        expect: condition.expect.clone(),
                    }));
                }
            }
            for node in dels {
                if get(conn, zone, node.as_str())?.is_some() {
                    delete(conn, zone, node.as_str())?;
                    applied.deleted.push(node.clone());
                }
            }
            for (node, commit) in set {
                let last = get(conn, zone, node.as_str())?.map(|n| n.seq);
                applied.set.push(publish_node(node, commit, last)?);
            }
            if applied.set.is_empty() && applied.deleted.is_empty() {
                // Nothing changed: the serial stays (RFC 2136 §3.7).
                applied.serial = serial.wrapping_sub(1);
                return Ok(Ok(applied));
            }
        }
        Change::Rollout { id, step } => {
            let plan = match rollouts::plan(conn, zone, *id, *step)? {
                Ok(plan) => plan,
                Err(r) => return Ok(Err(r)),
            };
            let commits = plan.commit_of.iter().map(|(_, c, _)| c.as_str());
            if let Some(commit) = rollouts::denied_among(conn, zone, commits)? {
                return Ok(Err(Refusal::Denied { commit }));
            }
            for (node, commit, current) in &plan.commit_of {
                let (row, created) = publish_node(node, commit, Some(current.seq))?;
                if let RolloutStep::Wave { wave, .. } = step {
                    rollouts::mark_published(conn, *id, *wave, node.as_str(), row.seq, current)?;
                }
                applied.set.push((row, created));
            }
            rollouts::finish(conn, *id, *step, applied.set.len() as u64, now)?;
            if applied.set.is_empty() {
                applied.serial = serial.wrapping_sub(1);
                return Ok(Ok(applied));
            }
        }
    }
    let created = applied.set.iter().filter(|(_, new)| *new).count() as i64;
    let count = count + created - applied.deleted.len() as i64;
    conn.prepare_cached("UPDATE zone SET serial = ?2, node_count = ?3 WHERE name = ?1")?
        .execute(params![zone, serial, count])?;
    Ok(Ok(applied))
}

/// Whether `condition` holds for a node whose row is `current`. A node's only data is its TXT
/// record, so its name is in use exactly when its TXT RRset exists.
fn holds(condition: &Condition, current: Option<&NodeRow>) -> bool {
    match (&condition.expect, current) {
        (Expect::NameInUse | Expect::TxtExists, found) => found.is_some(),
        (Expect::NameNotInUse | Expect::TxtAbsent, found) => found.is_none(),
        (Expect::TxtIs(_), None) => false,
        (Expect::TxtIs(want), Some(row)) => {
            let mut text = Vec::with_capacity(want.len());
            render_into(&row.commit, row.seq, row.ts, &mut text);
            text == want.as_bytes()
        }
    }
}

fn precondition(
    node: &str,
    current: Option<&NodeRow>,
    if_match: Option<IfMatch>,
) -> Result<(), Refusal> {
    let ok = match (if_match, current) {
        (None, _) => true,
        (Some(IfMatch::Any), found) => found.is_some(),
        (Some(IfMatch::Seq(want)), found) => found.is_some_and(|n| n.seq == want),
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::SeqMismatch {
            node: node.to_owned(),
            current: current.map(|n| n.seq),
        })
    }
}

/// Writes a publish: the next seq after the node's last one, the node row and a history row.
/// `current` is the seq of the node's row, which is its last publish; a node without a row
/// (new, or deleted) continues from its history, so a deleted and re-published node never
/// repeats a seq. The seq is at least the zone's `floor`, which a restore raises
/// (`super::restore`).
#[allow(clippy::too_many_arguments)]
fn publish(
    conn: &Connection,
    zone: &str,
    node: &str,
    commit: &str,
    now: u64,
    serial: u32,
    current: Option<u64>,
    floor: u64,
) -> Result<(NodeRow, bool), Error> {
    let created = current.is_none();
    let last = match current {
        Some(seq) => Some(seq),
        // Not `MAX(seq)`: SQLite re-planned that statement on every step; this one stays
        // prepared.
        None => conn
            .prepare_cached(
                "SELECT seq FROM history WHERE zone = ?1 AND name = ?2 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([zone, node], |r| r.get(0))
            .optional()?,
    };
    let seq = (last.unwrap_or(0) + 1).max(floor);
    conn.prepare_cached(
        "INSERT INTO node (zone, name, commit_id, seq, ts, serial) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (zone, name) DO UPDATE SET commit_id = ?3, seq = ?4, ts = ?5, serial = ?6",
    )?
    .execute(params![zone, node, commit, seq, now, serial])?;
    conn.prepare_cached(
        "INSERT INTO history (zone, name, seq, commit_id, ts) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![zone, node, seq, commit, now])?;
    let row = NodeRow {
        node: node.to_owned(),
        commit: commit.to_owned(),
        seq,
        ts: now,
        serial,
    };
    Ok((row, created))
}

fn delete(conn: &Connection, zone: &str, node: &str) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM node WHERE zone = ?1 AND name = ?2")?
        .execute([zone, node])?;
    Ok(())
}
