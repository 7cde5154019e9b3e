//! Stored DNSSEC signatures: in node rows for node records, in the `signature` table for the
//! rest. They are a cache of work, not the source of truth: a missing or stale one is made
//! again from the data, so they may be written in the same transaction as the change they
//! belong to without adding an fsync.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::{Error, NodeRow};

/// A node row with its stored signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNode {
    pub row: NodeRow,
    pub txt_sig: Option<Vec<u8>>,
    pub txt_sig_seq: Option<u64>,
    pub denial_sig: Option<Vec<u8>>,
    pub denial_next: Option<Vec<u8>>,
}

/// A stored signature of the `signature` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSig {
    pub digest: Vec<u8>,
    pub rrsig: Vec<u8>,
}

/// Stores the RRSIG over node `node`'s TXT RRset at `seq`.
pub(super) fn set_node_txt(
    conn: &Connection,
    zone: &str,
    node: &str,
    seq: u64,
    rrsig: &[u8],
) -> Result<(), Error> {
    conn.prepare_cached(
        "UPDATE node SET txt_sig = ?3, txt_sig_seq = ?4 WHERE zone = ?1 AND name = ?2",
    )?
    .execute(params![zone, node, rrsig, seq])?;
    Ok(())
}

/// Stores the RRSIG over node `node`'s NSEC or NSEC3 record, made for `next`.
pub(super) fn set_node_denial(
    conn: &Connection,
    zone: &str,
    node: &str,
    next: &[u8],
    rrsig: &[u8],
) -> Result<(), Error> {
    conn.prepare_cached(
        "UPDATE node SET denial_sig = ?3, denial_next = ?4 WHERE zone = ?1 AND name = ?2",
    )?
    .execute(params![zone, node, rrsig, next])?;
    Ok(())
}

/// Stores the RRSIG over any other RRset, by owner (relative, wire format) and type covered.
pub(super) fn put(
    conn: &Connection,
    zone: &str,
    (owner, rtype): (&[u8], u16),
    digest: &[u8],
    rrsig: &[u8],
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO signature (zone, owner, type, digest, rrsig) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (zone, owner, type) DO UPDATE SET digest = ?4, rrsig = ?5",
    )?
    .execute(params![zone, owner, rtype, digest, rrsig])?;
    Ok(())
}

pub(super) fn load(
    conn: &Connection,
    zone: &str,
) -> Result<HashMap<(Vec<u8>, u16), StoredSig>, Error> {
    let mut stmt =
        conn.prepare("SELECT owner, type, digest, rrsig FROM signature WHERE zone = ?1")?;
    let rows = stmt.query_map([zone], |r| {
        Ok((
            (r.get::<_, Vec<u8>>(0)?, r.get::<_, u16>(1)?),
            StoredSig {
                digest: r.get(2)?,
                rrsig: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn for_each_node<E: From<Error>>(
    conn: &Connection,
    zone: &str,
    mut f: impl FnMut(StoredNode) -> Result<(), E>,
) -> Result<(), E> {
    let mut stmt = conn
        .prepare(
            "SELECT name, commit_id, seq, ts, serial, txt_sig, txt_sig_seq, denial_sig, denial_next \
             FROM node WHERE zone = ?1",
        )
        .map_err(Error::from)?;
    let mut rows = stmt.query([zone]).map_err(Error::from)?;
    let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<StoredNode> {
        Ok(StoredNode {
            row: NodeRow {
                node: r.get(0)?,
                commit: r.get(1)?,
                seq: r.get(2)?,
                ts: r.get(3)?,
                serial: r.get(4)?,
            },
            txt_sig: r.get(5)?,
            txt_sig_seq: r.get(6)?,
            denial_sig: r.get(7)?,
            denial_next: r.get(8)?,
        })
    };
    while let Some(r) = rows.next().map_err(Error::from)? {
        f(read(r).map_err(Error::from)?)?;
    }
    Ok(())
}
