//! What the fuzz targets drive, and what must hold for every input.
//!
//! One set of signed zones per process, built the way `herald serve` builds it: zone files,
//! a SQLite store and keys in a temporary data directory, the single writer signing 50 nodes
//! into an NSEC zone and an NSEC3 zone, TSIG keys for transfers and for UPDATE, and the UPDATE
//! intake wired to the writer. The targets then feed bytes into the DNS input path:
//!
//! - [`query`]: one message into the query parser and answer writer, as UDP and as TCP;
//! - [`tcp`]: a byte stream into the TCP connection loop, framing and all;
//! - [`xfr`]: one message over TCP from a peer that `--allow-transfer` admits or not, so that
//!   AXFR, IXFR, TSIG-signed queries and UPDATE take their own paths.
//!
//! Every answer must parse with hickory-proto (an independent parser), carry the query's ID,
//! and echo its question as asked; a UDP answer fits 1,232 bytes; a response is never
//! answered. A panic anywhere is a failure. The corpus of each target (minimised with
//! `cargo fuzz cmin`) is kept in `fuzz/corpus/<target>`, and every input that once failed in
//! `fuzz/regressions/<target>`; this crate's tests replay both on stable.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use herald::dns::answer::{Reply, Transport, handle_counted};
use herald::dns::cookie::Secrets;
use herald::dns::report::Reports;
use herald::dns::rrl::Limits;
use herald::dns::shield::{Client, Shield};
use herald::dns::tcp::serve_stream;
use herald::dns::transfer::{Access, Transfers};
use herald::dns::tsig::TsigKey;
use herald::dns::update::Updates;
use herald::dnssec::policy::{Denial, ZonePolicy};
use herald::metrics::{QueryCounters, QueryStats};
use herald::publish::{self, Publisher, Setup};
use herald::record::{Commit, NodeLabel, SystemClock};
use herald::store::{Change, Store};
use herald::zone::SharedZones;
use hickory_proto::op::Message;

pub mod seeds;

/// The zones: the same records, one denied with NSEC, one with NSEC3.
pub const ZONES: [&str; 2] = ["example.test", "nsec3.test"];
const ZONE_TEXT: &str = r#"$TTL 3600
@    IN SOA ns1 hostmaster 2025112501 3600 900 1209600 60
     IN NS ns1
     IN MX 10 mail
ns1  IN A 127.0.0.1
ns1  IN AAAA ::1
mail IN A 127.0.0.2
www  IN CNAME ns1
info IN TXT "a static record"
"#;
/// A key that may transfer, and one that may also update `n*` of example.test.
pub const XFR_KEY: (&str, &[u8]) = ("xfr.fuzz.", b"0123456789abcdef0123456789abcdef");
pub const UPDATE_KEY: (&str, &[u8]) = ("update.fuzz.", b"fedcba9876543210fedcba9876543210");
/// The peer that `--allow-transfer` admits; any other is not.
pub const ALLOWED: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Nodes published into each zone.
pub const NODES: usize = 50;

/// The largest UDP answer Herald sends (DESIGN: 1232 bytes, RFC 9715's advice).
const UDP_MAX: usize = 1232;

struct Harness {
    runtime: tokio::runtime::Runtime,
    zones: SharedZones,
    transfers: Arc<Transfers>,
    counters: Arc<QueryCounters>,
    /// Cookies and a rate limiter low enough that fuzzing runs into it: every path of the
    /// shield is exercised.
    shield: Shield,
    // Kept alive: the writer thread and the data directory.
    _publisher: Publisher,
    _dir: tempfile::TempDir,
}

