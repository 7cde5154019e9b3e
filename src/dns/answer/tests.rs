//! The answer path, checked by decoding every response with hickory-proto.

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{
    Edns as HEdns, Message, MessageType, OpCode, Query as HQuery, ResponseCode,
};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use super::*;
use crate::dns::cookie::Secrets;
use crate::dns::rrl::Limits;
use crate::dns::shield::Shield;
use crate::dnssec::policy::{Denial, ZonePolicy};
use crate::dnssec::testing::{node, publish, signed_zone, verify_all, zone_set};
use crate::zone::snapshot::ZoneSet;

const NOW: u32 = 1_800_000_000;

const ZONE: &str = "$TTL 3600
@     IN SOA ns1 hostmaster 42 3600 900 1209600 60
      IN NS  ns1
      IN NS  ns2
      IN MX  10 mail
ns1   IN A    127.0.0.1
ns1   IN AAAA ::1
ns2   IN A    127.0.0.2
mail  IN A    127.0.0.3
www   IN CNAME ns1
a.b   IN TXT \"deep\"
";

/// The example zone, signed, with node n1 (seq 3) published at serial 43.
fn zones_with(policy: ZonePolicy) -> (ZoneSet, hickory_proto::dnssec::rdata::DNSKEY) {
    let mut text = ZONE.to_owned();
    // A name with an RRset too big for 512 bytes, for truncation.
    for i in 0..30 {
        text.push_str(&format!("big IN TXT \"{i:02} {}\"\n", "x".repeat(40)));
    }
    let (_dir, mut z, _) = signed_zone("example.test", &text, policy, NOW);
    publish(&mut z, &[node("n1", &"ab".repeat(20), 3)], &[], 43, NOW);
    let key = z.signer().key().dnskey.clone();
    (zone_set(&z), key)
}

fn zones() -> ZoneSet {
    zones_with(ZonePolicy::default()).0
}

