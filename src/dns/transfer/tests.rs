//! Transfers answered in-process and read back with hickory-proto: AXFR shape and signatures,
//! the access rules, TSIG over every message (checked with hickory's verifier), and IXFR.

use std::sync::Arc;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigner};

use super::*;
use crate::dnssec::SignedZone;
use crate::dnssec::testing::{both_denials, node, publish, signed_zone, verify_all};
use crate::zone::journal::{self, JournalEntry};

const T0: u32 = 1_800_000_000;
const ZONE: &str =
    "$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 900 1209600 60\n  IN NS ns1\nns1 IN A 127.0.0.1\n";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const ALLOWED: &str = "127.0.0.1";
const OTHER: &str = "127.0.0.2";

fn key_text() -> String {
    use base64::Engine;
    format!(
        "xfr.example.:hmac-sha256:{}",
        base64::engine::general_purpose::STANDARD.encode(SECRET)
    )
}

fn ctx() -> Transfers {
    Transfers {
        access: Arc::new(arc_swap::ArcSwap::from_pointee(Access {
            allow: vec!["127.0.0.1/32".parse().unwrap()],
            keys: vec![TsigKey::parse(&key_text()).unwrap()],
            zone_allow: Default::default(),
        })),
        secondaries: Arc::default(),
        updates: None,
    }
}

fn signer(secret: &[u8]) -> TSigner {
    TSigner::new(
        secret.to_vec(),
        TsigAlgorithm::HmacSha256,
        Name::from_ascii("xfr.example.").unwrap(),
        300,
    )
    .unwrap()
}

/// A signed zone with `n` nodes published at serial 2.
fn zone(n: usize, policy: crate::dnssec::policy::ZonePolicy) -> (tempfile::TempDir, SignedZone) {
    let (dir, mut z, _) = signed_zone("example.test", ZONE, policy, T0);
    let rows: Vec<_> = (0..n)
        .map(|i| node(&format!("n{i}"), &format!("{i:040x}"), 1))
        .collect();
    publish(&mut z, &rows, &[], 2, T0);
    (dir, z)
}

fn request(qtype: RecordType, have: Option<u32>) -> Message {
    let apex = Name::from_ascii("example.test.").unwrap();
    let mut m = Message::query();
    m.add_query(Query::query(apex.clone(), qtype));
    if let Some(serial) = have {
        let soa = SOA::new(apex.clone(), apex.clone(), serial, 0, 0, 0, 0);
        m.add_authority(Record::from_rdata(apex, 0, RData::SOA(soa)));
    }
    m
}

/// Runs one transfer and returns the answer messages' bytes.
fn run(ctx: &Transfers, set: &ZoneSet, msg: &[u8], peer: &str) -> Vec<Vec<u8>> {
    let mut out: Vec<u8> = Vec::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(transfer(ctx, set, msg, peer.parse().unwrap(), &mut out))
        .unwrap();
    let mut messages = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        messages.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    messages
}

fn answers(messages: &[Vec<u8>]) -> Vec<Record> {
    messages
        .iter()
        .flat_map(|m| Message::from_vec(m).unwrap().answers)
        .collect()
}

fn set_of(z: &ZoneSnapshot) -> ZoneSet {
    ZoneSet::new(vec![Arc::new(z.clone())])
}

fn rcode(message: &[u8]) -> u16 {
    u16::from(Message::from_vec(message).unwrap().metadata.response_code)
}

