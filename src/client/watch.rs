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
//! - With a report key, each hook run's outcome is reported to the servers
//!   ([`super::report`]), applied or failed, before the state file is written; and while the
//!   node is up to date, its applied state again every `report_every` (not with `once`).
//! - The state file also keeps the zone's trust anchors (RFC 5011, [`super::trust`]): it is
//!   saved whenever a check changed them, before any hook runs, and every trust change is
//!   logged. A node that has applied nothing yet still gets a state file, with seq 0.
//! - `herald check --state` may write the same file meanwhile, so each round reads it, checks
//!   and writes the trust state back under the state file's lock ([`state::update`]). The
//!   hook, which may run for minutes, runs without the lock; its success is then recorded
//!   under the lock again, in the file as it is by then, by setting the seq, the commit and
//!   the time alone. The trust state read at the start of the round is never written back
//!   after the hook: a revocation that another check recorded meanwhile stays recorded.
//! - A hook runs in a process group of its own. One that runs longer than the hook timeout
//!   has the whole group sent SIGTERM, then SIGKILL after [`HOOK_GRACE`] (or the timeout, if
//!   shorter), and counts as failed. A rebuild that hangs on a bad commit thus cannot keep the
//!   node from seeing the rollback published to fix it: the next pass acts on whatever is
//!   newest. (A process that leaves the group, with `setsid`, escapes this; systemd's cgroup
//!   still ends it when the unit stops.)

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::check::{Checker, Outcome};
use super::report::Reporter;
use super::state::{self, StateError};
use crate::record::Commit;
use crate::record::report::{Report as RunReport, Status};
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
    /// How long a hook may run before its process group is killed.
    pub hook_timeout: Duration,
    /// Reports each hook run's outcome, when given a report key.
    pub reporter: Option<Arc<Reporter>>,
    /// While up to date, the applied state is reported again this often (not with `once`),
    /// so that the fleet view can tell a quiet node from a dead one.
    pub report_every: Duration,
}

/// How long a timed-out hook's process group has between SIGTERM and SIGKILL.
pub const HOOK_GRACE: Duration = Duration::from_secs(10);

/// The exit code of a `herald watch --once` pass (or of a watch stopped by a signal, 0).
pub const HOOK_FAILED: u8 = 1;

