//! Building a signed zone at start: the zone file's RRsets, the stored nodes, the chain, and
//! every signature the store does not already hold (or that will expire within a day).
//!
//! A restart must answer with a million stored nodes within two seconds, so the common case, a
//! node whose stored signatures still fit, takes a path without hickory-proto objects and
//! without temporary copies: the store yields nodes in canonical order (node labels are single
//! lowercase labels, whose canonical order is SQLite's byte order), so each node's NSEC next
//! name is known when the node after it is read, and its entry is built once, complete, from
//! the stored bytes. [`Builder::finish`] builds the sorted chain and signs every link that was
//! not placed; if the nodes did not come in order it also checks each placed NSEC against the
//! chain, so an unexpected order costs signatures, never a wrong chain. Building every node
//! through hickory-proto names and records, as before, was four times slower and left the heap
//! fragmented (README, "Performance").

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hickory_proto::rr::{RData, RecordType};

use super::*;
use crate::zone::canon::canonical_cmp;
use crate::zone::order::NameOrder;
use crate::zone::sorted::SortedMap;

/// Collects a zone's nodes at start; see [`SignedZone::builder`].
pub struct Builder {
    zone: SignedZone,
    stored: PriorSignatures,
    /// Nodes' stored denial signatures that the fast path could not place: (next, RRSIG), used
    /// by [`Builder::finish`] if the chain agrees.
    denial: HashMap<NameKey, (Vec<u8>, Vec<u8>)>,
    writes: Vec<NewSignature>,
    /// Inline keys (no allocation each): a million shared keys would be freed after the
    /// build, leaving a hole beside every entry that the heap cannot give back.
    node_keys: Vec<CanonKey>,
    collisions: Vec<String>,
    now: u32,
    /// With NSEC: the node read last, waiting for the name after it.
    pending: Option<Pending>,
    /// With NSEC: the zone file's names in the chain, in canonical order, and how many of them
    /// sort before the pending node.
    static_chain: Vec<NameKey>,
    static_pos: usize,
    /// A node's NSEC RDATA is its next name's key, then these bytes (the apex as hickory-proto
    /// encodes it in an NSEC), then `node_bitmap` (TXT RRSIG NSEC).
    apex_suffix: Vec<u8>,
    node_bitmap: Vec<u8>,
    /// With NSEC: whether every node came in strictly increasing canonical order, so that
    /// each placed NSEC links to its true successor; and the nodes placed without one.
    ordered: bool,
    unlinked: HashSet<NameKey>,
    /// Nodes' finished entries, put into the index together by [`Builder::finish`].
    placed: Vec<NameEntry>,
}

/// A node whose TXT RRset is ready and whose NSEC waits for the next name.
struct Pending {
    key: NameKey,
    txt: RrsetEntry,
    /// The stored (next, RRSIG) of its NSEC, when made with this key and TTL and fresh.
    denial: Option<(Vec<u8>, Vec<u8>)>,
}

