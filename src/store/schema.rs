//! Versioned schema migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Each migration runs in its own
//! transaction together with the version bump, so a crash leaves the store at one version or the
//! next, never between. A store written by a newer Herald (a higher version than this binary knows)
//! is refused rather than guessed at.

use rusqlite::Connection;

use super::Error;

/// Migration `i` takes the store from version `i` to `i + 1`. Append only; never edit a shipped one.
const MIGRATIONS: &[&str] = &[
    // 1: zones, nodes and the publish history.
    "
    -- One row per served zone: the SOA serial Herald last used, so it never goes backwards across
    -- restarts, and a digest of the zone file's static records, so a changed file bumps it.
    CREATE TABLE zone (
        name          TEXT PRIMARY KEY,
        serial        INTEGER NOT NULL,
        static_digest BLOB NOT NULL,
        node_count    INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;

    -- The current commit of every node.
    CREATE TABLE node (
        zone      TEXT NOT NULL,
        name      TEXT NOT NULL,
        commit_id TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        ts        INTEGER NOT NULL,
        serial    INTEGER NOT NULL,
        PRIMARY KEY (zone, name)
    ) WITHOUT ROWID;

    -- Every publish, kept after a delete too: a node that is deleted and published again continues
    -- its seq, so clients that applied an older seq never see a replay.
    CREATE TABLE history (
        zone      TEXT NOT NULL,
        name      TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        commit_id TEXT NOT NULL,
        ts        INTEGER NOT NULL,
        PRIMARY KEY (zone, name, seq)
    ) WITHOUT ROWID;
    ",
    // 2: DNSSEC signatures, kept so a restart reuses them instead of re-signing the zone.
    "
    -- A node's signatures live in its row: the RRSIG over its TXT RRset and the seq it signed,
    -- and the RRSIG over its NSEC or NSEC3 record and the next name or hash it signed.
    ALTER TABLE node ADD COLUMN txt_sig BLOB;
    ALTER TABLE node ADD COLUMN txt_sig_seq INTEGER;
    ALTER TABLE node ADD COLUMN denial_sig BLOB;
    ALTER TABLE node ADD COLUMN denial_next BLOB;

    -- Signatures over the zone file's RRsets, the apex records and their NSEC/NSEC3, keyed by
    -- the owner relative to the apex (wire format) and the type covered; digest identifies
    -- exactly what was signed.
    CREATE TABLE signature (
        zone   TEXT NOT NULL,
        owner  BLOB NOT NULL,
        type   INTEGER NOT NULL,
        digest BLOB NOT NULL,
        rrsig  BLOB NOT NULL,
        PRIMARY KEY (zone, owner, type)
    ) WITHOUT ROWID;
    ",
    // 3: the IXFR journal.
    "
    -- One row per SOA serial change: the difference sequence of RFC 1995 (old SOA, RRs deleted,
    -- new SOA, RRs added; signatures included), each RR uncompressed and length-prefixed.
    -- AUTOINCREMENT so ids keep increasing after old rows are trimmed.
    CREATE TABLE journal (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        zone        TEXT NOT NULL,
        serial_from INTEGER NOT NULL,
        serial_to   INTEGER NOT NULL,
        created     INTEGER NOT NULL,
        diff        BLOB NOT NULL
    );
    CREATE INDEX journal_zone ON journal (zone, id);
    ",
    // 4: scoped API tokens.
    "
    -- One row per scoped token: only the SHA-256 of its secret is kept. A revoked token's row
    -- is deleted; an expired one stays until revoked, and is refused from `expires` on.
    CREATE TABLE token (
        id          TEXT PRIMARY KEY,
        hash        BLOB NOT NULL UNIQUE,
        zone        TEXT NOT NULL,
        nodes       TEXT NOT NULL,
        description TEXT NOT NULL,
        created     INTEGER NOT NULL,
        expires     INTEGER
    ) WITHOUT ROWID;
    ",
    // 5: restores.
    "
    -- The lowest seq a publish may hand out in the zone. It is raised on the first start after
    -- a restore, above anything the interval lost with the restore could have handed out
    -- (store/restore.rs), so that no node ever sees a seq it already applied for new content.
    ALTER TABLE zone ADD COLUMN seq_floor INTEGER NOT NULL DEFAULT 0;

    -- Facts about this file rather than the zones: when it was made by `herald backup`
    -- (backup_us), and whether it was restored and not yet started since (restored).
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    ",
    // 6: node reports.
    "
    -- The latest report of each node (`herald watch` after a hook run): the seq and commit it
    -- ran for, applied or failed, the hook's exit code, when it ended by the node's clock (at),
    -- the TSIG time of its message (signed) and when the server took it (received), all Unix
    -- seconds. Never served. Only a report for a higher seq, or for the same seq and signed
    -- later, replaces the row: a replayed report changes nothing.
    CREATE TABLE report (
        zone      TEXT NOT NULL,
        name      TEXT NOT NULL,
        seq       INTEGER NOT NULL,
        commit_id TEXT NOT NULL,
        status    TEXT NOT NULL,
        code      INTEGER NOT NULL,
        at        INTEGER NOT NULL,
        signed    INTEGER NOT NULL,
        received  INTEGER NOT NULL,
        PRIMARY KEY (zone, name)
    ) WITHOUT ROWID;
    ",
    // 7: rollouts and the deny-list.
    "
    -- One row per rollout (DESIGN.md, \"Rollouts\"): what it publishes to which nodes, its
    -- waves and gates, and where it stands. `wave` is the current wave's index; `wave_done`
    -- is when its last node was published (NULL until then). Only the writer thread publishes
    -- a wave, in the transaction that marks its nodes published, so a restart never repeats
    -- or skips one.
    CREATE TABLE rollout (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        zone          TEXT NOT NULL,
        commit_id     TEXT NOT NULL,
        selector      TEXT NOT NULL,
        canary        TEXT NOT NULL,
        waves         TEXT NOT NULL,
        interval_s    INTEGER NOT NULL,
        min_applied   INTEGER NOT NULL,
        max_failed    INTEGER NOT NULL,
        max_in_flight INTEGER,
        state         TEXT NOT NULL,
        reason        TEXT,
        wave          INTEGER NOT NULL,
        wave_done     INTEGER,
        reverted      INTEGER NOT NULL DEFAULT 0,
        created       INTEGER NOT NULL,
        updated       INTEGER NOT NULL,
        created_by    TEXT NOT NULL
    );
    CREATE INDEX rollout_zone ON rollout (zone, id);

    -- The nodes of a rollout, each placed in its wave when the rollout was made. `seq` is the
    -- seq the rollout published (NULL until then); `prev_commit` and `prev_seq` what the node
    -- had just before, for a revert.
    CREATE TABLE rollout_node (
        rollout     INTEGER NOT NULL,
        wave        INTEGER NOT NULL,
        name        TEXT NOT NULL,
        zone        TEXT NOT NULL,
        seq         INTEGER,
        prev_commit TEXT,
        prev_seq    INTEGER,
        PRIMARY KEY (rollout, wave, name)
    ) WITHOUT ROWID;
    CREATE INDEX rollout_node_name ON rollout_node (zone, name);

    -- Commits that no path may publish in a zone.
    CREATE TABLE denied_commit (
        zone      TEXT NOT NULL,
        commit_id TEXT NOT NULL,
        reason    TEXT NOT NULL,
        created   INTEGER NOT NULL,
        PRIMARY KEY (zone, commit_id)
    ) WITHOUT ROWID;
    ",
    // 8: key rollovers.
    "
    -- A zone's signing keys, once it has rolled one (before that, the zone's only key is
    -- keys/<zone>.key). `active` signs the zone; `other` is the second key published while a
    -- rollover runs (the incoming one in 'publish', the outgoing one after). Key files are
    -- named, not stored: the private keys stay in the 0600 files of keys/.
    CREATE TABLE key_roll (
        zone        TEXT PRIMARY KEY,
        active      TEXT NOT NULL,
        other       TEXT,
        step        TEXT NOT NULL
                    CHECK (step IN ('sigs', 'publish', 'switch', 'revoke', 'unpublish', 'done')),
        revoke_old  INTEGER NOT NULL DEFAULT 0,
        started_at  INTEGER NOT NULL,
        step_at     INTEGER NOT NULL,
        resigned_at INTEGER,
        -- Hold the old key until the parent's DS names the new one (`herald key roll
        -- --wait-ds`), and from when the new DS is in every cache.
        wait_ds     INTEGER NOT NULL DEFAULT 0,
        ds_seen_at  INTEGER,
        -- The new key has another algorithm: the data is signed by both (RFC 6781 §4.1.4).
        algorithm_change INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    ",
];

/// The schema version this binary writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the store up to [`VERSION`].
pub fn migrate(conn: &mut Connection) -> Result<(), Error> {
    let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > VERSION {
        return Err(Error::TooNew {
            found,
            known: VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "store migrated");
    }
    Ok(())
}
