//! Checking one answer: signatures against the trusted keys, their validity times against the
//! local clock, and NSEC/NSEC3 proofs for "no such record" (RFC 4035 §5, RFC 5155 §8).
//!
//! The cryptography is hickory-proto's (`DNSKEY::verify_rrsig`, backed by ring) and its NSEC3
//! hash; what is written here is the bookkeeping around it: which RRSIG covers which RRset,
//! which key it names, whether its times hold, and which records prove a denial.
//!
//! Only zone keys verify signatures (RFC 4035 §5.3.1: the Zone Key bit set), and never a key
//! published with the REVOKE bit (RFC 5011 §2.1), except for the one signature a revoked key
//! makes over the DNSKEY RRset to announce its revocation ([`verify_revocation`]).

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, NSEC, NSEC3, RRSIG};
use hickory_proto::dnssec::{PublicKey, Verifier};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use thiserror::Error;

use crate::record::{Payload, RecordError};

/// What one answer says, after checking.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// A validly signed node record.
    Found {
        payload: Payload,
        /// RRSIG inception of the TXT RRset (unix seconds).
        inception: u32,
    },
    /// Authenticated denial: the name or its TXT RRset does not exist.
    NoRecord,
    /// The answer does not validate.
    Bogus(Bogus),
    /// The server answered with another RCODE (SERVFAIL, REFUSED, …).
    ServerFailure(ResponseCode),
}

/// Why an answer does not validate.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum Bogus {
    #[error("the answer is a CNAME; node names are not aliases")]
    Cname,
    #[error("expected exactly one TXT record")]
    TxtCount,
    #[error(transparent)]
    Payload(#[from] RecordError),
    /// The RRset `rtype` (at `owner`, when it is not the name asked for) failed.
    #[error("{rtype}{}", owner.as_ref().map(|o| format!(" at {o}")).unwrap_or_default())]
    Rrset {
        rtype: RecordType,
        owner: Option<Box<Name>>,
        #[source]
        problem: Box<Bogus>,
    },
    #[error("unproven denial")]
    Denial(#[source] Box<Bogus>),
    #[error("missing signature")]
    MissingSignature,
    #[error("signed by {signer}, not {zone}")]
    Signer { signer: Box<Name>, zone: Box<Name> },
    #[error("wildcard-expanded answers are not accepted")]
    Wildcard,
    #[error("bad signature")]
    BadSignature,
    #[error("unknown key (tag {tag}, algorithm {algorithm})")]
    UnknownKey { tag: u16, algorithm: u8 },
    #[error("the key is not a zone key published with the REVOKE bit")]
    NotRevoked,
    #[error("signature expired at {0}")]
    Expired(u32),
    #[error("signature not valid before {0}")]
    NotYetValid(u32),
    #[error("no NSEC or NSEC3 records")]
    NoDenialRecords,
    #[error("the NSEC/NSEC3 records do not cover the name")]
    NotCovered,
    #[error("{owner} is not an NSEC3 owner name of {zone}")]
    Nsec3Owner { owner: Box<Name>, zone: Box<Name> },
    #[error("NSEC3 with {0} iterations")]
    Iterations(u16),
    #[error("cannot compute an NSEC3 hash")]
    Hash(#[source] hickory_proto::ProtoError),
}

/// What the signature that verified an RRset says, for the caller's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Unix seconds (RFC 4034 §3.1.5).
    pub inception: u32,
    pub expiration: u32,
    /// The RRset's TTL as signed (RFC 4034 §3.1.4).
    pub original_ttl: u32,
    /// The key that made it.
    pub key_tag: u16,
    pub algorithm: u8,
}

/// What a check needs to know.
pub struct Context<'a> {
    pub qname: &'a Name,
    pub zone: &'a Name,
    pub keys: &'a [DNSKEY],
    /// Unix seconds.
    pub now: u32,
    /// Clock difference tolerated on both ends of a signature's validity.
    pub skew: u32,
}

