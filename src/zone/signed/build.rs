//! Building a signed zone at start: the zone file's RRsets, the stored nodes, the chain, and
//! every signature the store does not already hold (or that will expire within a day).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hickory_proto::rr::{RData, RecordType};

use super::*;
use crate::zone::sorted::SortedMap;

/// Collects a zone's nodes at start; see [`SignedZone::builder`].
pub struct Builder {
    zone: SignedZone,
    stored: HashMap<(Vec<u8>, u16), StoredSig>,
    /// Nodes' stored denial signatures: (next, RRSIG), used if the chain still agrees.
    denial: HashMap<NameKey, (Vec<u8>, Vec<u8>)>,
    writes: Vec<SigWrite>,
    node_keys: Vec<NameKey>,
    collisions: Vec<String>,
    now: u32,
}

impl SignedZone {
    /// Starts building a zone from its file and stored signatures; add the stored nodes with
    /// [`Builder::add_node`], then call [`Builder::finish`].
    pub fn builder(
        zone: Arc<StaticZone>,
        signer: Arc<Signer>,
        stored: HashMap<(Vec<u8>, u16), StoredSig>,
        now: u32,
    ) -> Result<Builder, ZoneError> {
        let apex = zone.apex.clone();
        let soa_ttl = zone.soa_ttl;
        let negative_ttl = soa_ttl.min(zone.soa.minimum);
        let chain = match signer.policy().denial {
            Denial::Nsec => Chain::Nsec(SortedMap::new()),
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
            dnskey: vec![signer.key().dnskey_line(soa_ttl)].into(),
            ds: vec![signer.key().ds_line(soa_ttl)].into(),
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
            },
            stored,
            denial: HashMap::new(),
            writes: Vec::new(),
            node_keys: Vec::new(),
            collisions: Vec::new(),
            now,
        };
        builder.add_static()?;
        Ok(builder)
    }
}

impl Builder {
    /// The zone file's names: their RRsets signed (or stored signatures reused), and the apex
    /// records Herald makes.
    fn add_static(&mut self) -> Result<(), ZoneError> {
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

    /// Adds a stored node, reusing its stored TXT signature when it was made for this seq
    /// with this key and TTL and is fresh.
    pub fn add_node(&mut self, node: StoredNode) -> Result<(), ZoneError> {
        let z = &mut self.zone;
        let key = node_key(&node.row.node);
        if z.static_keys.contains(&key) {
            self.collisions.push(node.row.node);
            return Ok(());
        }
        let ttl = z.signer.policy().node_ttl;
        let reusable = node.txt_sig.as_deref().filter(|s| {
            node.txt_sig_seq == Some(node.row.seq)
                && z.matches_key(s, RecordType::TXT, ttl)
                && fresh(s, self.now)
        });
        let (rrset, sigs) = match reusable {
            Some(rrsig) => {
                let txt = [txt_rdata(&node.row)?];
                let rrset = WireRrset::build(RecordType::TXT, ttl, &txt, &z.snapshot.apex)?;
                (
                    rrset,
                    WireRrset::from_rdata(RecordType::RRSIG, ttl, [rrsig])?,
                )
            }
            None => {
                let (rrset, sigs, sig) = z.txt_signed(&key, &node.row, self.now)?;
                self.writes.push(SigWrite::NodeTxt {
                    node: node.row.node.clone(),
                    seq: node.row.seq,
                    rrsig: sig.rdata,
                });
                (rrset, sigs)
            }
        };
        if let (Some(next), Some(sig)) = (node.denial_next, node.denial_sig)
            && z.matches_key(&sig, z.denial_type(), z.negative_ttl)
        {
            self.denial.insert(key.clone(), (next, sig));
        }
        z.snapshot.names.insert(NameEntry::new(
            &key,
            &[RrsetEntry {
                rrset,
                sigs: Some(sigs),
                glue: Vec::new(),
            }],
        )?);
        self.node_keys.push(key);
        Ok(())
    }

    /// Builds the chain, signs what the store did not have, and sets the serial. Returns the
    /// zone and the signatures to store.
    pub fn finish(mut self, serial: u32) -> Result<(SignedZone, Vec<SigWrite>), ZoneError> {
        if !self.collisions.is_empty() {
            return Err(ZoneError::Invalid {
                path: self.zone.zone.path.clone(),
                msg: format!(
                    "stored nodes {} have the names of records in the zone file; rename those \
                     records, or start with the old file and delete the nodes first",
                    self.collisions.join(", ")
                ),
            });
        }
        let now = self.now;
        let z = &mut self.zone;
        // The SOA first, so the apex's NSEC/NSEC3 bitmap lists it.
        let stored_soa = self.stored.get(&(Vec::new(), RecordType::SOA.into()));
        z.set_serial(serial, stored_soa, now, &mut self.writes)?;
        // Every name with data is in the chain; with NSEC3, empty non-terminals too.
        let nsec3 = z.signer.policy().denial == Denial::Nsec3;
        let mut keys: Vec<NameKey> = z
            .zone
            .names()
            .iter()
            .map(|n| NameKey::from(relative_key(n, &z.snapshot.apex)))
            .filter(|k| nsec3 || z.snapshot.names.get(k).is_some_and(|e| !e.is_empty()))
            .collect();
        keys.append(&mut self.node_keys);
        match &mut z.snapshot.chain {
            Chain::Nsec(order) => {
                for k in &keys {
                    order.insert(CanonKey(k.clone()), ());
                }
            }
            Chain::Nsec3(links) => {
                for k in &keys {
                    let hash = nsec3_hash(&[k, &z.snapshot.apex_wire[..]].concat());
                    links.insert(hash, Arc::new(placeholder(k)));
                }
            }
        }
        let denial_type: u16 = z.denial_type().into();
        for k in &keys {
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
            if let Some(write) = z.sign_denial(k, reuse, now)? {
                self.writes.push(write);
            }
        }
        Ok((self.zone, self.writes))
    }
}