fn key_spec((name, secret): (&str, &[u8]), scope: &str) -> String {
    use base64::Engine;
    let secret = base64::engine::general_purpose::STANDARD.encode(secret);
    format!("{name}:hmac-sha256:{secret}{scope}")
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let zones_dir = dir.path().join("zones");
        std::fs::create_dir(&zones_dir).unwrap();
        for zone in ZONES {
            std::fs::write(zones_dir.join(format!("{zone}.zone")), ZONE_TEXT).unwrap();
        }
        let files = herald::zone::file::load_dir(&zones_dir).expect("zone files");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let policies = HashMap::from([(
            ZONES[1].to_owned(),
            ZonePolicy {
                denial: Denial::Nsec3,
                ..ZonePolicy::default()
            },
        )]);
        let store = Store::open(&Store::path_in(&data)).expect("store");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (publisher, zones, _thread) = publish::start(
            store,
            Setup {
                zones: &files,
                policies: &policies,
                data_dir: &data,
                clock: Arc::new(SystemClock),
                journal: Default::default(),
            },
        )
        .expect("publisher");
        let access = Arc::new(arc_swap::ArcSwap::from_pointee(Access {
            allow: vec![format!("{ALLOWED}/32").parse().unwrap()],
            zone_allow: HashMap::new(),
            keys: vec![
                TsigKey::parse(&key_spec(XFR_KEY, "")).unwrap(),
                TsigKey::parse(&key_spec(UPDATE_KEY, ",zone=example.test,nodes=n*")).unwrap(),
            ],
        }));
        let transfers = runtime.block_on(async {
            for zone in ZONES {
                // Two publishes, so that IXFR has a difference to send.
                for round in 0..2 {
                    let set = (0..NODES)
                        .map(|i| {
                            let node = NodeLabel::parse(&format!("n{i}")).unwrap();
                            let commit = Commit::parse(&format!("{:040x}", i + round)).unwrap();
                            (node, commit)
                        })
                        .collect();
                    let change = Change::Batch {
                        set,
                        delete: Vec::new(),
                    };
                    publisher.apply(zone, change).await.expect("publish");
                }
            }
            // Node reports too: their intake parses and checks what arrives, like UPDATE.
            let reports_store = Store::open(&Store::path_in(&data)).expect("store");
            let (sink, _writer) =
                publish::reports::start(reports_store, publisher.stats().clone())
                    .expect("report writer");
            let reports =
                Reports::new(zones.clone(), data.clone(), &files, sink).expect("report secrets");
            let updates = Updates::new(
                publisher.clone(),
                zones.clone(),
                access.clone(),
                &files,
                Some(reports),
            );
            Arc::new(Transfers {
                access,
                secondaries: Arc::default(),
                updates: Some(updates),
            })
        });
        Harness {
            runtime,
            zones,
            transfers,
            counters: QueryStats::default().block(),
            shield: Shield::new(
                Secrets::random(),
                Some(Limits {
                    rate: 1000,
                    nxdomain_rate: 100,
                    slip: 2,
                }),
            ),
            _publisher: publisher,
            _dir: dir,
        }
    })
}

