//! Helpers for tests across the crate: signed zones from zone-file text, and DNSSEC checks
//! of answers with hickory-proto's verifier.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::dnssec::Verifier;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData};
use hickory_proto::op::Message;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::keys::ZoneKey;
use super::policy::ZonePolicy;
use super::sign::Signer;
use super::signed::{NewSignature, SignedZone};
use crate::record::{Commit, NodeLabel, NodeRecord, Payload};
use crate::zone::file::{StaticZone, load_file};
use crate::zone::snapshot::ZoneSet;

/// A zone file written to a temporary directory and loaded.
pub fn static_zone(name: &str, text: &str) -> (tempfile::TempDir, StaticZone) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.zone"));
    std::fs::write(&path, text).unwrap();
    let zone = load_file(&path).unwrap();
    (dir, zone)
}

/// A signed zone with a fresh key in the same temporary directory.
pub fn signed_zone(
    name: &str,
    text: &str,
    policy: ZonePolicy,
    now: u32,
) -> (tempfile::TempDir, SignedZone, Vec<NewSignature>) {
    let (dir, zone) = static_zone(name, text);
    let signer = signer_for(dir.path(), &zone, policy);
    let builder = SignedZone::builder(Arc::new(zone.clone()), signer, HashMap::new(), now).unwrap();
    let (signed, writes) = builder.finish(zone.soa.serial).unwrap();
    (dir, signed, writes)
}

pub fn signer_for(dir: &std::path::Path, zone: &StaticZone, policy: ZonePolicy) -> Arc<Signer> {
    let (key, _) = ZoneKey::load_or_create(dir, &zone.name, &zone.apex, policy.algorithm).unwrap();
    Arc::new(Signer::new(Arc::new(key), policy))
}

/// Publishes nodes into a signed zone the way the writer does (apply, then finish).
pub fn publish(
    zone: &mut SignedZone,
    records: &[NodeRecord],
    deleted: &[&str],
    serial: u32,
    now: u32,
) -> Vec<NewSignature> {
    let deleted: Vec<NodeLabel> = deleted
        .iter()
        .map(|d| NodeLabel::parse(d).unwrap())
        .collect();
    let mut writes = zone.apply(records, &deleted, now).unwrap();
    writes.extend(zone.finish(serial, now).unwrap());
    writes
}

/// NSEC and NSEC3 zones with otherwise default settings.
pub fn both_denials() -> [ZonePolicy; 2] {
    [
        ZonePolicy::default(),
        ZonePolicy {
            denial: super::policy::Denial::Nsec3,
            ..ZonePolicy::default()
        },
    ]
}

pub fn node(name: &str, commit: &str, seq: u64) -> NodeRecord {
    NodeRecord {
        node: NodeLabel::parse(name).unwrap(),
        payload: Payload {
            commit: Commit::parse(commit).unwrap(),
            seq,
            ts: 1_764_086_400,
        },
    }
}

pub fn zone_set(zone: &SignedZone) -> ZoneSet {
    ZoneSet::new(vec![Arc::new(zone.snapshot.clone())])
}

/// Verifies every RRset of every section that has an RRSIG with `dnskey`; returns how many
/// RRsets were verified. Panics on a bad signature or on an RRset without a signature.
pub fn verify_all(message: &Message, dnskey: &DNSKEY) -> usize {
    let mut verified = 0;
    for section in [&message.answers, &message.authorities, &message.additionals] {
        let mut sets: HashMap<(Name, RecordType), Vec<&Record>> = HashMap::new();
        let mut sigs = Vec::new();
        for r in section.iter() {
            match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(sig)) => sigs.push((r.name.clone(), sig.clone())),
                _ => sets
                    .entry((r.name.to_lowercase(), r.record_type()))
                    .or_default()
                    .push(r),
            }
        }
        let tag = dnskey.calculate_key_tag().expect("a key tag");
        for ((name, rtype), records) in &sets {
            // The RRSIG by this key, where several keys signed (a rollover).
            let sig = sigs
                .iter()
                .find(|(n, s)| {
                    n.to_lowercase() == *name
                        && s.input().type_covered == *rtype
                        && s.input().key_tag == tag
                })
                .unwrap_or_else(|| panic!("no RRSIG by key {tag} over {name} {rtype}"));
            dnskey
                .verify_rrsig(name, DNSClass::IN, &sig.1, records.iter().copied())
                .unwrap_or_else(|e| panic!("bad RRSIG over {name} {rtype}: {e}"));
            verified += 1;
        }
    }
    verified
}
