//! Seed inputs for the targets: the messages a resolver, a secondary and `nsupdate` send, so
//! that the fuzzer starts from every path (answers, denials, EDNS, transfers, TSIG, UPDATE)
//! rather than finding them byte by byte. [`check`] proves that each seed reaches its path;
//! `write_seeds` (an ignored test) writes them into `fuzz/corpus/<target>`.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::rdata::{SOA, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};

use super::{ALLOWED, OTHER, UPDATE_KEY, XFR_KEY, ZONES, frames, run_tcp};

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A query for `qname`/`rtype`, with EDNS and the DO bit when `dnssec`.
pub fn query(id: u16, qname: &str, rtype: RecordType, dnssec: bool) -> Message {
    let mut m = Message::query();
    m.metadata.id = id;
    m.add_query(Query::query(name(qname), rtype));
    if dnssec {
        let mut edns = Edns::new();
        edns.set_dnssec_ok(true);
        edns.set_max_payload(1232);
        m.set_edns(edns);
    }
    m
}

/// An IXFR request from `serial`.
fn ixfr(id: u16, zone: &str, serial: u32) -> Message {
    let mut m = query(id, zone, RecordType::IXFR, false);
    let soa = SOA::new(name("ns1."), name("h."), serial, 0, 0, 0, 0);
    m.add_authority(Record::from_rdata(name(zone), 0, RData::SOA(soa)));
    m
}

/// `m` signed with `key` now.
fn signed(mut m: Message, (key, secret): (&str, &[u8])) -> Message {
    let signer = TSigner::new(secret.to_vec(), TsigAlgorithm::HmacSha256, name(key), 300).unwrap();
    let (tsig, _) = signer.sign_message(&m, now()).unwrap();
    m.set_signature(tsig);
    m
}

/// An UPDATE of example.test that publishes `node`.
fn update(id: u16, node: &str) -> Message {
    let mut m = Message::new(id, MessageType::Query, OpCode::Update);
    m.add_query(Query::query(name("example.test."), RecordType::SOA));
    let commit = format!("{:040x}", u64::from(id));
    m.add_authority(Record::from_rdata(
        name(&format!("{node}.example.test.")),
        60,
        RData::TXT(TXT::new(vec![commit])),
    ));
    m
}

fn wire(m: &Message) -> Vec<u8> {
    m.to_vec().unwrap()
}

fn framed(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(m);
    }
    out
}

/// The query seeds: answers, denials, glue, CNAME, ANY, EDNS, other classes and opcodes.
pub fn queries() -> Vec<Vec<u8>> {
    use RecordType::*;
    let mut out = Vec::new();
    let mut id = 1;
    for zone in ZONES {
        for (qname, rtype) in [
            ("n1", TXT),
            ("N7", TXT),
            ("n1", A),
            ("missing", TXT),
            ("@", SOA),
            ("@", NS),
            ("@", MX),
            ("@", DNSKEY),
            ("@", ANY),
            ("www", A),
            ("a.b.n1", TXT),
        ] {
            let qname = match qname {
                "@" => format!("{zone}."),
                label => format!("{label}.{zone}."),
            };
            for dnssec in [false, true] {
                out.push(wire(&query(id, &qname, rtype, dnssec)));
                id += 1;
            }
        }
    }
    out.push(wire(&query(id, "elsewhere.invalid.", TXT, false)));
    let mut chaos = query(id + 1, "version.bind.", TXT, false);
    chaos.queries[0].query_class = DNSClass::CH;
    out.push(wire(&chaos));
    let mut notify = query(id + 2, "example.test.", SOA, false);
    notify.metadata.op_code = OpCode::Notify;
    out.push(wire(&notify));
    // DNS cookies: a client cookie alone, and with a server cookie (made with another secret,
    // so not valid here: the fuzzer finds its way to the other branches from these).
    for (i, cookie) in [
        vec![7u8; 8],
        [&[7u8; 8][..], &[1, 0, 0, 0], &[0x6b, 0x0d, 0x9a, 0x6f], &[9; 8]].concat(),
    ]
    .into_iter()
    .enumerate()
    {
        let mut m = query(id + 3 + i as u16, "n1.example.test.", TXT, true);
        let mut edns = m.edns.take().unwrap();
        edns.options_mut().insert(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(10, cookie));
        m.set_edns(edns);
        out.push(wire(&m));
    }
    out
}

