//! The in-memory snapshot that DNS answers come from.
//!
//! A [`ZoneSet`] is immutable once published; the publisher builds the next one and swaps it in
//! atomically (`arc_swap`), so the query path reads without locks and never sees half an update.
//! Each zone's names live in a sharded copy-on-write index ([`NameMap`]): publishing one node
//! copies one small shard, not the whole zone, and unchanged shards are shared between
//! snapshots.
//!
//! Every RRset is stored prepared ([`WireRrset`]), and everything at one name in one block
//! ([`NameEntry`]); with DNSSEC (issue 3) the RRSIGs and the NSEC go into the same block, and the
//! answer path copies them the same way.

use std::collections::HashSet;
use std::sync::Arc;

use hickory_proto::rr::rdata::{SOA, TXT};
use hickory_proto::rr::{Name, RData, RecordType};

use super::ZoneError;
use super::entry::{NameEntry, RrsetEntry};
use super::file::StaticZone;
use super::names::NameMap;
use super::wire::{WireRrset, name_wire, relative_key};
use crate::record::Payload;

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
    /// TTL of node TXT records.
    pub node_ttl: u32,
    /// The SOA as the zone file gives it; the serial is replaced by `serial`.
    soa: SOA,
    soa_ttl: u32,
    /// The SOA for the authority section of negative answers, with TTL min(SOA TTL, MINIMUM)
    /// (RFC 2308 §3).
    pub negative_soa: WireRrset,
    names: NameMap,
}

impl ZoneSnapshot {
    /// The zone file's records at `serial`, with no nodes yet.
    pub fn new(zone: &StaticZone, serial: u32, node_ttl: u32) -> Result<Self, ZoneError> {
        let apex = zone.apex.clone();
        let mut names = NameMap::new();
        for name in zone.names() {
            let mut rrsets = Vec::new();
            for set in zone.rrsets.get(&name).into_iter().flatten() {
                let rrset = WireRrset::build(set.rtype, set.ttl, &set.rdatas, &apex)?;
                let glue = glue_targets(&set.rdatas)
                    .filter(|t| apex.zone_of(t) && has_address(zone, t))
                    .map(|t| NameKey::from(relative_key(&t.to_lowercase(), &apex)))
                    .collect();
                rrsets.push(RrsetEntry { rrset, glue });
            }
            names.insert(NameEntry::new(&relative_key(&name, &apex), &rrsets)?);
        }
        let mut snapshot = Self {
            name: zone.name.as_str().into(),
            apex_wire: name_wire(&apex).into(),
            apex,
            serial,
            node_ttl,
            soa: zone.soa.clone(),
            soa_ttl: zone.soa_ttl,
            negative_soa: WireRrset::build(RecordType::SOA, 0, std::iter::empty(), &zone.apex)?,
            names,
        };
        snapshot.set_serial(serial)?;
        Ok(snapshot)
    }

    /// Moves the zone to `serial`: re-prepares the SOA at the apex and in negative answers.
    pub fn set_serial(&mut self, serial: u32) -> Result<(), ZoneError> {
        let mut soa = self.soa.clone();
        soa.serial = serial;
        let soa = RData::SOA(soa);
        let apex_soa = WireRrset::build(RecordType::SOA, self.soa_ttl, [&soa], &self.apex)?;
        let negative_ttl = self.soa_ttl.min(self.soa.minimum);
        self.negative_soa = WireRrset::build(RecordType::SOA, negative_ttl, [&soa], &self.apex)?;
        let apex = match self.names.get(&[]) {
            Some(entry) => entry.with_rrset(&apex_soa)?,
            None => NameEntry::new(
                &[],
                &[RrsetEntry {
                    rrset: apex_soa,
                    glue: Vec::new(),
                }],
            )?,
        };
        self.names.insert(apex);
        self.serial = serial;
        Ok(())
    }

    /// Prepares and stores the TXT record of node `label`.
    pub fn set_node(&mut self, label: &str, payload: &Payload) -> Result<(), ZoneError> {
        let txt = RData::TXT(TXT::new(vec![payload.render()]));
        let rrset = WireRrset::build(RecordType::TXT, self.node_ttl, [&txt], &self.apex)?;
        let entry = NameEntry::new(
            &node_key(label),
            &[RrsetEntry {
                rrset,
                glue: Vec::new(),
            }],
        )?;
        self.names.insert(entry);
        Ok(())
    }

    /// Removes node `label`.
    pub fn remove_node(&mut self, label: &str) {
        self.names.remove(&node_key(label)[..]);
    }

    /// The entry at `key` (see [`NameKey`]).
    #[inline]
    pub fn lookup(&self, key: &[u8]) -> Option<&NameEntry> {
        self.names.get(key)
    }

    /// How many names the zone holds (static names, empty non-terminals and nodes).
    pub fn name_count(&self) -> usize {
        self.names.len()
    }
}

