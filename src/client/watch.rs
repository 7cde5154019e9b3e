//! `herald watch`: check every interval; when the validated seq is above the applied one, run
//! the hook and record the new seq only when the hook exits 0.
//!
//! - The interval is jittered by ±10 %, so a fleet started together does not ask together.
//! - A round in which every server failed, or whose hook failed, is retried sooner: after an
//!   eighth of the interval, doubling each time, up to the interval, also jittered. A failure is
//!   never read as "no update", and the state file keeps the last applied seq.
//! - The caller's stop token (cancelled on SIGTERM or SIGINT by `herald watch`) lets a running
//!   hook finish, and records it if it succeeded, before the watch ends; while sleeping, the
//!   watch ends at once. A stop that comes at any moment is seen: the token stays cancelled.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::check::{Checker, Outcome};
use super::state::{self, State, StateError};
use crate::record::{Clock, SystemClock, unix_now};

/// What `herald watch` runs.
pub struct WatchConfig {
    pub checker: Arc<Checker>,
    /// The zone in API form and the node, for the state file and the hook's environment.
    pub zone: String,
    pub node: String,
    pub state: PathBuf,
    /// Run with `sh -c`.
    pub exec: String,
    pub interval: Duration,
    /// One pass, then exit.
    pub once: bool,
}

/// The exit code of a `herald watch --once` pass (or of a watch stopped by a signal, 0).
pub const HOOK_FAILED: u8 = 1;

/// Why a hook did not succeed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HookError {
    #[error("cannot run sh")]
    Spawn(#[source] std::io::Error),
    #[error("the hook exited with {0}")]
    Failed(std::process::ExitStatus),
}

/// Jitter of ±10 %.
fn jitter(d: Duration) -> Duration {
    let mut r = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r);
    let f = 0.9 + 0.2 * f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX);
    d.mul_f64(f)
}

/// Runs the watch until `stop` is cancelled (or after one pass with `once`); returns the exit
/// code.
pub async fn watch(config: WatchConfig, stop: CancellationToken) -> Result<u8, StateError> {
    let mut failures: u32 = 0;
    loop {
        let applied = state::load(&config.state, &config.zone, &config.node)?;
        let checker = config.checker.clone();
        let applied_seq = applied.as_ref().map(|s| s.seq);
        let report =
            tokio::task::spawn_blocking(move || checker.check(applied_seq, SystemClock.now()))
                .await
                .expect("the check does not panic");
        let (sent, received) = report.bytes();
        let mut code = report.exit_code();
        let mut failed = false;
        match &report.outcome {
            Outcome::Found { commit, seq, .. } if applied_seq.is_none_or(|a| *seq > a) => {
                tracing::info!(name = %report.name, seq, commit, server = ?report.server, "new commit; running the hook");
                match run_hook(&config, commit, *seq).await {
                    Ok(()) => {
                        let state = State {
                            zone: config.zone.clone(),
                            node: config.node.clone(),
                            seq: *seq,
                            commit: commit.clone(),
                            applied_at: unix_now(),
                        };
                        state::save(&config.state, &state)?;
                        tracing::info!(seq, commit, "hook succeeded; applied");
                    }
                    Err(reason) => {
                        tracing::warn!(
                            seq,
                            commit,
                            reason = &reason as &dyn std::error::Error,
                            "hook failed; not recorded, will retry"
                        );
                        failed = true;
                        code = HOOK_FAILED;
                    }
                }
            }
            Outcome::Found { seq, .. } => {
                tracing::info!(name = %report.name, seq, server = ?report.server, sent, received, "up to date");
            }
            Outcome::NoRecord => {
                tracing::info!(name = %report.name, server = ?report.server, "no record for this node (authenticated denial)");
            }
            other => {
                failed = true;
                for a in &report.attempts {
                    tracing::warn!(name = %report.name, server = %a.server, outcome = ?a.outcome, "check failed");
                }
                tracing::warn!(name = %report.name, outcome = ?other, "no trustworthy answer; keeping the applied state");
            }
        }
        if config.once || stop.is_cancelled() {
            return Ok(if stop.is_cancelled() && !config.once {
                0
            } else {
                code
            });
        }
        let delay = if failed {
            failures += 1;
            let base = config.interval / 8;
            base.saturating_mul(1 << (failures - 1).min(16))
                .min(config.interval)
        } else {
            failures = 0;
            config.interval
        };
        tokio::select! {
            _ = tokio::time::sleep(jitter(delay)) => {}
            _ = stop.cancelled() => return Ok(0),
        }
    }
}

/// Runs the hook with `sh -c` and the node's details in its environment; waits for it even if
/// a stop signal arrives meanwhile.
async fn run_hook(config: &WatchConfig, commit: &str, seq: u64) -> Result<(), HookError> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(&config.exec)
        .env("HERALD_ZONE", &config.zone)
        .env("HERALD_NODE", &config.node)
        .env("HERALD_COMMIT", commit)
        .env("HERALD_SEQ", seq.to_string())
        .kill_on_drop(false)
        .status()
        .await
        .map_err(HookError::Spawn)?;
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed(status))
    }
}
