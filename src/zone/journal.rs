//! The change journal behind IXFR (RFC 1995): for each serial change, the RRs removed and
//! added, signatures included.
//!
//! An entry is the IXFR "difference sequence" itself: the old SOA, the RRs deleted, the new
//! SOA, the RRs added, each RR uncompressed with its full owner name and prefixed by its
//! length. The publisher computes it by comparing the snapshot it served with the one it is
//! about to serve, stores it in SQLite in the same transaction as the change (for restarts),
//! and keeps the bounded recent part in the snapshot, so that serving IXFR reads memory only.

use std::collections::BTreeSet;
use std::sync::Arc;

use hickory_proto::rr::RecordType;

use super::chain::{Chain, Hash};
use super::entry::NameEntry;
use super::snapshot::ZoneSnapshot;
use super::sorted::SortedMap;

/// One serial change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalEntry {
    pub serial_from: u32,
    pub serial_to: u32,
    /// Unix seconds.
    pub created: u64,
    /// Length-prefixed RRs: old SOA, deletions, new SOA, additions.
    pub diff: Arc<[u8]>,
}

/// The recent journal of a zone, by storage id (oldest first).
pub type Journal = SortedMap<i64, Arc<JournalEntry>>;

/// How much journal to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalLimits {
    /// At most this many entries.
    pub max_entries: usize,
    /// Entries older than this many seconds are dropped.
    pub max_age: u64,
    /// At most this many bytes of differences: past that a secondary is better served by a
    /// full transfer (a batch of 10,000 new nodes journals about 5 MB).
    pub max_bytes: u64,
}

impl Default for JournalLimits {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_age: 14 * 86_400,
            max_bytes: 16 << 20,
        }
    }
}

/// Drops what `limits` no longer allows, oldest first. Returns the id of the oldest entry
/// kept when something was dropped, for trimming the store the same way.
pub fn trim(journal: &mut Journal, limits: JournalLimits, now: u64) -> Option<i64> {
    let mut dropped = false;
    let mut bytes: u64 = journal.iter().map(|(_, e)| e.diff.len() as u64).sum();
    while let Some((&id, entry)) = journal.first() {
        if journal.len() > limits.max_entries
            || entry.created.saturating_add(limits.max_age) < now
            || bytes > limits.max_bytes
        {
            bytes -= entry.diff.len() as u64;
            journal.remove(&id);
            dropped = true;
        } else {
            break;
        }
    }
    dropped.then(|| journal.first().map_or(i64::MAX, |(&id, _)| id))
}

/// The entries that lead from `serial` to the current serial, in order, or `None` when the
/// journal does not reach back that far (the caller falls back to AXFR).
pub fn path_from(journal: &Journal, serial: u32, current: u32) -> Option<Vec<Arc<JournalEntry>>> {
    let entries: Vec<&Arc<JournalEntry>> = journal.iter().map(|(_, e)| e).collect();
    let start = entries.iter().position(|e| e.serial_from == serial)?;
    let mut path = Vec::new();
    let mut at = serial;
    for e in &entries[start..] {
        if e.serial_from != at {
            return None;
        }
        path.push((*e).clone());
        at = e.serial_to;
        if at == current {
            return Some(path);
        }
    }
    None
}

/// Every RR at one name except the SOA record (IXFR carries the SOA as the sequence markers;
/// its RRSIG is an ordinary RR and is diffed like the others), leaving out RRsets that `other`
/// (the same name on the other side of the difference) has byte for byte: those would cancel
/// out anyway, and a node's publish leaves its NSEC and that RRSIG as they were, so this halves
/// the RRs a batch decodes.
fn rrs_of(
    entry: Option<&NameEntry>,
    other: Option<&NameEntry>,
    apex: &[u8],
    set: &mut BTreeSet<Vec<u8>>,
) {
    let Some(entry) = entry else { return };
    let owner = [entry.key(), apex].concat();
    for r in entry.rrsets() {
        let same = other
            .and_then(|o| o.rrset(r.rtype()))
            .is_some_and(|o| o.records() == r.records() && o.sigs() == r.sigs());
        if same {
            continue;
        }
        if r.rtype() != RecordType::SOA {
            set.extend(r.records().uncompressed(&owner, apex));
        }
        set.extend(r.sigs().uncompressed(&owner, apex));
    }
}

