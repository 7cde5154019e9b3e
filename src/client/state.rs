//! The watcher's state file: the seq and commit last applied, i.e. whose hook exited 0.
//!
//! Written atomically (temporary file, fsync, rename, fsync of the directory), so a crash
//! leaves the old state or the new one, never half of either. A state file that cannot be read
//! is an error, not an empty state: treating it as "nothing applied" would run the hook for an
//! old seq, and forgetting the last known good state is what the replay check exists to
//! prevent.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What was applied last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub zone: String,
    pub node: String,
    pub seq: u64,
    pub commit: String,
    /// Unix seconds when the hook succeeded.
    pub applied_at: u64,
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
    #[error("state file {path} is for {found}, not {wanted}")]
    Mismatch {
        path: PathBuf,
        found: String,
        wanted: String,
    },
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
    if state.zone != zone || state.node != node {
        return Err(StateError::Mismatch {
            path: path.to_owned(),
            found: format!("{}.{}", state.node, state.zone),
            wanted: format!("{node}.{zone}"),
        });
    }
    Ok(Some(state))
}

/// Replaces the state file atomically.
pub fn save(path: &Path, state: &State) -> Result<(), StateError> {
    let io = |cause| StateError::Io {
        path: path.to_owned(),
        cause,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let tmp = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io)?;
    let mut text = serde_json::to_string_pretty(state).expect("state serializes");
    text.push('\n');
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    File::open(&dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(seq: u64) -> State {
        State {
            zone: "example.test".into(),
            node: "n1".into(),
            seq,
            commit: "a".repeat(40),
            applied_at: 1,
        }
    }

    #[test]
    fn round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path, "example.test", "n1").unwrap(), None);
        save(&path, &state(1)).unwrap();
        save(&path, &state(2)).unwrap();
        assert_eq!(load(&path, "example.test", "n1").unwrap(), Some(state(2)));
        assert!(!path.with_extension("tmp").exists());
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
        save(&path, &state(1)).unwrap();
        let err = load(&path, "example.test", "n2").unwrap_err();
        assert!(
            err.to_string()
                .contains("n1.example.test, not n2.example.test"),
            "{err}"
        );
    }
}
