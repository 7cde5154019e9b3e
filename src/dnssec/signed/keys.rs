//! The zone's keys in its working copy: changing them for a rollover step, the apex key
//! RRsets (DNSKEY, CDS, CDNSKEY) signed by every published key, and the waits a rollover
//! takes from the zone.

use hickory_proto::rr::{Name, RData, RecordType};

use super::*;
use crate::dnssec::roll::Timings;

impl SignedZone {
    /// [`SignedZone::sign_or_reuse`] for an apex key RRset, signed by every published key:
    /// its RRSIGs are stored together, each preceded by its length.
    pub(super) fn sign_or_reuse_apex(
        &self,
        key: &[u8],
        owner: &Name,
        (rtype, ttl, rdatas): (RecordType, u32, &[RData]),
        stored: Option<&PriorSignature>,
        now: u32,
        writes: &mut Vec<NewSignature>,
    ) -> Result<(WireRrset, WireRrset), DnssecError> {
        let apex = &self.snapshot.apex_wire;
        let rrset = WireRrset::build(rtype, ttl, rdatas, &self.snapshot.apex)?.spliced(apex)?;
        let digest = self.signer.apex_digest(owner, rtype, ttl, rdatas)?;
        if let Some(s) = stored
            && s.digest == digest
            && fresh(&s.rrsig, now)
        {
            let sigs = WireRrset::from_rdata_in(RecordType::RRSIG, ttl, sig_parts(&s.rrsig), apex)?;
            return Ok((rrset, sigs));
        }
        let made = self.signer.sign_apex(owner, rtype, ttl, rdatas, now)?;
        let sigs = WireRrset::from_rdata_in(RecordType::RRSIG, ttl, sig_parts(&made.rdata), apex)?;
        writes.push(NewSignature::Rrset {
            owner: key.to_vec(),
            rtype: rtype.into(),
            digest,
            rrsig: made.rdata,
        });
        Ok((rrset, sigs))
    }

    /// The waits of a key rollover of this zone: its DNSKEY TTL (the SOA's), its largest TTL,
    /// and the policy's propagation delay and hold-down.
    pub fn roll_timings(&self) -> Timings {
        let policy = self.signer.policy();
        let statics = self.zone.rrsets.values().flatten().map(|s| s.ttl).max();
        Timings {
            dnskey_ttl: self.soa_ttl,
            max_ttl: statics.unwrap_or(0).max(self.soa_ttl).max(policy.node_ttl),
            propagation: policy.propagation,
            holddown: policy.holddown,
        }
    }

    /// Refresh sweeps that have gone over every name of the chain since this zone was built.
    /// A sweep re-signs what the signing key did not sign, so once the count has risen past
    /// its value at a key change, every signature is the new key's.
    pub fn sweeps(&self) -> u64 {
        self.sweeps
    }

    /// Changes the zone's keys (a rollover step): the apex key RRsets are made and signed again
    /// at once, with the apex's chain link; every other signature that the new signing key
    /// did not make is re-signed by the refresh sweep, starting over from the first name.
    /// Returns the signatures made; call [`SignedZone::finish`] with a new serial next.
    pub fn set_signer(
        &mut self,
        signer: Arc<Signer>,
        now: u32,
    ) -> Result<Vec<NewSignature>, DnssecError> {
        self.signer = signer;
        self.snapshot.dnskey = self.dnskey_lines().into();
        self.snapshot.ds = self.ds_lines().into();
        let mut writes = Vec::new();
        let generated = self.generated_apex_rrsets();
        let mut apex = self
            .snapshot
            .names
            .get(&[])
            .ok_or_else(|| DnssecError::Inconsistent("no apex entry".into()))?
            .clone();
        for rtype in [RecordType::CDS, RecordType::CDNSKEY] {
            if apex.rrset(rtype).is_some() && !generated.iter().any(|(t, _, _)| *t == rtype) {
                apex = apex.without(rtype)?;
            }
        }
        for (rtype, ttl, rdatas) in generated.iter().filter(|(t, _, _)| apex_key_type(*t)) {
            let (rrset, sigs) =
                self.sign_or_reuse(&[], (*rtype, *ttl, rdatas), None, now, &mut writes)?;
            apex = apex.with_rrset(&rrset, Some(&sigs))?;
        }
        self.snapshot.names.insert(apex);
        // The apex's types changed (CDS, CDNSKEY): its NSEC or NSEC3 bitmap with them.
        self.dirty.insert(NameKey::from(&[][..]));
        self.cursor = Cursor::Start;
        self.resigning = true;
        Ok(writes)
    }

    /// The DNSKEY lines the API shows, one per published key.
    pub(super) fn dnskey_lines(&self) -> Vec<String> {
        self.signer
            .keys()
            .dnskeys()
            .iter()
            .map(|k| format!("{} {} IN DNSKEY {k}", self.snapshot.apex, self.soa_ttl))
            .collect()
    }

    /// The DS lines of the keys a parent may point at: the signing key, and the other
    /// published key unless it is revoked.
    pub(super) fn ds_lines(&self) -> Vec<String> {
        let keys = self.signer.keys();
        keys.apex_signers()
            .into_iter()
            .filter(|(k, tag)| *tag == k.key_tag)
            .map(|(k, _)| k.ds_line(self.soa_ttl))
            .collect()
    }
}

/// The apex RRsets signed by every published key rather than the signing key alone: the
/// DNSKEY RRset (RFC 5011 §2.1 and RFC 7583 §3.4 want the old and the new key on it) and the
/// CDS and CDNSKEY RRsets (RFC 7344 §4.1: by a key the parent's DS names, which is the old one
/// until the parent has moved).
pub(super) fn apex_key_type(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY
    )
}
