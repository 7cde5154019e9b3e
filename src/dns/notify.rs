//! NOTIFY out (RFC 1996): telling secondaries that a zone's serial changed.
//!
//! One task per `--notify` target. It wakes when the publisher swaps in a new zone set, and
//! for each zone whose current serial the target has not acknowledged it sends one NOTIFY
//! (opcode 4, the SOA in the answer section, RFC 1996 §3.7), then waits for the reply:
//! - at most one NOTIFY is in flight per target, always for the newest serial, so changes
//!   that land while one is in flight are folded into the next;
//! - after a NOTIFY the target is not sent another for [`HOLD_DOWN`], so a burst of a
//!   thousand publishes costs a few NOTIFYs, not a thousand (the secondary transfers the
//!   newest serial whatever the NOTIFY said);
//! - an unanswered or refused NOTIFY is sent again after 1 s, then 2, 4, … up to 60 s
//!   (RFC 1996 §3.6), until the target acknowledges it; a new serial does not wait for the
//!   back-off, so a target that comes back hears of the next change at once;
//! - with `key=NAME` the NOTIFY is TSIG-signed (RFC 8945);
//! - when a burst of changes ends (serials announced less than [`SETTLE`] apart), the final
//!   serial is announced again [`SETTLE`] after its NOTIFY, and then twice more at growing
//!   intervals ([`SETTLE_AGAIN`]). A secondary that acknowledged every NOTIFY of the burst
//!   while its transfers ran may still have dropped the last one: NSD 4.6 does after
//!   `soa serial … update failed, restarting transfer`, and then waits for its SOA retry timer
//!   (README, "Round two"). It drops a repeat too while a long transfer still runs, so the
//!   repeats reach past the time a million-node AXFR takes. Each costs a current secondary one
//!   SOA query.
//!
//! Every target also gets a NOTIFY for each zone at start, so a secondary that missed changes
//! while Herald was down catches up without waiting for its refresh timer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::net::UdpSocket;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use thiserror::Error;

use super::secondaries::Secondaries;
use super::tsig::{SignError, TsigKey};
use crate::record::unix_now;
use crate::zone::SharedZones;
use crate::zone::snapshot::ZoneSnapshot;
use crate::zone::wire::{Apex, Owner};

/// The least time between two NOTIFYs to one target.
pub const HOLD_DOWN: Duration = Duration::from_millis(100);
/// How long to wait for an acknowledgement.
const REPLY_WAIT: Duration = Duration::from_secs(1);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
const OPCODE_NOTIFY: u16 = 4;
/// How long after the last NOTIFY of a burst its serial is announced once more.
pub const SETTLE: Duration = Duration::from_secs(10);
/// After that first repeat, the burst's serial is announced again after each of these.
pub const SETTLE_AGAIN: [Duration; 2] = [Duration::from_secs(30), Duration::from_secs(90)];

/// A `--notify` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NotifyTargetError {
    #[error("--notify {0:?}: expected IP, IP:PORT or [IPv6]:PORT")]
    Address(String),
    #[error("--notify {0:?}: the only option is key=NAME")]
    Option(String),
    #[error("--notify {target:?}: no --tsig-key is named {key}")]
    UnknownKey { target: String, key: String },
}

