//! What Herald knows about its secondaries, for the zone JSON: per NOTIFY target the last
//! NOTIFY sent and whether it was acknowledged, per peer address the last transfer served, and
//! transfer counters.
//!
//! Written by the NOTIFY tasks and the transfer path (both cold), read by the API, which renders
//! these plain status types as JSON (`crate::api::types`). A plain mutex is enough: nothing on
//! the query path touches it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

/// The last NOTIFY sent to a target for a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyStatus {
    /// The serial it announced.
    pub serial: u32,
    /// Unix seconds of the last attempt.
    pub sent: u64,
    /// Whether the target acknowledged that serial.
    pub acked: bool,
    /// Attempts for that serial so far (retries back off from 1 s to 60 s).
    pub attempts: u32,
}

/// How a transfer request was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// The whole zone, asked for (RFC 5936).
    Axfr,
    /// The differences from the peer's serial (RFC 1995).
    Ixfr,
    /// An IXFR answered with the whole zone: the journal did not reach back far enough.
    IxfrAxfr,
    /// An IXFR from a peer that was up to date: one SOA.
    Current,
}

impl TransferKind {
    /// `AXFR`, `IXFR`, `IXFR-AXFR` or `current`, as logs and the zone JSON show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Axfr => "AXFR",
            Self::Ixfr => "IXFR",
            Self::IxfrAxfr => "IXFR-AXFR",
            Self::Current => "current",
        }
    }
}

impl fmt::Display for TransferKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last transfer a peer took of a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferStatus {
    /// The serial it received (or already had, for an up-to-date IXFR).
    pub serial: u32,
    pub kind: TransferKind,
    /// Unix seconds.
    pub at: u64,
}

/// One secondary, as far as Herald knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secondary {
    /// A NOTIFY target (`ip:port`), or the address of a peer that transferred the zone without
    /// being a target.
    pub address: String,
    pub last_notify: Option<NotifyStatus>,
    /// The last transfer from this address (peers are told apart by IP address only).
    pub last_transfer: Option<TransferStatus>,
    /// Whether the last serial this secondary is known to hold is older than the zone's.
    pub behind: bool,
}

/// Transfer counters of a zone since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferCounts {
    pub axfr: u64,
    pub ixfr: u64,
    /// IXFR requests answered with the whole zone.
    pub ixfr_fallback: u64,
    /// IXFR requests from peers already up to date.
    pub current: u64,
    /// Transfer requests refused (address not allowed, or a bad TSIG).
    pub refused: u64,
    pub notifies_sent: u64,
    pub notifies_acked: u64,
}

#[derive(Debug, Default)]
struct ZoneState {
    notify: BTreeMap<SocketAddr, NotifyStatus>,
    transfers: BTreeMap<IpAddr, TransferStatus>,
    counts: TransferCounts,
}

/// Shared health of every zone's secondaries.
#[derive(Debug, Default)]
pub struct Secondaries {
    zones: Mutex<HashMap<String, ZoneState>>,
}

impl Secondaries {
    fn with<T>(&self, zone: &str, f: impl FnOnce(&mut ZoneState) -> T) -> T {
        let mut zones = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        f(zones.entry(zone.to_owned()).or_default())
    }

    /// Registers the NOTIFY targets so the zone JSON lists them before the first NOTIFY.
    pub fn add_target(&self, zone: &str, target: SocketAddr) {
        self.with(zone, |z| {
            z.notify.entry(target).or_insert(NotifyStatus {
                serial: 0,
                sent: 0,
                acked: false,
                attempts: 0,
            });
        });
    }

    pub fn notify_sent(&self, zone: &str, target: SocketAddr, serial: u32, now: u64) {
        self.with(zone, |z| {
            z.counts.notifies_sent += 1;
            let s = z.notify.entry(target).or_insert(NotifyStatus {
                serial,
                sent: now,
                acked: false,
                attempts: 0,
            });
            if s.serial != serial {
                s.attempts = 0;
            }
            *s = NotifyStatus {
                serial,
                sent: now,
                acked: false,
                attempts: s.attempts + 1,
            };
        });
    }