impl SignedZone {
    /// Starts building a zone from its file and the signatures an earlier run made; add the
    /// nodes with [`Builder::add_node`], then call [`Builder::finish`].
    pub fn builder(
        zone: Arc<StaticZone>,
        signer: Arc<Signer>,
        stored: PriorSignatures,
        now: u32,
    ) -> Result<Builder, DnssecError> {
        let apex = zone.apex.clone();
        let soa_ttl = zone.soa_ttl;
        let negative_ttl = soa_ttl.min(zone.soa.minimum);
        let chain = match signer.policy().denial {
            Denial::Nsec => Chain::Nsec(NameOrder::new()),
            Denial::Nsec3 => Chain::Nsec3(SortedMap::new()),
        };
        let wildcard_apex_hash = (signer.policy().denial == Denial::Nsec3)
            .then(|| nsec3_hash(&[&[1u8, b'*'][..], &name_wire(&apex)].concat()));
        let snapshot = ZoneSnapshot {
            name: zone.name.as_str().into(),
            apex_wire: name_wire(&apex).into(),
            apex: apex.clone(),
            serial: zone.soa.serial,
            negative_soa: WireRrset::build(RecordType::SOA, 0, std::iter::empty(), &apex)?,
            negative_soa_sigs: None,
            names: NameMap::new(),
            chain,
            wildcard_apex_hash,
            dnskey: Vec::new().into(),
            ds: Vec::new().into(),
            keys: Default::default(),
            journal: SortedMap::new(),
        };
        let mut builder = Builder {
            zone: SignedZone {
                snapshot,
                signer,
                static_keys: Arc::new(static_keys(&zone)),
                zone,
                soa_ttl,
                negative_ttl,
                dirty: HashSet::new(),
                cursor: Cursor::Start,
                sweeps: 0,
                resigning: false,
            },
            stored,
            denial: HashMap::new(),
            writes: Vec::new(),
            node_keys: Vec::new(),
            collisions: Vec::new(),
            now,
            pending: None,
            static_chain: Vec::new(),
            static_pos: 0,
            apex_suffix: Vec::new(),
            node_bitmap: Vec::new(),
            ordered: true,
            unlinked: HashSet::new(),
            placed: Vec::new(),
        };
        builder.zone.snapshot.dnskey = builder.zone.dnskey_lines().into();
        builder.zone.snapshot.ds = builder.zone.ds_lines().into();
        builder.add_static()?;
        let z = &builder.zone;
        let mut chain: Vec<NameKey> = z
            .zone
            .names()
            .iter()
            .map(|n| NameKey::from(relative_key(n, &z.snapshot.apex)))
            .filter(|k| z.snapshot.names.get(k).is_some_and(|e| !e.is_empty()))
            .collect();
        chain.sort_by(|a, b| canonical_cmp(a, b));
        builder.static_chain = chain;
        // The bytes around the next name, taken from hickory-proto's own encoding of a node's
        // NSEC (whose next name is the apex) so that both paths give the same RDATA.
        let probe = RData::DNSSEC(DNSSECRData::NSEC(nsec_rdata(
            z.name_of(&[])?,
            [RecordType::TXT],
        )));
        let probe = WireRrset::build(RecordType::NSEC, 0, [&probe], &z.snapshot.apex)?;
        let rdata = first_rdata(probe.bytes())
            .ok_or_else(|| DnssecError::Inconsistent("an NSEC without RDATA".into()))?;
        let name_len = wire_name_len(rdata)
            .ok_or_else(|| DnssecError::Inconsistent("an NSEC without next name".into()))?;
        builder.apex_suffix = rdata[..name_len].to_vec();
        builder.node_bitmap = rdata[name_len..].to_vec();
        Ok(builder)
    }
}

/// The length of the uncompressed wire-format name at the start of `bytes`.
fn wire_name_len(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let len = usize::from(*bytes.get(i)?);
        i += 1 + len;
        if len == 0 {
            return Some(i);
        }
    }
}

impl Builder {
    /// The zone file's names: their RRsets signed (or stored signatures reused), and the apex
    /// records Herald makes.
    fn add_static(&mut self) -> Result<(), DnssecError> {
        let z = &mut self.zone;
        let apex = z.snapshot.apex.clone();
        for name in z.zone.names() {
            let key = relative_key(&name, &apex);
            let mut sets: Vec<(RecordType, u32, Vec<RData>)> = z
                .zone
                .rrsets
                .get(&name)
                .into_iter()
                .flatten()
                .map(|s| (s.rtype, s.ttl, s.rdatas.clone()))
                .collect();
            if key.is_empty() {
                sets.extend(z.generated_apex_rrsets());
            }
            let mut rrsets = Vec::new();
            for (rtype, ttl, rdatas) in sets {
                let stored = self.stored.get(&(key.clone(), rtype.into()));
                let (rrset, sigs) = z.sign_or_reuse(
                    &key,
                    (rtype, ttl, &rdatas),
                    stored,
                    self.now,
                    &mut self.writes,
                )?;
                let glue = glue_targets(&rdatas)
                    .filter(|t| apex.zone_of(t) && has_address(&z.zone, t))
                    .map(|t| NameKey::from(relative_key(&t.to_lowercase(), &apex)))
                    .collect();
                rrsets.push(RrsetEntry {
                    rrset,
                    sigs: Some(sigs),
                    glue,
                });
            }
            z.snapshot.names.insert(NameEntry::new(&key, &rrsets)?);
        }
        Ok(())
    }

