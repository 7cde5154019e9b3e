//! The durable store: one SQLite file holding zones, nodes, the publish history, the
//! signatures made so far and the IXFR journal.
//!
//! SQLite runs in WAL mode with `synchronous=FULL`, so a commit is fsynced before it returns: once
//! the API has answered 2xx, the write survives `kill -9` and power loss. Every write is one
//! transaction ([`Store::write`]); the writer in `crate::publish` puts a whole group of changes
//! into one (group commit), each change inside its own savepoint ([`Writer::apply`]) so that a
//! refused change leaves nothing behind.
//!
//! The store is the source of truth; the zone snapshot that DNS answers from is built from it at
//! start and updated after every commit. Nothing on the DNS query path touches SQLite, and the
//! store knows nothing of signing: it keeps what `crate::publish` hands it.

mod journal;
mod keys;
mod nodes;
mod reports;
pub mod restore;
mod rollouts;
mod schema;
mod signatures;
mod tokens;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use thiserror::Error;

use crate::record::{Commit, NodeLabel, NodeRecord, Payload, RecordError, newest_serial};

pub use journal::JournalRow;
pub use keys::KeyRollRow;
pub use reports::{NodeState, ReportRow};
pub use rollouts::{
    DeniedRow, NewRollout, RolloutAction, RolloutRow, RolloutState, RolloutStep, Selector,
    WaveCounts, place,
};
pub use schema::VERSION as SCHEMA_VERSION;
pub use signatures::{StoredNode, StoredSig};
pub use tokens::TokenRow;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// A failure of the store itself (I/O, SQLite, an incompatible file). The caller cannot fix these
/// by changing its request; see [`Refusal`] for the ones it can.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot open the store {path}")]
    Open {
        path: PathBuf,
        #[source]
        cause: rusqlite::Error,
    },
    #[error(
        "the store has schema version {found}, newer than this Herald knows ({known}); \
         run a newer Herald or restore a backup"
    )]
    TooNew { found: u32, known: u32 },
    #[error("sqlite failed")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store holds an invalid value: {0}")]
    Corrupt(String),
    /// A node row that is not a valid record: the file was changed behind Herald's back.
    #[error("the store holds an invalid node record")]
    InvalidRecord(#[from] RecordError),
}

/// What went wrong with the disk under the store, when that is what a failure was: the
/// answer then says so (507, 503), rather than a bare internal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// No space left (SQLITE_FULL): writes resume once space returns.
    Full,
    /// The file or its file system is read-only, or the disk fails (SQLITE_READONLY,
    /// SQLITE_IOERR, SQLITE_CANTOPEN).
    Unwritable,
}

impl Error {
    /// The disk fault behind this failure, if it was one.
    pub fn fault(&self) -> Option<StorageFault> {
        use rusqlite::ErrorCode;
        let Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) = self else {
            return None;
        };
        match e.code {
            ErrorCode::DiskFull => Some(StorageFault::Full),
            ErrorCode::ReadOnly | ErrorCode::SystemIoFailure | ErrorCode::CannotOpen => {
                Some(StorageFault::Unwritable)
            }
            _ => None,
        }
    }
}

/// Why one change was refused. The change was rolled back; the rest of its group is unaffected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("zone {0} is not served")]
    UnknownZone(String),
    #[error("node {0} does not exist")]
    NoSuchNode(String),
    #[error("node {node}: If-Match does not match (current seq: {})", current.map_or("none".to_owned(), |s| s.to_string()))]
    SeqMismatch { node: String, current: Option<u64> },
    /// A [`Condition`] of an update does not hold.
    #[error("node {node}: prerequisite not met: {expect}")]
    Unmet { node: String, expect: Expect },
    /// An update expected another SOA serial: the zone changed since its sender looked.
    #[error("prerequisite not met: the zone's serial is {current}, not {want}")]
    SerialMoved { want: u32, current: u32 },
    /// The commit is on the zone's deny-list.
    #[error("commit {commit} is on the zone's deny-list")]
    Denied { commit: String },
    /// A rollout would take a node that another active rollout holds.
    #[error("node {node} is already in running rollout {rollout}")]
    Overlap { node: String, rollout: u64 },
    #[error("no rollout {0} in this zone")]
    NoSuchRollout(u64),
    /// The rollout's state does not allow the action.
    #[error("rollout {id} is {state}: cannot {action}")]
    RolloutState {
        id: u64,
        state: &'static str,
        action: &'static str,
    },
    #[error("the rollout selects no node")]
    EmptyRollout,
}