/// Checks the answer to `<qname> TXT`.
pub fn verify_answer(m: &Message, cx: &Context<'_>) -> Verdict {
    let rcode = m.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return Verdict::ServerFailure(rcode);
    }
    let txt: Vec<&Record> = m
        .answers
        .iter()
        .filter(|r| r.record_type() == RecordType::TXT && r.name.eq_ignore_root(cx.qname))
        .collect();
    if m.answers
        .iter()
        .any(|r| r.record_type() == RecordType::CNAME)
    {
        return Verdict::Bogus(Bogus::Cname);
    }
    if rcode == ResponseCode::NoError && !txt.is_empty() {
        let inception = match verify_rrset(cx.qname, RecordType::TXT, &txt, &m.answers, cx) {
            Ok(v) => v.inception,
            Err(e) => {
                return Verdict::Bogus(Bogus::Rrset {
                    rtype: RecordType::TXT,
                    owner: None,
                    problem: Box::new(e),
                });
            }
        };
        let mut payloads = txt.iter().filter_map(|r| match &r.data {
            RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s))
                    .collect::<String>(),
            ),
            _ => None,
        });
        let (Some(text), None) = (payloads.next(), payloads.next()) else {
            return Verdict::Bogus(Bogus::TxtCount);
        };
        return match Payload::parse(&text) {
            Ok(payload) => Verdict::Found { payload, inception },
            Err(e) => Verdict::Bogus(e.into()),
        };
    }
    match verify_denial(m, cx, rcode == ResponseCode::NXDomain) {
        Ok(()) => Verdict::NoRecord,
        Err(e) => Verdict::Bogus(Bogus::Denial(Box::new(e))),
    }
}

/// Verifies the RRSIGs over `records` (the RRset `name`/`rtype`) found in `section` with the
/// keys of `cx` that may sign: zone keys without the REVOKE bit (RFC 4035 §5.3.1, RFC 5011
/// §2.1). Returns what the first signature that holds says.
pub fn verify_rrset(
    name: &Name,
    rtype: RecordType,
    records: &[&Record],
    section: &[Record],
    cx: &Context<'_>,
) -> Result<Verified, Bogus> {
    let usable: Vec<&DNSKEY> = cx
        .keys
        .iter()
        .filter(|k| k.zone_key() && !k.revoke())
        .collect();
    verify_with(name, rtype, records, section, cx, &usable)
}

/// Whether `revoked`, a zone key published with the REVOKE bit in the DNSKEY RRset `rrset` of
/// `cx.zone`, signed that RRset itself (RFC 5011 §2.1: "the newly revoked key MUST sign the
/// DNSKEY RRset"). The RRSIG names the key by the tag of its revoked form, which differs from
/// the unrevoked one because the flags are part of the tag (RFC 4034 Appendix B).
pub fn verify_revocation(
    rrset: &[&Record],
    section: &[Record],
    revoked: &DNSKEY,
    cx: &Context<'_>,
) -> Result<Verified, Bogus> {
    if !(revoked.revoke() && revoked.zone_key()) {
        return Err(Bogus::NotRevoked);
    }
    verify_with(cx.zone, RecordType::DNSKEY, rrset, section, cx, &[revoked])
}