/// The NSEC3 RR at one hash and its RRSIG.
fn nsec3_rrs(chain: &Chain, hash: &Hash, apex: &[u8], set: &mut BTreeSet<Vec<u8>>) {
    let Chain::Nsec3(links) = chain else { return };
    let Some(r) = links.get(hash) else { return };
    let owner = [&r.label[..], apex].concat();
    set.extend(r.rrset.records().uncompressed(&owner, apex));
    if let Some(sigs) = &r.sigs {
        set.extend(sigs.records().uncompressed(&owner, apex));
    }
}

/// The SOA RR of a snapshot, uncompressed.
pub fn soa_rr(snapshot: &ZoneSnapshot) -> Vec<u8> {
    let apex = &snapshot.apex_wire;
    snapshot
        .lookup(&[])
        .and_then(|e| e.rrset(RecordType::SOA))
        .and_then(|r| r.records().uncompressed(apex, apex).into_iter().next())
        .unwrap_or_default()
}

/// The difference sequence from `old` to `new` (RFC 1995 §4): the old SOA, the RRs only
/// `old` has, the new SOA, the RRs only `new` has. Finds the changed names and NSEC3 links
/// by structure sharing (see [`NameMap::changed_since`](super::names::NameMap::changed_since)),
/// so its cost follows the size of the change, not of the zone.
pub fn diff(old: &ZoneSnapshot, new: &ZoneSnapshot) -> Vec<u8> {
    let apex = &new.apex_wire;
    let (mut before, mut after) = (BTreeSet::new(), BTreeSet::new());
    for key in new.names.changed_since(&old.names) {
        let (o, n) = (old.lookup(&key), new.lookup(&key));
        rrs_of(o, n, apex, &mut before);
        rrs_of(n, o, apex, &mut after);
    }
    if let (Chain::Nsec3(o), Chain::Nsec3(n)) = (&old.chain, &new.chain) {
        for hash in n.changed_since(o, Arc::ptr_eq) {
            nsec3_rrs(&old.chain, &hash, apex, &mut before);
            nsec3_rrs(&new.chain, &hash, apex, &mut after);
        }
    }
    let mut out = Vec::new();
    let mut push = |rr: &[u8]| {
        out.extend_from_slice(&(rr.len() as u16).to_be_bytes());
        out.extend_from_slice(rr);
    };
    push(&soa_rr(old));
    before.difference(&after).for_each(|rr| push(rr));
    push(&soa_rr(new));
    after.difference(&before).for_each(|rr| push(rr));
    out
}

