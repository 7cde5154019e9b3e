//! Stored DNSSEC signatures: in node rows for node records, in the `signature` table for the
//! rest. They are a cache of work, not the source of truth: a missing or stale one is made
//! again from the data, so they may be written in the same transaction as the change they
//! belong to without adding an fsync.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::{Error, NodeRow};

/// A signature to store or forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigWrite {
    /// The RRSIG over node `node`'s TXT RRset at `seq`.
    NodeTxt {
        node: String,
        seq: u64,
        rrsig: Vec<u8>,
    },
    /// The RRSIG over node `node`'s NSEC (next name key) or NSEC3 (next hash) record.
    NodeDenial {
        node: String,
        next: Vec<u8>,
        rrsig: Vec<u8>,
    },
    /// The RRSIG over any other RRset: owner relative to the apex (wire format), type covered,
    /// and the digest of what was signed.
    Rrset {
        owner: Vec<u8>,
        rtype: u16,
        digest: [u8; 16],
        rrsig: Vec<u8>,
    },
    /// An RRset that is gone.
    RemoveRrset { owner: Vec<u8>, rtype: u16 },
}

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

pub(super) fn write(conn: &Connection, zone: &str, writes: &[SigWrite]) -> Result<(), Error> {
    for w in writes {
        match w {
            SigWrite::NodeTxt { node, seq, rrsig } => {
                conn.prepare_cached(
                    "UPDATE node SET txt_sig = ?3, txt_sig_seq = ?4 WHERE zone = ?1 AND name = ?2",
                )?
                .execute(params![zone, node, rrsig, seq])?;
            }
            SigWrite::NodeDenial { node, next, rrsig } => {
                conn.prepare_cached("UPDATE node SET denial_sig = ?3, denial_next = ?4 WHERE zone = ?1 AND name = ?2")?
                    .execute(params![zone, node, rrsig, next])?;
            }
            SigWrite::Rrset {
                owner,
                rtype,
                digest,
                rrsig,
            } => {
                conn.prepare_cached(
                    "INSERT INTO signature (zone, owner, type, digest, rrsig) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (zone, owner, type) DO UPDATE SET digest = ?4, rrsig = ?5",
                )?
                .execute(params![zone, owner, rtype, &digest[..], rrsig])?;
            }
            SigWrite::RemoveRrset { owner, rtype } => {
                conn.prepare_cached(
                    "DELETE FROM signature WHERE zone = ?1 AND owner = ?2 AND type = ?3",
                )?
                .execute(params![zone, owner, rtype])?;
            }
        }
    }
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

pub(super) fn for_each_node(
    conn: &Connection,
    zone: &str,
    mut f: impl FnMut(StoredNode) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut stmt = conn.prepare(
        "SELECT name, commit_id, seq, ts, serial, txt_sig, txt_sig_seq, denial_sig, denial_next \
         FROM node WHERE zone = ?1",
    )?;
    let mut rows = stmt.query([zone])?;
    while let Some(r) = rows.next()? {
        f(StoredNode {
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
        })?;
    }
    Ok(())
}