/// The transfer seeds, each prefixed with its peer byte (odd: admitted by address).
pub fn transfers() -> Vec<Vec<u8>> {
    let with_peer = |peer: u8, m: Message| {
        let mut v = vec![peer];
        v.extend_from_slice(&wire(&m));
        v
    };
    let mut out = Vec::new();
    for (i, zone) in ZONES.iter().enumerate() {
        let apex = format!("{zone}.");
        let id = 100 + 10 * i as u16;
        out.push(with_peer(1, query(id, &apex, RecordType::AXFR, false)));
        out.push(with_peer(0, query(id + 1, &apex, RecordType::AXFR, false)));
        out.push(with_peer(1, ixfr(id + 2, &apex, 1)));
        let axfr = query(id + 3, &apex, RecordType::AXFR, false);
        out.push(with_peer(0, signed(axfr, XFR_KEY)));
        let soa = query(id + 4, &apex, RecordType::SOA, false);
        out.push(with_peer(0, signed(soa, XFR_KEY)));
    }
    out.push(with_peer(0, signed(update(200, "n3"), UPDATE_KEY)));
    out.push(with_peer(1, update(201, "n4")));
    out.push(with_peer(0, signed(update(202, "n5"), XFR_KEY)));
    out
}

/// The TCP seeds: pipelined queries, a transfer among queries, a length that lies.
pub fn streams() -> Vec<Vec<u8>> {
    let q = queries();
    let mut out = vec![framed(&q[..4]), framed(&q[10..20])];
    let axfr = wire(&query(300, "example.test.", RecordType::AXFR, false));
    out.push(framed(&[q[0].clone(), axfr, q[1].clone()]));
    let mut lying = framed(&q[..1]);
    lying.extend_from_slice(&[0xFF, 0xFF, 0x00]);
    out.push(lying);
    out.push(framed(&[Vec::new(), q[2].clone()]));
    for chunk in q.chunks(6) {
        out.push(framed(chunk));
    }
    out
}

fn rcode_of(answer: &[u8]) -> ResponseCode {
    Message::from_vec(answer).unwrap().metadata.response_code
}

/// Each seed reaches the path it was made for: a harness that stopped short of transfers or
/// UPDATE would fuzz nothing there.
pub fn check() {
    for q in queries() {
        super::query(&q);
    }
    let set = super::harness().zones.load();
    let mut out = Vec::new();
    let q = wire(&query(9, "n1.example.test.", RecordType::TXT, true));
    assert!(matches!(
        herald::dns::answer::handle(&set, &q, herald::dns::answer::Transport::Udp, &mut out),
        herald::dns::answer::Reply::Send
    ));
    let m = Message::from_vec(&out).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 2, "the TXT record and its RRSIG");

    let answers = |peer: IpAddr, msg: &[u8]| -> Vec<Vec<u8>> {
        let stream = framed(&[msg.to_vec()]);
        let written = run_tcp(&stream, peer);
        let (frames, rest) = frames(&written);
        assert!(rest.is_empty());
        frames.into_iter().map(<[u8]>::to_vec).collect()
    };
    let seeds = transfers();
    // AXFR from the admitted address: SOA first and last, the nodes between.
    let axfr = answers(ALLOWED, &seeds[0][1..]);
    let records: usize = axfr
        .iter()
        .map(|a| Message::from_vec(a).unwrap().answers.len())
        .sum();
    assert!(records > 2 * super::NODES, "{records} records in the AXFR");
    // From another address, unsigned: REFUSED; signed with the transfer key: the zone.
    assert_eq!(
        rcode_of(&answers(OTHER, &seeds[1][1..])[0]),
        ResponseCode::Refused
    );
    assert!(answers(OTHER, &seeds[3][1..]).len() == axfr.len());
    // IXFR from serial 1: an answer that parses, with records.
    let ixfr = answers(ALLOWED, &seeds[2][1..]);
    assert!(!Message::from_vec(&ixfr[0]).unwrap().answers.is_empty());
    // UPDATE: signed with the scoped key, applied; unsigned or with a transfer-only key,
    // refused.
    let n = seeds.len();
    assert_eq!(
        rcode_of(&answers(OTHER, &seeds[n - 3][1..])[0]),
        ResponseCode::NoError
    );
    assert_eq!(
        rcode_of(&answers(ALLOWED, &seeds[n - 2][1..])[0]),
        ResponseCode::Refused
    );
    assert_eq!(
        rcode_of(&answers(OTHER, &seeds[n - 1][1..])[0]),
        ResponseCode::Refused
    );
    for s in &seeds {
        super::xfr(s);
    }
    for s in streams() {
        super::tcp(&s);
    }
}

#[cfg(test)]
mod tests {
    /// Writes the seeds into `fuzz/corpus/<target>` (`cargo test -- --ignored write_seeds`).
    #[test]
    #[ignore = "writes files into the corpus"]
    fn write_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
        for (target, seeds) in [
            ("query", super::queries()),
            ("xfr", super::transfers()),
            ("tcp", super::streams()),
        ] {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (i, seed) in seeds.iter().enumerate() {
                std::fs::write(dir.join(format!("seed-{i:03}")), seed).unwrap();
            }
        }
    }
}