fn query(name: &str, rtype: RecordType, edns: Option<(u16, bool)>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0xBEEF;
    m.metadata.recursion_desired = true;
    m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
    if let Some((size, dnssec_ok)) = edns {
        let mut e = HEdns::new();
        e.set_max_payload(size);
        e.set_dnssec_ok(dnssec_ok);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn ask_raw(zones: &ZoneSet, msg: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    respond(zones, msg, transport, &mut out).then_some(out)
}

fn ask(
    zones: &ZoneSet,
    name: &str,
    rtype: RecordType,
    edns: Option<(u16, bool)>,
) -> (Message, usize) {
    let wire = ask_raw(zones, &query(name, rtype, edns), Transport::Udp).expect("an answer");
    (
        Message::from_vec(&wire).expect("hickory decodes it"),
        wire.len(),
    )
}

#[test]
fn node_txt() {
    let z = zones();
    let (m, len) = ask(&z, "N1.Example.Test.", RecordType::TXT, None);
    assert_eq!(m.metadata.id, 0xBEEF);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert!(m.metadata.authoritative);
    assert!(m.metadata.recursion_desired);
    assert!(!m.metadata.recursion_available);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    // The question is echoed as asked.
    assert_eq!(m.queries[0].name().to_ascii(), "N1.Example.Test.");
    assert_eq!(m.answers.len(), 1);
    let rr = &m.answers[0];
    assert_eq!(rr.name.to_ascii(), "N1.Example.Test.");
    assert_eq!((rr.ttl, rr.dns_class), (60, DNSClass::IN));
    let RData::TXT(txt) = &rr.data else {
        panic!("{rr:?}")
    };
    let text = String::from_utf8(txt.txt_data[0].to_vec()).unwrap();
    assert_eq!(
        text,
        format!("v=herald1 commit={} seq=3 ts=1764086400", "ab".repeat(20))
    );
    assert!(m.authorities.is_empty() && m.additionals.is_empty() && m.edns.is_none());
    // header 12 + question 21 + owner pointer 2 + fixed 10 + rdata 1 + 89
    assert_eq!(len, 12 + 21 + 2 + 10 + 1 + text.len());
}

#[test]
fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let z = zones();
    for (name, rtype, rcode) in [
        (
            "nope.example.test.",
            RecordType::TXT,
            ResponseCode::NXDomain,
        ),
        (
            "x.n1.example.test.",
            RecordType::TXT,
            ResponseCode::NXDomain,
        ),
        ("n1.example.test.", RecordType::A, ResponseCode::NoError),
        ("b.example.test.", RecordType::TXT, ResponseCode::NoError), // empty non-terminal
        ("example.test.", RecordType::TXT, ResponseCode::NoError),
    ] {
        let (m, _) = ask(&z, name, rtype, Some((1232, false)));
        assert_eq!(m.metadata.response_code, rcode, "{name}");
        assert!(m.metadata.authoritative, "{name}");
        assert!(m.answers.is_empty(), "{name}");
        assert_eq!(m.authorities.len(), 1, "{name}");
        let soa = &m.authorities[0];
        assert_eq!(soa.name, Name::from_ascii("example.test.").unwrap());
        assert_eq!(soa.ttl, 60, "min(3600, MINIMUM 60)");
        let RData::SOA(s) = &soa.data else { panic!() };
        assert_eq!(s.serial, 43);
        assert_eq!(s.mname, Name::from_ascii("ns1.example.test.").unwrap());
        assert!(m.edns.is_some(), "{name}: OPT echoed");
    }
}

#[test]
fn apex_records_and_glue() {
    let z = zones();
    let (m, _) = ask(&z, "example.test.", RecordType::SOA, None);
    assert_eq!(m.answers[0].ttl, 3600);
    let (m, _) = ask(&z, "example.test.", RecordType::NS, None);
    assert_eq!(m.answers.len(), 2);
    let glue: Vec<(String, RecordType)> = m
        .additionals
        .iter()
        .map(|r| (r.name.to_ascii(), r.record_type()))
        .collect();
    assert_eq!(
        glue,
        [
            ("ns1.example.test.".to_owned(), RecordType::A),
            ("ns1.example.test.".to_owned(), RecordType::AAAA),
            ("ns2.example.test.".to_owned(), RecordType::A),
        ]
    );
    let (m, _) = ask(&z, "example.test.", RecordType::MX, None);
    assert_eq!(m.additionals[0].name.to_ascii(), "mail.example.test.");
}

#[test]
fn cname_any_and_static_records() {
    let z = zones();
    let (m, _) = ask(&z, "www.example.test.", RecordType::A, None);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);
    let (m, _) = ask(&z, "a.b.example.test.", RecordType::TXT, None);
    assert_eq!(m.answers[0].record_type(), RecordType::TXT);
    let (m, _) = ask(&z, "n1.example.test.", RecordType::ANY, None);
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].record_type(), RecordType::TXT);
}

#[test]
fn refused_outside_the_zones_and_for_other_classes() {
    let z = zones();
    let (m, _) = ask(&z, "example.org.", RecordType::A, Some((1232, true)));
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert!(!m.metadata.authoritative);
    assert_eq!(m.queries.len(), 1);
    assert!(m.edns.as_ref().unwrap().flags().dnssec_ok);

    let mut chaos = query("version.bind.", RecordType::TXT, None);
    let n = chaos.len();
    chaos[n - 1] = 3; // class CH
    let m = Message::from_vec(&ask_raw(&z, &chaos, Transport::Udp).unwrap()).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let (m, _) = ask(&z, "example.test.", RecordType::AXFR, None);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
}

#[test]
fn edns_is_echoed_with_our_size() {
    let z = zones();
    let (m, _) = ask(&z, "n1.example.test.", RecordType::TXT, Some((4096, true)));
    let e = m.edns.expect("OPT");
    assert_eq!(e.max_payload(), 1232);
    assert!(e.flags().dnssec_ok);
    assert_eq!(e.version(), 0);
}

