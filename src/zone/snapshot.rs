//! The in-memory snapshot that DNS answers come from.
//!
//! A [`ZoneSet`] is immutable once published; the publisher builds the next one and swaps it in
//! atomically (`arc_swap`), so the query path reads without locks and never sees half an update.
//! Each zone's names live in a sharded copy-on-write index ([`NameMap`]) and its denial records
//! in a persistent ordered [`Chain`]: publishing one node copies a shard and a few B-tree nodes,
//! not the zone, and everything else is shared between snapshots.
//!
//! Everything here is prepared wire format, signatures included: the query path copies, it
//! never encodes or signs. `crate::dnssec::SignedZone` keeps a snapshot up to date, and the
//! writer in `crate::publish` swaps each new [`ZoneSet`] into [`SharedZones`].

use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;

use super::chain::{Chain, Hash};
use super::entry::NameEntry;
use super::file::StaticZone;
use super::journal::Journal;
use super::names::NameMap;
use super::wire::{WireRrset, relative_key};

/// The DNS path's view: the current [`ZoneSet`], swapped atomically on every change.
pub type SharedZones = Arc<ArcSwap<ZoneSet>>;

/// Lowercase wire-format labels of a name relative to its zone's apex (empty for the apex).
pub type NameKey = Arc<[u8]>;

/// One zone as served at one serial.
#[derive(Debug, Clone)]
pub struct ZoneSnapshot {
    /// API form: lowercase, no trailing dot.
    pub name: Arc<str>,
    pub apex: Name,
    /// Lowercase wire format of the apex, root label included.
    pub apex_wire: Box<[u8]>,
    pub serial: u32,
    /// The SOA for the authority section of negative answers, with TTL min(SOA TTL, MINIMUM)
    /// (RFC 2308 §3), and its RRSIG at that TTL.
    pub negative_soa: WireRrset,
    pub negative_soa_sigs: Option<WireRrset>,
    /// Every name's entry; written by the signer, read through [`ZoneSnapshot::lookup`].
    pub names: NameMap,
    pub chain: Chain,
    /// NSEC3 only: the hash of `*.<apex>`, the wildcard of the usual closest encloser.
    pub wildcard_apex_hash: Option<Hash>,
    /// The zone's DNSKEY and DS records in presentation format, for the API.
    pub dnskey: Arc<[String]>,
    pub ds: Arc<[String]>,
    /// The zone's keys and its key rollover, for the API.
    pub keys: Arc<KeysView>,
    /// The recent serial changes, for IXFR.
    pub journal: Journal,
}

/// A zone's signing keys and its key rollover as the API shows them (`GET /v1/zones/{zone}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysView {
    pub keys: Vec<KeyView>,
    pub rollover: Option<RollView>,
}

/// One published key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyView {
    /// The tag it signs under (its revoked tag once revoked).
    pub tag: u16,
    pub algorithm: u8,
    /// `signing` (signs the zone), `incoming` (published ahead of signing), `retiring`
    /// (signed before, published until its signatures are gone from caches), `revoked`.
    pub state: &'static str,
    /// Its key file inside `keys/`.
    pub file: String,
}

/// A key rollover, running or the last one done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollView {
    /// `publish`, `switch`, `revoke` or `done`.
    pub step: &'static str,
    pub started_at: u64,
    pub step_at: u64,
    /// When the next step is due; `None` when done or waiting for the re-signing.
    pub next_step_at: Option<u64>,
    /// What the next step waits for, in words.
    pub waiting_for: String,
    pub revoke_old: bool,
    /// Whether the old key waits for the parent's DS, and from when the new DS is cached.
    pub wait_ds: bool,
    pub ds_seen_at: Option<u64>,
}

impl ZoneSnapshot {
    /// The entry at `key` (see [`NameKey`]).
    #[inline]
    pub fn lookup(&self, key: &[u8]) -> Option<&NameEntry> {
        self.names.get(key)
    }

    /// Every name's entry, in no particular order (for AXFR).
    pub fn names_iter(&self) -> impl Iterator<Item = &NameEntry> {
        self.names.iter()
    }