/// Why a NOTIFY was not acknowledged.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NotifyError {
    #[error("the zone has no SOA")]
    NoSoa,
    #[error("cannot encode the NOTIFY")]
    Encode(#[from] hickory_proto::ProtoError),
    #[error("cannot read back the NOTIFY to sign it")]
    Decode(#[from] hickory_proto::serialize::binary::DecodeError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("cannot send or receive")]
    Io(#[from] std::io::Error),
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("answered with rcode {0}")]
    Rcode(u16),
}

/// A `--notify` value.
#[derive(Debug, Clone)]
pub struct NotifyTarget {
    pub addr: SocketAddr,
    /// The TSIG key that signs NOTIFYs to this target.
    pub key: Option<TsigKey>,
    /// The one zone this target is told of (a zone's own `notify` in the configuration
    /// file); `None`: every zone.
    pub zone: Option<String>,
}

impl NotifyTarget {
    /// Parses `ADDR[,key=NAME]`, where ADDR is `IP`, `IP:PORT` or `[IPv6]:PORT` (port 53 when
    /// omitted) and NAME is the name of one of `keys`.
    pub fn parse(text: &str, keys: &[TsigKey]) -> Result<Self, NotifyTargetError> {
        let (addr, options) = match text.split_once(',') {
            Some((a, o)) => (a, Some(o)),
            None => (text, None),
        };
        let addr: SocketAddr = match addr.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, 53),
            Err(_) => addr
                .parse()
                .map_err(|_| NotifyTargetError::Address(text.to_owned()))?,
        };
        let key = match options {
            None => None,
            Some(o) => {
                let name = o
                    .strip_prefix("key=")
                    .ok_or_else(|| NotifyTargetError::Option(text.to_owned()))?;
                let wanted = name.trim_end_matches('.').to_ascii_lowercase();
                let key = keys
                    .iter()
                    .find(|k| k.name.to_ascii().trim_end_matches('.') == wanted)
                    .ok_or_else(|| NotifyTargetError::UnknownKey {
                        target: text.to_owned(),
                        key: name.to_owned(),
                    })?;
                Some(key.clone())
            }
        };
        Ok(Self {
            addr,
            key,
            zone: None,
        })
    }

    /// Whether this target is told of `zone`.
    pub fn serves(&self, zone: &str) -> bool {
        self.zone.as_deref().is_none_or(|z| z == zone)
    }
}

/// Starts one NOTIFY task per target. They stop on `shutdown`. A zone name sent on `resend`
/// is announced once more to every target, acknowledged before or not (PowerDNS's
/// `PUT …/notify`); each task has its own receiver, so requests for several zones are all
/// served, and each request costs one NOTIFY per target.
pub fn spawn(
    targets: Vec<NotifyTarget>,
    zones: SharedZones,
    changes: watch::Receiver<()>,
    resend: &broadcast::Sender<Arc<str>>,
    secondaries: Arc<Secondaries>,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    targets
        .into_iter()
        .map(|target| {
            for z in zones.load().iter().filter(|z| target.serves(&z.name)) {
                secondaries.add_target(&z.name, target.addr);
            }
            let task = Task {
                target,
                zones: zones.clone(),
                changes: changes.clone(),
                resend: Some(resend.subscribe()),
                secondaries: secondaries.clone(),
            };
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    () = task.run() => {}
                }
            })
        })
        .collect()
}

struct Task {
    target: NotifyTarget,
    zones: SharedZones,
    changes: watch::Receiver<()>,
    /// `None` once the sender is gone.
    resend: Option<broadcast::Receiver<Arc<str>>>,
    secondaries: Arc<Secondaries>,
}

