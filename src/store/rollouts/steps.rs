//! The writes of a rollout: making it ([`create`]), working out and recording a wave or a
//! revert inside the writer's savepoint ([`plan`], [`mark_published`], [`finish`]), and
//! changing its state ([`act`]).

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    NewRollout, RolloutAction, RolloutRow, RolloutState, RolloutStep, Selector, denied_among, get,
    place,
};
use crate::record::{NodeLabel, NodePattern};
use crate::store::{Error, NodeRow, Refusal};

/// The active rollout of the zone that holds `node`, if one does.
fn holder(conn: &Connection, zone: &str, node: &str) -> Result<Option<u64>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT r.id FROM rollout_node m JOIN rollout r ON r.id = m.rollout \
             WHERE m.zone = ?1 AND m.name = ?2 AND r.state IN ('running', 'paused', 'halted') \
             LIMIT 1",
        )?
        .query_row([zone, node], |r| r.get(0))
        .optional()?)
}

pub(super) fn create(
    conn: &Connection,
    new: &NewRollout,
    now: u64,
) -> Result<Result<RolloutRow, Refusal>, Error> {
    let zone = new.zone.as_str();
    if conn
        .prepare_cached("SELECT 1 FROM zone WHERE name = ?1")?
        .query_row([zone], |_| Ok(()))
        .optional()?
        .is_none()
    {
        return Ok(Err(Refusal::UnknownZone(zone.to_owned())));
    }
    if let Some(commit) = denied_among(conn, zone, [new.commit.as_str()])? {
        return Ok(Err(Refusal::Denied { commit }));
    }
    let canary = new
        .canary
        .iter()
        .map(NodeLabel::as_str)
        .collect::<Vec<_>>()
        .join(",");
    let waves = new
        .waves
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(",");
    conn.prepare_cached(
        "INSERT INTO rollout (zone, commit_id, selector, canary, waves, interval_s, min_applied, \
         max_failed, max_in_flight, state, wave, created, updated, created_by) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'running', 0, ?10, ?10, ?11)",
    )?
    .execute(params![
        zone,
        new.commit.as_str(),
        new.selector.to_stored(),
        canary,
        waves,
        new.interval,
        new.min_applied,
        new.max_failed,
        new.max_in_flight,
        now,
        new.created_by,
    ])?;
    let id = conn.last_insert_rowid() as u64;
    // Overlaps are looked for only when another rollout of the zone still holds nodes.
    let others_active = conn
        .prepare_cached(
            "SELECT 1 FROM rollout WHERE zone = ?1 AND id != ?2 \
             AND state IN ('running', 'paused', 'halted')",
        )?
        .exists(params![zone, id])?;
    let exists = |node: &str| crate::store::nodes::get(conn, zone, node).map(|n| n.is_some());
    let mut insert = conn.prepare_cached(
        "INSERT INTO rollout_node (rollout, wave, name, zone) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut add = |node: &str, wave: u32| -> Result<Result<(), Refusal>, Error> {
        if others_active && let Some(other) = holder(conn, zone, node)? {
            return Ok(Err(Refusal::Overlap {
                node: node.to_owned(),
                rollout: other,
            }));
        }
        insert.execute(params![id, wave, node, zone])?;
        Ok(Ok(()))
    };
    let offset = u32::from(!new.canary.is_empty());
    let mut count = 0u64;
    let canaries: HashSet<&str> = new.canary.iter().map(NodeLabel::as_str).collect();
    for node in &new.canary {
        if !exists(node.as_str())? {
            return Ok(Err(Refusal::NoSuchNode(node.to_string())));
        }
        if let Err(r) = add(node.as_str(), 0)? {
            return Ok(Err(r));
        }
        count += 1;
    }
    let mut place_one = |node: &str| -> Result<Result<(), Refusal>, Error> {
        if canaries.contains(node) {
            return Ok(Ok(()));
        }
        count += 1;
        add(node, offset + place(id, node, &new.waves))
    };
    match &new.selector {
        Selector::List(nodes) => {
            for node in nodes {
                if !exists(node.as_str())? {
                    return Ok(Err(Refusal::NoSuchNode(node.to_string())));
                }
                if let Err(r) = place_one(node.as_str())? {
                    return Ok(Err(r));
                }
            }
        }
        Selector::Pattern(pattern) => {
            let (low, high) = match pattern {
                NodePattern::Any => (String::new(), "~".to_owned()),
                NodePattern::Prefix(p) => (p.clone(), format!("{p}~")),
                NodePattern::Exact(n) => (n.to_string(), format!("{n}\0")),
            };
            let mut names = conn.prepare_cached(
                "SELECT name FROM node WHERE zone = ?1 AND name >= ?2 AND name < ?3 ORDER BY name",
            )?;
            let mut rows = names.query(params![zone, low, high])?;
            while let Some(row) = rows.next()? {
                let node: String = row.get(0)?;
                if let Err(r) = place_one(&node)? {
                    return Ok(Err(r));
                }
            }
        }
    }
    if count == 0 {
        return Ok(Err(Refusal::EmptyRollout));
    }
    Ok(Ok(get(conn, zone, id)?.ok_or_else(|| {
        Error::Corrupt(format!("rollout {id} vanished while being made"))
    })?))
}