    /// Makes room for `nodes` nodes.
    pub fn reserve(&mut self, nodes: usize) {
        self.zone.snapshot.names.reserve(nodes);
        self.node_keys.reserve(nodes);
        self.placed.reserve(nodes);
    }

    /// Adds a node, reusing its prior TXT signature when it was made for this seq with this
    /// key and TTL and is fresh.
    pub fn add_node(&mut self, node: PriorNode) -> Result<(), DnssecError> {
        let z = &mut self.zone;
        let PriorNode {
            record,
            txt_sig,
            denial_sig,
        } = node;
        let key = node_key(record.node.as_str());
        if z.static_keys.contains(&key) {
            self.collisions.push(record.node.to_string());
            return Ok(());
        }
        let ttl = z.signer.policy().node_ttl;
        let seq = record.payload.seq;
        let reusable = txt_sig.as_ref().filter(|(signed_seq, s)| {
            *signed_seq == seq && z.matches_key(s, RecordType::TXT, ttl) && fresh(s, self.now)
        });
        let (rrset, sigs) = match reusable {
            Some((_, rrsig)) => (
                WireRrset::from_rdata(RecordType::TXT, ttl, [&txt_wire(&record.payload)[..]])?,
                WireRrset::from_rdata_in(
                    RecordType::RRSIG,
                    ttl,
                    sig_parts(rrsig),
                    &z.snapshot.apex_wire,
                )?,
            ),
            None => {
                let (rrset, sigs, sig) = z.txt_signed(&key, &record.payload, self.now)?;
                self.writes.push(NewSignature::NodeTxt {
                    node: record.node.to_string(),
                    seq,
                    rrsig: sig.rdata,
                });
                (rrset, sigs)
            }
        };
        let denial = denial_sig.filter(|(_, sig)| {
            z.matches_key(sig, z.denial_type(), z.negative_ttl) && fresh(sig, self.now)
        });
        let txt = RrsetEntry {
            rrset,
            sigs: Some(sigs),
            glue: Vec::new(),
        };
        if matches!(z.snapshot.chain, Chain::Nsec(_)) {
            if let Some(p) = &self.pending
                && canonical_cmp(&p.key, &key) != Ordering::Less
            {
                self.ordered = false;
            }
            let node = Pending {
                key: key.clone(),
                txt,
                denial,
            };
            if let Some(previous) = self.pending.replace(node) {
                self.place(previous, Some(&key))?;
            }
        } else {
            if let Some(d) = denial {
                self.denial.insert(key.clone(), d);
            }
            z.snapshot.names.insert(NameEntry::new(&key, &[txt])?);
        }
        self.node_keys.push(CanonKey::new(&key));
        Ok(())
    }

    /// Puts a pending node into the index: with its NSEC when the stored one links to the name
    /// that follows it, which is the next zone-file name or else `following` (the node read
    /// after it; none for the last). Otherwise without, for [`Builder::finish`] to sign.
    fn place(&mut self, node: Pending, following: Option<&NameKey>) -> Result<(), DnssecError> {
        let chain = &self.static_chain;
        while self.static_pos < chain.len()
            && canonical_cmp(&chain[self.static_pos], &node.key) != Ordering::Greater
        {
            self.static_pos += 1;
        }
        let next: &[u8] = match (chain.get(self.static_pos), following) {
            (Some(s), Some(f)) if canonical_cmp(s, f) == Ordering::Less => s,
            (_, Some(f)) => f,
            (Some(s), None) => s,
            // Past the last name the chain wraps to the apex, whose key is empty.
            (None, None) => &[],
        };
        let z = &mut self.zone;
        let entry = match node.denial {
            Some((stored_next, sig)) if stored_next == next => {
                let rdata = [next, &self.apex_suffix, &self.node_bitmap].concat();
                let apex = &z.snapshot.apex_wire;
                let ttl = z.negative_ttl;
                let nsec = RrsetEntry {
                    rrset: WireRrset::from_rdata_in(RecordType::NSEC, ttl, [&rdata[..]], apex)?,
                    sigs: Some(WireRrset::from_rdata_in(
                        RecordType::RRSIG,
                        ttl,
                        sig_parts(&sig),
                        apex,
                    )?),
                    glue: Vec::new(),
                };
                NameEntry::new(&node.key, &[node.txt, nsec])?
            }
            other => {
                if let Some(d) = other {
                    self.denial.insert(node.key.clone(), d);
                }
                self.unlinked.insert(node.key.clone());
                NameEntry::new(&node.key, &[node.txt])?
            }
        };
        self.placed.push(entry);
        Ok(())
    }

