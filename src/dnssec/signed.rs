//! Keeping a zone signed, incrementally (RFC 4035 §2), as its data changes and as signatures age.
//!
//! [`SignedZone`] is the publisher's working copy of a zone: the [`ZoneSnapshot`] it serves plus
//! what it needs to sign. Every operation signs only what changed:
//! - publishing a node signs its TXT RRset; a name that appears or disappears marks its own
//!   NSEC/NSEC3 and its predecessor's for re-signing;
//! - [`SignedZone::finish`] signs the marked NSEC/NSEC3 records once each and the SOA once, so
//!   a batch of a thousand nodes signs one SOA and each changed chain link once;
//! - [`SignedZone::refresh`] sweeps a bounded number of names per call and re-signs what is due,
//!   so refresh work is spread out and never stalls the publisher for long.
//!
//! Nothing is signed per query. A [`SignedZone`] takes record-level inputs ([`NodeRecord`]s, and
//! at start the [`PriorNode`]s and [`PriorSignature`]s an earlier run made) and returns the
//! [`NewSignature`]s it made. It never sees SQLite: `crate::publish` stores what it returns in
//! the same transaction as the change, so a restart reuses them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::dnssec::PublicKey;
use hickory_proto::dnssec::rdata::{CDNSKEY, CDS, DNSSECRData, NSEC3PARAM};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, RecordType};

use super::DnssecError;
use super::nsec::{
    nsec_next, nsec_prev, nsec_rdata, nsec3_label, nsec3_next, nsec3_prev, nsec3_rdata,
};
use super::policy::Denial;
use super::sign::{
    Digest, Signature, Signer, rrsig_expiration, rrsig_inception, rrsig_key, sig_parts,
};
use crate::record::{NodeLabel, NodeRecord, Payload, render_into};
use crate::zone::canon::CanonKey;
use crate::zone::chain::{Chain, Hash, Nsec3Record, nsec3_hash};
use crate::zone::entry::{NameEntry, RrsetEntry};
use crate::zone::file::StaticZone;
use crate::zone::names::NameMap;
use crate::zone::snapshot::{KeySet, NameKey, ZoneSnapshot, node_key, static_keys};
use crate::zone::wire::{WireRrset, all_rdata, first_rdata, name_wire, relative_key};

/// A stored signature with less than this left at start is made again before serving.
const START_MARGIN: u32 = 86_400;
/// Names the refresh sweep examines per call, and signatures it makes at most per call.
const SWEEP_NAMES: usize = 5_000;
const SWEEP_SIGNATURES: usize = 500;
/// Signatures per call while the sweep re-signs a zone for a new key: every signature is due
/// then, and at 500 a call a million nodes (two signatures each) would take over an hour. At
/// 2,000 (about 35 ms of one core for ECDSA) it is a quarter of that; the IXFR per serial
/// grows in step, the total is the same.
const RESIGN_SIGNATURES: usize = 2_000;

/// A batch with at least this many nodes signs on every CPU the process may use.
const PARALLEL_MIN: usize = 64;

/// The CPUs this process may use (its affinity and cgroup quota), asked once: the answer
/// reads cgroup files.
fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A node's TXT RRset, its RRSIG RRset, and the signature to keep.
type TxtSigned = (WireRrset, WireRrset, Signature);

/// A signature a [`SignedZone`] made, for the caller to keep so that a restart can reuse it.
/// Signatures are a cache of work, not the source of truth: one that is lost is made again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewSignature {
    /// The RRSIG over node `node`'s TXT RRset at `seq`.
    NodeTxt {
        node: String,
        seq: u64,
        rrsig: Vec<u8>,
    },
    /// The RRSIG over node `node`'s NSEC (next name key) or NSEC3 (next hash) record.
    NodeDenial {
        node: String,
        next: Vec<u8>,
        rrsig: Vec<u8>,
    },
    /// The RRSIG over any other RRset: owner relative to the apex (wire format), type covered,
    /// and the digest of what was signed.
    Rrset {
        owner: Vec<u8>,
        rtype: u16,
        digest: Digest,
        rrsig: Vec<u8>,
    },
}