    pub fn notify_acked(&self, zone: &str, target: SocketAddr, serial: u32) {
        self.with(zone, |z| {
            z.counts.notifies_acked += 1;
            if let Some(s) = z.notify.get_mut(&target)
                && s.serial == serial
            {
                s.acked = true;
            }
        });
    }

    /// Records a transfer served to `peer`.
    pub fn transferred(&self, zone: &str, peer: IpAddr, serial: u32, kind: TransferKind, now: u64) {
        self.with(zone, |z| {
            match kind {
                TransferKind::Axfr => z.counts.axfr += 1,
                TransferKind::Ixfr => z.counts.ixfr += 1,
                TransferKind::IxfrAxfr => z.counts.ixfr_fallback += 1,
                TransferKind::Current => z.counts.current += 1,
            }
            z.transfers.insert(
                peer,
                TransferStatus {
                    serial,
                    kind,
                    at: now,
                },
            );
        });
    }

    pub fn refused(&self, zone: &str) {
        self.with(zone, |z| z.counts.refused += 1);
    }

    /// The zone's secondaries and counters, judged against its current `serial`.
    pub fn report(&self, zone: &str, serial: u32) -> (Vec<Secondary>, TransferCounts) {
        self.with(zone, |z| {
            let behind = |t: Option<&TransferStatus>| t.is_none_or(|t| t.serial != serial);
            let mut list: Vec<Secondary> = z
                .notify
                .iter()
                .map(|(addr, n)| {
                    let t = z.transfers.get(&addr.ip());
                    Secondary {
                        address: addr.to_string(),
                        last_notify: (n.attempts > 0).then(|| n.clone()),
                        last_transfer: t.cloned(),
                        behind: behind(t),
                    }
                })
                .collect();
            for (ip, t) in &z.transfers {
                if !z.notify.keys().any(|a| a.ip() == *ip) {
                    list.push(Secondary {
                        address: ip.to_string(),
                        last_notify: None,
                        last_transfer: Some(t.clone()),
                        behind: behind(Some(t)),
                    });
                }
            }
            (list, z.counts.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_targets_transfers_and_lag() {
        let s = Secondaries::default();
        let knot: SocketAddr = "127.0.0.1:5301".parse().unwrap();
        s.add_target("example.test", knot);
        let (list, _) = s.report("example.test", 7);
        assert_eq!(list.len(), 1);
        assert!(list[0].last_notify.is_none() && list[0].behind);

        s.notify_sent("example.test", knot, 7, 100);
        s.notify_sent("example.test", knot, 7, 101);
        s.notify_acked("example.test", knot, 7);
        s.transferred("example.test", knot.ip(), 7, TransferKind::Ixfr, 102);
        s.transferred(
            "example.test",
            "10.0.0.9".parse().unwrap(),
            5,
            TransferKind::Axfr,
            103,
        );
        s.refused("example.test");
        let (list, counts) = s.report("example.test", 7);
        let n = list[0].last_notify.as_ref().unwrap();
        assert_eq!((n.serial, n.sent, n.acked, n.attempts), (7, 101, true, 2));
        assert_eq!(
            list[0].last_transfer.as_ref().unwrap().kind,
            TransferKind::Ixfr
        );
        assert!(!list[0].behind);
        assert_eq!(list[1].address, "10.0.0.9");
        assert!(list[1].behind, "serial 5 is behind 7");
        assert_eq!((counts.axfr, counts.ixfr, counts.refused), (1, 1, 1));
        assert_eq!((counts.notifies_sent, counts.notifies_acked), (2, 1));
        // A new serial starts its attempts again.
        s.notify_sent("example.test", knot, 8, 110);
        let (list, _) = s.report("example.test", 8);
        let n = list[0].last_notify.as_ref().unwrap();
        assert_eq!((n.serial, n.acked, n.attempts), (8, false, 1));
        assert!(list[0].behind);
    }
}