/// What a rollout step publishes: each node with the commit it gets and its current row.
pub(in crate::store) struct Plan {
    pub commit_of: Vec<(NodeLabel, crate::record::Commit, NodeRow)>,
}

/// Works out a [`RolloutStep`] inside the change's savepoint: checks the rollout's state and
/// picks the nodes. Members of a wave whose node was deleted since are dropped from it.
pub(in crate::store) fn plan(
    conn: &Connection,
    zone: &str,
    id: u64,
    step: RolloutStep,
) -> Result<Result<Plan, Refusal>, Error> {
    let Some(row) = get(conn, zone, id)? else {
        return Ok(Err(Refusal::NoSuchRollout(id)));
    };
    let mut commit_of = Vec::new();
    let corrupt = |e: crate::record::RecordError| Error::Corrupt(format!("rollout {id}: {e}"));
    match step {
        RolloutStep::Wave { wave, limit } => {
            if row.state != RolloutState::Running || row.wave != wave {
                return Ok(Err(Refusal::RolloutState {
                    id,
                    state: row.state.as_str(),
                    action: "publish a wave",
                }));
            }
            let commit = crate::record::Commit::parse(&row.commit).map_err(corrupt)?;
            let names: Vec<String> = conn
                .prepare_cached(
                    "SELECT name FROM rollout_node WHERE rollout = ?1 AND wave = ?2 \
                     AND seq IS NULL ORDER BY name LIMIT ?3",
                )?
                .query_map(params![id, wave, limit.min(i64::MAX as u64) as i64], |r| {
                    r.get(0)
                })?
                .collect::<Result<_, _>>()?;
            for name in names {
                match crate::store::nodes::get(conn, zone, &name)? {
                    Some(current) => commit_of.push((
                        NodeLabel::parse(&name).map_err(corrupt)?,
                        commit.clone(),
                        current,
                    )),
                    None => {
                        conn.prepare_cached(
                            "DELETE FROM rollout_node WHERE rollout = ?1 AND wave = ?2 AND name = ?3",
                        )?
                        .execute(params![id, wave, name])?;
                    }
                }
            }
        }
        RolloutStep::Revert => {
            if !row.state.is_active() {
                return Ok(Err(Refusal::RolloutState {
                    id,
                    state: row.state.as_str(),
                    action: "abort",
                }));
            }
            let mut stmt = conn.prepare_cached(
                "SELECT m.name, m.prev_commit FROM rollout_node m \
                 JOIN node n ON n.zone = m.zone AND n.name = m.name AND n.seq = m.seq \
                 WHERE m.rollout = ?1 AND m.prev_commit IS NOT NULL ORDER BY m.name",
            )?;
            let found: Vec<(String, String)> = stmt
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (name, prev) in found {
                let current = crate::store::nodes::get(conn, zone, &name)?
                    .ok_or_else(|| Error::Corrupt(format!("node {name} vanished")))?;
                commit_of.push((
                    NodeLabel::parse(&name).map_err(corrupt)?,
                    crate::record::Commit::parse(&prev).map_err(corrupt)?,
                    current,
                ));
            }
        }
    }
    Ok(Ok(Plan { commit_of }))
}