/// A signature over a zone-file or apex RRset made by an earlier run, offered for reuse when
/// its digest says it covers exactly the data of this run (see [`super::sign`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorSignature {
    pub digest: Vec<u8>,
    pub rrsig: Vec<u8>,
}

/// Prior signatures by (owner relative to the apex in wire format, type covered).
pub type PriorSignatures = HashMap<(Vec<u8>, u16), PriorSignature>;

/// A node as an earlier run left it: its record and the signatures made for it, offered to
/// [`Builder::add_node`] at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorNode {
    pub record: NodeRecord,
    /// The RRSIG over its TXT RRset, and the seq it was made for.
    pub txt_sig: Option<(u64, Vec<u8>)>,
    /// The RRSIG over its NSEC or NSEC3 record, and the next name or hash it was made for.
    pub denial_sig: Option<(Vec<u8>, Vec<u8>)>,
}

/// Where the refresh sweep continues.
#[derive(Debug, Clone)]
enum Cursor {
    Start,
    Nsec(NameKey),
    Nsec3(Hash),
}

/// A zone, signed, as the publisher keeps it.
#[derive(Debug, Clone)]
pub struct SignedZone {
    pub snapshot: ZoneSnapshot,
    signer: Arc<Signer>,
    zone: Arc<StaticZone>,
    static_keys: Arc<KeySet>,
    soa_ttl: u32,
    /// TTL of negative-answer data: the SOA in authority, NSEC and NSEC3 (RFC 2308 §3,
    /// RFC 9077).
    negative_ttl: u32,
    /// Names whose NSEC/NSEC3 must be signed again before the next snapshot goes out.
    dirty: HashSet<NameKey>,
    cursor: Cursor,
    /// Refresh sweeps completed over the whole chain; see [`SignedZone::sweeps`].
    sweeps: u64,
    /// Whether the sweep under way re-signs for a new signing key (a larger budget).
    resigning: bool,
}