/// The question section's bytes: from the header to the end of the first question.
fn question_bytes(msg: &[u8]) -> Option<&[u8]> {
    let mut at = 12;
    loop {
        let len = usize::from(*msg.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
    msg.get(12..at + 4)
}

/// What every answer must satisfy, whatever it answers: it parses, it is a response, and over
/// UDP it fits.
fn check_wire(answer: &[u8], transport: Transport) {
    let parsed = Message::from_vec(answer)
        .unwrap_or_else(|e| panic!("an answer does not parse: {e}\n{answer:02x?}"));
    assert!(parsed.metadata.message_type == hickory_proto::op::MessageType::Response);
    if transport == Transport::Udp {
        assert!(answer.len() <= UDP_MAX, "{} bytes over UDP", answer.len());
    }
}

/// Whether `answer` answers `query`: the same ID, and the question echoed byte for byte
/// (names as asked, RFC 1035 §4.1.2) unless the answer has none (a FORMERR may not).
fn answers(query: &[u8], answer: &[u8]) -> bool {
    let qdcount = |m: &[u8]| u16::from_be_bytes([m[4], m[5]]);
    query.len() >= 12
        && answer[..2] == query[..2]
        && (qdcount(answer) == 0 || question_bytes(answer) == question_bytes(query))
}

fn check_answer(query: &[u8], answer: &[u8], transport: Transport) {
    check_wire(answer, transport);
    assert!(
        answers(query, answer),
        "the answer does not answer the query\nquery  {query:02x?}\nanswer {answer:02x?}"
    );
}

/// The query parser and answer writer: `data` as one message, over UDP and over TCP.
pub fn query(data: &[u8]) {
    let h = harness();
    let set = h.zones.load();
    let mut out = Vec::with_capacity(4096);
    for transport in [Transport::Udp, Transport::Tcp] {
        out.clear();
        let client = Client {
            shield: &h.shield,
            ip: IpAddr::from([192, 0, 2, 1]),
        };
        let reply = handle_counted(&set, data, transport, &mut out, Some(&h.counters), Some(client));
        match reply {
            Reply::Send => {
                assert!(
                    data.len() >= 12,
                    "an answer to a message shorter than a header"
                );
                assert_eq!(data[2] & 0x80, 0, "a response was answered");
                check_answer(data, &out, transport);
            }
            Reply::Drop | Reply::Defer(_) => {}
        }
    }
}

/// Runs `stream` through the TCP loop as a connection from `peer`; returns what it wrote.
fn run_tcp(stream: &[u8], peer: IpAddr) -> Vec<u8> {
    let h = harness();
    let mut written = Vec::new();
    // The loop ends at the end of `stream` (or on a message after which nothing follows);
    // an error is how a connection ends, not a failure.
    let _ = h.runtime.block_on(serve_stream(
        stream,
        &mut written,
        SocketAddr::new(peer, 53_000),
        h.zones.clone(),
        h.transfers.clone(),
        h.counters.clone(),
        &h.shield,
    ));
    written
}

/// The two-byte length-prefixed messages of a stream, and what is left after the last one.
fn frames(mut stream: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut out = Vec::new();
    while stream.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([stream[0], stream[1]]));
        let Some(msg) = stream.get(2..2 + len) else {
            break;
        };
        out.push(msg);
        stream = &stream[2 + len..];
    }
    (out, stream)
}

/// Every framed answer in `written` parses and answers one of `queries`, in order: the loop
/// answers each query with one message (a transfer with several, or none), or stops.
fn check_stream(queries: &[&[u8]], written: &[u8]) {
    let (frames, rest) = frames(written);
    assert!(rest.is_empty(), "a partial frame was written");
    let mut at = 0;
    for answer in frames {
        check_wire(answer, Transport::Tcp);
        at += queries[at..]
            .iter()
            .position(|q| answers(q, answer))
            .unwrap_or_else(|| panic!("an answer to no query (after {at}): {answer:02x?}"));
    }
}

/// The TCP framing and connection loop: `data` is the byte stream a client sends.
pub fn tcp(data: &[u8]) {
    let written = run_tcp(data, ALLOWED);
    let (queries, _) = frames(data);
    check_stream(&queries, &written);
}

/// Transfers, TSIG and UPDATE: the first byte picks the peer (odd: one `--allow-transfer`
/// admits), the rest is one message sent over TCP.
pub fn xfr(data: &[u8]) {
    let Some((&first, msg)) = data.split_first() else {
        return;
    };
    let Ok(len) = u16::try_from(msg.len()) else {
        return;
    };
    let peer = if first & 1 == 1 { ALLOWED } else { OTHER };
    let mut stream = len.to_be_bytes().to_vec();
    stream.extend_from_slice(msg);
    let written = run_tcp(&stream, peer);
    check_stream(&[msg], &written);
}

#[cfg(test)]
mod tests {
    //! The corpus of every target, replayed: each input once through its target; then every
    //! input that once failed, kept in `fuzz/regressions/<target>` with what it found.

    use std::path::Path;

    fn replay(target: &str, run: fn(&[u8])) -> usize {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut count = 0;
        for dir in ["corpus", "regressions"] {
            let dir = root.join(dir).join(target);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let result = std::panic::catch_unwind(|| run(&data));
                assert!(result.is_ok(), "{} fails", path.display());
                count += 1;
            }
        }
        count
    }

    #[test]
    fn the_query_corpus_holds() {
        assert!(replay("query", super::query) >= 100);
    }

    #[test]
    fn the_tcp_corpus_holds() {
        assert!(replay("tcp", super::tcp) >= 100);
    }

    #[test]
    fn the_xfr_corpus_holds() {
        assert!(replay("xfr", super::xfr) >= 100);
    }

    #[test]
    fn the_seeds_are_answered_as_they_should_be() {
        super::seeds::check();
    }
}
