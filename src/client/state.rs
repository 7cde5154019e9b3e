//! The node's state file: the seq and commit last applied (whose hook exited 0), and the
//! zone's trust anchors as RFC 5011 tracking left them ([`super::trust`]).
//!
//! ```json
//! {
//!   "zone": "example.test",
//!   "node": "n1",
//!   "seq": 3,
//!   "commit": "3f2a…",
//!   "applied_at": 1764086400,
//!   "trust": {
//!     "keys": [
//!       { "dnskey": "257 3 13 m8k7…", "tag": 46711, "state": "valid",
//!         "first_seen": 1764086400, "last_change": 1764086400, "seen": 1 }
//!     ],
//!     "validated": { "dnskeys": ["257 3 13 m8k7…"], "at": 1764086400,
//!                    "next_probe": 1764090000, "expires": 1765296000 },
//!     "dnskey_inception": 1764082800
//!   }
//! }
//! ```
//!
//! A node that has applied nothing yet, but already tracks keys, has `seq` 0 and an empty
//! `commit` (seqs start at 1). Files written before trust tracking (no `trust`) still load, and
//! a file without trust state is written without it.
//!
//! Written atomically (a temporary file of its own, fsync, rename, fsync of the directory), so
//! a crash leaves the old state or the new one, never half of either. A state file that cannot
//! be read is an error, not an empty state: treating it as "nothing applied" would run the
//! hook for an old seq, and forgetting the last known good state is what the replay check
//! exists to prevent.
//!
//! `herald watch` and `herald check --state` may run at once on the same file, so every change
//! is a read, change and write under an exclusive lock ([`update`]): `flock(2)` on a sibling
//! file, `<state>.lock`, which is created once and never removed (removing it would let two
//! writers lock two different files). Without it, a writer that read the file before another
//! wrote it would put back what it read: an older trust state, where a revocation that the
//! other had just recorded is gone. Each writer also has a temporary file of its own
//! (`.<name>.<pid>.<random>.tmp`, created new), so that two never write into the same one.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::trust::TrustState;

/// What was applied last, and the trust anchors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub zone: String,
    pub node: String,
    /// The seq applied last; 0 when nothing has been applied yet (seqs start at 1). Always
    /// written, so that a file without it is refused rather than read as "nothing applied".
    pub seq: u64,
    /// Its commit; empty when nothing has been applied.
    pub commit: String,
    /// Unix seconds when the hook succeeded; 0 when nothing has been applied.
    pub applied_at: u64,
    /// The zone's keys as RFC 5011 tracking left them.
    #[serde(default, skip_serializing_if = "TrustState::is_empty")]
    pub trust: TrustState,
}

impl State {
    /// The state of a node that has applied nothing and trusts only its anchor file.
    pub fn new(zone: &str, node: &str) -> Self {
        Self {
            zone: zone.to_owned(),
            node: node.to_owned(),
            seq: 0,
            commit: String::new(),
            applied_at: 0,
            trust: TrustState::default(),
        }
    }

    /// The seq applied, if any: what a lower seq is a replay of.
    pub fn applied(&self) -> Option<u64> {
        (self.seq > 0).then_some(self.seq)
    }

    /// Records that the hook for `seq`/`commit` succeeded at `at`.
    pub fn apply(&mut self, seq: u64, commit: &str, at: u64) {
        self.seq = seq;
        self.commit = commit.to_owned();
        self.applied_at = at;
    }
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("state file {path}")]
    Io {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("state file {path} is not a Herald state file; move it away to start over")]
    Corrupt {
        path: PathBuf,
        #[source]
        cause: serde_json::Error,
    },
    #[error(
        "state file {path} has a seq without a commit or a commit without a seq; move it away \
         to start over"
    )]
    Inconsistent { path: PathBuf },
    #[error("state file {path} is for {found}, not {wanted}")]
    Mismatch {
        path: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("cannot lock the state file with {path}")]
    Lock {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
}