impl SignedZone {
    /// The names that nodes may not take.
    pub fn static_keys(&self) -> &KeySet {
        &self.static_keys
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The fully qualified name of `key`.
    fn name_of(&self, key: &[u8]) -> Result<Name, DnssecError> {
        let mut labels: Vec<&[u8]> = Vec::new();
        let mut i = 0;
        while i < key.len() {
            let len = usize::from(key[i]);
            labels.push(&key[i + 1..i + 1 + len]);
            i += len + 1;
        }
        labels.extend(self.snapshot.apex.iter());
        let mut name = Name::from_labels(labels)?;
        name.set_fqdn(true);
        Ok(name)
    }

    fn hash_of(&self, key: &[u8]) -> Hash {
        nsec3_hash(&[key, &self.snapshot.apex_wire].concat())
    }

    fn is_node(&self, key: &[u8]) -> bool {
        !self.static_keys.contains(key)
    }

    /// Signs an RRset: its prepared records and RRSIGs, and the signature to store.
    fn sign(
        &self,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: &[RData],
        now: u32,
    ) -> Result<TxtSigned, DnssecError> {
        let sig = self.signer.sign(owner, rtype, ttl, rdatas, now)?;
        let apex = &self.snapshot.apex_wire;
        let rrset = WireRrset::build(rtype, ttl, rdatas, &self.snapshot.apex)?.spliced(apex)?;
        let sigs = WireRrset::from_rdata_in(RecordType::RRSIG, ttl, sig_parts(&sig.rdata), apex)?;
        Ok((rrset, sigs, sig))
    }

    /// Signs a non-node RRset, or reuses `stored` when it covers exactly this data and is fresh.
    fn sign_or_reuse(
        &self,
        key: &[u8],
        (rtype, ttl, rdatas): (RecordType, u32, &[RData]),
        stored: Option<&PriorSignature>,
        now: u32,
        writes: &mut Vec<NewSignature>,
    ) -> Result<(WireRrset, WireRrset), DnssecError> {
        let owner = self.name_of(key)?;
        if apex_key_type(rtype) {
            return self.sign_or_reuse_apex(key, &owner, (rtype, ttl, rdatas), stored, now, writes);
        }
        if let Some(s) = stored {
            let digest = self.signer.digest(&owner, rtype, ttl, rdatas)?;
            if s.digest == digest && fresh(&s.rrsig, now) {
                let apex = &self.snapshot.apex_wire;
                let rrset =
                    WireRrset::build(rtype, ttl, rdatas, &self.snapshot.apex)?.spliced(apex)?;
                let sigs =
                    WireRrset::from_rdata_in(RecordType::RRSIG, ttl, sig_parts(&s.rrsig), apex)?;
                return Ok((rrset, sigs));
            }
        }
        let (rrset, sigs, sig) = self.sign(&owner, rtype, ttl, rdatas, now)?;
        writes.push(NewSignature::Rrset {
            owner: key.to_vec(),
            rtype: rtype.into(),
            digest: sig.digest,
            rrsig: sig.rdata,
        });
        Ok((rrset, sigs))
    }

    /// Applies a committed change: removes the `deleted` nodes, signs the TXT RRsets of the
    /// `published` ones, and marks the chain links that changed. Returns the signatures made;
    /// call [`SignedZone::finish`] once the group of changes is complete.
    pub fn apply(
        &mut self,
        published: &[NodeRecord],
        deleted: &[NodeLabel],
        now: u32,
    ) -> Result<Vec<NewSignature>, DnssecError> {
        for node in deleted {
            self.remove_node(&node_key(node.as_str()));
        }
        let signed = self.sign_txts(published, now)?;
        published
            .iter()
            .zip(signed)
            .map(|(record, signed)| self.put_node(record, signed))
            .collect()
    }

    /// Signs the TXT RRsets of `set`. A large batch is split over the CPUs this process may
    /// use (signing is most of a batch's cost, and each signature is independent); on one
    /// CPU, or for a few nodes, it runs here.
    fn sign_txts(&self, set: &[NodeRecord], now: u32) -> Result<Vec<TxtSigned>, DnssecError> {
        let workers = if set.len() >= PARALLEL_MIN { cpus() } else { 1 };
        self.sign_txts_on(set, now, workers)
    }

    /// [`SignedZone::sign_txts`] on `workers` threads; the results in the order of `set`.
    fn sign_txts_on(
        &self,
        set: &[NodeRecord],
        now: u32,
        workers: usize,
    ) -> Result<Vec<TxtSigned>, DnssecError> {
        let one = |r: &NodeRecord| self.txt_signed(&node_key(r.node.as_str()), &r.payload, now);
        if workers < 2 || set.is_empty() {
            return set.iter().map(one).collect();
        }
        std::thread::scope(|scope| {
            let parts: Vec<_> = set
                .chunks(set.len().div_ceil(workers))
                .map(|part| {
                    scope.spawn(move || part.iter().map(one).collect::<Result<Vec<_>, _>>())
                })
                .collect();
            let mut out = Vec::with_capacity(set.len());
            for part in parts {
                let signed = part.join().map_err(|_| DnssecError::SigningThread)?;
                out.extend(signed?);
            }
            Ok(out)
        })
    }

    fn put_node(
        &mut self,
        record: &NodeRecord,
        signed: TxtSigned,
    ) -> Result<NewSignature, DnssecError> {
        let key = node_key(record.node.as_str());
        let (rrset, sigs, sig) = signed;
        let entry = match self.snapshot.names.get(&key) {
            Some(e) => e.with_rrset(&rrset, Some(&sigs))?,
            None => {
                self.chain_insert(&key);
                NameEntry::new(
                    &key,
                    &[RrsetEntry {
                        rrset,
                        sigs: Some(sigs),
                        glue: Vec::new(),
                    }],
                )?
            }
        };
        self.snapshot.names.insert(entry);
        Ok(NewSignature::NodeTxt {
            node: record.node.to_string(),
            seq: record.payload.seq,
            rrsig: sig.rdata,
        })
    }

    fn txt_signed(
        &self,
        key: &[u8],
        payload: &Payload,
        now: u32,
    ) -> Result<TxtSigned, DnssecError> {
        let txt = [RData::TXT(TXT::new(vec![payload.render()]))];
        self.sign(
            &self.name_of(key)?,
            RecordType::TXT,
            self.signer.policy().node_ttl,
            &txt,
            now,
        )
    }

    fn chain_insert(&mut self, key: &NameKey) {
        let prev = match &mut self.snapshot.chain {
            Chain::Nsec(order) => {
                order.insert(key);
                nsec_prev(order, key)
            }
            Chain::Nsec3(links) => {
                let hash = nsec3_hash(&[key, &self.snapshot.apex_wire[..]].concat());
                // A placeholder until finish() signs the real record; never served, because
                // the snapshot is published only after finish().
                links.insert(hash, Arc::new(placeholder(key)));
                nsec3_prev(links, &hash)
                    .and_then(|h| links.get(&h))
                    .map(|r| r.name.clone())
            }
        };
        self.dirty.insert(key.clone());
        self.dirty.extend(prev);
    }

    fn remove_node(&mut self, key: &NameKey) {
        if !self.snapshot.names.remove(key) {
            return;
        }
        let prev = match &mut self.snapshot.chain {
            Chain::Nsec(order) => {
                order.remove(key);
                nsec_prev(order, key)
            }
            Chain::Nsec3(links) => {
                let hash = nsec3_hash(&[key, &self.snapshot.apex_wire[..]].concat());
                links.remove(&hash);
                nsec3_prev(links, &hash)
                    .and_then(|h| links.get(&h))
                    .map(|r| r.name.clone())
            }
        };
        self.dirty.remove(key);
        self.dirty.extend(prev);
    }

    /// Signs the marked NSEC/NSEC3 records and the SOA at `serial`. Call once per group of
    /// changes, before publishing the snapshot.
    pub fn finish(&mut self, serial: u32, now: u32) -> Result<Vec<NewSignature>, DnssecError> {
        let mut writes = Vec::with_capacity(self.dirty.len() + 1);
        for key in std::mem::take(&mut self.dirty) {
            if self.snapshot.names.get(&key).is_some()
                && let Some(write) = self.sign_denial(&key, Reuse::No, now)?
            {
                writes.push(write);
            }
        }
        self.set_serial(serial, None, now, &mut writes)?;
        Ok(writes)
    }

    /// The types at `key`, for its NSEC/NSEC3 bitmap.
    fn types_at(&self, key: &[u8]) -> Vec<RecordType> {
        self.snapshot
            .names
            .get(key)
            .map(|e| {
                e.rrsets()
                    .map(|r| r.rtype())
                    .filter(|t| *t != RecordType::NSEC)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Makes the NSEC or NSEC3 record of `key` from the chain as it is now, signs it unless
    /// `reuse` still covers it, and puts it in place. Returns the signature to store, if new.
    fn sign_denial(
        &mut self,
        key: &NameKey,
        reuse: Reuse<'_>,
        now: u32,
    ) -> Result<Option<NewSignature>, DnssecError> {
        let ttl = self.negative_ttl;
        let types = self.types_at(key);
        let (rdata, next, hash) = match &self.snapshot.chain {
            Chain::Nsec(order) => {
                let next = nsec_next(order, key);
                let rdata =
                    RData::DNSSEC(DNSSECRData::NSEC(nsec_rdata(self.name_of(&next)?, types)));
                (rdata, next.to_vec(), None)
            }
            Chain::Nsec3(links) => {
                let hash = self.hash_of(key);
                let next = nsec3_next(links, &hash).unwrap_or(hash);
                let rdata = RData::DNSSEC(DNSSECRData::NSEC3(nsec3_rdata(&next, &types)));
                (rdata, next.to_vec(), Some(hash))
            }
        };
        let rtype = rdata.record_type();
        // An NSEC3 is owned by the hashed name.
        let owner = match &hash {
            Some(h) => self.name_of(&nsec3_label(h))?,
            None => self.name_of(key)?,
        };
        let rdatas = std::slice::from_ref(&rdata);
        let reused = match reuse {
            Reuse::Next(n, sig) if n == next.as_slice() && fresh(sig, now) => Some(sig.to_vec()),
            Reuse::Digest(s)
                if fresh(&s.rrsig, now)
                    && s.digest == self.signer.digest(&owner, rtype, ttl, rdatas)? =>
            {
                Some(s.rrsig.clone())
            }
            _ => None,
        };
        let (sig_rdata, write) = match reused {
            Some(sig) => (sig, None),
            None => {
                let sig = self.signer.sign(&owner, rtype, ttl, rdatas, now)?;
                let write = if self.is_node(key) {
                    NewSignature::NodeDenial {
                        node: node_label(key),
                        next,
                        rrsig: sig.rdata.clone(),
                    }
                } else {
                    NewSignature::Rrset {
                        owner: key.to_vec(),
                        rtype: rtype.into(),
                        digest: sig.digest,
                        rrsig: sig.rdata.clone(),
                    }
                };
                (sig.rdata, Some(write))
            }
        };
        let apex = &self.snapshot.apex_wire;
        let rrset = WireRrset::build(rtype, ttl, rdatas, &self.snapshot.apex)?.spliced(apex)?;
        let sigs = WireRrset::from_rdata_in(RecordType::RRSIG, ttl, sig_parts(&sig_rdata), apex)?;
        match hash {
            None => {
                let entry = self
                    .snapshot
                    .names
                    .get(key)
                    .ok_or_else(|| {
                        DnssecError::Inconsistent(format!("an NSEC for {owner}, which it lacks"))
                    })?
                    .with_rrset(&rrset, Some(&sigs))?;
                self.snapshot.names.insert(entry);
            }
            Some(hash) => {
                let record = Nsec3Record {
                    name: key.clone(),
                    label: nsec3_label(&hash),
                    rrset,
                    sigs: Some(sigs),
                };
                if let Chain::Nsec3(links) = &mut self.snapshot.chain {
                    links.insert(hash, Arc::new(record));
                }
            }
        }
        Ok(write)
    }

    /// Moves the zone to `serial`: signs the SOA (or reuses `stored`), updates the apex entry
    /// and the negative-answer SOA.
    fn set_serial(
        &mut self,
        serial: u32,
        stored: Option<&PriorSignature>,
        now: u32,
        writes: &mut Vec<NewSignature>,
    ) -> Result<(), DnssecError> {
        let mut soa = self.zone.soa.clone();
        soa.serial = serial;
        let rdata = [RData::SOA(soa)];
        let (rrset, sigs) = self.sign_or_reuse(
            &[],
            (RecordType::SOA, self.soa_ttl, &rdata),
            stored,
            now,
            writes,
        )?;
        let apex = self
            .snapshot
            .names
            .get(&[])
            .ok_or_else(|| DnssecError::Inconsistent("no apex entry".into()))?
            .with_rrset(&rrset, Some(&sigs))?;
        self.snapshot.names.insert(apex);
        self.snapshot.negative_soa = WireRrset::build(
            RecordType::SOA,
            self.negative_ttl,
            &rdata,
            &self.snapshot.apex,
        )?;
        self.snapshot.negative_soa_sigs = Some(sigs.with_ttl(self.negative_ttl));
        self.snapshot.serial = serial;
        Ok(())
    }

    /// The apex RRsets Herald makes itself: DNSKEY; during a rollover CDS and CDNSKEY for the
    /// new key (RFC 7344 §4, SHA-256 only, the DS that `herald key show` prints); and with
    /// NSEC3 the NSEC3PARAM (RFC 5155 §4, RFC 9276: no salt, no extra iterations; TTL 0 as
    /// BIND and Knot use).
    fn generated_apex_rrsets(&self) -> Vec<(RecordType, u32, Vec<RData>)> {
        let keys = self.signer.keys();
        let mut sets = vec![(
            RecordType::DNSKEY,
            self.soa_ttl,
            keys.dnskeys()
                .into_iter()
                .map(|k| RData::DNSSEC(DNSSECRData::DNSKEY(k)))
                .collect(),
        )];
        if let Some(k) = keys.cds_key() {
            let ds = &k.ds;
            let cds = CDS::new(
                ds.key_tag(),
                Some(ds.algorithm()),
                ds.digest_type(),
                ds.digest().to_vec(),
            );
            let cdnskey = CDNSKEY::with_flags(
                k.dnskey.flags(),
                Some(k.algorithm),
                k.dnskey.public_key().public_bytes().to_vec(),
            );
            sets.push((
                RecordType::CDS,
                self.soa_ttl,
                vec![RData::DNSSEC(DNSSECRData::CDS(cds))],
            ));
            sets.push((
                RecordType::CDNSKEY,
                self.soa_ttl,
                vec![RData::DNSSEC(DNSSECRData::CDNSKEY(cdnskey))],
            ));
        }
        if self.signer.policy().denial == Denial::Nsec3 {
            let param = NSEC3PARAM::new(Nsec3HashAlgorithm::SHA1, false, 0, Vec::new());
            sets.push((
                RecordType::NSEC3PARAM,
                0,
                vec![RData::DNSSEC(DNSSECRData::NSEC3PARAM(param))],
            ));
        }
        sets
    }

    /// Whether a stored RRSIG was made over `rtype` with `ttl` by a key the zone still
    /// publishes unrevoked (during a rollover, the old key's signatures are served until the
    /// refresh sweep has replaced them).
    fn matches_key(&self, blob: &[u8], rtype: RecordType, ttl: u32) -> bool {
        let parts = sig_parts(blob);
        let mut by = Vec::with_capacity(parts.len());
        for rrsig in parts {
            if rrsig.len() <= 18
                || u16::from_be_bytes([rrsig[0], rrsig[1]]) != u16::from(rtype)
                || u32::from_be_bytes([rrsig[4], rrsig[5], rrsig[6], rrsig[7]]) != ttl
            {
                return false;
            }
            by.extend(rrsig_key(rrsig));
        }
        self.signer.keys().accepts(&by)
    }

    fn denial_type(&self) -> RecordType {
        match self.snapshot.chain {
            Chain::Nsec(_) => RecordType::NSEC,
            Chain::Nsec3(_) => RecordType::NSEC3,
        }
    }
}

/// How a stored denial signature may be reused.
enum Reuse<'a> {
    No,
    /// A node's: (next name or hash it was made for, RRSIG).
    Next(&'a [u8], &'a [u8]),
    /// A zone-file name's: reused when the digest matches.
    Digest(&'a PriorSignature),
}

/// Whether every RRSIG of a stored value still has more than [`START_MARGIN`] left at `now`.
fn fresh(blob: &[u8], now: u32) -> bool {
    let parts = sig_parts(blob);
    !parts.is_empty()
        && parts.iter().all(|rrsig| {
            rrsig_expiration(rrsig)
                .is_some_and(|exp| exp.wrapping_sub(now) as i32 > START_MARGIN as i32)
        })
}

/// A chain link reserved by a name added in this group, until [`SignedZone::finish`] signs it.
fn placeholder(key: &NameKey) -> Nsec3Record {
    Nsec3Record {
        name: key.clone(),
        label: [0; 33],
        rrset: WireRrset::from_rdata(RecordType::NSEC3, 0, std::iter::empty())
            .expect("an empty RRset encodes"),
        sigs: None,
    }
}

/// The label of the node whose key (one wire-format label) is `key`.
fn node_label(key: &[u8]) -> String {
    String::from_utf8_lossy(&key[1..]).into_owned()
}

/// A node's TXT RDATA in wire format, encoded here for the start-up path (see `build.rs`)
/// rather than through hickory's `TXT`: one character-string (RFC 1035 §3.3.14), as the
/// payload is always shorter than 256 octets.
fn txt_wire(payload: &Payload) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    out.push(0);
    render_into(payload.commit.as_str(), payload.seq, payload.ts, &mut out);
    // At most 130 octets: the longest commit (64 digits), seq and ts (20 digits each).
    out[0] = (out.len() - 1) as u8;
    out
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

mod build;
mod keys;
mod refresh;

pub use build::Builder;
use keys::apex_key_type;

#[cfg(test)]
mod tests;