/// The next resend request; never, once the sender is gone.
async fn next_request(
    rx: &mut Option<broadcast::Receiver<Arc<str>>>,
) -> Result<Arc<str>, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Task {
    /// Waits for a new serial or a resend request, which makes its zone pending again;
    /// `false` when the server is going away.
    async fn wake(&mut self, acked: &mut HashMap<Arc<str>, u32>) -> bool {
        let request = tokio::select! {
            changed = self.changes.changed() => return changed.is_ok(),
            request = next_request(&mut self.resend) => request,
        };
        match request {
            Ok(zone) => {
                acked.remove(&zone);
            }
            // More requests than the channel holds: announce every zone again.
            Err(RecvError::Lagged(_)) => acked.clear(),
            Err(RecvError::Closed) => self.resend = None,
        }
        true
    }

    /// Takes the resend requests that came in since the last look.
    fn take_requests(&mut self, acked: &mut HashMap<Arc<str>, u32>) {
        let Some(rx) = &mut self.resend else { return };
        loop {
            match rx.try_recv() {
                Ok(zone) => {
                    acked.remove(&zone);
                }
                Err(TryRecvError::Lagged(_)) => acked.clear(),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Closed) => {
                    self.resend = None;
                    return;
                }
            }
        }
    }

    async fn run(mut self) {
        let addr = self.target.addr;
        let local: SocketAddr = if addr.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = match UdpSocket::bind(local).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(target = %addr, error = %e, "cannot open a socket for NOTIFY");
                return;
            }
        };
        if let Err(e) = socket.connect(addr).await {
            tracing::error!(target = %addr, error = %e, "cannot reach the NOTIFY target");
            return;
        }
        let mut acked: HashMap<Arc<str>, u32> = HashMap::new();
        // Per zone: the last acknowledged NOTIFY (when, which serial), and when a burst's
        // final serial is due to be announced again, with how many repeats were sent.
        let mut last_acked: HashMap<Arc<str>, (Instant, u32)> = HashMap::new();
        let mut settle: HashMap<Arc<str>, (Instant, usize)> = HashMap::new();
        let mut last_sent: Option<Instant> = None;
        let mut retry = FIRST_RETRY;
        loop {
            self.changes.borrow_and_update();
            self.take_requests(&mut acked);
            let pending = self.pending(&acked);
            if pending.is_empty() {
                let awake = match settle.values().map(|&(due, _)| due).min() {
                    None => self.wake(&mut acked).await,
                    Some(due) => {
                        let woke = tokio::select! {
                            awake = self.wake(&mut acked) => Some(awake),
                            () = tokio::time::sleep_until(due) => None,
                        };
                        match woke {
                            Some(awake) => awake,
                            None => {
                                // Due: forget the acknowledgement, so the pass announces the
                                // zone's current serial once more, and set the next repeat.
                                let now = Instant::now();
                                settle.retain(|zone, (due, sent)| {
                                    if *due > now {
                                        return true;
                                    }
                                    acked.remove(zone);
                                    let Some(&wait) = SETTLE_AGAIN.get(*sent) else {
                                        return false;
                                    };
                                    *due = now + wait;
                                    *sent += 1;
                                    true
                                });
                                true
                            }
                        }
                    }
                };
                if !awake {
                    return;
                }
                continue;
            }
            if let Some(t) = last_sent {
                tokio::time::sleep_until(t + HOLD_DOWN).await;
            }
            // Whatever landed during the hold-down rides on this NOTIFY.
            let mut failed = None;
            for zone in self.pending(&acked) {
                let sent = Instant::now();
                last_sent = Some(sent);
                self.secondaries
                    .notify_sent(&zone.name, addr, zone.serial, unix_now());
                match self.notify(&socket, &zone).await {
                    Ok(()) => {
                        tracing::debug!(target = %addr, zone = %zone.name, serial = zone.serial, "NOTIFY acknowledged");
                        self.secondaries.notify_acked(&zone.name, addr, zone.serial);
                        acked.insert(zone.name.clone(), zone.serial);
                        // A new serial soon after the last one is a burst: announce its end
                        // again later. The same serial (a repeat, a resend) keeps the repeats
                        // going; any other (the first, a change after a quiet spell) ends them.
                        let last = last_acked.get(&zone.name).copied();
                        match last {
                            Some((at, serial))
                                if serial != zone.serial && sent.duration_since(at) < SETTLE =>
                            {
                                settle.insert(zone.name.clone(), (sent + SETTLE, 0));
                            }
                            Some((_, serial)) if serial == zone.serial => {}
                            _ => {
                                settle.remove(&zone.name);
                            }
                        }
                        last_acked.insert(zone.name.clone(), (sent, zone.serial));
                    }
                    Err(e) => {
                        tracing::info!(target = %addr, zone = %zone.name, serial = zone.serial, error = &e as &dyn std::error::Error, retry_s = retry.as_secs(), "NOTIFY not acknowledged; will retry");
                        failed = Some(sent);
                    }
                }
            }
            match failed {
                Some(sent) => {
                    self.changes.borrow_and_update();
                    tokio::select! {
                        () = tokio::time::sleep_until(sent + retry) => {}
                        awake = self.wake(&mut acked) => if !awake { return },
                    }
                    retry = (retry * 2).min(MAX_RETRY);
                }
                None => retry = FIRST_RETRY,
            }
        }
    }

    /// The zones whose current serial the target has not acknowledged.
    fn pending(&self, acked: &HashMap<Arc<str>, u32>) -> Vec<Arc<ZoneSnapshot>> {
        self.zones
            .load()
            .iter()
            .filter(|z| self.target.serves(&z.name) && acked.get(&z.name) != Some(&z.serial))
            .cloned()
            .collect()
    }

    /// Sends one NOTIFY and waits up to [`REPLY_WAIT`] for its acknowledgement.
    async fn notify(&self, socket: &UdpSocket, zone: &ZoneSnapshot) -> Result<(), NotifyError> {
        let wait = REPLY_WAIT;
        let id = random_id();
        let msg = notify_message(zone, id, self.target.key.as_ref())?;
        socket.send(&msg).await?;
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Ok(Ok(n)) => n,
                // ICMP port unreachable and the like: the retry timer decides what next.
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(NotifyError::Timeout(wait)),
            };
            let reply = &buf[..n];
            if reply.len() < 12 || reply[..2] != id.to_be_bytes() {
                continue; // a late answer to an earlier NOTIFY
            }
            let flags = u16::from_be_bytes([reply[2], reply[3]]);
            if flags & 0x8000 == 0 || (flags >> 11) & 0xF != OPCODE_NOTIFY {
                continue;
            }
            return match flags & 0xF {
                0 => Ok(()),
                rcode => Err(NotifyError::Rcode(rcode)),
            };
        }
    }
}

