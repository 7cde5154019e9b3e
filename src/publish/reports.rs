//! Node reports behind the DNS intake: each zone's report secret, the bounded queue, and the
//! writer that stores the latest report per node.
//!
//! Reports never enter the served zone, so they do not go through the single writer of
//! changes: a thread of their own, with its own SQLite connection, takes them from a queue of
//! [`QUEUE`] and writes whatever has gathered (up to [`BATCH`]) in one transaction, one fsync.
//! A full queue drops the report and counts it (`herald_reports_total{result="dropped"}`);
//! the DNS intake never waits for the writer.
//!
//! The zone report secret lives beside the signing key, `<data>/keys/<zone>.report`, mode
//! 0600, created on first start:
//!
//! ```text
//! ; Herald report secret of example.test. Secret: keep mode 0600.
//! zone: example.test.
//! secret: <base64 of 32 random bytes>
//! ```
//!
//! A node's key is derived from it ([`crate::record::report::node_report_secret`]); `herald
//! key report` prints one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;

use crate::config::secret::{self, SecretError};
use crate::metrics::{PublishStats, ReportOutcome};
pub use crate::store::ReportRow;
use crate::store::Store;

/// Reports waiting for the writer at most.
pub const QUEUE: usize = 65_536;
/// Reports written in one transaction at most.
pub const BATCH: usize = 4096;

/// A zone report secret that cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReportSecretError {
    #[error("cannot read or write the report secret")]
    File(#[from] SecretError),
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("no report secret for zone {zone} in {dir}: start the server once to create it")]
    Missing { zone: String, dir: PathBuf },
    #[error("the system random number generator failed")]
    Random,
}

/// Where the report secret of `zone` (API form) lives.
pub fn secret_path(data_dir: &Path, zone: &str) -> PathBuf {
    data_dir.join("keys").join(format!("{zone}.report"))
}

/// Loads the zone's report secret, creating it when there is none.
pub fn load_or_create_secret(data_dir: &Path, zone: &str) -> Result<Vec<u8>, ReportSecretError> {
    let path = secret_path(data_dir, zone);
    match load_file(&path, zone) {
        Err(ReportSecretError::File(e)) if e.is_not_found() => {
            let mut bytes = [0u8; 32];
            SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| ReportSecretError::Random)?;
            let text = format!(
                "; Herald report secret of {zone}. Secret: keep mode 0600.\nzone: {zone}.\n\
                 secret: {}\n",
                STANDARD.encode(bytes)
            );
            match secret::create(&path, &text) {
                Ok(()) => tracing::info!(path = %path.display(), "zone report secret created"),
                // Made meanwhile by another process: use that one.
                Err(SecretError::Io { cause, .. })
                    if cause.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
            load_file(&path, zone)
        }
        other => other,
    }
}

/// Loads an existing report secret, for `herald key report`.
pub fn load_secret(data_dir: &Path, zone: &str) -> Result<Vec<u8>, ReportSecretError> {
    match load_file(&secret_path(data_dir, zone), zone) {
        Err(ReportSecretError::File(e)) if e.is_not_found() => Err(ReportSecretError::Missing {
            zone: zone.to_owned(),
            dir: data_dir.join("keys"),
        }),
        other => other,
    }
}

fn load_file(path: &Path, zone: &str) -> Result<Vec<u8>, ReportSecretError> {
    let format = |reason: &str| ReportSecretError::Format {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let text = secret::read(path)?;
    let (mut found_zone, mut found_secret) = (None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        match line.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("zone", v)) => found_zone = Some(v.trim_end_matches('.').to_ascii_lowercase()),
            Some(("secret", v)) => found_secret = Some(v.to_owned()),
            Some(_) => {}
            None => return Err(format("a line is not key: value")),
        }
    }
    if found_zone.as_deref() != Some(zone) {
        return Err(format(&format!("the secret is not for zone {zone}")));
    }
    let bytes = STANDARD
        .decode(found_secret.ok_or_else(|| format("no secret: line"))?)
        .map_err(|_| format("the secret is not base64"))?;
    if bytes.len() < 32 {
        return Err(format("the secret is shorter than 32 bytes"));
    }
    Ok(bytes)
}

/// The DNS intake's end of the queue.
#[derive(Clone)]
pub struct ReportSink {
    /// `None` asks the writer to stop, after what is queued before it.
    tx: SyncSender<Option<ReportRow>>,
    stats: Arc<PublishStats>,
}

impl std::fmt::Debug for ReportSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportSink").finish_non_exhaustive()
    }
}

impl ReportSink {
    /// Queues `report` for the writer; `false` (counted as dropped) when the queue is full or
    /// the writer is gone.
    pub fn offer(&self, report: ReportRow) -> bool {
        match self.tx.try_send(Some(report)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.stats.reports(ReportOutcome::Dropped, 1);
                false
            }
        }
    }

    /// Counts a report the intake refused.
    pub fn count(&self, outcome: ReportOutcome) {
        self.stats.reports(outcome, 1);
    }
}

/// The running report writer.
pub struct ReportWriter {
    tx: SyncSender<Option<ReportRow>>,
    handle: JoinHandle<()>,
}

impl ReportWriter {
    /// Writes what is queued, then stops the thread.
    pub fn stop(self) {
        // The writer is gone already if this fails; either way, join it.
        let _ = self.tx.send(None);
        let _ = self.handle.join();
    }
}

/// Starts the report writer on `store` (a connection of its own).
pub fn start(
    store: Store,
    stats: Arc<PublishStats>,
) -> std::io::Result<(ReportSink, ReportWriter)> {
    let (tx, rx) = sync_channel(QUEUE);
    let thread_stats = stats.clone();
    let handle = std::thread::Builder::new()
        .name("herald-reports".into())
        .spawn(move || write_loop(store, &rx, &thread_stats))?;
    let writer = ReportWriter {
        tx: tx.clone(),
        handle,
    };
    Ok((ReportSink { tx, stats }, writer))
}

fn write_loop(mut store: Store, rx: &Receiver<Option<ReportRow>>, stats: &PublishStats) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut stop = false;
    while !stop {
        match rx.recv() {
            Ok(Some(first)) => batch.push(first),
            Ok(None) | Err(_) => return,
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(Some(r)) => batch.push(r),
                Ok(None) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        match store.save_reports(&batch) {
            Ok(stored) => {
                stats.reports(ReportOutcome::Stored, stored as u64);
                stats.reports(ReportOutcome::Stale, (batch.len() - stored) as u64);
            }
            Err(e) => {
                tracing::error!(
                    error = &e as &dyn std::error::Error,
                    reports = batch.len(),
                    "cannot store node reports; they are lost (the nodes report again after \
                     their next hook run)"
                );
                stats.reports(ReportOutcome::Failed, batch.len() as u64);
            }
        }
        batch.clear();
    }
}
