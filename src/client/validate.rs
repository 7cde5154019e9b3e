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
//!
//! Only class IN is accepted. The signed data of an RRSIG holds the RRset's records of the
//! class being verified alone (RFC 4034 §3.1.8.1: "all RRs in the class"; hickory-proto's
//! `TBS` drops the others), so a record of another class slipped into an RRset, a `CH DNSKEY`
//! next to the zone's signed IN DNSKEY RRset, would ride along unsigned and yet be taken for
//! one of the zone's keys. Every RRset whose signature is checked here must therefore be all
//! IN ([`Bogus::Class`]), and a response with a record of another class in its answer or
//! authority section is refused as a whole ([`only_class_in`]).

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, NSEC, NSEC3};
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
    /// A record of a class other than IN, which no signature covers (RFC 4034 §3.1.8.1).
    #[error("{name} {rtype} record of class {class}: only class IN is signed and accepted")]
    Class {
        name: Box<Name>,
        rtype: RecordType,
        class: DNSClass,
    },
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

/// Refuses a response with a record of a class other than IN in its answer or authority
/// section: nothing of another class is signed by the zone (RFC 4034 §3.1.8.1), so nothing of
/// another class may be read. (The additional section holds the OPT record, whose "class" is
/// the UDP payload size, and nothing Herald reads.)
pub fn only_class_in(m: &Message) -> Result<(), Bogus> {
    match [&m.answers, &m.authorities]
        .into_iter()
        .flatten()
        .find(|r| r.dns_class != DNSClass::IN)
    {
        Some(r) => Err(class_error(r)),
        None => Ok(()),
    }
}

fn class_error(r: &Record) -> Bogus {
    Bogus::Class {
        name: Box::new(r.name.clone()),
        rtype: r.record_type(),
        class: r.dns_class,
    }
}

/// Checks the answer to `<qname> TXT`.
pub fn verify_answer(m: &Message, cx: &Context<'_>) -> Verdict {
    let rcode = m.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return Verdict::ServerFailure(rcode);
    }
    if let Err(e) = only_class_in(m) {
        return Verdict::Bogus(e);
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
/// §2.1). Returns what the newest signature that holds (the latest inception) says. An RRset
/// with a record of a class other than IN is refused ([`Bogus::Class`]): no signature covers
/// that record.
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

/// [`verify_rrset`] with exactly these keys: the entry point of every signature check.
fn verify_with(
    name: &Name,
    rtype: RecordType,
    records: &[&Record],
    section: &[Record],
    cx: &Context<'_>,
    keys: &[&DNSKEY],
) -> Result<Verified, Bogus> {
    // The signed data leaves out records of any other class (RFC 4034 §3.1.8.1): one here
    // would be taken as signed when it is not.
    if let Some(r) = records.iter().find(|r| r.dns_class != DNSClass::IN) {
        return Err(class_error(r));
    }
    let sig_records: Vec<&Record> = section
        .iter()
        .filter(|r| r.name.eq_ignore_root(name))
        .filter(|r| {
            matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == rtype)
        })
        .collect();
    if let Some(r) = sig_records.iter().find(|r| r.dns_class != DNSClass::IN) {
        return Err(class_error(r));
    }
    let sigs = sig_records.iter().filter_map(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(s)) => Some(s),
        _ => None,
    });
    let mut problem = None;
    let mut best: Option<Verified> = None;
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
        let mut verified = false;
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
            verified = true;
            // Of several signatures that hold, the newest speaks for the RRset: its age is
            // the RRset's, and its inception tells a fresh RRset from a replayed one.
            if best.is_none_or(|b| serial_after(inception, b.inception)) {
                best = Some(Verified {
                    inception,
                    expiration,
                    original_ttl: input.original_ttl,
                    key_tag: input.key_tag,
                    algorithm: u8::from(input.algorithm),
                });
            }
            break;
        }
        if !verified {
            problem.get_or_insert(Bogus::UnknownKey {
                tag: input.key_tag,
                algorithm: u8::from(input.algorithm),
            });
        }
    }
    // No RRSIG covers the RRset, or none verified: say why the last one failed.
    best.ok_or(problem.unwrap_or(Bogus::MissingSignature))
}