    /// Seconds from `now` until the soonest RRSIG expiration of the zone's RRsets (the NSEC3
    /// records of an NSEC3 chain left out), negative when one has expired; `None` when nothing
    /// is signed. A walk over every name: for the metrics, at most once a minute, never on the
    /// query path.
    pub fn soonest_expiry(&self, now: u32) -> Option<i64> {
        let mut soonest: Option<i64> = None;
        for entry in self.names.iter() {
            for rrset in entry.rrsets() {
                // RFC 4034 §3.1: type covered (2), algorithm (1), labels (1), original TTL (4),
                // then the expiration; serial arithmetic (§3.1.5) against now.
                let Some(rdata) = rrset.sigs().first_rdata() else {
                    continue;
                };
                let Some(exp) = rdata.get(8..12) else {
                    continue;
                };
                let exp = u32::from_be_bytes([exp[0], exp[1], exp[2], exp[3]]);
                let left = i64::from(exp.wrapping_sub(now) as i32);
                soonest = Some(soonest.map_or(left, |s| s.min(left)));
            }
        }
        soonest
    }
}

/// The key of a node: its one label in wire format.
pub fn node_key(label: &str) -> NameKey {
    let mut key = Vec::with_capacity(label.len() + 1);
    key.push(label.len() as u8);
    key.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    key.into()
}

/// A set of names with a fast hasher: it is asked about every node at start, and its keys come
/// from the zone file, not the network, so SipHash's protection is not needed.
pub type KeySet = HashSet<NameKey, foldhash::fast::RandomState>;

/// The relative keys of every name in the zone file, empty non-terminals included: node names
/// must not collide with them.
pub fn static_keys(zone: &StaticZone) -> KeySet {
    zone.names()
        .iter()
        .map(|n| NameKey::from(relative_key(n, &zone.apex)))
        .collect()
}

/// All served zones. Immutable; replaced as a whole on every change.
#[derive(Debug, Clone, Default)]
pub struct ZoneSet {
    /// Longest apex first, so the most specific zone wins when zones nest.
    zones: Vec<Arc<ZoneSnapshot>>,
}

impl ZoneSet {
    pub fn new(mut zones: Vec<Arc<ZoneSnapshot>>) -> Self {
        zones.sort_by(|a, b| {
            b.apex_wire
                .len()
                .cmp(&a.apex_wire.len())
                .then(a.name.cmp(&b.name))
        });
        Self { zones }
    }

    /// The zone that contains `qname` (lowercase wire format, root label included): the one
    /// whose apex is a suffix of it that starts at a label boundary.
    #[inline]
    pub fn find(&self, qname: &[u8]) -> Option<&ZoneSnapshot> {
        self.zones.iter().map(|z| &**z).find(|z| {
            let cut = match qname.len().checked_sub(z.apex_wire.len()) {
                Some(cut) => cut,
                None => return false,
            };
            qname[cut..] == *z.apex_wire && label_boundary(qname, cut)
        })
    }

    /// A zone by its API name.
    pub fn get(&self, name: &str) -> Option<&Arc<ZoneSnapshot>> {
        self.zones.iter().find(|z| &*z.name == name)
    }

    /// A copy with `zone` replacing the zone of the same name.
    pub fn with(&self, zone: Arc<ZoneSnapshot>) -> Self {
        let mut zones = self.zones.clone();
        match zones.iter_mut().find(|z| z.name == zone.name) {
            Some(slot) => *slot = zone,
            None => zones.push(zone),
        }
        Self::new(zones)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ZoneSnapshot>> {
        self.zones.iter()
    }
}

/// Whether a label starts at byte `at` of the wire-format name `name`.
#[inline]
pub fn label_boundary(name: &[u8], at: usize) -> bool {
    let mut i = 0;
    while i < at {
        i += usize::from(name[i]) + 1;
    }
    i == at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::wire::name_wire;

    #[test]
    fn label_boundaries() {
        let n = b"\x02n1\x07example\x04test\x00";
        assert!(label_boundary(n, 0));
        assert!(label_boundary(n, 3));
        assert!(!label_boundary(n, 4));
        assert!(label_boundary(n, 11));
        let wire = name_wire(&Name::from_ascii("n1.example.test.").unwrap());
        assert_eq!(&wire[..], &n[..]);
        assert_eq!(&*node_key("N1"), b"\x02n1");
    }
}