/// Records that the rollout published `node` at `seq`, replacing `prev`.
pub(in crate::store) fn mark_published(
    conn: &Connection,
    id: u64,
    wave: u32,
    node: &str,
    seq: u64,
    prev: &NodeRow,
) -> Result<(), Error> {
    conn.prepare_cached(
        "UPDATE rollout_node SET seq = ?4, prev_commit = ?5, prev_seq = ?6 \
         WHERE rollout = ?1 AND wave = ?2 AND name = ?3",
    )?
    .execute(params![id, wave, node, seq, prev.commit, prev.seq])?;
    Ok(())
}

/// The end of a step: a wave with nothing left to publish is done as of `now`; a revert ends
/// the rollout as aborted, having published `reverted` nodes back.
pub(in crate::store) fn finish(
    conn: &Connection,
    id: u64,
    step: RolloutStep,
    reverted: u64,
    now: u64,
) -> Result<(), Error> {
    match step {
        RolloutStep::Wave { wave, .. } => {
            let left = conn
                .prepare_cached(
                    "SELECT 1 FROM rollout_node WHERE rollout = ?1 AND wave = ?2 AND seq IS NULL",
                )?
                .exists(params![id, wave])?;
            if !left {
                conn.prepare_cached(
                    "UPDATE rollout SET wave_done = ?2, updated = ?2 WHERE id = ?1 AND wave_done IS NULL",
                )?
                .execute(params![id, now])?;
            }
        }
        RolloutStep::Revert => {
            conn.prepare_cached(
                "UPDATE rollout SET state = 'aborted', reverted = ?2, updated = ?3, \
                 reason = COALESCE(reason, 'aborted') WHERE id = ?1",
            )?
            .execute(params![id, reverted, now])?;
        }
    }
    Ok(())
}

pub(super) fn act(
    conn: &Connection,
    zone: &str,
    id: u64,
    action: &RolloutAction,
    now: u64,
) -> Result<Result<RolloutRow, Refusal>, Error> {
    use RolloutState::*;
    let Some(row) = get(conn, zone, id)? else {
        return Ok(Err(Refusal::NoSuchRollout(id)));
    };
    let refuse = || {
        Ok(Err(Refusal::RolloutState {
            id,
            state: row.state.as_str(),
            action: action.name(),
        }))
    };
    let (state, reason, wave, wave_done) = match action {
        RolloutAction::Pause if row.state == Running => (Paused, None, row.wave, row.wave_done),
        RolloutAction::Resume if matches!(row.state, Paused | Halted) => {
            if let Some(commit) = denied_among(conn, zone, [row.commit.as_str()])? {
                return Ok(Err(Refusal::Denied { commit }));
            }
            (Running, None, row.wave, row.wave_done)
        }
        RolloutAction::Abort if row.state.is_active() => {
            (Aborted, Some("aborted".to_owned()), row.wave, row.wave_done)
        }
        RolloutAction::Halt(why) if row.state == Running => {
            (Halted, Some(why.clone()), row.wave, row.wave_done)
        }
        RolloutAction::Advance { from }
            if row.state == Running && row.wave == *from && row.wave_done.is_some() =>
        {
            if from + 1 >= row.wave_count() {
                (Completed, None, row.wave, row.wave_done)
            } else {
                (Running, None, from + 1, None)
            }
        }
        _ => return refuse(),
    };
    conn.prepare_cached(
        "UPDATE rollout SET state = ?2, reason = ?3, wave = ?4, wave_done = ?5, updated = ?6 \
         WHERE id = ?1",
    )?
    .execute(params![id, state.as_str(), reason, wave, wave_done, now])?;
    Ok(Ok(get(conn, zone, id)?.ok_or_else(|| {
        Error::Corrupt(format!("rollout {id} vanished"))
    })?))
}
