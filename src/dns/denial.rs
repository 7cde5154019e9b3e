//! The proofs of negative answers with DO=1: which NSEC or NSEC3 records go into the authority
//! section (RFC 4035 §3.1.3, RFC 5155 §7.2).
//!
//! Everything here is a lookup in the prepared chain and a copy; with NSEC3 the query path also
//! hashes the names the proof is about (one SHA-1 each, as every NSEC3 server must), using
//! buffers on the stack.

use crate::zone::chain::{Chain, Hash, Nsec3Record, nsec3_hash};
use crate::zone::entry::NameEntry;
use crate::zone::snapshot::{ZoneSnapshot, label_boundary};
use crate::zone::wire::{Apex, Owner};
use hickory_proto::rr::RecordType;

/// NODATA at an existing name (RFC 4035 §3.1.3.1, RFC 5155 §7.2.3): the name's own NSEC, or for
/// an empty non-terminal the NSEC that covers it (RFC 4035 §3.1.3.2); with NSEC3 the record
/// matching the name. Returns the record count.
pub fn no_type(
    zone: &ZoneSnapshot,
    entry: &NameEntry,
    qname: &[u8],
    cut: usize,
    out: &mut Vec<u8>,
    apex: Apex<'_>,
) -> u16 {
    if matches!(zone.chain, Chain::Nsec3(_)) {
        return zone
            .chain
            .nsec3_matching(&nsec3_hash(qname))
            .map_or(0, |r| write_nsec3(r, out, apex));
    }
    if let Some(nsec) = entry.rrset(RecordType::NSEC) {
        return nsec.write(out, Owner::Question, apex, true);
    }
    covering_nsec(zone, &qname[..cut], None, out, apex).0
}

/// NXDOMAIN (RFC 4035 §3.1.3.2, RFC 5155 §7.2.2): proof that the name does not exist and that
/// no wildcard at its closest encloser could have produced it. Returns the record count.
pub fn no_name(
    zone: &ZoneSnapshot,
    qname: &[u8],
    cut: usize,
    out: &mut Vec<u8>,
    apex: Apex<'_>,
) -> u16 {
    // The closest encloser: the longest existing ancestor. The apex always exists, so it is
    // not looked up: for a name one label below it (every node name) that is no lookup at all.
    let mut closest = cut;
    let mut next_closer = 0;
    let mut at = 0;
    while at < cut {
        let next = at + usize::from(qname[at]) + 1;
        if next == cut || zone.lookup(&qname[next..cut]).is_some() {
            closest = next;
            next_closer = at;
            break;
        }
        at = next;
    }
    debug_assert!(label_boundary(qname, closest));
    // "*." followed by the closest encloser, on the stack.
    let mut wild = [0u8; 257];
    wild[0] = 1;
    wild[1] = b'*';
    let tail = &qname[closest..];
    wild[2..2 + tail.len()].copy_from_slice(tail);
    let wild = &wild[..2 + tail.len()];

    if let Some(apex_wild) = zone.wildcard_apex_hash {
        let matching = zone.chain.nsec3_matching(&nsec3_hash(&qname[closest..]));
        let covering = zone
            .chain
            .nsec3_covering(&nsec3_hash(&qname[next_closer..]));
        let wild_hash: Hash = if closest == cut {
            apex_wild
        } else {
            nsec3_hash(wild)
        };
        let wildcard = zone.chain.nsec3_covering(&wild_hash);
        let mut n = 0;
        let mut written: [Option<&Nsec3Record>; 3] = [None; 3];
        for (i, r) in [matching, covering, wildcard].into_iter().enumerate() {
            if let Some(r) = r
                && !written[..i].iter().flatten().any(|w| w.label == r.label)
            {
                n += write_nsec3(r, out, apex);
                written[i] = Some(r);
            }
        }
        return n;
    }
    let (mut n, first) = covering_nsec(zone, &qname[..cut], None, out, apex);
    let wild_rel = &wild[..wild.len() - zone.apex_wire.len()];
    n += covering_nsec(zone, wild_rel, first, out, apex).0;
    n
}

/// Writes the NSEC covering the relative name `rel`, unless it is owned by `skip`. Returns the
/// count and the owner's key.
fn covering_nsec<'z>(
    zone: &'z ZoneSnapshot,
    rel: &[u8],
    skip: Option<&[u8]>,
    out: &mut Vec<u8>,
    apex: Apex<'_>,
) -> (u16, Option<&'z [u8]>) {
    let Some(owner) = zone.chain.nsec_covering(rel) else {
        return (0, None);
    };
    if skip == Some(owner) {
        return (0, Some(owner));
    }
    let n = zone
        .lookup(owner)
        .and_then(|e| e.rrset(RecordType::NSEC))
        .map_or(0, |nsec| {
            nsec.write(out, Owner::Relative(owner), apex, true)
        });
    (n, Some(owner))
}

fn write_nsec3(r: &Nsec3Record, out: &mut Vec<u8>, apex: Apex<'_>) -> u16 {
    let owner = Owner::Relative(&r.label);
    let mut n = r.rrset.write(out, owner, apex);
    if let Some(sigs) = &r.sigs {
        n += sigs.write(out, owner, apex);
    }
    n
}
