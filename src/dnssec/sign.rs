//! Making RRSIGs (RFC 4034 §3, RFC 4035 §2.2) with Herald's lifetimes.
//!
//! hickory-proto builds the to-be-signed data (canonical RR order and form) and the RRSIG RDATA;
//! ring signs. Herald adds what hickory's own zone signer does not do:
//! - inception back-dated by the policy's offset, so clients with a slow clock accept it;
//! - expiration jittered over the last quarter of the validity, so records signed in one batch
//!   come due for refresh spread over days rather than in one minute;
//! - a digest of exactly what was signed (key, owner, type, TTL, RDATA), stored with the
//!   signature, so a restart can reuse a stored signature without verifying it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::dnssec::TBS;
use hickory_proto::dnssec::rdata::sig::SigInput;
use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use ring::digest;

use super::keys::{KeyError, ZoneKey};
use super::policy::ZonePolicy;
use super::roll::KeySet;

/// What identifies a signature's content: see the module documentation.
pub type Digest = [u8; 16];

/// A new signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The RRSIG RDATA in wire format.
    pub rdata: Vec<u8>,
    pub digest: Digest,
}

/// The RRSIG expiration stored in an RRSIG RDATA (RFC 4034 §3.1: after type, algorithm,
/// labels and original TTL).
pub fn rrsig_expiration(rdata: &[u8]) -> Option<u32> {
    rdata
        .get(8..12)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The inception likewise.
pub fn rrsig_inception(rdata: &[u8]) -> Option<u32> {
    rdata
        .get(12..16)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn digest_of(tbs: &[u8]) -> Digest {
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest::digest(&digest::SHA256, tbs).as_ref()[..16]);
    out
}

/// Several RRSIGs over one RRset (by two keys during a rollover) as one stored value: a single
/// RRSIG RDATA as it is; several as two zero octets (no RRSIG covers type 0, so a single one
/// never starts so), then each RDATA preceded by its length in two octets.
pub fn join_sigs(parts: &[Vec<u8>]) -> Vec<u8> {
    if let [one] = parts {
        return one.clone();
    }
    let mut out = vec![0, 0];
    for p in parts {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// The RRSIG RDATAs of a [`join_sigs`] value; empty if it is malformed (it is then made again).
pub fn sig_parts(blob: &[u8]) -> Vec<&[u8]> {
    let Some(mut rest) = blob.strip_prefix(&[0, 0]) else {
        return if blob.is_empty() {
            Vec::new()
        } else {
            vec![blob]
        };
    };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let Some(len) = rest
            .get(..2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            return Vec::new();
        };
        let Some(part) = rest.get(2..2 + len) else {
            return Vec::new();
        };
        out.push(part);
        rest = &rest[2 + len..];
    }
    out
}

/// The algorithm and key tag an RRSIG RDATA names (RFC 4034 §3.1).
pub fn rrsig_key(rdata: &[u8]) -> Option<(u8, u16)> {
    Some((
        *rdata.get(2)?,
        u16::from_be_bytes([*rdata.get(16)?, *rdata.get(17)?]),
    ))
}

/// Signs RRsets of one zone with its keys and policy: the data with the signing key, the
/// DNSKEY RRset (and CDS, CDNSKEY) with every published key ([`KeySet`]).
pub struct Signer {
    keys: KeySet,
    policy: ZonePolicy,
    /// xorshift state for the expiration jitter; not security relevant.
    jitter: AtomicU64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key", self.keys.signing())
            .field("policy", &self.policy)
            .finish()
    }
}

impl Signer {
    /// A signer with one key and no rollover.
    pub fn new(key: Arc<ZoneKey>, policy: ZonePolicy) -> Self {
        Self::with_keys(KeySet::single(key), policy)
    }

    pub fn with_keys(keys: KeySet, policy: ZonePolicy) -> Self {
        let mut seed = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        Self {
            keys,
            policy,
            jitter: AtomicU64::new(u64::from_le_bytes(seed) | 1),
        }
    }

    /// The key that signs the zone data.
    pub fn key(&self) -> &ZoneKey {
        self.keys.signing()
    }

    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    pub fn policy(&self) -> &ZonePolicy {
        &self.policy
    }

    fn input(
        &self,
        (key, tag): (&ZoneKey, u16),
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        inception: u32,
        expiration: u32,
    ) -> SigInput {
        SigInput {
            type_covered: rtype,
            algorithm: key.algorithm,
            num_labels: owner.num_labels(),
            original_ttl: ttl,
            sig_expiration: SerialNumber::new(expiration),
            sig_inception: SerialNumber::new(inception),
            key_tag: tag,
            signer_name: key.apex.clone(),
        }
    }

    fn tbs(
        &self,
        input: &SigInput,
        owner: &Name,
        ttl: u32,
        rdatas: &[RData],
    ) -> Result<TBS, KeyError> {
        let records: Vec<Record> = rdatas
            .iter()
            .map(|r| Record::from_rdata(owner.clone(), ttl, r.clone()))
            .collect();
        Ok(TBS::from_input(owner, DNSClass::IN, input, records.iter())?)
    }

    /// The digest of the signatures over this RRset by the data's signers; equal digests mean
    /// a stored signature still covers exactly this data with these keys.
    pub fn digest(
        &self,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: &[RData],
    ) -> Result<Digest, KeyError> {
        self.digest_by(&self.keys.data_signers(), owner, rtype, ttl, rdatas)
    }

    /// [`Signer::digest`] for an apex key RRset (DNSKEY, CDS, CDNSKEY), by every key that
    /// signs it.
    pub fn apex_digest(
        &self,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: &[RData],
    ) -> Result<Digest, KeyError> {
        self.digest_by(&self.keys.apex_signers(), owner, rtype, ttl, rdatas)
    }

    /// One key's digest as it always was; several keys' a digest of theirs in order.
    fn digest_by(
        &self,
        signers: &[(&ZoneKey, u16)],
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: &[RData],
    ) -> Result<Digest, KeyError> {
        let mut all = Vec::new();
        for signer in signers {
            let input = self.input(*signer, owner, rtype, ttl, 0, 0);
            let tbs = self.tbs(&input, owner, ttl, rdatas)?;
            all.extend_from_slice(&digest_of(tbs.as_ref()));
        }
        Ok(match signers {
            [_] => all[..16].try_into().expect("one digest"),
            _ => digest_of(&all),
        })
    }

    /// Signs an apex key RRset with every key that signs it (see [`KeySet::apex_signers`]).
    pub fn sign_apex(
        &self,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: &[RData],
        now: u32,
    ) -> Result<Signature, KeyError> {
        self.sign_by(&self.keys.apex_signers(), owner, rtype, ttl, rdatas, now)
    }

    /// Signs the RRset `owner`/`rtype` at `now` with the data's signers: the signing key, and
    /// during an algorithm change the other key too (a [`join_sigs`] value then).
    pub fn sign(
        &self,
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: &[RData],
        now: u32,
    ) -> Result<Signature, KeyError> {
        self.sign_by(&self.keys.data_signers(), owner, rtype, ttl, rdatas, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_by(
        &self,
        signers: &[(&ZoneKey, u16)],
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: &[RData],
        now: u32,
    ) -> Result<Signature, KeyError> {
        if let [one] = signers {
            return self.sign_with(*one, owner, rtype, ttl, rdatas, now);
        }
        let mut parts = Vec::with_capacity(signers.len());
        let mut digests = Vec::with_capacity(16 * signers.len());
        for signer in signers {
            let sig = self.sign_with(*signer, owner, rtype, ttl, rdatas, now)?;
            digests.extend_from_slice(&sig.digest);
            parts.push(sig.rdata);
        }
        Ok(Signature {
            rdata: join_sigs(&parts),
            digest: digest_of(&digests),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_with(
        &self,
        (key, tag): (&ZoneKey, u16),
        owner: &Name,
        rtype: RecordType,
        ttl: u32,
        rdatas: &[RData],
        now: u32,
    ) -> Result<Signature, KeyError> {
        let inception = now.wrapping_sub(self.policy.inception_offset);
        let expiration = now.wrapping_add(self.policy.validity - self.next_jitter());
        let input = self.input((key, tag), owner, rtype, ttl, inception, expiration);
        let tbs = self.tbs(&input, owner, ttl, rdatas)?;
        let sig = key.sign(&tbs)?;
        // The digest is over the same data with the two times zeroed (RRSIG RDATA offsets 8 to
        // 16, RFC 4034 §3.1), which is what `digest` computes, without building it again.
        let mut timeless = tbs.as_ref().to_vec();
        timeless[8..16].fill(0);
        let digest = digest_of(&timeless);
        let rrsig = RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, sig)));
        let mut rdata = Vec::with_capacity(128);
        rrsig.emit(&mut BinEncoder::new(&mut rdata))?;
        Ok(Signature { rdata, digest })
    }

    /// Whether a signature with `inception` and `expiration` must be re-signed at `now`:
    /// already expired, or less than the policy's refresh time left and made at least that
    /// long ago, so a signature is never made again within one refresh period whatever its
    /// jitter (RFC 1982 arithmetic throughout, as RFC 4034 §3.1.5 asks). It was made
    /// `inception_offset` after its inception.
    pub fn due(&self, inception: u32, expiration: u32, now: u32) -> bool {
        let left = expiration.wrapping_sub(now) as i32;
        if left <= 0 {
            return true;
        }
        let made = inception.wrapping_add(self.policy.inception_offset);
        let age = now.wrapping_sub(made) as i32;
        left < self.policy.refresh as i32 && age >= self.policy.refresh as i32
    }

    /// Up to a quarter of the validity, uniformly.
    fn next_jitter(&self) -> u32 {
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.store(x, Ordering::Relaxed);
        (x % u64::from(self.policy.validity / 4 + 1)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dnssec::keys::ZoneKey;
    use hickory_proto::dnssec::rdata::DNSKEY;
    use hickory_proto::dnssec::{PublicKey, Verifier};
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::serialize::binary::BinDecoder;

    fn signer(policy: ZonePolicy) -> (tempfile::TempDir, Signer) {
        let dir = tempfile::tempdir().unwrap();
        let apex = Name::from_ascii("example.test.").unwrap();
        let (key, _) =
            ZoneKey::load_or_create(dir.path(), "example.test", &apex, policy.algorithm).unwrap();
        (dir, Signer::new(Arc::new(key), policy))
    }

    fn decode(rdata: &[u8]) -> RRSIG {
        let mut d = BinDecoder::new(rdata);
        let rec = RData::read(
            &mut d,
            RecordType::RRSIG,
            hickory_proto::serialize::binary::Restrict::new(rdata.len() as u16),
        )
        .unwrap();
        match rec {
            RData::DNSSEC(DNSSECRData::RRSIG(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signatures_verify_with_hickory_and_carry_the_lifetimes() {
        for alg in [
            hickory_proto::dnssec::Algorithm::ECDSAP256SHA256,
            hickory_proto::dnssec::Algorithm::ED25519,
        ] {
            let policy = ZonePolicy {
                algorithm: alg,
                ..ZonePolicy::default()
            };
            let (_dir, s) = signer(policy.clone());
            let owner = Name::from_ascii("n1.example.test.").unwrap();
            let txt = [RData::TXT(TXT::new(vec![
                "v=herald1 commit=ab seq=1 ts=1".into(),
            ]))];
            let now = 1_800_000_000;
            let sig = s.sign(&owner, RecordType::TXT, 60, &txt, now).unwrap();
            let rrsig = decode(&sig.rdata);
            let input = rrsig.input();
            assert_eq!(input.sig_inception.get(), now - 3600);
            let exp = input.sig_expiration.get();
            assert!(
                exp <= now + policy.validity && exp >= now + policy.validity * 3 / 4,
                "{exp}"
            );
            assert_eq!(rrsig_expiration(&sig.rdata), Some(exp));
            assert_eq!(rrsig_inception(&sig.rdata), Some(now - 3600));
            assert_eq!(
                (input.key_tag, input.num_labels, input.original_ttl),
                (s.key().key_tag, 3, 60)
            );

            let dnskey: &DNSKEY = &s.key().dnskey;
            let records: Vec<Record> = txt
                .iter()
                .map(|r| Record::from_rdata(owner.clone(), 60, r.clone()))
                .collect();
            dnskey
                .verify_rrsig(&owner, DNSClass::IN, &rrsig, records.iter())
                .expect("hickory verifies the signature");
            // Tampered data does not verify.
            let other = [RData::TXT(TXT::new(vec![
                "v=herald1 commit=ab seq=2 ts=1".into(),
            ]))];
            let records: Vec<Record> = other
                .iter()
                .map(|r| Record::from_rdata(owner.clone(), 60, r.clone()))
                .collect();
            assert!(
                dnskey
                    .verify_rrsig(&owner, DNSClass::IN, &rrsig, records.iter())
                    .is_err()
            );
            let _ = dnskey.public_key().public_bytes();
        }
    }

    #[test]
    fn digests_identify_content_and_jitter_spreads_expirations() {
        let (_dir, s) = signer(ZonePolicy::default());
        let owner = Name::from_ascii("n1.example.test.").unwrap();
        let a = [RData::TXT(TXT::new(vec!["a".into()]))];
        let b = [RData::TXT(TXT::new(vec!["b".into()]))];
        let d = s.digest(&owner, RecordType::TXT, 60, &a).unwrap();
        assert_eq!(d, s.digest(&owner, RecordType::TXT, 60, &a).unwrap());
        assert_ne!(d, s.digest(&owner, RecordType::TXT, 60, &b).unwrap());
        assert_ne!(d, s.digest(&owner, RecordType::TXT, 61, &a).unwrap());
        assert_eq!(
            s.sign(&owner, RecordType::TXT, 60, &a, 5).unwrap().digest,
            d
        );

        let exps: std::collections::HashSet<u32> = (0..200)
            .map(|_| {
                rrsig_expiration(
                    &s.sign(&owner, RecordType::TXT, 60, &a, 1_800_000_000)
                        .unwrap()
                        .rdata,
                )
                .unwrap()
            })
            .collect();
        assert!(
            exps.len() > 150,
            "expirations are spread ({} distinct of 200)",
            exps.len()
        );
    }

    #[test]
    fn due_uses_serial_arithmetic() {
        let (_dir, s) = signer(ZonePolicy::default());
        let now = 1_800_000_000u32;
        // Made eight days ago (inception back-dated an hour before that).
        let old = now - 8 * 86_400 - 3600;
        assert!(!s.due(old, now + 8 * 86_400, now));
        assert!(s.due(old, now + 6 * 86_400, now));
        assert!(s.due(old, now - 10, now), "expired");
        // Across the 2^32 wrap.
        assert!(!s.due(old, 5 + 8 * 86_400, u32::MAX - 5));
        assert!(s.due(u32::MAX - 9 * 86_400, 5 + 6 * 86_400, u32::MAX - 5));
    }

    #[test]
    fn a_signature_younger_than_the_refresh_is_never_due_before_it_expires() {
        let (_dir, s) = signer(ZonePolicy::default());
        let now = 1_800_000_000u32;
        // Six days left, inside the refresh window of seven, but made only a day ago (as a
        // policy that once had a shorter validity would leave it): not yet.
        let young = now - 86_400 - 3600;
        assert!(!s.due(young, now + 6 * 86_400, now));
        // Seven days after it was made, it is.
        assert!(s.due(young, now + 6 * 86_400, now + 6 * 86_400));
        // Expired is due whatever its age.
        assert!(s.due(young, now - 1, now));
        // The policy check keeps fresh signatures out of the window: the shortest
        // expiration (three quarters of the validity) is above the largest refresh.
        for validity in [10, 3600, 14 * 86_400] {
            let largest = crate::dnssec::policy::largest_refresh(validity);
            assert!(validity - validity / 4 > largest, "{validity}");
        }
    }
}