/// The key tags of the zone's signatures in `m` (any section) that none of `keys` has: the
/// answer was signed by a key the caller has not seen yet.
pub fn unknown_signers(m: &Message, zone: &Name, keys: &[DNSKEY]) -> Vec<u16> {
    let known: Vec<(u16, u8)> = keys
        .iter()
        .filter_map(|k| {
            let tag = k.calculate_key_tag().ok()?;
            Some((tag, u8::from(k.public_key().algorithm())))
        })
        .collect();
    let mut tags: Vec<u16> = [&m.answers, &m.authorities]
        .into_iter()
        .flatten()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().signer_name.eq_ignore_root(zone) => {
                let input = s.input();
                let id = (input.key_tag, u8::from(input.algorithm));
                (!known.contains(&id)).then_some(input.key_tag)
            }
            _ => None,
        })
        .collect();
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// [`verify_rrset`] with exactly these keys.
fn verify_with(
    name: &Name,
    rtype: RecordType,
    records: &[&Record],
    section: &[Record],
    cx: &Context<'_>,
    keys: &[&DNSKEY],
) -> Result<Verified, Bogus> {
    let sigs: Vec<&RRSIG> = section
        .iter()
        .filter(|r| r.name.eq_ignore_root(name))
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == rtype => Some(s),
            _ => None,
        })
        .collect();
    let mut problem = None;
    for sig in sigs {
        let input = sig.input();
        if !input.signer_name.eq_ignore_root(cx.zone) {
            problem = Some(Bogus::Signer {
                signer: Box::new(input.signer_name.clone()),
                zone: Box::new(cx.zone.clone()),
            });
            continue;
        }
        // Labels below the owner's would mean a wildcard expansion; Herald zones have none.
        if input.num_labels != name.num_labels() {
            problem = Some(Bogus::Wildcard);
            continue;
        }
        let inception = input.sig_inception.get();
        let expiration = input.sig_expiration.get();
        for key in keys.iter().filter(|k| {
            k.public_key().algorithm() == input.algorithm
                && k.calculate_key_tag().ok() == Some(input.key_tag)
        }) {
            if key
                .verify_rrsig(name, DNSClass::IN, sig, records.iter().copied())
                .is_err()
            {
                problem = Some(Bogus::BadSignature);
                continue;
            }
            // RFC 4034 §3.1.5: serial number arithmetic on the times. Another signature (a
            // double-signed RRset during a key rollover) may still hold.
            if (cx.now.wrapping_sub(expiration) as i32) > cx.skew as i32 {
                problem = Some(Bogus::Expired(expiration));
                continue;
            }
            if (inception.wrapping_sub(cx.now) as i32) > cx.skew as i32 {
                problem = Some(Bogus::NotYetValid(inception));
                continue;
            }
            return Ok(Verified {
                inception,
                expiration,
                original_ttl: input.original_ttl,
                key_tag: input.key_tag,
                algorithm: u8::from(input.algorithm),
            });
        }
        problem.get_or_insert(Bogus::UnknownKey {
            tag: input.key_tag,
            algorithm: u8::from(input.algorithm),
        });
    }
    // No RRSIG covers the RRset, or none verified: say why the last one failed.
    Err(problem.unwrap_or(Bogus::MissingSignature))
}

