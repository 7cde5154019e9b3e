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
mod tests;