/// An exclusive lock on a state file; released when dropped (closing the file releases the
/// `flock`).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// The lock file of the state file `path`: `<path>.lock`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock of the state file `path`, waiting for whoever holds it. A lock
/// file that exists but cannot be opened for writing (a reader without write access to the
/// state) is locked through a read-only descriptor, which `flock` allows.
pub fn lock(path: &Path) -> Result<StateLock, StateError> {
    let lock = lock_path(path);
    let err = |cause| StateError::Lock {
        path: lock.clone(),
        cause,
    };
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::PermissionDenied => File::open(&lock).map_err(err)?,
        Err(e) => return Err(err(e)),
    };
    loop {
        // SAFETY: flock(2) on a descriptor that `file` owns and keeps open; no memory involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(StateLock { _file: file });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            return Err(err(e));
        }
    }
}

/// Reads the state under its lock (a new one when the file does not exist yet), hands it to
/// `change`, and writes it back if it changed, before the lock is released. `change` may take
/// its time (a check asks servers): whoever else wants the file waits. Only a change is
/// written: a missing file stays missing when nothing was learnt.
pub fn update<T>(
    path: &Path,
    zone: &str,
    node: &str,
    change: impl FnOnce(&mut State) -> T,
) -> Result<T, StateError> {
    let _lock = lock(path)?;
    let mut state = load(path, zone, node)?.unwrap_or_else(|| State::new(zone, node));
    let before = state.clone();
    let out = change(&mut state);
    if state != before {
        save(path, &state)?;
    }
    Ok(out)
}

/// Reads the state; `None` when the file does not exist yet. It must be for `zone`/`node`.
pub fn load(path: &Path, zone: &str, node: &str) -> Result<Option<State>, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(cause) => {
            return Err(StateError::Io {
                path: path.to_owned(),
                cause,
            });
        }
    };
    let state: State = serde_json::from_str(&text).map_err(|cause| StateError::Corrupt {
        path: path.to_owned(),
        cause,
    })?;
    if (state.seq == 0) != state.commit.is_empty() {
        return Err(StateError::Inconsistent {
            path: path.to_owned(),
        });
    }
    if state.zone != zone || state.node != node {
        return Err(StateError::Mismatch {
            path: path.to_owned(),
            found: format!("{}.{}", state.node, state.zone),
            wanted: format!("{node}.{zone}"),
        });
    }
    Ok(Some(state))
}