/// The NSEC or NSEC3 proof for a NODATA (`nxdomain == false`) or NXDOMAIN answer: every record
/// used must be validly signed.
fn verify_denial(m: &Message, cx: &Context<'_>, nxdomain: bool) -> Result<(), Bogus> {
    let auth = &m.authorities;
    let mut nsecs: Vec<(Name, &NSEC)> = Vec::new();
    let mut nsec3s: Vec<(Name, &NSEC3)> = Vec::new();
    for r in auth {
        match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC(n)) => nsecs.push((r.name.to_lowercase(), n)),
            RData::DNSSEC(DNSSECRData::NSEC3(n)) => nsec3s.push((r.name.to_lowercase(), n)),
            _ => {}
        }
    }
    // Verify the signature of every denial record offered.
    for rtype in [RecordType::NSEC, RecordType::NSEC3] {
        let owners: std::collections::BTreeSet<Name> = auth
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| r.name.to_lowercase())
            .collect();
        for owner in owners {
            let rrset: Vec<&Record> = auth
                .iter()
                .filter(|r| r.record_type() == rtype && r.name.eq_ignore_root(&owner))
                .collect();
            verify_rrset(&owner, rtype, &rrset, auth, cx).map_err(|e| Bogus::Rrset {
                rtype,
                owner: Some(Box::new(owner.clone())),
                problem: Box::new(e),
            })?;
        }
    }
    let proven = if !nsec3s.is_empty() {
        super::denial::nsec3_proves(cx.qname, cx.zone, &nsec3s, nxdomain)?
    } else if !nsecs.is_empty() {
        super::denial::nsec_proves(cx.qname, cx.zone, &nsecs, nxdomain)
    } else {
        return Err(Bogus::NoDenialRecords);
    };
    if proven {
        Ok(())
    } else {
        Err(Bogus::NotCovered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::answer::{Transport, respond};
    use crate::dnssec::SignedZone;
    use crate::dnssec::policy::{Denial, ZonePolicy};
    use crate::dnssec::testing::{node, publish, signed_zone, zone_set};
    use hickory_proto::op::{Edns, Query};

    const T0: u32 = 1_800_000_000;
    const ZONE: &str =
        "$TTL 3600\n@ IN SOA ns1 h 1 3600 900 1209600 60\n  IN NS ns1\nns1 IN A 127.0.0.1\n";

    fn zone(denial: Denial) -> (tempfile::TempDir, SignedZone) {
        let (dir, mut z, _) = signed_zone(
            "example.test",
            ZONE,
            ZonePolicy {
                denial,
                ..ZonePolicy::default()
            },
            T0,
        );
        publish(&mut z, &[node("n1", &"ab".repeat(20), 7)], &[], 2, T0);
        (dir, z)
    }

    fn answer(z: &SignedZone, name: &str) -> Message {
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii(name).unwrap(),
            RecordType::TXT,
        ));
        let mut e = Edns::new();
        e.set_dnssec_ok(true);
        e.set_max_payload(1232);
        q.set_edns(e);
        let mut out = Vec::new();
        assert!(respond(
            &zone_set(z),
            &q.to_vec().unwrap(),
            Transport::Udp,
            &mut out
        ));
        Message::from_vec(&out).unwrap()
    }

    fn verdict(m: &Message, z: &SignedZone, name: &str, now: u32) -> Verdict {
        let qname = Name::from_ascii(name).unwrap();
        let zone = Name::from_ascii("example.test.").unwrap();
        let keys = [z.signer().key().dnskey.clone()];
        verify_answer(
            m,
            &Context {
                qname: &qname,
                zone: &zone,
                keys: &keys,
                now,
                skew: 300,
            },
        )
    }

    /// Why the answer is bogus, with the causes, as the report says it.
    fn bogus(v: Verdict) -> String {
        match v {
            Verdict::Bogus(reason) => super::super::check::chain(&reason),
            other => panic!("expected bogus, got {other:?}"),
        }
    }

    #[test]
    fn a_signed_record_is_found_within_its_validity() {
        let (_d, z) = zone(Denial::Nsec);
        let m = answer(&z, "n1.example.test.");
        match verdict(&m, &z, "n1.example.test.", T0) {
            Verdict::Found { payload, inception } => {
                assert_eq!((payload.seq, inception), (7, T0 - 3600));
            }
            other => panic!("{other:?}"),
        }
        // Valid a day later; not 20 days later; not two hours before it was made (inception is
        // back-dated one hour, plus five minutes of skew).
        assert!(matches!(
            verdict(&m, &z, "n1.example.test.", T0 + 86_400),
            Verdict::Found { .. }
        ));
        assert!(bogus(verdict(&m, &z, "n1.example.test.", T0 + 20 * 86_400)).contains("expired"));
        assert!(
            bogus(verdict(&m, &z, "n1.example.test.", T0 - 2 * 3600)).contains("not valid before")
        );
        assert!(
            matches!(
                verdict(&m, &z, "n1.example.test.", T0 - 3600 - 200),
                Verdict::Found { .. }
            ),
            "inside the skew"
        );
    }

    #[test]
    fn signatures_must_be_present_and_by_the_trusted_key() {
        let (_d, z) = zone(Denial::Nsec);
        let (_d2, other) = zone(Denial::Nsec);
        let m = answer(&z, "n1.example.test.");
        assert!(bogus(verdict(&m, &other, "n1.example.test.", T0)).contains("unknown key"));
        let mut stripped = m.clone();
        stripped
            .answers
            .retain(|r| r.record_type() != RecordType::RRSIG);
        assert!(
            bogus(verdict(&stripped, &z, "n1.example.test.", T0)).contains("missing signature")
        );
        let mut two = m.clone();
        let extra = two.answers[0].clone();
        two.answers.insert(1, extra);
        assert!(!matches!(
            verdict(&two, &z, "n1.example.test.", T0),
            Verdict::Found { .. }
        ));
    }

    #[test]
    fn denials_need_their_proofs() {
        for denial in [Denial::Nsec, Denial::Nsec3] {
            let (_d, z) = zone(denial);
            for name in ["nope.example.test.", "ns1.example.test."] {
                let m = answer(&z, name);
                assert!(
                    matches!(verdict(&m, &z, name, T0), Verdict::NoRecord),
                    "{denial:?} {name}"
                );
                // Without the NSEC/NSEC3 records, or with their signatures gone, no proof.
                let mut bare = m.clone();
                bare.authorities
                    .retain(|r| !matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3));
                assert!(
                    bogus(verdict(&bare, &z, name, T0)).contains("unproven denial"),
                    "{denial:?} {name}"
                );
                let mut unsigned = m.clone();
                unsigned
                    .authorities
                    .retain(|r| r.record_type() != RecordType::RRSIG);
                assert!(
                    bogus(verdict(&unsigned, &z, name, T0)).contains("missing signature"),
                    "{denial:?} {name}"
                );
            }
            // A denial for one name does not prove another.
            let m = answer(&z, "nope.example.test.");
            assert!(
                bogus(verdict(&m, &z, "n1.example.test.", T0)).contains("unproven"),
                "{denial:?}"
            );
        }
    }

    /// A signature verifies only with a zone key without the REVOKE bit (RFC 4035 §5.3.1, RFC
    /// 5011 §2.1), even when it names the key's tag in another form; a revoked key's own
    /// signature over the DNSKEY RRset is checked by `verify_revocation` alone.
    #[test]
    fn only_unrevoked_zone_keys_verify() {
        use crate::client::testing::{Key, apex, dnskey_answer, tag, txt_answer};
        let key = Key::new();
        let not_zone = DNSKEY::with_flags(1, key.dnskey().public_key().clone());
        let revoked = key.revoked();
        let qname = Name::from_ascii("n1.example.test.").unwrap();
        let zone = apex();
        let cx = |keys| Context {
            qname: &qname,
            zone: &zone,
            keys,
            now: T0,
            skew: 300,
        };
        for form in [&not_zone, &revoked] {
            // The same private key, signing under the other form's tag.
            let mut answer = txt_answer(1, &key, T0);
            answer.pop();
            let sig = crate::client::testing::rrsig(&key, tag(form), &answer, T0);
            answer.push(sig);
            let txt: Vec<&Record> = answer.iter().take(1).collect();
            let err = verify_rrset(
                &qname,
                RecordType::TXT,
                &txt,
                &answer,
                &cx(std::slice::from_ref(form)),
            )
            .unwrap_err();
            assert!(
                matches!(err, Bogus::UnknownKey { .. }),
                "{:?}: {err}",
                form.flags()
            );
        }
        let answer = txt_answer(1, &key, T0);
        let txt: Vec<&Record> = answer.iter().take(1).collect();
        let keys = [key.dnskey()];
        let v = verify_rrset(&qname, RecordType::TXT, &txt, &answer, &cx(&keys)).unwrap();
        assert_eq!(
            (v.key_tag, v.original_ttl, v.inception),
            (key.tag(), 60, T0 - 3600)
        );

        let published = [revoked.clone()];
        let signed = dnskey_answer(&published, &[(&key, &revoked)], T0);
        let rrset: Vec<&Record> = signed.iter().take(1).collect();
        assert!(verify_revocation(&rrset, &signed, &revoked, &cx(&[])).is_ok());
        assert!(matches!(
            verify_revocation(&rrset, &signed, &key.dnskey(), &cx(&[])),
            Err(Bogus::NotRevoked)
        ));
        // Nor does the revoked key validate the RRset it revokes itself in.
        assert!(verify_rrset(&zone, RecordType::DNSKEY, &rrset, &signed, &cx(&published)).is_err());
    }

    #[test]
    fn other_rcodes_are_server_failures() {
        let (_d, z) = zone(Denial::Nsec);
        let mut m = answer(&z, "n1.example.test.");
        m.metadata.response_code = ResponseCode::ServFail;
        assert!(matches!(
            verdict(&m, &z, "n1.example.test.", T0),
            Verdict::ServerFailure(ResponseCode::ServFail)
        ));
    }
}