/// What an update expects of a node before it applies (the RFC 2136 §2.4 prerequisites, as
/// they read on a node name, where the TXT RRset is the only data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The name has records (RFC 2136 §2.4.4).
    NameInUse,
    /// The name has no records (§2.4.5).
    NameNotInUse,
    /// The TXT RRset exists, whatever its value (§2.4.1).
    TxtExists,
    /// There is no TXT RRset (§2.4.3).
    TxtAbsent,
    /// The TXT RRset is exactly one record of this one character-string (§2.4.2).
    TxtIs(String),
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NameInUse => f.write_str("name in use"),
            Self::NameNotInUse => f.write_str("name not in use"),
            Self::TxtExists => f.write_str("TXT RRset exists"),
            Self::TxtAbsent => f.write_str("TXT RRset does not exist"),
            Self::TxtIs(_) => f.write_str("TXT RRset has the given value"),
        }
    }
}

/// One prerequisite of an update on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub node: NodeLabel,
    pub expect: Expect,
}

/// An `If-Match` precondition on a node (RFC 9110 §13.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the node must exist.
    Any,
    /// `"<seq>"`: the node must exist with this seq.
    Seq(u64),
}

/// One write, as the API asked for it.
#[derive(Debug, Clone)]
pub enum Change {
    /// Publish `commit` for `node`: a new seq, even when the commit is the current one.
    Put {
        node: NodeLabel,
        commit: Commit,
        if_match: Option<IfMatch>,
    },
    /// Remove `node`. Its history stays, so a later publish continues its seq.
    Delete {
        node: NodeLabel,
        if_match: Option<IfMatch>,
    },
    /// Publish and delete several nodes at once: all or nothing, one serial.
    Batch {
        set: Vec<(NodeLabel, Commit)>,
        delete: Vec<NodeLabel>,
    },
    /// An RFC 2136 UPDATE or a PowerDNS PATCH: when every condition holds, publish `set` and
    /// remove those of `delete` that exist (removing a missing node is no change, RFC 2136
    /// §3.4.2); all or nothing, one serial, and no serial at all when nothing changed
    /// (§3.7). A node appears at most once in `set` and `delete` together.
    Update {
        require: Vec<Condition>,
        /// The SOA serial the zone must have (a prerequisite on the SOA's value).
        serial: Option<u32>,
        set: Vec<(NodeLabel, Commit)>,
        delete: Vec<NodeLabel>,
    },
    /// A step of rollout `id`: publish (part of) a wave, or revert. The rollout's state is
    /// checked and changed in the same savepoint as the publishes ([`RolloutStep`]).
    Rollout { id: u64, step: RolloutStep },
}

/// The current state of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub node: String,
    pub commit: String,
    pub seq: u64,
    /// Unix seconds of the publish.
    pub ts: u64,
    /// The zone's SOA serial that first carried this publish.
    pub serial: u32,
}

impl NodeRow {
    /// The node and its payload, checked: the store holds what the API validated, so an
    /// invalid value means the file was changed behind Herald's back. The strings are moved,
    /// not copied: at start this runs for every node.
    pub fn into_record(self) -> Result<NodeRecord, Error> {
        Ok(NodeRecord {
            node: NodeLabel::try_from(self.node)?,
            payload: Payload {
                commit: Commit::try_from(self.commit)?,
                seq: self.seq,
                ts: self.ts,
            },
        })
    }
}

/// One past publish of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub commit: String,
    pub seq: u64,
    pub ts: u64,
}

/// A zone's persistent state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRow {
    pub serial: u32,
    pub node_count: u64,
}

/// What a committed change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The zone's serial after the change.
    pub serial: u32,
    /// The nodes published, each with `true` when it did not exist before.
    pub set: Vec<(NodeRow, bool)>,
    /// The nodes deleted.
    pub deleted: Vec<NodeLabel>,
}