#[test]
fn axfr_carries_the_whole_signed_zone_between_two_soas() {
    for policy in both_denials() {
        let (_d, z) = zone(300, policy.clone());
        let msg = request(RecordType::AXFR, None).to_vec().unwrap();
        let messages = run(&ctx(), &set_of(&z.snapshot), &msg, ALLOWED);
        assert!(
            messages.len() > 1,
            "{policy:?}: 300 signed nodes take several messages"
        );
        for m in &messages {
            let m = Message::from_vec(m).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert!(m.metadata.authoritative);
            assert_eq!(m.queries.len(), 1);
        }
        let mut rrs = answers(&messages);
        assert_eq!(rrs.first().unwrap().record_type(), RecordType::SOA);
        assert_eq!(rrs.last().unwrap().record_type(), RecordType::SOA);
        let soas = rrs.iter().filter(|r| r.record_type() == RecordType::SOA);
        assert_eq!(soas.count(), 2);
        rrs.pop();
        let txt = rrs
            .iter()
            .filter(|r| r.record_type() == RecordType::TXT)
            .count();
        assert_eq!(txt, 300);
        let (denial, extra) = match policy.denial {
            crate::dnssec::policy::Denial::Nsec => (RecordType::NSEC, 0),
            crate::dnssec::policy::Denial::Nsec3 => (RecordType::NSEC3, 1),
        };
        // Every node, ns1 and the apex have a denial record (NSEC3: one per hashed name).
        assert_eq!(
            rrs.iter().filter(|r| r.record_type() == denial).count(),
            302
        );
        // Every RRset verifies against the zone's DNSKEY.
        let dnskey = rrs
            .iter()
            .find_map(|r| match &r.data {
                RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::DNSKEY(k)) => {
                    Some(k.clone())
                }
                _ => None,
            })
            .unwrap();
        let mut all = Message::query();
        all.add_answers(rrs);
        let verified = verify_all(&all, &dnskey);
        // The TXTs, the denial records, and SOA, NS, A, DNSKEY (and NSEC3PARAM).
        assert_eq!(verified, 300 + 302 + 4 + extra, "{policy:?}");
    }
}

#[test]
fn refuses_unknown_addresses_and_bad_keys() {
    let (_d, z) = zone(3, Default::default());
    let set = set_of(&z.snapshot);
    let c = ctx();
    let msg = request(RecordType::AXFR, None).to_vec().unwrap();
    let m = run(&c, &set, &msg, OTHER);
    assert_eq!(m.len(), 1);
    assert_eq!(rcode(&m[0]), rcode::REFUSED);
    assert!(Message::from_vec(&m[0]).unwrap().answers.is_empty());

    // Signed with a key of the right name but the wrong secret: NOTAUTH, from anywhere.
    let mut req = request(RecordType::AXFR, None);
    let (sig, _) = signer(b"not the right secret at all!")
        .sign_message(&req, unix_now())
        .unwrap();
    req.set_signature(sig);
    let m = run(&c, &set, &req.to_vec().unwrap(), ALLOWED);
    assert_eq!(rcode(&m[0]), rcode::NOTAUTH);
    assert!(Message::from_vec(&m[0]).unwrap().answers.is_empty());
    // An unknown zone.
    let mut other = Message::query();
    other.add_query(Query::query(
        Name::from_ascii("other.test.").unwrap(),
        RecordType::AXFR,
    ));
    let m = run(&c, &set, &other.to_vec().unwrap(), ALLOWED);
    assert_eq!(rcode(&m[0]), rcode::NOTAUTH);
    let (list, counts) = c.secondaries.report("example.test", z.snapshot.serial);
    assert_eq!(counts.refused, 2);
    assert!(list.is_empty(), "refused peers are not secondaries");
}

/// A zone's own `allow-transfer` lets its prefixes transfer that zone only.
#[test]
fn a_zones_own_acl_allows_that_zone() {
    let (_d, z) = zone(3, Default::default());
    let set = set_of(&z.snapshot);
    let c = ctx();
    let msg = request(RecordType::AXFR, None).to_vec().unwrap();
    assert_eq!(rcode(&run(&c, &set, &msg, OTHER)[0]), rcode::REFUSED);
    // Swapped in as a reload does it.
    let allow = |zone: &str| {
        let mut access = (**c.access.load()).clone();
        access.zone_allow.clear();
        access
            .zone_allow
            .insert(zone.into(), vec![format!("{OTHER}/32").parse().unwrap()]);
        c.access.store(Arc::new(access));
    };
    allow("example.test");
    let m = run(&c, &set, &msg, OTHER);
    assert_eq!(rcode(&m[0]), rcode::NOERROR);
    assert!(m.len() > 1 || !Message::from_vec(&m[0]).unwrap().answers.is_empty());
    // Another zone's ACL does not.
    allow("other.test");
    assert_eq!(rcode(&run(&c, &set, &msg, OTHER)[0]), rcode::REFUSED);
}