    /// Whether `key`'s entry already holds the NSEC that links it to `next`.
    fn linked(&self, key: &[u8], next: &[u8]) -> bool {
        let Some(entry) = self.zone.snapshot.names.get(key) else {
            return false;
        };
        let Some(rdata) = entry
            .rrset(RecordType::NSEC)
            .and_then(|r| r.records().first_rdata())
        else {
            return false;
        };
        // Stored without the apex that ends the next name (see `crate::zone::wire`).
        let (a, b) = rdata.split_at(next.len().min(rdata.len()));
        a == next && b == self.node_bitmap
    }

    /// Builds the chain, signs what no prior signature covers, and sets the serial. Returns
    /// the zone and the signatures made.
    pub fn finish(mut self, serial: u32) -> Result<(SignedZone, Vec<NewSignature>), DnssecError> {
        if !self.collisions.is_empty() {
            return Err(DnssecError::Collision {
                path: self.zone.zone.path.clone(),
                nodes: self.collisions.join(", "),
            });
        }
        if let Some(last) = self.pending.take() {
            self.place(last, None)?;
        }
        let placed = std::mem::take(&mut self.placed);
        self.zone.snapshot.names.insert_many(placed);
        let now = self.now;
        let z = &mut self.zone;
        // The SOA first, so the apex's NSEC/NSEC3 bitmap lists it.
        let stored_soa = self.stored.get(&(Vec::new(), RecordType::SOA.into()));
        z.set_serial(serial, stored_soa, now, &mut self.writes)?;
        // Every name with data is in the chain; with NSEC3, empty non-terminals too.
        let nsec3 = z.signer.policy().denial == Denial::Nsec3;
        let mut keys: Vec<CanonKey> = if nsec3 {
            z.zone
                .names()
                .iter()
                .map(|n| CanonKey::new(&relative_key(n, &z.snapshot.apex)))
                .collect()
        } else {
            self.static_chain.iter().map(|k| CanonKey::new(k)).collect()
        };
        keys.append(&mut self.node_keys);
        match &mut z.snapshot.chain {
            Chain::Nsec(order) => {
                // Two sorted runs (the zone file's names, then the nodes as the store gave
                // them), so this sort is a merge.
                keys.sort();
                *order = NameOrder::from_sorted(keys.iter().map(CanonKey::as_bytes));
            }
            Chain::Nsec3(links) => {
                for k in &keys {
                    let hash = nsec3_hash(&[k.as_bytes(), &z.snapshot.apex_wire[..]].concat());
                    links.insert(hash, Arc::new(placeholder(&k.to_key())));
                }
            }
        }
        let denial_type: u16 = self.zone.denial_type().into();
        for (i, k) in keys.iter().enumerate() {
            let k = k.as_bytes();
            let z = &self.zone;
            if !nsec3 && z.is_node(k) {
                // In order, the NSECs placed while reading are right by construction (and
                // checking a million of them costs a hash lookup each); otherwise each is
                // checked against the sorted chain.
                let placed = if self.ordered {
                    !self.unlinked.contains(k)
                } else {
                    self.linked(k, keys.get(i + 1).unwrap_or(&keys[0]).as_bytes())
                };
                if placed {
                    continue;
                }
            }
            let z = &mut self.zone;
            let reuse = if z.is_node(k) {
                match self.denial.get(k) {
                    Some((next, sig)) => Reuse::Next(next, sig),
                    None => Reuse::No,
                }
            } else {
                match self.stored.get(&(k.to_vec(), denial_type)) {
                    Some(s) => Reuse::Digest(s),
                    None => Reuse::No,
                }
            };
            if let Some(write) = z.sign_denial(&NameKey::from(k), reuse, now)? {
                self.writes.push(write);
            }
        }
        Ok((self.zone, self.writes))
    }
}