/// A NOTIFY for `zone`'s current serial: AA set, the SOA as question and as answer.
pub fn notify_message(
    zone: &ZoneSnapshot,
    id: u16,
    key: Option<&TsigKey>,
) -> Result<Vec<u8>, NotifyError> {
    let mut msg = Vec::with_capacity(512);
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&((OPCODE_NOTIFY << 11) | 0x0400).to_be_bytes());
    msg.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    msg.extend_from_slice(&zone.apex_wire);
    msg.extend_from_slice(&[0, 6, 0, 1]);
    let soa = zone
        .lookup(&[])
        .and_then(|e| e.rrset(RecordType::SOA))
        .ok_or(NotifyError::NoSoa)?;
    let apex = Apex {
        ptr: 0xC00C,
        wire: &zone.apex_wire,
    };
    let n = soa.write(&mut msg, Owner::Relative(&[]), apex, false);
    msg[6..8].copy_from_slice(&n.to_be_bytes());
    let Some(key) = key else {
        return Ok(msg);
    };
    let mut m = Message::from_vec(&msg)?;
    key.sign_message(&mut m)?;
    Ok(m.to_vec()?)
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    // The system RNG does not fail on Linux; a fixed id would still work, only less well
    // against spoofed answers.
    let _ = SystemRandom::new().fill(&mut b);
    u16::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let key = TsigKey::parse("xfr.:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQ=").unwrap();
        let keys = [key];
        let t = NotifyTarget::parse("192.0.2.1", &keys).unwrap();
        assert_eq!(t.addr, "192.0.2.1:53".parse().unwrap());
        assert!(t.key.is_none());
        let t = NotifyTarget::parse("127.0.0.1:5301,key=xfr", &keys).unwrap();
        assert_eq!(t.addr.port(), 5301);
        assert_eq!(t.key.unwrap().name.to_ascii(), "xfr.");
        let t = NotifyTarget::parse("[::1]:5302", &keys).unwrap();
        assert!(t.addr.is_ipv6());
        for (bad, needle) in [
            ("nowhere", "expected IP"),
            ("127.0.0.1:99999", "expected IP"),
            ("127.0.0.1,key=other", "no --tsig-key"),
            ("127.0.0.1,tsig=xfr", "only option"),
        ] {
            let err = NotifyTarget::parse(bad, &keys).unwrap_err().to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