#[test]
fn rfc8906_errors() {
    let z = zones();
    // BADVERS: extended RCODE 16, OPT version 0, question echoed.
    let mut m = Message::query();
    m.add_query(HQuery::query(
        Name::from_ascii("n1.example.test.").unwrap(),
        RecordType::TXT,
    ));
    let mut e = HEdns::new();
    e.set_version(1);
    m.set_edns(e);
    let r = Message::from_vec(&ask_raw(&z, &m.to_vec().unwrap(), Transport::Udp).unwrap()).unwrap();
    // Extended RCODE 16 (hickory names it BADSIG, which shares the number with BADVERS).
    assert_eq!(u16::from(r.metadata.response_code), 16);
    assert_eq!(r.edns.unwrap().version(), 0);
    assert!(r.answers.is_empty());

    // NOTIMP for another opcode, with the opcode echoed.
    let mut m = Message::query();
    m.metadata.op_code = OpCode::Status;
    m.add_query(HQuery::query(
        Name::from_ascii("n1.example.test.").unwrap(),
        RecordType::TXT,
    ));
    let r = Message::from_vec(&ask_raw(&z, &m.to_vec().unwrap(), Transport::Udp).unwrap()).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(r.metadata.op_code, OpCode::Status);

    // UPDATE leaves the query path for the cold path (super::update); a response with the
    // UPDATE opcode is dropped like any response.
    let mut m = Message::query();
    m.metadata.op_code = OpCode::Update;
    m.add_query(HQuery::query(
        Name::from_ascii("example.test.").unwrap(),
        RecordType::SOA,
    ));
    let wire = m.to_vec().unwrap();
    let mut out = Vec::new();
    for transport in [Transport::Udp, Transport::Tcp] {
        assert_eq!(
            handle(&z, &wire, transport, &mut out),
            Reply::Defer(Deferred::Update)
        );
        assert!(out.is_empty());
    }
    let mut response = wire.clone();
    response[2] |= 0x80;
    assert_eq!(handle(&z, &response, Transport::Udp, &mut out), Reply::Drop);

    // FORMERR for a broken question; the id is kept.
    let mut broken = query("n1.example.test.", RecordType::TXT, None);
    broken.truncate(broken.len() - 2);
    let raw = ask_raw(&z, &broken, Transport::Udp).unwrap();
    let r = Message::from_vec(&raw).unwrap();
    assert_eq!(
        (r.metadata.id, r.metadata.response_code),
        (0xBEEF, ResponseCode::FormErr)
    );
    assert!(r.queries.is_empty());

    // No answer to a response or to garbage shorter than a header.
    let mut resp = query("n1.example.test.", RecordType::TXT, None);
    resp[2] |= 0x80;
    assert!(ask_raw(&z, &resp, Transport::Udp).is_none());
    assert!(ask_raw(&z, &[1, 2, 3], Transport::Udp).is_none());
}

#[test]
fn truncation_over_udp_full_answers_over_tcp() {
    let z = zones();
    let q = query("big.example.test.", RecordType::TXT, None);
    let udp = ask_raw(&z, &q, Transport::Udp).unwrap();
    assert!(udp.len() <= 512);
    let m = Message::from_vec(&udp).unwrap();
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    assert_eq!(m.queries.len(), 1);

    // With EDNS 4096 the cap is still 1232: 30 × 56-byte records do not fit.
    let q = query("big.example.test.", RecordType::TXT, Some((4096, false)));
    let udp = ask_raw(&z, &q, Transport::Udp).unwrap();
    assert!(udp.len() <= 1232);
    let m = Message::from_vec(&udp).unwrap();
    assert!(m.metadata.truncation);
    assert!(m.edns.is_some());

    let tcp = ask_raw(&z, &q, Transport::Tcp).unwrap();
    let m = Message::from_vec(&tcp).unwrap();
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 30);
}

