//! Tests of `crate::client::validate`.

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
    assert!(bogus(verdict(&m, &z, "n1.example.test.", T0 - 2 * 3600)).contains("not valid before"));
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
    assert!(bogus(verdict(&stripped, &z, "n1.example.test.", T0)).contains("missing signature"));
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