/// The key of a node: its one label in wire format.
pub fn node_key(label: &str) -> NameKey {
    let mut key = Vec::with_capacity(label.len() + 1);
    key.push(label.len() as u8);
    key.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    key.into()
}

/// The relative keys of every name in the zone file, empty non-terminals included: node names
/// must not collide with them.
pub fn static_keys(zone: &StaticZone) -> HashSet<NameKey> {
    zone.names()
        .iter()
        .map(|n| NameKey::from(relative_key(n, &zone.apex)))
        .collect()
}

fn glue_targets(rdatas: &[RData]) -> impl Iterator<Item = &Name> {
    rdatas.iter().filter_map(|r| match r {
        RData::NS(ns) => Some(&ns.0),
        RData::MX(mx) => Some(&mx.exchange),
        _ => None,
    })
}

fn has_address(zone: &StaticZone, name: &Name) -> bool {
    zone.rrsets.get(&name.to_lowercase()).is_some_and(|sets| {
        sets.iter()
            .any(|s| matches!(s.rtype, RecordType::A | RecordType::AAAA))
    })
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
fn label_boundary(name: &[u8], at: usize) -> bool {
    let mut i = 0;
    while i < at {
        i += usize::from(name[i]) + 1;
    }
    i == at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Commit;
    use crate::zone::file::load_file;

    pub(crate) fn example() -> StaticZone {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("example.test.zone");
        std::fs::write(
            &path,
            "$TTL 3600\n@ IN SOA ns1 hostmaster 7 3600 900 1209600 60\n  IN NS ns1\n  IN NS ns.elsewhere.test.\n\
             ns1 IN A 127.0.0.1\nns1 IN AAAA ::1\na.b IN TXT \"deep\"\n",
        )
        .unwrap();
        load_file(&path).unwrap()
    }

    fn payload(seq: u64) -> Payload {
        Payload {
            commit: Commit::parse(&"a".repeat(40)).unwrap(),
            seq,
            ts: 1,
        }
    }

    #[test]
    fn static_names_and_empty_non_terminals() {
        let z = ZoneSnapshot::new(&example(), 9, 60).unwrap();
        let apex = z.lookup(b"").unwrap();
        let types: Vec<_> = apex.rrsets().map(|e| e.rtype()).collect();
        assert_eq!(types, [RecordType::NS, RecordType::SOA]);
        // Only the in-zone NS target with an address is glue.
        let glue: Vec<&[u8]> = apex.rrset(RecordType::NS).unwrap().glue().collect();
        assert_eq!(glue, [&b"\x03ns1"[..]]);
        assert!(z.lookup(b"\x01b").unwrap().is_empty());
        assert_eq!(z.lookup(b"\x01a\x01b").unwrap().rrsets().count(), 1);
        assert!(z.lookup(b"\x01c").is_none());
        assert_eq!(z.negative_soa.count(), 1);
        let keys = static_keys(&example());
        assert!(
            keys.contains(&b"\x01b"[..])
                && keys.contains(&b""[..])
                && keys.contains(&b"\x03ns1"[..])
        );
    }

    #[test]
    fn nodes_come_and_go_without_touching_older_snapshots() {
        let mut z = ZoneSnapshot::new(&example(), 9, 60).unwrap();
        z.set_node("n1", &payload(1)).unwrap();
        let before = z.clone();
        z.set_node("n1", &payload(2)).unwrap();
        z.set_node("n2", &payload(1)).unwrap();
        z.set_serial(10).unwrap();
        assert_ne!(before.lookup(b"\x02n1"), z.lookup(b"\x02n1"));
        assert!(before.lookup(b"\x02n2").is_none());
        assert_eq!(before.serial, 9);
        z.remove_node("n1");
        assert!(z.lookup(b"\x02n1").is_none());
        assert!(before.lookup(b"\x02n1").is_some());
        // The serial change kept the apex NS RRset.
        assert!(z.lookup(b"").unwrap().rrset(RecordType::NS).is_some());
    }

    #[test]
    fn find_matches_whole_labels_and_prefers_the_longest_zone() {
        let a = ZoneSnapshot::new(&example(), 1, 60).unwrap();
        let set = ZoneSet::new(vec![Arc::new(a)]);
        let q = |s: &str| name_wire(&Name::from_ascii(s).unwrap());
        assert!(set.find(&q("n1.example.test.")).is_some());
        assert!(set.find(&q("example.test.")).is_some());
        assert!(set.find(&q("xexample.test.")).is_none());
        assert!(set.find(&q("test.")).is_none());
        assert!(set.find(&q("n1.example.org.")).is_none());
        // A label whose bytes happen to spell the apex does not count.
        assert!(set.find(b"\x0d\x07example\x04test\x00").is_none());
    }
}