/// Why a hook did not succeed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HookError {
    #[error("cannot run sh")]
    Spawn(#[source] std::io::Error),
    #[error("cannot wait for the hook")]
    Wait(#[source] std::io::Error),
    #[error("the hook exited with {0}")]
    Failed(std::process::ExitStatus),
    #[error("the hook ran longer than {} s; its process group was killed", .0.as_secs())]
    TimedOut(Duration),
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
    let mut last_report: Option<std::time::Instant> = None;
    loop {
        let checker = config.checker.clone();
        let (path, zone, node) = (
            config.state.clone(),
            config.zone.clone(),
            config.node.clone(),
        );
        // Read, check and write back under the lock: the trust state saved is the one read.
        let (report, state) = tokio::task::spawn_blocking(move || {
            state::update(&path, &zone, &node, |state| {
                let report = checker.check(state.applied(), &mut state.trust, SystemClock.now());
                (report, state.clone())
            })
        })
        .await
        .expect("the check does not panic")?;
        let applied_seq = state.applied();
        for change in &report.trust_changes {
            change.log(&config.zone);
        }
        let (sent, received) = report.bytes();
        let mut code = report.exit_code();
        let mut failed = false;
        match &report.outcome {
            // Seqs start at 1: nothing applied reads as 0.
            Outcome::Found { commit, seq, .. } if *seq > applied_seq.unwrap_or(0) => {
                tracing::info!(name = %report.name, seq, commit, server = ?report.server, "new commit; running the hook");
                let ran = run_hook(&config, commit, *seq).await;
                send_report(&config, commit, *seq, &ran, unix_now()).await;
                last_report = Some(std::time::Instant::now());
                match ran {
                    Ok(()) => {
                        record_applied(&config, *seq, commit, unix_now()).await?;
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
                let due = last_report.is_none_or(|t| t.elapsed() >= config.report_every);
                // Only what was applied is reported (not a state that holds trust alone).
                if due && !config.once && state.applied().is_some() {
                    send_report(&config, &state.commit, state.seq, &Ok(()), state.applied_at).await;
                    last_report = Some(std::time::Instant::now());
                }
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

/// Records that the hook for `seq`/`commit` succeeded at `at`: under the state's lock, in the
/// file as it is now (another check may have changed its trust state while the hook ran), by
/// setting the applied fields alone.
async fn record_applied(
    config: &WatchConfig,
    seq: u64,
    commit: &str,
    at: u64,
) -> Result<(), StateError> {
    let (path, zone, node, commit) = (
        config.state.clone(),
        config.zone.clone(),
        config.node.clone(),
        commit.to_owned(),
    );
    tokio::task::spawn_blocking(move || {
        state::update(&path, &zone, &node, |state| state.apply(seq, &commit, at))
    })
    .await
    .expect("recording the applied seq does not panic")
}

/// Tells the report targets how the hook run for `seq` ended at `at`, if there is a reporter.
/// A report that is not taken is logged and changes nothing else.
async fn send_report(
    config: &WatchConfig,
    commit: &str,
    seq: u64,
    ran: &Result<(), HookError>,
    at: u64,
) {
    let Some(reporter) = config.reporter.clone() else {
        return;
    };
    let Ok(commit) = Commit::parse(commit) else {
        return;
    };
    let (status, code) = match ran {
        Ok(()) => (Status::Applied, 0),
        Err(HookError::Failed(status)) => (Status::Failed, status.code().unwrap_or(-1)),
        Err(_) => (Status::Failed, -1),
    };
    let report = RunReport {
        seq,
        commit,
        status,
        code,
        at,
    };
    let text = report.to_string();
    match tokio::task::spawn_blocking(move || reporter.send(&report)).await {
        Ok(Ok(server)) => tracing::info!(%server, report = %text, "reported"),
        Ok(Err(e)) => tracing::warn!(
            error = &e as &dyn std::error::Error,
            report = %text,
            "the report was not taken; the next hook run reports again"
        ),
        Err(e) => tracing::warn!(error = %e, "the report task failed"),
    }
}

/// Runs the hook with `sh -c` and the node's details in its environment, in a process group
/// of its own; waits for it even if a stop signal arrives meanwhile, but not longer than the
/// hook timeout.
async fn run_hook(config: &WatchConfig, commit: &str, seq: u64) -> Result<(), HookError> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&config.exec)
        .env("HERALD_ZONE", &config.zone)
        .env("HERALD_NODE", &config.node)
        .env("HERALD_COMMIT", commit)
        .env("HERALD_SEQ", seq.to_string())
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(HookError::Spawn)?;
    // The group's id is the shell's pid (process_group(0)); it stays the group's while any
    // member lives, even after the shell is gone.
    let group = child.id().and_then(|id| libc::pid_t::try_from(id).ok());
    let status = match tokio::time::timeout(config.hook_timeout, child.wait()).await {
        Ok(status) => status.map_err(HookError::Wait)?,
        Err(_) => {
            let grace = HOOK_GRACE.min(config.hook_timeout);
            tracing::warn!(
                seq,
                commit,
                timeout_s = config.hook_timeout.as_secs(),
                grace_s = grace.as_secs(),
                "the hook is still running; sending its process group SIGTERM"
            );
            signal_group(group, libc::SIGTERM);
            // Whatever is left of the group when the grace ends is killed, the shell or not:
            // a hook's child that ignores SIGTERM would otherwise outlive it.
            let exited = tokio::time::timeout(grace, child.wait()).await.is_ok();
            if signal_group(group, 0) {
                tracing::warn!(
                    seq,
                    commit,
                    "the hook's process group outlived SIGTERM; SIGKILL"
                );
                signal_group(group, libc::SIGKILL);
            }
            if !exited {
                child.wait().await.map_err(HookError::Wait)?;
            }
            return Err(HookError::TimedOut(config.hook_timeout));
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed(status))
    }
}

/// Sends `signal` to process group `group` (0: only asks whether it has a member left);
/// whether the group exists.
fn signal_group(group: Option<libc::pid_t>, signal: libc::c_int) -> bool {
    let Some(group) = group.filter(|&g| g > 1) else {
        return false;
    };
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe { libc::kill(-group, signal) == 0 }
}
