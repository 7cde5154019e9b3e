//! Checking one answer: signatures against the trusted keys, their validity times against the
//! local clock, and NSEC/NSEC3 proofs for "no such record" (RFC 4035 §5, RFC 5155 §8).
//!
//! The cryptography is hickory-proto's (`DNSKEY::verify_rrsig`, backed by ring) and its NSEC3
//! hash; what is written here is the bookkeeping around it: which RRSIG covers which RRset,
//! which key it names, whether its times hold, and which records prove a denial.

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, NSEC, NSEC3, RRSIG};
use hickory_proto::dnssec::{PublicKey, Verifier};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::record::Payload;

/// What one answer says, after checking.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    Bogus(String),
    /// The server answered with another RCODE (SERVFAIL, REFUSED, …).
    ServerFailure(ResponseCode),
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
        return Verdict::Bogus("the answer is a CNAME; node names are not aliases".into());
    }
    if rcode == ResponseCode::NoError && !txt.is_empty() {
        let inception = match verify_rrset(cx.qname, RecordType::TXT, &txt, &m.answers, cx) {
            Ok(inception) => inception,
            Err(e) => return Verdict::Bogus(format!("TXT: {e}")),
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
            return Verdict::Bogus("expected exactly one TXT record".into());
        };
        return match Payload::parse(&text) {
            Ok(payload) => Verdict::Found { payload, inception },
            Err(e) => Verdict::Bogus(e.to_string()),
        };
    }
    match verify_denial(m, cx, rcode == ResponseCode::NXDomain) {
        Ok(()) => Verdict::NoRecord,
        Err(e) => Verdict::Bogus(format!("unproven denial: {e}")),
    }
}

/// Verifies the RRSIGs over `records` (the RRset `name`/`rtype`) found in `section`. Returns
/// the inception of the signature that verified.
pub fn verify_rrset(
    name: &Name,
    rtype: RecordType,
    records: &[&Record],
    section: &[Record],
    cx: &Context<'_>,
) -> Result<u32, String> {
    let sigs: Vec<&RRSIG> = section
        .iter()
        .filter(|r| r.name.eq_ignore_root(name))
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == rtype => Some(s),
            _ => None,
        })
        .collect();
    if sigs.is_empty() {
        return Err("missing signature".into());
    }
    let mut problem = String::from("no signature by a trusted key");
    for sig in sigs {
        let input = sig.input();
        if !input.signer_name.eq_ignore_root(cx.zone) {
            problem = format!("signed by {}, not {}", input.signer_name, cx.zone);
            continue;
        }
        // Labels below the owner's would mean a wildcard expansion; Herald zones have none.
        if input.num_labels != name.num_labels() {
            problem = "wildcard-expanded answers are not accepted".into();
            continue;
        }
        let inception = input.sig_inception.get();
        let expiration = input.sig_expiration.get();
        for key in cx.keys.iter().filter(|k| {
            k.public_key().algorithm() == input.algorithm
                && k.calculate_key_tag().ok() == Some(input.key_tag)
        }) {
            if key
                .verify_rrsig(name, DNSClass::IN, sig, records.iter().copied())
                .is_err()
            {
                problem = "bad signature".into();
                continue;
            }
            // RFC 4034 §3.1.5: serial number arithmetic on the times.
            if (cx.now.wrapping_sub(expiration) as i32) > cx.skew as i32 {
                return Err(format!("signature expired at {expiration}"));
            }
            if (inception.wrapping_sub(cx.now) as i32) > cx.skew as i32 {
                return Err(format!("signature not valid before {inception}"));
            }
            return Ok(inception);
        }
        if problem == "no signature by a trusted key" {
            problem = format!(
                "unknown key (tag {}, algorithm {})",
                input.key_tag,
                u8::from(input.algorithm)
            );
        }
    }
    Err(problem)
}

/// The NSEC or NSEC3 proof for a NODATA (`nxdomain == false`) or NXDOMAIN answer: every record
/// used must be validly signed.
fn verify_denial(m: &Message, cx: &Context<'_>, nxdomain: bool) -> Result<(), String> {
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
            verify_rrset(&owner, rtype, &rrset, auth, cx)
                .map_err(|e| format!("{rtype} at {owner}: {e}"))?;
        }
    }
    let proven = if !nsec3s.is_empty() {
        super::denial::nsec3_proves(cx.qname, cx.zone, &nsec3s, nxdomain)?
    } else if !nsecs.is_empty() {
        super::denial::nsec_proves(cx.qname, cx.zone, &nsecs, nxdomain)
    } else {
        return Err("no NSEC or NSEC3 records".into());
    };
    if proven {
        Ok(())
    } else {
        Err("the NSEC/NSEC3 records do not cover the name".into())
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

    fn bogus(v: Verdict) -> String {
        match v {
            Verdict::Bogus(reason) => reason,
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
                assert_eq!(
                    verdict(&m, &z, name, T0),
                    Verdict::NoRecord,
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

    #[test]
    fn other_rcodes_are_server_failures() {
        let (_d, z) = zone(Denial::Nsec);
        let mut m = answer(&z, "n1.example.test.");
        m.metadata.response_code = ResponseCode::ServFail;
        assert_eq!(
            verdict(&m, &z, "n1.example.test.", T0),
            Verdict::ServerFailure(ResponseCode::ServFail)
        );
    }
}
