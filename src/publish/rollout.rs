//! The rollout driver: moves every running rollout along (DESIGN.md, "Rollouts").
//!
//! One task looks at the running rollouts about once a second, and at once when the API wakes
//! it ([`RolloutDriver::wake`]). For each it decides from the store alone, so a restart picks
//! up exactly where the last run was:
//!
//! 1. **Deny-list.** Its commit is denied: it halts.
//! 2. **Halt rule.** More of its nodes reported `failed` than `max_failed`: it halts.
//! 3. **Publish.** The current wave has nodes not yet published: up to the room that
//!    `max_in_flight` leaves (published, no report yet) goes to the writer as one
//!    [`Change::Rollout`]. Without a cap that is the whole wave, one atomic batch.
//! 4. **Gate.** The wave is published: once `interval` has passed since its last node was
//!    published, and at least `min_applied` percent of its nodes reported `applied`, the next
//!    wave starts, or, after the last, the rollout is complete.
//!
//! The driver never writes zone data itself: publishes go through the [`Publisher`] (whose
//! transaction marks the nodes published, so nothing is published twice), and state changes
//! are checked against the row's state in their own transaction, so an operator's pause wins
//! over a wave that was about to start. Counting a wave's reports walks its nodes, so the
//! driver waits ten times as long as a pass took (at least a second, at most a minute)
//! before the next one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{PublishError, Publisher};
use crate::metrics::Source;
use crate::record::unix_now;
use crate::store::{self, Change, RolloutAction, RolloutRow, RolloutStep, Store};

/// The shortest pause between two passes.
const TICK: Duration = Duration::from_secs(1);
/// The longest.
const MAX_TICK: Duration = Duration::from_secs(60);

/// A handle on the driver task.
#[derive(Clone)]
pub struct RolloutDriver {
    wake: Arc<Notify>,
}

impl RolloutDriver {
    /// Starts the driver. `reader` is its own read connection; `control` the connection that
    /// writes rollout states (shared with the API). It stops when `shutdown` is cancelled.
    pub fn start(
        publisher: Publisher,
        reader: Store,
        control: Arc<Mutex<Store>>,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let wake = Arc::new(Notify::new());
        let driver = Driver {
            publisher,
            reader: Arc::new(Mutex::new(reader)),
            control,
        };
        let handle = tokio::spawn(driver.run(wake.clone(), shutdown));
        (Self { wake }, handle)
    }