/// The RRs of a length-prefixed diff.
pub fn split(diff: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = diff;
    std::iter::from_fn(move || {
        if rest.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let (rr, next) = rest[2..].split_at(len);
        rest = next;
        Some(rr)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::testing::{both_denials, node, publish, signed_zone};

    const T0: u32 = 1_800_000_000;
    const ZONE: &str = "$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 900 1209600 60\n  IN NS ns1\nns1 IN A 127.0.0.1\n";

    /// Every RR of a snapshot but the SOA, as AXFR would carry it (uncompressed).
    fn all_rrs(s: &ZoneSnapshot) -> BTreeSet<Vec<u8>> {
        let mut set = BTreeSet::new();
        for e in s.names.iter() {
            rrs_of(Some(e), None, &s.apex_wire, &mut set);
        }
        if let Chain::Nsec3(links) = &s.chain {
            for (h, _) in links.iter() {
                nsec3_rrs(&s.chain, h, &s.apex_wire, &mut set);
            }
        }
        set
    }

    /// The type of an uncompressed RR.
    fn rtype(rr: &[u8]) -> u16 {
        let mut i = 0;
        while rr[i] != 0 {
            i += usize::from(rr[i]) + 1;
        }
        u16::from_be_bytes([rr[i + 1], rr[i + 2]])
    }

    /// Applies one difference sequence the way a secondary does (RFC 1995 §4), checking that
    /// it starts from `from`'s SOA, deletes only what is there and adds only what is not.
    fn apply(rrs: &mut BTreeSet<Vec<u8>>, diff: &[u8], from: &[u8]) -> Vec<u8> {
        let mut it = split(diff);
        assert_eq!(it.next().unwrap(), from, "starts at the old SOA");
        let mut new_soa = None;
        for rr in it {
            if rtype(rr) == u16::from(RecordType::SOA) {
                assert!(new_soa.is_none(), "one new SOA");
                new_soa = Some(rr.to_vec());
            } else if new_soa.is_none() {
                assert!(rrs.remove(rr), "deletes only what is there");
            } else {
                assert!(rrs.insert(rr.to_vec()), "adds only what is not there");
            }
        }
        new_soa.expect("a new SOA")
    }

    #[test]
    fn applying_the_journal_to_the_old_zone_gives_the_new_one() {
        for policy in both_denials() {
            let (_dir, mut zone, _) = signed_zone("example.test", ZONE, policy.clone(), T0);
            let a = zone.snapshot.clone();
            publish(
                &mut zone,
                &[
                    node("n1", &"1".repeat(40), 1),
                    node("n2", &"2".repeat(40), 1),
                ],
                &[],
                2,
                T0,
            );
            let b = zone.snapshot.clone();
            publish(
                &mut zone,
                &[node("n1", &"3".repeat(40), 2)],
                &["n2"],
                3,
                T0 + 10,
            );
            let c = zone.snapshot.clone();

            let (ab, bc) = (diff(&a, &b), diff(&b, &c));
            let mut rrs = all_rrs(&a);
            assert_eq!(apply(&mut rrs, &ab, &soa_rr(&a)), soa_rr(&b));
            assert_eq!(rrs, all_rrs(&b), "{policy:?}: A + diff = B");
            assert_eq!(apply(&mut rrs, &bc, &soa_rr(&b)), soa_rr(&c));
            assert_eq!(rrs, all_rrs(&c), "{policy:?}: B + diff = C");
            // Small: the changed names, their chain links and the SOA's RRSIG, not the zone.
            assert!(bc.len() < 2_000, "{policy:?}: {} bytes", bc.len());
            // No change, no RRs: just the two SOAs.
            assert_eq!(split(&diff(&c, &c)).count(), 2);
        }
    }

    fn entry(from: u32, to: u32, created: u64) -> Arc<JournalEntry> {
        Arc::new(JournalEntry {
            serial_from: from,
            serial_to: to,
            created,
            diff: Arc::from(&[0u8; 100][..]),
        })
    }

    #[test]
    fn paths_follow_unbroken_chains_only() {
        let mut j = Journal::new();
        j.insert(1, entry(1, 2, 100));
        j.insert(2, entry(2, 3, 100));
        // A restart re-signed the zone: 3 → 4 has no entry.
        j.insert(3, entry(4, 5, 100));
        let serials = |p: Option<Vec<Arc<JournalEntry>>>| {
            p.map(|p| p.iter().map(|e| e.serial_to).collect::<Vec<_>>())
        };
        assert_eq!(serials(path_from(&j, 1, 3)), Some(vec![2, 3]));
        assert_eq!(serials(path_from(&j, 4, 5)), Some(vec![5]));
        assert_eq!(
            serials(path_from(&j, 1, 5)),
            None,
            "the gap breaks the path"
        );
        assert_eq!(serials(path_from(&j, 3, 5)), None);
        assert_eq!(serials(path_from(&j, 0, 5)), None, "older than the journal");
    }

    #[test]
    fn trims_by_count_age_and_size() {
        let mut j = Journal::new();
        for i in 0..10 {
            j.insert(i, entry(i as u32, i as u32 + 1, 1_000 + i as u64));
        }
        let limits = JournalLimits {
            max_entries: 6,
            max_age: 100_000,
            max_bytes: 1 << 20,
        };
        assert_eq!(trim(&mut j, limits, 1_000), Some(4));
        assert_eq!(j.len(), 6);
        assert_eq!(trim(&mut j, limits, 1_000), None, "nothing more to drop");
        let limits = JournalLimits {
            max_entries: 100,
            max_age: 3,
            max_bytes: 1 << 20,
        };
        // At 1010 entries created before 1007 are too old.
        assert_eq!(trim(&mut j, limits, 1_010), Some(7));
        assert_eq!(j.len(), 3);
        // By size: 300 bytes held, 250 allowed.
        let limits = JournalLimits {
            max_bytes: 250,
            ..limits
        };
        assert_eq!(trim(&mut j, limits, 1_008), Some(8));
        assert_eq!(j.len(), 2);
        let limits = JournalLimits {
            max_entries: 0,
            ..limits
        };
        assert_eq!(trim(&mut j, limits, 1_010), Some(i64::MAX));
        assert!(j.is_empty());
    }
}