/// A connection to the store. Open one for the writer and one for readers; WAL lets readers run
/// while a write is in progress.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let open_err = |cause| Error::Open {
            path: path.to_owned(),
            cause,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        // WAL lets API reads run beside the writer; FULL fsyncs the WAL on every commit, which
        // is what makes a 2xx durable (SQLite's NORMAL would only be durable at checkpoints).
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Corrupt(format!(
                "{} refused WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        // The write path cycles through about 20 statements; with rusqlite's default cache of
        // 16 some were evicted and re-parsed on every publish.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // Each change runs in a savepoint, whose undo pages SQLite writes to a temporary file by
        // default; in memory they cost no system calls.
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(open_err)?;
        schema::migrate(&mut conn)?;
        if let Some(step) = restore::step_after_restore(&mut conn, restore::now_us())? {
            for (zone, floor, serial) in &step.zones {
                tracing::warn!(
                    zone = %zone,
                    seq_floor = floor,
                    serial,
                    elapsed_us = step.elapsed_us,
                    "first start after a restore: the next publish of every node takes a seq above \
                     anything the lost interval could have used, and the serial moves on"
                );
            }
        }
        Ok(Self { conn })
    }

    /// Copies the store into a new file at `dest` while others keep writing (`herald backup`),
    /// stamped with the time `taken_us`.
    pub fn backup_into(&self, dest: &Path, taken_us: u64) -> Result<(), Error> {
        restore::backup_into(&self.conn, dest, taken_us)
    }

    /// Opens a second connection to an existing store for reading only.
    pub fn open_reader(path: &Path) -> Result<Self, Error> {
        let open_err = |cause| Error::Open {
            path: path.to_owned(),
            cause,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_err)?;
        conn.pragma_update(None, "query_only", true)
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found != schema::VERSION {
            return Err(Error::Corrupt(format!(
                "reader found schema version {found}, expected {}",
                schema::VERSION
            )));
        }
        Ok(Self { conn })
    }

    /// Registers a served zone at start, or updates it, and returns its state.
    ///
    /// The SOA serial never goes backwards and never repeats with different content: a new zone
    /// starts at the zone file's serial; when the file's static records changed since the last
    /// run, the serial moves past both the stored one and the file's; when only the file's serial
    /// was raised, it is taken.
    pub fn init_zone(
        &mut self,
        zone: &str,
        file_serial: u32,
        static_digest: &[u8],
    ) -> Result<ZoneRow, Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: Option<(u32, Vec<u8>, u64)> = tx
            .query_row(
                "SELECT serial, static_digest, node_count FROM zone WHERE name = ?1",
                [zone],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let row = match found {
            None => {
                // A zone new to this store starts at the store-wide seq floor a restore left
                // (`restore`): it may have existed in the interval the restore lost.
                tx.execute(
                    "INSERT INTO zone (name, serial, static_digest, seq_floor) VALUES (?1, ?2, ?3, \
                     COALESCE((SELECT value FROM meta WHERE key = 'seq_floor'), 0))",
                    rusqlite::params![zone, file_serial, static_digest],
                )?;
                ZoneRow {
                    serial: file_serial,
                    node_count: 0,
                }
            }
            Some((stored, digest, node_count)) => {
                let serial = if digest != static_digest {
                    newest_serial(stored.wrapping_add(1), file_serial)
                } else {
                    newest_serial(stored, file_serial)
                };
                tx.execute(
                    "UPDATE zone SET serial = ?2, static_digest = ?3 WHERE name = ?1",
                    rusqlite::params![zone, serial, static_digest],
                )?;
                ZoneRow { serial, node_count }
            }
        };
        tx.commit()?;
        Ok(row)
    }

    /// A zone's state, or `None` when the zone was never served.
    pub fn zone(&self, zone: &str) -> Result<Option<ZoneRow>, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT serial, node_count FROM zone WHERE name = ?1")?
            .query_row([zone], |r| {
                Ok(ZoneRow {
                    serial: r.get(0)?,
                    node_count: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// A cheap round trip for health checks.
    pub fn check(&self) -> Result<(), Error> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    /// Runs `f` in one write transaction (one fsync), committed when `f` returns `Ok` and
    /// rolled back when it returns `Err`. The writer groups API changes this way.
    pub fn write<T, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::from)?;
        let mut writer = Writer { tx };
        let value = f(&mut writer)?;
        writer.tx.commit().map_err(Error::from)?;
        Ok(value)
    }

    /// The zone's stored signatures other than nodes', by (owner, type).
    pub fn signatures(&self, zone: &str) -> Result<HashMap<(Vec<u8>, u16), StoredSig>, Error> {
        signatures::load(&self.conn, zone)
    }

    /// Calls `f` for every node of `zone` with its stored signatures; stops at the first
    /// error, `f`'s or the store's. The nodes come as SQLite reads them: in name order when it
    /// walks the primary key, as it does, which makes the start-up build fastest; the build
    /// does not depend on it.
    pub fn for_each_stored_node<E: From<Error>>(
        &self,
        zone: &str,
        f: impl FnMut(StoredNode) -> Result<(), E>,
    ) -> Result<(), E> {
        signatures::for_each_node(&self.conn, zone, f)
    }

    /// The zone's key rollover state; `None` when it never rolled a key.
    pub fn key_roll(&self, zone: &str) -> Result<Option<KeyRollRow>, Error> {
        keys::get(&self.conn, zone)
    }

    /// The IXFR journal of `zone`, oldest first.
    pub fn journal(&self, zone: &str) -> Result<Vec<JournalRow>, Error> {
        journal::load(&self.conn, zone)
    }

    /// One node, or `None`.
    pub fn node(&self, zone: &str, node: &str) -> Result<Option<NodeRow>, Error> {
        nodes::get(&self.conn, zone, node)
    }

    /// Up to `limit` nodes in name order, starting after `after`; only names that start with
    /// `prefix`, when given.
    pub fn nodes(
        &self,
        zone: &str,
        after: Option<&str>,
        prefix: Option<&str>,
        limit: usize,
    ) -> Result<Vec<NodeRow>, Error> {
        nodes::list(&self.conn, zone, after, prefix, limit)
    }

    /// A node's publishes, newest first.
    pub fn history(&self, zone: &str, node: &str, limit: usize) -> Result<Vec<HistoryRow>, Error> {
        nodes::history(&self.conn, zone, node, limit)
    }

    /// Every scoped token, oldest first.
    pub fn tokens(&self) -> Result<Vec<TokenRow>, Error> {
        tokens::list(&self.conn)
    }

    /// The path of the SQLite file inside a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("herald.sqlite3")
    }
}

/// An open write transaction; see [`Store::write`].
pub struct Writer<'c> {
    tx: rusqlite::Transaction<'c>,
}