/// Whether signature time `a` is later than `b`, in serial number arithmetic (RFC 4034
/// §3.1.5, RFC 1982).
pub fn serial_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
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
        answer_for(z, name, RecordType::TXT)
    }

    fn answer_for(z: &SignedZone, name: &str, rtype: RecordType) -> Message {
        let mut q = Message::query();
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
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

    /// `r` in class CH: outside the signed data (RFC 4034 §3.1.8.1), so its signature still
    /// verifies with it next to the RRset.
    fn chaos(r: &Record) -> Record {
        let mut r = r.clone();
        r.dns_class = DNSClass::CH;
        r
    }

    fn is_class(e: &Bogus) -> bool {
        match e {
            Bogus::Class { class, .. } => *class == DNSClass::CH,
            Bogus::Rrset { problem, .. } | Bogus::Denial(problem) => is_class(problem),
            _ => false,
        }
    }

    /// A CH TXT record next to the signed IN one: the RRset is refused, not read.
    #[test]
    fn a_txt_record_of_another_class_is_refused() {
        use crate::client::testing::{Key, apex, txt_answer};
        let key = Key::new();
        let qname = Name::from_ascii("n1.example.test.").unwrap();
        let zone = apex();
        let keys = [key.dnskey()];
        let cx = Context {
            qname: &qname,
            zone: &zone,
            keys: &keys,
            now: T0,
            skew: 300,
        };
        let mut records = txt_answer(1, &key, T0);
        let forged = txt_answer(9, &key, T0);
        records.insert(0, chaos(&forged[0]));
        let txt: Vec<&Record> = records
            .iter()
            .filter(|r| r.record_type() == RecordType::TXT)
            .collect();
        assert_eq!(txt.len(), 2);
        // The signature alone still holds: hickory's signed data leaves the CH record out.
        let rrsig = records.last().unwrap();
        let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &rrsig.data else {
            panic!("{rrsig:?}");
        };
        assert!(
            key.dnskey()
                .verify_rrsig(&qname, DNSClass::IN, sig, txt.iter().copied())
                .is_ok()
        );
        let err = verify_rrset(&qname, RecordType::TXT, &txt, &records, &cx).unwrap_err();
        assert!(is_class(&err), "{err}");
        assert_eq!(
            err.to_string(),
            "n1.example.test. TXT record of class CH: only class IN is signed and accepted"
        );
        // Nor may the RRSIG come in another class.
        let mut sig_ch = txt_answer(1, &key, T0);
        let last = sig_ch.len() - 1;
        sig_ch[last] = chaos(&sig_ch[last]);
        let txt: Vec<&Record> = sig_ch.iter().take(1).collect();
        let err = verify_rrset(&qname, RecordType::TXT, &txt, &sig_ch, &cx).unwrap_err();
        assert!(is_class(&err), "{err}");

        // As an answer, whole: refused before its records are read.
        let mut m = Message::query();
        m.answers = records;
        let v = verify_answer(&m, &cx);
        assert!(matches!(&v, Verdict::Bogus(e) if is_class(e)), "{v:?}");
        m.answers.remove(0);
        assert!(matches!(verify_answer(&m, &cx), Verdict::Found { .. }));
        // Any record of another class, even one no RRset check looks at, refuses it all.
        let mut stray = chaos(&m.answers[0]);
        stray.name = Name::from_ascii("other.example.test.").unwrap();
        m.authorities.push(stray);
        let v = verify_answer(&m, &cx);
        assert!(matches!(&v, Verdict::Bogus(e) if is_class(e)), "{v:?}");
        assert!(only_class_in(&m).is_err());
        m.authorities.clear();
        assert!(only_class_in(&m).is_ok());
    }

    /// A forged CH NSEC at the node's name, without TXT in its bitmap, next to the zone's
    /// signed IN NSEC there (which lists TXT): it would prove "no record" for a node that has
    /// one. Refused, by the RRset check and by the message check.
    #[test]
    fn an_nsec_of_another_class_does_not_deny() {
        let (_d, z) = zone(Denial::Nsec);
        let name = "n1.example.test.";
        let qname = Name::from_ascii(name).unwrap();
        // The zone's own NSEC at n1, as a NODATA answer for another type hands it out.
        let nodata = answer_for(&z, name, RecordType::A);
        let genuine = nodata
            .authorities
            .iter()
            .find(|r| r.record_type() == RecordType::NSEC && r.name == qname)
            .expect("the NSEC at n1")
            .clone();
        let RData::DNSSEC(DNSSECRData::NSEC(n)) = &genuine.data else {
            unreachable!()
        };
        assert!(n.type_bit_maps().any(|t| t == RecordType::TXT));
        let mut forged = chaos(&genuine);
        forged.data = RData::DNSSEC(DNSSECRData::NSEC(NSEC::new_cover_self(
            n.next_domain_name().clone(),
            [RecordType::A],
        )));
        let mut m = answer(&z, name);
        m.answers.clear();
        m.authorities = nodata.authorities.clone();
        m.authorities.push(forged);

        let zone = Name::from_ascii("example.test.").unwrap();
        let keys = [z.signer().key().dnskey.clone()];
        let cx = Context {
            qname: &qname,
            zone: &zone,
            keys: &keys,
            now: T0,
            skew: 300,
        };
        let err = verify_denial(&m, &cx, false).unwrap_err();
        assert!(is_class(&err), "{err}");
        let v = verify_answer(&m, &cx);
        assert!(matches!(&v, Verdict::Bogus(e) if is_class(e)), "{v:?}");
        // Without the forged record, the zone's NSEC denies nothing: n1 has a TXT record.
        m.authorities.pop();
        assert!(bogus(verify_answer(&m, &cx)).contains("unproven"));
    }

    /// A double-signed RRset (a key rollover) is as new as its newest signature that holds,
    /// whatever the order: that inception tells a fresh RRset from a replayed one.
    #[test]
    fn of_several_signatures_the_newest_speaks() {
        use crate::client::testing::{Key, apex, rrsig, txt_answer};
        let old = Key::new();
        let new = Key::new();
        let stranger = Key::new();
        let qname = Name::from_ascii("n1.example.test.").unwrap();
        let zone = apex();
        let keys = [old.dnskey(), new.dnskey()];
        let cx = Context {
            qname: &qname,
            zone: &zone,
            keys: &keys,
            now: T0,
            skew: 300,
        };
        // Inceptions: old's T0 - 4200, new's T0 - 3600, new's again T0 - 3900, and a newer
        // one by a key not given, which does not count.
        let mut records = txt_answer(1, &old, T0 - 600);
        let txt = records[..1].to_vec();
        records.push(rrsig(&new, new.tag(), &txt, T0));
        records.push(rrsig(&new, new.tag(), &txt, T0 - 300));
        records.push(rrsig(&stranger, stranger.tag(), &txt, T0 + 200));
        let rrset: Vec<&Record> = records.iter().take(1).collect();
        let v = verify_rrset(&qname, RecordType::TXT, &rrset, &records, &cx).unwrap();
        assert_eq!((v.inception, v.key_tag), (T0 - 3600, new.tag()));
        assert!(serial_after(T0, T0 - 1) && !serial_after(T0, T0) && serial_after(1, u32::MAX));
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