#[test]
fn glue_is_dropped_before_the_answer_is_truncated() {
    let mut text = "@ 3600 IN SOA ns1 h 1 3600 900 1209600 60\n".to_owned();
    for i in 0..12 {
        text.push_str(&format!(
            "@ 3600 IN NS ns{i}\nns{i} 3600 IN A 127.0.0.{i}\nns{i} 3600 IN AAAA ::{i}\n"
        ));
    }
    let (_dir, z, _) = signed_zone("many.test", &text, ZonePolicy::default(), NOW);
    let z = zone_set(&z);

    // Over TCP: 12 NS records and 24 addresses.
    let q = query("many.test.", RecordType::NS, None);
    let m = Message::from_vec(&ask_raw(&z, &q, Transport::Tcp).unwrap()).unwrap();
    assert_eq!((m.answers.len(), m.additionals.len()), (12, 24));
    // Over UDP without EDNS (512 bytes) the NS RRset fits, its glue does not: the glue goes,
    // the answer stays complete and TC stays clear.
    let raw = ask_raw(&z, &q, Transport::Udp).unwrap();
    assert!(raw.len() <= 512);
    let m = Message::from_vec(&raw).unwrap();
    assert!(!m.metadata.truncation);
    assert_eq!((m.answers.len(), m.additionals.len()), (12, 0));
}

/// Untrusted input: mutated and truncated queries never panic, and whatever is answered is a
/// response with the query's ID that hickory can decode.
#[test]
fn mangled_queries_never_panic() {
    let z = zones();
    let seeds: Vec<Vec<u8>> = vec![
        query("n1.example.test.", RecordType::TXT, Some((1232, true))),
        query("big.example.test.", RecordType::TXT, None),
        query("example.test.", RecordType::NS, Some((512, false))),
        query("nope.example.test.", RecordType::A, None),
    ];
    // xorshift: deterministic, no dependency.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::new();
    for i in 0..200_000 {
        let mut msg = seeds[i % seeds.len()].clone();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % msg.len();
            match next() % 3 {
                0 => msg[at] = next() as u8,
                1 => msg.truncate(at.max(1)),
                _ => msg.insert(at, next() as u8),
            }
        }
        for transport in [Transport::Udp, Transport::Tcp] {
            if respond(&z, &msg, transport, &mut out) {
                assert!(out.len() >= 12);
                assert_eq!(out[..2], msg[..2], "the response keeps the query's ID");
                assert!(out[2] & 0x80 != 0, "QR is set");
                if transport == Transport::Udp {
                    assert!(out.len() <= 1232);
                }
                Message::from_vec(&out)
                    .unwrap_or_else(|e| panic!("undecodable answer to {msg:?}: {e}"));
            }
        }
    }
}

fn ask_do(zones: &ZoneSet, name: &str, rtype: RecordType) -> Message {
    let wire = ask_raw(
        zones,
        &query(name, rtype, Some((1232, true))),
        Transport::Udp,
    )
    .unwrap();
    Message::from_vec(&wire).unwrap()
}

#[test]
fn without_do_no_dnssec_records_appear() {
    let z = zones();
    for (name, rtype) in [
        ("n1.example.test.", RecordType::TXT),
        ("nope.example.test.", RecordType::TXT),
        ("n1.example.test.", RecordType::A),
    ] {
        let (m, _) = ask(&z, name, rtype, Some((1232, false)));
        assert!(
            m.all_sections().all(|r| !r.record_type().is_dnssec()),
            "{name}: {m:?}"
        );
    }
}