impl Writer<'_> {
    /// Applies one change in its own savepoint: a refused change is rolled back alone and
    /// reported; the error means the store failed.
    pub fn apply(
        &mut self,
        zone: &str,
        change: &Change,
        now: u64,
    ) -> Result<Result<Applied, Refusal>, Error> {
        let sp = self.tx.savepoint()?;
        let result = nodes::apply(&sp, zone, change, now)?;
        if result.is_ok() {
            sp.commit()?;
        }
        // Dropping an uncommitted savepoint rolls it back.
        Ok(result)
    }

    /// Raises the zone's serial by one (signatures changed, data did not) and returns it.
    pub fn bump_serial(&mut self, zone: &str) -> Result<u32, Error> {
        let serial: u32 = self
            .tx
            .prepare_cached("SELECT serial FROM zone WHERE name = ?1")?
            .query_row([zone], |r| r.get(0))?;
        let serial = serial.wrapping_add(1);
        self.tx
            .prepare_cached("UPDATE zone SET serial = ?2 WHERE name = ?1")?
            .execute(rusqlite::params![zone, serial])?;
        Ok(serial)
    }

    /// Records the zone's key rollover state.
    pub fn set_key_roll(&mut self, zone: &str, row: &KeyRollRow) -> Result<(), Error> {
        keys::put(&self.tx, zone, row)
    }

    /// Stores the RRSIG over node `node`'s TXT RRset at `seq`.
    pub fn set_node_txt_sig(
        &mut self,
        zone: &str,
        node: &str,
        seq: u64,
        rrsig: &[u8],
    ) -> Result<(), Error> {
        signatures::set_node_txt(&self.tx, zone, node, seq, rrsig)
    }

    /// Stores the RRSIG over node `node`'s NSEC or NSEC3 record, made for `next`.
    pub fn set_node_denial_sig(
        &mut self,
        zone: &str,
        node: &str,
        next: &[u8],
        rrsig: &[u8],
    ) -> Result<(), Error> {
        signatures::set_node_denial(&self.tx, zone, node, next, rrsig)
    }

    /// Stores the RRSIG over another RRset of `zone`: `owner` relative to the apex in wire
    /// format, `rtype` the type covered, `digest` what identifies the signed content.
    pub fn put_signature(
        &mut self,
        zone: &str,
        owner: &[u8],
        rtype: u16,
        digest: &[u8],
        rrsig: &[u8],
    ) -> Result<(), Error> {
        signatures::put(&self.tx, zone, (owner, rtype), digest, rrsig)
    }

    /// Appends a journal entry for `zone` and returns its id.
    pub fn journal_append(
        &mut self,
        zone: &str,
        serial_from: u32,
        serial_to: u32,
        created: u64,
        diff: &[u8],
    ) -> Result<i64, Error> {
        journal::append(&self.tx, zone, serial_from, serial_to, created, diff)
    }

    /// Stores a new scoped token.
    pub fn add_token(&mut self, token: &TokenRow) -> Result<(), Error> {
        tokens::add(&self.tx, token)
    }

    /// Deletes a token; `false` when there was none with this id.
    pub fn remove_token(&mut self, id: &str) -> Result<bool, Error> {
        tokens::remove(&self.tx, id)
    }

    /// Deletes the journal entries of `zone` older than entry `first_kept`; returns how many
    /// went.
    pub fn journal_trim(&mut self, zone: &str, first_kept: i64) -> Result<usize, Error> {
        journal::trim(&self.tx, zone, first_kept)
    }
}

#[cfg(test)]
mod tests;