/// Replaces the state file atomically, through a temporary file of its own in the same
/// directory. Call it under the lock ([`update`]) when another process may write the file.
pub fn save(path: &Path, state: &State) -> Result<(), StateError> {
    let io = |cause| StateError::Io {
        path: path.to_owned(),
        cause,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io(std::io::Error::from(ErrorKind::InvalidInput)))?;
    let mut random = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).map_err(
        |_| {
            io(std::io::Error::other(
                "no random bytes for the temporary file",
            ))
        },
    )?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io)?;
    let mut text = serde_json::to_string_pretty(state).expect("state serializes");
    text.push('\n');
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(cause) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(cause));
    }
    File::open(&dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(seq: u64) -> State {
        let mut s = State::new("example.test", "n1");
        s.apply(seq, &"a".repeat(40), 1);
        s
    }

    #[test]
    fn round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path, "example.test", "n1").unwrap(), None);
        save(&path, &state(1)).unwrap();
        save(&path, &state(2)).unwrap();
        assert_eq!(load(&path, "example.test", "n1").unwrap(), Some(state(2)));
        update(&path, "example.test", "n1", |s| {
            s.apply(3, &"c".repeat(40), 4)
        })
        .unwrap();
        assert_eq!(load(&path, "example.test", "n1").unwrap().unwrap().seq, 3);
        // No temporary file is left behind; the lock file stays.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["state.json", "state.json.lock"]);
    }

    /// Each writer has a temporary file of its own: one left by a writer that crashed, or
    /// one another writer is filling, under the old shared name or not, is neither reused
    /// nor clobbered.
    #[test]
    fn temporary_files_are_each_writers_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let stale = dir.path().join("state.tmp");
        std::fs::write(&stale, "someone else's").unwrap();
        save(&path, &state(1)).unwrap();
        assert_eq!(std::fs::read_to_string(&stale).unwrap(), "someone else's");
        std::fs::remove_file(&stale).unwrap();
        // Many writers at once (without the lock: the files alone): every save lands whole.
        std::thread::scope(|scope| {
            for seq in 1..=8 {
                let path = &path;
                scope.spawn(move || {
                    for _ in 0..10 {
                        save(path, &state(seq)).unwrap();
                    }
                });
            }
        });
        assert!(load(&path, "example.test", "n1").unwrap().is_some());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n != "state.json")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// `herald check --state` records a revocation while `herald watch` runs its hook, or the
    /// other way round: with both as `update`, neither writer puts back what it read before
    /// the other wrote, so the revocation and the applied seq both stay.
    #[test]
    fn two_writers_interleaving_lose_no_revocation() {
        use crate::client::trust::{Dnskey, KeyState, TrackedKey};
        use std::sync::mpsc;
        use std::time::Duration;
        let key = "257 3 13 m8k7mD6ENGcv3xWq8LXHpo1doIUMhwFgjNCjNlhjzijHPWJ5ZGY9ZTXh\
                   1Vi8AZExVANsrfdmq+faQgIZt5S7+A==";
        let revoke = |s: &mut State| {
            s.trust.keys[0].state = KeyState::Revoked;
            s.trust.keys[0].last_change = 2;
        };
        let apply = |s: &mut State| s.apply(5, &"e".repeat(40), 3);
        type Change = fn(&mut State);
        let orders: [(Change, Change); 2] = [(revoke, apply), (apply, revoke)];
        for (slow, quick) in orders {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.json");
            let mut first = State::new("example.test", "n1");
            first.trust.keys.push(TrackedKey {
                dnskey: Dnskey::try_from(key.to_owned()).unwrap(),
                tag: 46711,
                state: KeyState::Valid,
                first_seen: 1,
                last_change: 1,
                seen: 1,
            });
            save(&path, &first).unwrap();
            let (inside, wait) = mpsc::channel();
            std::thread::scope(|scope| {
                let path = &path;
                scope.spawn(move || {
                    update(path, "example.test", "n1", |s| {
                        inside.send(()).unwrap();
                        // Read; the other writer comes now; then write.
                        std::thread::sleep(Duration::from_millis(300));
                        slow(s);
                    })
                    .unwrap();
                });
                wait.recv().unwrap();
                update(path, "example.test", "n1", quick).unwrap();
            });
            let back = load(&path, "example.test", "n1").unwrap().unwrap();
            assert_eq!(
                back.trust.keys[0].state,
                KeyState::Revoked,
                "revocation kept"
            );
            assert_eq!(back.applied(), Some(5), "applied seq kept");
        }
    }

    #[test]
    fn update_writes_only_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let seen = update(&path, "example.test", "n1", |s| s.applied()).unwrap();
        assert_eq!(seen, None);
        assert!(!path.exists(), "nothing learnt: no file");
        update(&path, "example.test", "n1", |s| {
            s.apply(1, &"a".repeat(40), 1)
        })
        .unwrap();
        assert_eq!(load(&path, "example.test", "n1").unwrap(), Some(state(1)));
        // A foreign or broken file is refused, and left alone.
        let err = update(&path, "example.test", "n2", |s| s.apply(2, "x", 2)).unwrap_err();
        assert!(matches!(err, StateError::Mismatch { .. }), "{err}");
        assert_eq!(load(&path, "example.test", "n1").unwrap(), Some(state(1)));
    }

    #[test]
    fn files_from_before_trust_tracking_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let old = format!(
            "{{\n  \"zone\": \"example.test\",\n  \"node\": \"n1\",\n  \"seq\": 7,\n  \
             \"commit\": \"{}\",\n  \"applied_at\": 1764086400\n}}\n",
            "a".repeat(40)
        );
        std::fs::write(&path, &old).unwrap();
        let state = load(&path, "example.test", "n1").unwrap().unwrap();
        assert_eq!(state.applied(), Some(7));
        assert!(state.trust.is_empty());
        // Saved again without trust state, it is the same file.
        save(&path, &state).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), old);
    }

    #[test]
    fn trust_is_kept_with_or_without_anything_applied() {
        use crate::client::trust::{Dnskey, KeyState, TrackedKey, ValidatedKeys};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let key = "257 3 13 m8k7mD6ENGcv3xWq8LXHpo1doIUMhwFgjNCjNlhjzijHPWJ5ZGY9ZTXh\
                   1Vi8AZExVANsrfdmq+faQgIZt5S7+A==";
        let dnskey = Dnskey::try_from(key.to_owned()).unwrap();
        let mut fresh = State::new("example.test", "n1");
        fresh.trust.keys.push(TrackedKey {
            dnskey: dnskey.clone(),
            tag: 46711,
            state: KeyState::AddPend,
            first_seen: 10,
            last_change: 10,
            seen: 1,
        });
        fresh.trust.validated = Some(ValidatedKeys {
            dnskeys: vec![dnskey],
            at: 10,
            next_probe: 3610,
            expires: 99,
        });
        save(&path, &fresh).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"seq\": 0") && text.contains("\"add_pend\""),
            "{text}"
        );
        let back = load(&path, "example.test", "n1").unwrap().unwrap();
        assert_eq!(back, fresh);
        assert_eq!(back.applied(), None, "nothing applied: no replay check");

        let mut applied = back;
        applied.apply(1, &"b".repeat(40), 20);
        save(&path, &applied).unwrap();
        let back = load(&path, "example.test", "n1").unwrap().unwrap();
        assert_eq!((back.applied(), &back.trust), (Some(1), &fresh.trust));
    }

    #[test]
    fn refuses_broken_or_foreign_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            load(&path, "example.test", "n1"),
            Err(StateError::Corrupt { .. })
        ));
        // A half-applied state, or one without a seq, is not read as "nothing applied".
        for broken in [
            r#"{"zone":"example.test","node":"n1","seq":0,"commit":"ab","applied_at":0}"#,
            r#"{"zone":"example.test","node":"n1","seq":3,"commit":"","applied_at":0}"#,
            r#"{"zone":"example.test","node":"n1","commit":"","applied_at":0}"#,
            r#"{"zone":"example.test","node":"n1","seq":0,"commit":"","applied_at":0,
                "trust":{"keys":[{"dnskey":"257 3 13 !!","tag":1,"state":"valid",
                "first_seen":1,"last_change":1,"seen":1}]}}"#,
            // The same key twice, in two states: which one holds?
            r#"{"zone":"example.test","node":"n1","seq":0,"commit":"","applied_at":0,
                "trust":{"keys":[
                {"dnskey":"257 3 13 m8k7mD6ENGcv3xWq8LXHpo1doIUMhwFgjNCjNlhjzijHPWJ5ZGY9ZTXh1Vi8AZExVANsrfdmq+faQgIZt5S7+A==",
                 "tag":46711,"state":"revoked","first_seen":1,"last_change":1,"seen":1},
                {"dnskey":"257 3 13 m8k7mD6ENGcv3xWq8LXHpo1doIUMhwFgjNCjNlhjzijHPWJ5ZGY9ZTXh1Vi8AZExVANsrfdmq+faQgIZt5S7+A==",
                 "tag":46711,"state":"valid","first_seen":1,"last_change":1,"seen":1}]}}"#,
        ] {
            std::fs::write(&path, broken).unwrap();
            let err = load(&path, "example.test", "n1").unwrap_err();
            assert!(
                matches!(
                    err,
                    StateError::Corrupt { .. } | StateError::Inconsistent { .. }
                ),
                "{broken}: {err}"
            );
        }
        save(&path, &state(1)).unwrap();
        let err = load(&path, "example.test", "n2").unwrap_err();
        assert!(
            err.to_string()
                .contains("n1.example.test, not n2.example.test"),
            "{err}"
        );
    }
}