#[test]
fn do_answers_carry_rrsigs_that_verify() {
    for denial in [Denial::Nsec, Denial::Nsec3] {
        let (z, key) = zones_with(ZonePolicy {
            denial,
            ..ZonePolicy::default()
        });
        for (name, rtype, rrsets) in [
            ("n1.example.test.", RecordType::TXT, 1),
            ("N1.EXAMPLE.test.", RecordType::TXT, 1),
            ("example.test.", RecordType::SOA, 1),
            ("example.test.", RecordType::DNSKEY, 1),
            ("a.b.example.test.", RecordType::TXT, 1),
            ("example.test.", RecordType::NS, 4), // NS, and the glue: ns1 A, ns1 AAAA, ns2 A
        ] {
            let m = ask_do(&z, name, rtype);
            assert_eq!(m.metadata.response_code, ResponseCode::NoError);
            assert_eq!(verify_all(&m, &key), rrsets, "{denial:?} {name} {rtype}");
            assert!(m.edns.as_ref().unwrap().flags().dnssec_ok);
        }
    }
}

/// The NSEC records of an answer's authority section: (owner, next, types).
fn nsecs(m: &Message) -> Vec<(String, String, Vec<RecordType>)> {
    m.authorities
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::NSEC(n)) => Some((
                r.name.to_ascii(),
                n.next_domain_name().to_ascii(),
                n.type_bit_maps().collect(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn nsec_proofs() {
    let (z, key) = zones_with(ZonePolicy::default());
    // NXDOMAIN: the NSEC covering the name, and the one covering *.example.test (the apex's).
    let m = ask_do(&z, "nope.example.test.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(verify_all(&m, &key), 3);
    let got = nsecs(&m);
    // n1 < nope < ns1 in canonical order.
    assert!(
        got.iter()
            .any(|(o, n, _)| o == "n1.example.test." && n == "ns1.example.test."),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|(o, n, _)| o == "example.test." && n == "a.b.example.test."),
        "{got:?}"
    );
    assert_eq!(got.len(), 2);

    // Below a node: n1 is the closest encloser; its NSEC covers both the name and *.n1.
    let m = ask_do(&z, "x.n1.example.test.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let got = nsecs(&m);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "n1.example.test.");

    // NODATA: the name's own NSEC, without the asked type.
    let m = ask_do(&z, "n1.example.test.", RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(verify_all(&m, &key), 2);
    let got = nsecs(&m);
    assert_eq!(got[0].0, "n1.example.test.");
    assert_eq!(
        got[0].2,
        [RecordType::TXT, RecordType::RRSIG, RecordType::NSEC]
    );

    // NODATA at an empty non-terminal: the NSEC that covers it.
    let m = ask_do(&z, "b.example.test.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    let got = nsecs(&m);
    assert_eq!(
        (got[0].0.as_str(), got[0].1.as_str()),
        ("example.test.", "a.b.example.test.")
    );
}

#[test]
fn nsec3_proofs() {
    let (z, key) = zones_with(ZonePolicy {
        denial: Denial::Nsec3,
        ..ZonePolicy::default()
    });
    let count = |m: &Message| {
        m.authorities
            .iter()
            .filter(|r| r.record_type() == RecordType::NSEC3)
            .count()
    };
    // NXDOMAIN: closest encloser (apex) match, next closer and wildcard covers: up to three.
    let m = ask_do(&z, "nope.example.test.", RecordType::TXT);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    let n = count(&m);
    assert!((2..=3).contains(&n), "{n} NSEC3 records");
    assert_eq!(verify_all(&m, &key), 1 + n);
    // NODATA: the matching NSEC3; for an empty non-terminal too.
    for name in ["n1.example.test.", "b.example.test."] {
        let m = ask_do(&z, name, RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert_eq!(count(&m), 1, "{name}");
        verify_all(&m, &key);
    }
    let m = ask_do(&z, "example.test.", RecordType::NSEC3PARAM);
    assert_eq!(m.answers[0].ttl, 0);
    verify_all(&m, &key);
}

/// DESIGN.md: a signed node TXT answer fits in 512 bytes, so no resolver path needs TCP.
#[test]
fn signed_node_answers_fit_512_bytes() {
    for algorithm in [
        hickory_proto::dnssec::Algorithm::ECDSAP256SHA256,
        hickory_proto::dnssec::Algorithm::ED25519,
    ] {
        let policy = ZonePolicy {
            algorithm,
            ..ZonePolicy::default()
        };
        let apex = "fleet-configuration.production.example.org";
        let text = "@ IN SOA ns1 h 1 3600 900 1209600 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n";
        let (_dir, mut z, _) = signed_zone(apex, &format!("$TTL 3600\n{text}"), policy, NOW);
        let label = "f".repeat(63);
        let mut row = node(&label, &"9".repeat(64), u64::MAX / 2);
        row.payload.ts = u64::from(u32::MAX);
        publish(&mut z, &[row], &[], 2, NOW);
        let key = z.signer().key().dnskey.clone();
        let zs = zone_set(&z);
        let name = format!("{label}.{apex}.");
        let wire = ask_raw(
            &zs,
            &query(&name, RecordType::TXT, Some((512, true))),
            Transport::Udp,
        )
        .unwrap();
        let m = Message::from_vec(&wire).unwrap();
        assert!(!m.metadata.truncation, "{algorithm:?}");
        assert_eq!(verify_all(&m, &key), 1);
        assert!(wire.len() <= 512, "{algorithm:?}: {} bytes", wire.len());
    }
}

/// Counts heap allocations made by the current thread, to check the query path makes none.
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    }

    pub struct Counting;

    fn count() {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }

    // SAFETY: every method forwards to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    pub fn allocations() -> usize {
        ALLOCATIONS.with(|c| c.get())
    }
}

/// DESIGN.md: the query path copies prepared bytes and allocates nothing per query, positive
/// or negative, with or without DNSSEC proofs.
#[test]
fn the_query_path_allocates_nothing() {
    for denial in [Denial::Nsec, Denial::Nsec3] {
        let (z, _) = zones_with(ZonePolicy {
            denial,
            ..ZonePolicy::default()
        });
        let queries: Vec<Vec<u8>> = [
            ("n1.example.test.", RecordType::TXT),
            ("nope.example.test.", RecordType::TXT),
            ("x.y.n1.example.test.", RecordType::TXT),
            ("n1.example.test.", RecordType::A),
            ("b.example.test.", RecordType::TXT),
            ("example.test.", RecordType::NS),
            ("example.org.", RecordType::A),
        ]
        .iter()
        .flat_map(|(n, t)| {
            [
                query(n, *t, None),
                query(n, *t, Some((1232, true))),
                query(n, *t, Some((512, true))),
            ]
        })
        .collect();
        // Through the socket loops' entry, with cookies answered (none, a client cookie
        // alone, a valid one) and the rate limiter on, holding back most of them.
        let shield = limited_shield(5, 2);
        let client = Client {
            shield: &shield,
            ip: "192.0.2.1".parse().unwrap(),
        };
        let counters = crate::metrics::QueryCounters::default();
        let valid = {
            let first = with_cookie("n1.example.test.", &[7; 8]);
            let mut out = Vec::new();
            handle_counted(&z, &first, Transport::Udp, &mut out, None, Some(client));
            cookie_of(&out).unwrap()
        };
        let queries: Vec<Vec<u8>> = queries
            .into_iter()
            .chain([
                with_cookie("n1.example.test.", &[7; 8]),
                with_cookie("n1.example.test.", &valid),
                with_cookie("nope.example.test.", &valid),
            ])
            .collect();
        let mut out = Vec::with_capacity(65535);
        for q in &queries {
            assert!(respond(&z, q, Transport::Udp, &mut out));
            handle_counted(
                &z,
                q,
                Transport::Udp,
                &mut out,
                Some(&counters),
                Some(client),
            );
        }
        let before = counting::allocations();
        for _ in 0..10 {
            for q in &queries {
                respond(&z, q, Transport::Udp, &mut out);
                respond(&z, q, Transport::Tcp, &mut out);
                for t in [Transport::Udp, Transport::Tcp] {
                    handle_counted(&z, q, t, &mut out, Some(&counters), Some(client));
                }
            }
        }
        assert_eq!(
            counting::allocations() - before,
            0,
            "{denial:?}: the answer path allocated"
        );
        // The counter does count: one allocation shows.
        drop(std::hint::black_box(Vec::<u8>::with_capacity(16)));
        assert_eq!(counting::allocations() - before, 1);
    }
}

/// A TXT query with EDNS and a COOKIE option of `cookie` (client cookie, then server cookie).
fn with_cookie(name: &str, cookie: &[u8]) -> Vec<u8> {
    let mut m = Message::from_vec(&query(name, RecordType::TXT, Some((1232, false)))).unwrap();
    let mut e = m.edns.take().unwrap();
    e.options_mut()
        .insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
            10,
            cookie.to_vec(),
        ));
    m.set_edns(e);
    m.to_vec().unwrap()
}

/// The COOKIE option of an answer, decoded by hickory.
fn cookie_of(wire: &[u8]) -> Option<Vec<u8>> {
    let m = Message::from_vec(wire).expect("hickory decodes it");
    match m
        .edns
        .as_ref()?
        .option(hickory_proto::rr::rdata::opt::EdnsCode::Cookie)?
    {
        hickory_proto::rr::rdata::opt::EdnsOption::Unknown(10, v) => Some(v.clone()),
        other => panic!("{other:?}"),
    }
}

fn limited_shield(rate: u32, slip: u32) -> Shield {
    Shield::new(
        Secrets::random(),
        Some(Limits {
            rate,
            nxdomain_rate: 1,
            slip,
        }),
    )
}

/// RFC 7873 §5.2: a query with a cookie gets it back with a server cookie; sent again, the
/// server cookie checks. A malformed option is FORMERR, and a server without a shield (the
/// cold path, the fuzzer) answers without a cookie.
#[test]
fn cookies_are_answered_and_remembered() {
    let z = zones();
    let shield = Shield::default();
    let client = Client {
        shield: &shield,
        ip: "198.51.100.7".parse().unwrap(),
    };
    let stats = crate::metrics::QueryStats::default();
    let counters = stats.block();
    let mut out = Vec::new();
    let first = with_cookie("n1.example.test.", &[1, 2, 3, 4, 5, 6, 7, 8]);
    for transport in [Transport::Udp, Transport::Tcp] {
        assert_eq!(
            handle_counted(
                &z,
                &first,
                transport,
                &mut out,
                Some(&counters),
                Some(client)
            ),
            Reply::Send
        );
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.answers.len(), 1, "the answer itself is whole");
        let cookie = cookie_of(&out).unwrap();
        assert_eq!(cookie.len(), 24);
        assert_eq!(cookie[..8], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(cookie[8], 1, "RFC 9018 version");
    }
    let learned = cookie_of(&out).unwrap();
    handle_counted(
        &z,
        &with_cookie("n1.example.test.", &learned),
        Transport::Udp,
        &mut out,
        Some(&counters),
        Some(client),
    );
    assert_eq!(
        cookie_of(&out).unwrap(),
        learned,
        "a fresh cookie is echoed"
    );
    // From another address the same cookie is not valid: a new one comes back.
    let elsewhere = Client {
        ip: "198.51.100.8".parse().unwrap(),
        ..client
    };
    handle_counted(
        &z,
        &with_cookie("n1.example.test.", &learned),
        Transport::Udp,
        &mut out,
        Some(&counters),
        Some(elsewhere),
    );
    assert_ne!(cookie_of(&out).unwrap(), learned);
    assert_eq!(
        stats.snapshot().shield,
        [1, 3, 0, 0],
        "valid, new, slipped, dropped"
    );

    // A client cookie and one stray byte.
    let bad = with_cookie("n1.example.test.", &[1; 9]);
    handle_counted(&z, &bad, Transport::Udp, &mut out, None, Some(client));
    assert_eq!(
        Message::from_vec(&out).unwrap().metadata.response_code,
        ResponseCode::FormErr
    );
    assert!(respond(&z, &first, Transport::Udp, &mut out));
    assert_eq!(cookie_of(&out), None);
}

/// Past the rate, answers are dropped and every `slip`-th goes out truncated; a client with a
/// cookie gets BADCOOKIE and a fresh cookie instead; a valid cookie and TCP are never limited.
#[test]
fn the_rate_limiter_drops_slips_and_spares_valid_cookies() {
    let z = zones();
    let shield = limited_shield(3, 2);
    let client = Client {
        shield: &shield,
        ip: "203.0.113.50".parse().unwrap(),
    };
    let stats = crate::metrics::QueryStats::default();
    let counters = stats.block();
    let plain = query("n1.example.test.", RecordType::TXT, Some((1232, false)));
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..7 {
        let reply = handle_counted(
            &z,
            &plain,
            Transport::Udp,
            &mut out,
            Some(&counters),
            Some(client),
        );
        seen.push(match reply {
            Reply::Send => {
                let m = Message::from_vec(&out).unwrap();
                assert_eq!(m.metadata.id, 0xBEEF);
                assert_eq!(m.queries.len(), 1, "the question is echoed");
                if m.metadata.truncation {
                    assert!(m.answers.is_empty() && m.authorities.is_empty());
                    assert!(m.edns.is_some(), "the OPT record stays");
                    "tc"
                } else {
                    assert_eq!(m.answers.len(), 1);
                    "answer"
                }
            }
            Reply::Drop => "drop",
            Reply::Defer(d) => panic!("{d:?}"),
        });
    }
    assert_eq!(
        seen,
        ["answer", "answer", "answer", "tc", "drop", "tc", "drop"]
    );
    // The same /24, over TCP: not limited.
    assert_eq!(
        handle_counted(&z, &plain, Transport::Tcp, &mut out, None, Some(client)),
        Reply::Send
    );
    assert!(!Message::from_vec(&out).unwrap().metadata.truncation);

    // A cookie-aware client of the same /24 without a valid cookie: BADCOOKIE with a fresh
    // cookie when the answer slips.
    let fresh = with_cookie("n1.example.test.", &[9; 8]);
    let mut got_badcookie = None;
    for _ in 0..4 {
        if handle_counted(
            &z,
            &fresh,
            Transport::Udp,
            &mut out,
            Some(&counters),
            Some(client),
        ) == Reply::Send
        {
            got_badcookie = Some(out.clone());
        }
    }
    let wire = got_badcookie.expect("one slipped");
    let m = Message::from_vec(&wire).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::BADCOOKIE);
    assert!(m.answers.is_empty());
    assert!(!m.metadata.authoritative);
    let cookie = cookie_of(&wire).unwrap();
    assert_eq!(cookie[..8], [9; 8]);
    // With that cookie, every answer goes out whole.
    let valid = with_cookie("n1.example.test.", &cookie);
    for _ in 0..20 {
        assert_eq!(
            handle_counted(
                &z,
                &valid,
                Transport::Udp,
                &mut out,
                Some(&counters),
                Some(client)
            ),
            Reply::Send
        );
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    }
    // Valid and new cookies; of the eight held back (four plain, four with a new cookie),
    // every second slipped.
    assert_eq!(stats.snapshot().shield, [20, 4, 4, 4]);
}

/// NXDOMAIN has its own, lower limit (here 1 a second).
#[test]
fn nxdomain_is_limited_on_its_own() {
    let z = zones();
    let shield = limited_shield(100, 0);
    let client = Client {
        shield: &shield,
        ip: "2001:db8:1:2::3".parse().unwrap(),
    };
    let nx = query("nope.example.test.", RecordType::TXT, None);
    let pos = query("n1.example.test.", RecordType::TXT, None);
    let mut out = Vec::new();
    let mut ask = |q: &[u8]| handle_counted(&z, q, Transport::Udp, &mut out, None, Some(client));
    assert_eq!(ask(&nx), Reply::Send);
    assert_eq!(ask(&nx), Reply::Drop);
    assert_eq!(ask(&pos), Reply::Send);
}