    /// Asks for a pass now: a rollout was made, resumed, or a commit denied.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Why a pass could not look at the rollouts.
#[derive(Debug, thiserror::Error)]
enum DriverError {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("a store task panicked")]
    Join(#[from] tokio::task::JoinError),
}

struct Driver {
    publisher: Publisher,
    reader: Arc<Mutex<Store>>,
    control: Arc<Mutex<Store>>,
}

impl Driver {
    async fn run(self, wake: Arc<Notify>, shutdown: CancellationToken) {
        loop {
            let started = Instant::now();
            let moved = match self.pass().await {
                Ok(moved) => moved,
                Err(e) => {
                    tracing::error!(error = &e as &dyn std::error::Error, "rollout pass failed");
                    false
                }
            };
            // Something moved: look again at once (the next wave may start, or it may be the
            // first chunk under a cap).
            let pause = if moved {
                Duration::ZERO
            } else {
                (started.elapsed() * 10).clamp(TICK, MAX_TICK)
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        tracing::debug!("rollout driver stopped");
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, store::Error> + Send + 'static,
    ) -> Result<T, DriverError> {
        let reader = self.reader.clone();
        Ok(tokio::task::spawn_blocking(move || {
            f(&reader.lock().unwrap_or_else(|p| p.into_inner()))
        })
        .await??)
    }

    /// One look at every running rollout; true when one of them moved.
    async fn pass(&self) -> Result<bool, DriverError> {
        let running = self.read(|s| s.running_rollouts()).await?;
        let mut moved = false;
        for rollout in running {
            moved |= self.drive(rollout).await?;
        }
        Ok(moved)
    }

    async fn act(&self, r: &RolloutRow, action: RolloutAction) -> Result<bool, DriverError> {
        let (zone, id) = (r.zone.clone(), r.id);
        let control = self.control.clone();
        let done = tokio::task::spawn_blocking(move || {
            let mut store = control.lock().unwrap_or_else(|p| p.into_inner());
            store.write(|w| w.rollout_action(&zone, id, &action, unix_now()))
        })
        .await??;
        match done {
            Ok(row) => {
                match row.state {
                    store::RolloutState::Halted => tracing::warn!(
                        zone = %row.zone, rollout = row.id, reason = row.reason.as_deref().unwrap_or(""),
                        "rollout halted"
                    ),
                    store::RolloutState::Completed => {
                        tracing::info!(zone = %row.zone, rollout = row.id, "rollout completed")
                    }
                    _ => tracing::info!(
                        zone = %row.zone, rollout = row.id, wave = %row.wave_label(row.wave),
                        "rollout moves to its next wave"
                    ),
                }
                Ok(true)
            }
            // The operator changed it meanwhile; the next pass sees how.
            Err(refusal) => {
                tracing::debug!(rollout = r.id, %refusal, "rollout changed under the driver");
                Ok(false)
            }
        }
    }

    async fn drive(&self, r: RolloutRow) -> Result<bool, DriverError> {
        let (row, zone, commit) = (r.clone(), r.zone.clone(), r.commit.clone());
        let (counts, denied) = self
            .read(move |s| Ok((s.rollout_counts(&row)?, s.is_denied(&zone, &commit)?)))
            .await?;
        if denied {
            let why = format!("commit {} is on the deny-list", r.commit);
            return self.act(&r, RolloutAction::Halt(why)).await;
        }
        let failed: u64 = counts.iter().map(|c| c.failed).sum();
        if failed > r.max_failed {
            let why = format!(
                "{failed} {} reported failed, more than max_failed = {}",
                if failed == 1 { "node" } else { "nodes" },
                r.max_failed
            );
            return self.act(&r, RolloutAction::Halt(why)).await;
        }
        let Some(current) = counts.get(r.wave as usize).copied() else {
            return Ok(false);
        };
        if current.published < current.nodes || r.wave_done.is_none() {
            let in_flight: u64 = counts.iter().map(|c| c.in_flight()).sum();
            let room = r
                .max_in_flight
                .map_or(u64::MAX, |cap| cap.saturating_sub(in_flight));
            if room == 0 && current.published < current.nodes {
                return Ok(false);
            }
            let step = RolloutStep::Wave {
                wave: r.wave,
                limit: room,
            };
            let change = Change::Rollout { id: r.id, step };
            return match self
                .publisher
                .apply_as(&r.zone, change, Source::Rollout)
                .await
            {
                Ok(applied) => {
                    tracing::info!(
                        zone = %r.zone, rollout = r.id, wave = %r.wave_label(r.wave),
                        nodes = applied.set.len(), serial = applied.serial,
                        "rollout published"
                    );
                    Ok(true)
                }
                Err(PublishError::Refused(refusal)) => {
                    tracing::debug!(rollout = r.id, %refusal, "rollout wave refused");
                    Ok(false)
                }
                Err(e) => {
                    tracing::warn!(
                        rollout = r.id,
                        error = &e as &dyn std::error::Error,
                        "rollout wave not published; trying again"
                    );
                    Ok(false)
                }
            };
        }
        let done = r.wave_done.unwrap_or(0);
        let waited = unix_now() >= done.saturating_add(r.interval);
        let enough = current.applied * 100 >= u64::from(r.min_applied) * current.nodes;
        if waited && enough {
            return self.act(&r, RolloutAction::Advance { from: r.wave }).await;
        }
        Ok(false)
    }
}