#[test]
fn tsig_signs_every_message_of_a_transfer() {
    let (_d, z) = zone(300, Default::default());
    let set = set_of(&z.snapshot);
    let signer = signer(SECRET);
    let mut req = request(RecordType::AXFR, None);
    let (sig, verifier) = signer.sign_message(&req, unix_now()).unwrap();
    req.set_signature(sig);
    // From an address that is not allowed: the key is what lets it in.
    let messages = run(&ctx(), &set, &req.to_vec().unwrap(), OTHER);
    assert!(messages.len() > 1);
    let mut verifier = verifier.unwrap();
    for m in &messages {
        verifier
            .verify(m)
            .expect("each message verifies in sequence");
    }
    // A tampered message breaks the chain.
    let (_, verifier) = signer.sign_message(&req, unix_now()).unwrap();
    let mut verifier = verifier.unwrap();
    let mut bad = messages[0].clone();
    bad[40] ^= 1;
    assert!(verifier.verify(&bad).is_err());
}

#[test]
fn signed_queries_get_signed_answers() {
    let (_d, z) = zone(1, Default::default());
    let set = set_of(&z.snapshot);
    let mut req = request(RecordType::SOA, None);
    let (sig, verifier) = signer(SECRET).sign_message(&req, unix_now()).unwrap();
    req.set_signature(sig);
    let wire = req.to_vec().unwrap();
    let mut out = Vec::new();
    assert!(signed_query(&ctx(), &set, &wire, Transport::Udp, &mut out));
    let answer = verifier
        .unwrap()
        .verify(&out)
        .expect("the answer is signed");
    assert_eq!(answer.answers[0].record_type(), RecordType::SOA);
    // The hot path defers it here rather than answering unsigned.
    let mut plain = Vec::new();
    assert_eq!(
        super::super::answer::handle(&set, &wire, Transport::Udp, &mut plain),
        super::super::answer::Reply::Defer(super::super::answer::Deferred::Signed)
    );
    // A bad signature gets NOTAUTH.
    let mut req = request(RecordType::SOA, None);
    let (sig, _) = signer(b"not the right secret at all!")
        .sign_message(&req, unix_now())
        .unwrap();
    req.set_signature(sig);
    assert!(signed_query(
        &ctx(),
        &set,
        &req.to_vec().unwrap(),
        Transport::Udp,
        &mut out
    ));
    assert_eq!(rcode(&out), rcode::NOTAUTH);
}

/// A zone whose `big` TXT record holds two character-strings, the second `extra` long.
fn big_txt_zone(extra: usize) -> (tempfile::TempDir, SignedZone) {
    let text = format!(
        "{ZONE}big IN TXT \"{}\" \"{}\"\n",
        "a".repeat(200),
        "b".repeat(extra)
    );
    let (dir, z, _) = signed_zone("example.test", &text, Default::default(), T0);
    (dir, z)
}

/// `big.example.test. TXT` with EDNS and a 512-byte UDP size, without DO.
fn big_query() -> Message {
    let mut q = Message::query();
    q.add_query(Query::query(
        Name::from_ascii("big.example.test.").unwrap(),
        RecordType::TXT,
    ));
    let mut edns = hickory_proto::op::Edns::new();
    edns.set_max_payload(512);
    q.set_edns(edns);
    q
}

#[test]
fn a_signed_udp_answer_that_the_tsig_would_push_past_the_limit_is_truncated_and_signed() {
    // Size the record so that the unsigned answer is 40 bytes under the requester's 512: it
    // fits alone, but not with the 84-byte TSIG record of an hmac-sha256 key.
    let key = TsigKey::parse(&key_text()).unwrap();
    assert_eq!(key.record_len(), 84);
    let unsigned = |z: &SignedZone| {
        let mut out = Vec::new();
        assert!(respond(
            &set_of(&z.snapshot),
            &big_query().to_vec().unwrap(),
            Transport::Udp,
            &mut out
        ));
        out
    };
    let (_d, probe) = big_txt_zone(100);
    let extra = 100 + (512 - 40) - unsigned(&probe).len();
    let (_d, z) = big_txt_zone(extra);
    let plain = unsigned(&z);
    assert_eq!(plain.len(), 512 - 40);
    assert_eq!(plain[2] & 0x02, 0, "unsigned, it fits without TC");
    let set = set_of(&z.snapshot);

    // Asks `query` signed with the key, over `transport`; the answer's size, and the answer as
    // the TSIG verifier read it.
    let ask = |query: &Message, transport| {
        let mut signed = query.clone();
        let (sig, verifier) = signer(SECRET).sign_message(&signed, unix_now()).unwrap();
        signed.set_signature(sig);
        let mut out = Vec::new();
        assert!(signed_query(
            &ctx(),
            &set,
            &signed.to_vec().unwrap(),
            transport,
            &mut out
        ));
        let m = verifier
            .unwrap()
            .verify(&out)
            .expect("the answer is signed");
        (out.len(), m)
    };

    let (len, m) = ask(&big_query(), Transport::Udp);
    assert!(len <= 512, "{len} bytes for a 512-byte requester");
    assert!(m.metadata.truncation, "TC set (RFC 8945 §5.3)");
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());

    // An answer too large even without the TSIG record is truncated as any UDP answer is:
    // TC, and the RCODE kept (here a DNSSEC NXDOMAIN for a long name).
    let long = format!(
        "{}.{}.{}.example.test.",
        "x".repeat(60),
        "y".repeat(60),
        "z".repeat(60)
    );
    let mut nx = Message::query();
    nx.add_query(Query::query(
        Name::from_ascii(&long).unwrap(),
        RecordType::TXT,
    ));
    let mut edns = hickory_proto::op::Edns::new();
    edns.set_max_payload(512);
    edns.set_dnssec_ok(true);
    nx.set_edns(edns);
    let mut plain = Vec::new();
    assert!(respond(
        &set,
        &nx.to_vec().unwrap(),
        Transport::Udp,
        &mut plain
    ));
    assert!(super::super::answer::truncated(&plain));
    let (len, m) = ask(&nx, Transport::Udp);
    assert!(len <= 512 && m.metadata.truncation);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    // Over TCP the whole answer comes, signed.
    let (_, m) = ask(&big_query(), Transport::Tcp);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers[0].record_type(), RecordType::TXT);
}

#[test]
fn ixfr_sends_the_journal_or_one_soa_or_the_whole_zone() {
    let (_d, mut z) = zone(5, Default::default());
    let a = z.snapshot.clone();
    publish(
        &mut z,
        &[node("n1", &"a".repeat(40), 2)],
        &["n2"],
        3,
        T0 + 5,
    );
    let b = z.snapshot.clone();
    publish(&mut z, &[node("n9", &"b".repeat(40), 1)], &[], 4, T0 + 6);
    let mut c = z.snapshot.clone();
    let (ab, bc) = (journal::diff(&a, &b), journal::diff(&b, &c));
    for (id, from, to, d) in [(1, 2, 3, &ab), (2, 3, 4, &bc)] {
        let entry = JournalEntry {
            serial_from: from,
            serial_to: to,
            created: 0,
            diff: d.clone().into(),
        };
        c.journal.insert(id, Arc::new(entry));
    }
    let set = set_of(&c);
    let cx = ctx();
    let ixfr = |have| request(RecordType::IXFR, Some(have)).to_vec().unwrap();

    let rrs = answers(&run(&cx, &set, &ixfr(2), ALLOWED));
    let soas: Vec<u32> = rrs
        .iter()
        .filter_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
        .collect();
    assert_eq!(
        soas,
        [4, 2, 3, 3, 4, 4],
        "current, each step's old and new, current"
    );
    let expected = 2 + journal::split(&ab).count() + journal::split(&bc).count();
    assert_eq!(rrs.len(), expected);

    // Current, or newer: one SOA.
    for have in [4, 5] {
        let rrs = answers(&run(&cx, &set, &ixfr(have), ALLOWED));
        assert_eq!(rrs.len(), 1);
        assert_eq!(rrs[0].record_type(), RecordType::SOA);
    }
    // Older than the journal: the whole zone, AXFR-shaped.
    let rrs = answers(&run(&cx, &set, &ixfr(1), ALLOWED));
    assert!(rrs.len() > 10);
    assert_ne!(rrs[1].record_type(), RecordType::SOA);
    let (_, counts) = cx.secondaries.report("example.test", 4);
    assert_eq!(
        (counts.ixfr, counts.current, counts.ixfr_fallback),
        (1, 2, 1)
    );
}
