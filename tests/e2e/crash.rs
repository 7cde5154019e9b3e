//! The crash loop: `kill -9` at a random moment while every write path publishes at once,
//! then a restart and a full audit. `deploy/test/crash-loop N` runs it for N rounds
//! (`HERALD_CRASH_ROUNDS`); the suite runs two.
//!
//! Each round, four writers publish concurrently into a zone of 10,000 nodes, each through
//! its own path and its own quarter of the nodes, so each node has at most one write in
//! flight: the native PUT, the batch, the PowerDNS PATCH and a TSIG-signed RFC 2136 UPDATE.
//! After the kill and before the restart the store must pass `PRAGMA integrity_check`. After
//! the restart:
//! - every acknowledged publish is in the API, and each node holds its last acknowledged
//!   commit or the one that was in flight when the kill came;
//! - each node's history has seqs n, n-1, …, 1: no gaps, no repeats;
//! - the SOA serial is at least every serial acknowledged before the kill;
//! - an AXFR carries exactly the API's nodes and passes `ldns-verify-zone` (every signature
//!   verifies), and a DO query for a node validates with `delv`;
//! - a Knot secondary, restarted against the restarted primary, reaches its serial by IXFR or
//!   AXFR, and its own AXFR passes `ldns-verify-zone` too.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, RData, Record, RecordType, TSigner};
use serde_json::{Value, json};

use crate::harness::*;
use crate::secondary::Peer;

const NODES: usize = 10_000;
const ZONE: &str = "example.test";
/// The UPDATE key: every node of the zone.
const UPD: &str = "upd.crash";
const UPD_SECRET: &[u8] = b"crash-loop-update-secret-0123456";

/// Which path a writer publishes through.
#[derive(Clone, Copy, Debug)]
enum Via {
    Put,
    Batch,
    Patch,
    Update,
}

/// What one node's writer knows: the last acknowledged commit and the one in flight.
#[derive(Default, Clone, Debug)]
struct Known {
    acked: Option<String>,
    in_flight: Option<String>,
}

type Ledger = Arc<Mutex<HashMap<String, Known>>>;

/// A random number from the clock and the process's hash seed: a different moment each round.
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .elapsed()
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u128(
        std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .unwrap()
            .as_nanos(),
    );
    h.finish() % n
}

fn commit_for(writer: usize, n: u64) -> String {
    format!("{writer:02x}{n:038x}")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// A signed UPDATE that sets `node` to `commit`.
fn update_message(node: &str, commit: &str, id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Update);
    m.add_query(Query::query(
        Name::from_ascii(format!("{ZONE}.")).unwrap(),
        RecordType::SOA,
    ));
    m.add_authority(Record::from_rdata(
        Name::from_ascii(format!("{node}.{ZONE}.")).unwrap(),
        60,
        RData::TXT(TXT::new(vec![commit.to_owned()])),
    ));
    let signer = TSigner::new(
        UPD_SECRET.to_vec(),
        TsigAlgorithm::HmacSha256,
        Name::from_ascii(UPD).unwrap(),
        300,
    )
    .unwrap();
    let now = std::time::UNIX_EPOCH.elapsed().unwrap().as_secs();
    let (tsig, _) = signer.sign_message(&m, now).unwrap();
    m.set_signature(tsig);
    m.to_vec().unwrap()
}

/// One write through `path` of `nodes` (one node, or five for a batch). `Ok(serial)` when
/// acknowledged (the serial when the path tells it), `Err` when the server is gone.
fn write(
    path: Via,
    api: &str,
    dns: SocketAddr,
    agent: &ureq::Agent,
    nodes: &[(String, String)],
    id: u16,
) -> Result<Option<u64>, ()> {
    let auth = format!("Bearer {TOKEN}");
    match path {
        Via::Put => {
            let (node, commit) = &nodes[0];
            let url = format!("{api}/v1/zones/{ZONE}/nodes/{node}");
            let mut res = agent
                .put(&url)
                .header("Authorization", &auth)
                .send_json(json!({ "commit": commit }))
                .map_err(|_| ())?;
            assert!(res.status().is_success(), "PUT {}", res.status());
            let body: Value = res.body_mut().read_json().map_err(|_| ())?;
            Ok(body["serial"].as_u64())
        }
        Via::Batch => {
            let set: Vec<Value> = nodes
                .iter()
                .map(|(n, c)| json!({"node": n, "commit": c}))
                .collect();
            let url = format!("{api}/v1/zones/{ZONE}/batch");
            let mut res = agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(json!({ "set": set, "delete": [] }))
                .map_err(|_| ())?;
            assert!(res.status().is_success(), "batch {}", res.status());
            let body: Value = res.body_mut().read_json().map_err(|_| ())?;
            Ok(body["serial"].as_u64())
        }
        Via::Patch => {
            let (node, commit) = &nodes[0];
            let url = format!("{api}/api/v1/servers/localhost/zones/{ZONE}.");
            let body = json!({"rrsets": [{
                "name": format!("{node}.{ZONE}."), "type": "TXT", "ttl": 60,
                "changetype": "REPLACE",
                "records": [{"content": format!("\"{commit}\""), "disabled": false}],
            }]});
            let res = agent
                .patch(&url)
                .header("X-API-Key", TOKEN)
                .send_json(body)
                .map_err(|_| ())?;
            assert_eq!(res.status().as_u16(), 204, "PATCH");
            Ok(None)
        }
        Via::Update => {
            let (node, commit) = &nodes[0];
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            socket
                .send_to(&update_message(node, commit, id), dns)
                .map_err(|_| ())?;
            let mut buf = [0u8; 1024];
            let n = socket.recv(&mut buf).map_err(|_| ())?;
            let m = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(m.metadata.response_code, ResponseCode::NoError, "UPDATE");
            Ok(None)
        }
    }
}

/// A writer through one path over a range of nodes, until the server stops answering.
struct Writer {
    index: usize,
    via: Via,
    api: String,
    dns: SocketAddr,
    range: std::ops::Range<usize>,
    ledger: Ledger,
    /// The highest serial acknowledged, and how many writes were.
    serial: Arc<AtomicU64>,
    acks: Arc<AtomicU64>,
    round: u64,
}

impl Writer {
    fn run(self) {
        let agent = agent();
        let per = if matches!(self.via, Via::Batch) { 5 } else { 1 };
        let (start, len) = (self.range.start, self.range.len());
        let mut n = self.round << 32;
        let mut at = 0;
        loop {
            let nodes: Vec<(String, String)> = (0..per)
                .map(|k| {
                    n += 1;
                    let node = format!("n{}", start + (at + k) % len);
                    (node, commit_for(self.index, n))
                })
                .collect();
            at = (at + per * 7) % len;
            {
                let mut l = self.ledger.lock().unwrap();
                for (node, commit) in &nodes {
                    l.entry(node.clone()).or_default().in_flight = Some(commit.clone());
                }
            }
            let Ok(serial) = write(self.via, &self.api, self.dns, &agent, &nodes, n as u16) else {
                return;
            };
            let mut l = self.ledger.lock().unwrap();
            for (node, commit) in &nodes {
                let k = l.get_mut(node).unwrap();
                k.acked = Some(commit.clone());
                k.in_flight = None;
            }
            if let Some(s) = serial {
                self.serial.fetch_max(s, Ordering::SeqCst);
            }
            self.acks.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Herald on a free port, with the UPDATE key, transfers allowed on loopback, and NOTIFY to
/// the secondary's port (which is bound whenever Herald starts, so Herald cannot take it).
fn start(data: &Path, zones: &Path, knot_port: u16) -> Server {
    use base64::Engine;
    let key = format!(
        "{UPD}:hmac-sha256:{},zone={ZONE},nodes=*",
        base64::engine::general_purpose::STANDARD.encode(UPD_SECRET)
    );
    let notify = format!("127.0.0.1:{knot_port}");
    Server::start_with(
        data,
        zones,
        Some(TOKEN),
        &[
            "--tsig-key",
            &key,
            "--allow-transfer",
            "127.0.0.0/8",
            "--notify",
            &notify,
        ],
    )
}

/// Every node of the zone through the API, by pages: name → (commit, seq).
fn api_nodes(server: &Server) -> HashMap<String, (String, u64)> {
    let mut out = HashMap::new();
    let mut after = String::new();
    loop {
        let mut path = format!("/v1/zones/{ZONE}/nodes?limit=1000");
        if !after.is_empty() {
            path += &format!("&after={after}");
        }
        let r = server.call("GET", &path, None);
        assert_eq!(r.status, 200, "{:?}", r.json);
        for n in r.json["nodes"].as_array().unwrap() {
            out.insert(
                n["node"].as_str().unwrap().to_owned(),
                (
                    n["commit"].as_str().unwrap().to_owned(),
                    n["seq"].as_u64().unwrap(),
                ),
            );
        }
        match r.json["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => return out,
        }
    }
}

/// An AXFR as zone-file text (closing SOA dropped), and ldns-verify-zone's verdict on it.
pub fn verified_axfr(server: SocketAddr, file: &Path) -> String {
    let out = dig(server, &["AXFR", ZONE, "+nocmd", "+nostats", "+nocomments"]);
    let mut lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines.pop().unwrap_or_default();
    assert!(
        last.contains("\tSOA\t"),
        "the AXFR ends with its SOA, not {last:?} ({} lines)\n{}",
        lines.len(),
        dig(server, &["SOA", ZONE])
    );
    let text = lines.join("\n") + "\n";
    std::fs::write(file, &text).unwrap();
    let v = Command::new("ldns-verify-zone")
        .arg(file)
        .output()
        .expect("ldns-verify-zone runs (apt-get install ldnsutils)");
    let report =
        String::from_utf8_lossy(&v.stdout).to_string() + &String::from_utf8_lossy(&v.stderr);
    assert!(
        v.status.success() && report.contains("Zone is verified"),
        "{report}"
    );
    text
}

/// The commit of every node TXT in an AXFR's text.
fn axfr_commits(text: &str) -> HashMap<String, String> {
    let suffix = format!(".{ZONE}.");
    text.lines()
        .filter(|l| l.contains("\tTXT\t") && l.contains("v=herald1"))
        .map(|l| {
            let owner = l.split('\t').next().unwrap();
            let node = owner.strip_suffix(&suffix).unwrap().to_owned();
            let at = l.find("commit=").unwrap() + "commit=".len();
            (node, l[at..at + 40].to_owned())
        })
        .collect()
}

fn integrity_check(data: &Path) {
    let conn = rusqlite::Connection::open(data.join("herald.sqlite3")).unwrap();
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verdict, "ok");
}

#[test]
#[ignore = "needs knotd, dig, delv and ldns-verify-zone"]
fn kill_9_at_random_moments_loses_no_acknowledged_publish() {
    let rounds: u64 = std::env::var("HERALD_CRASH_ROUNDS")
        .ok()
        .map_or(2, |r| r.parse().expect("HERALD_CRASH_ROUNDS is a number"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let zones = copy_zones(dir.path());
    let knot_port = free_port();
    let mut knot = Some(Peer::knot_by_address(
        dir.path(),
        "127.0.0.1:9".parse().unwrap(),
        knot_port,
    ));

    // A data directory with 10,000 nodes.
    let server = start(&data, &zones, knot_port);
    let set: Vec<Value> = (0..NODES)
        .map(|i| json!({"node": format!("n{i}"), "commit": commit_for(0xff, i as u64)}))
        .collect();
    let r = server.call(
        "POST",
        &format!("/v1/zones/{ZONE}/batch"),
        Some(&json!({"set": set})),
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    let ledger: Ledger = Arc::default();
    {
        let mut l = ledger.lock().unwrap();
        for i in 0..NODES {
            l.insert(
                format!("n{i}"),
                Known {
                    acked: Some(commit_for(0xff, i as u64)),
                    in_flight: None,
                },
            );
        }
    }
    let mut server = Some(server);
    let serial = Arc::new(AtomicU64::new(0));
    let mut report = Vec::new();
    for round in 1..=rounds {
        let s = server.take().unwrap();
        let acks = Arc::new(AtomicU64::new(0));
        let quarter = NODES / 4;
        let paths = [Via::Put, Via::Batch, Via::Patch, Via::Update];
        let writers: Vec<_> = paths
            .iter()
            .enumerate()
            .map(|(index, &via)| {
                let w = Writer {
                    index,
                    via,
                    api: s.api.clone(),
                    dns: s.dns,
                    range: index * quarter..(index + 1) * quarter,
                    ledger: ledger.clone(),
                    serial: serial.clone(),
                    acks: acks.clone(),
                    round,
                };
                std::thread::spawn(move || w.run())
            })
            .collect();
        // Kill at a random moment: 50 ms to 1.5 s into the writes.
        let delay = Duration::from_millis(50 + random_below(1_450));
        std::thread::sleep(delay);
        Command::new("kill")
            .args(["-KILL", &s.pid().to_string()])
            .status()
            .unwrap();
        for w in writers {
            w.join().unwrap();
        }
        drop(s);
        integrity_check(&data);

        // Restart and audit.
        let s = start(&data, &zones, knot_port);
        let nodes = api_nodes(&s);
        assert_eq!(nodes.len(), NODES, "round {round}: every node is there");
        let mut landed_in_flight = 0;
        {
            let mut l = ledger.lock().unwrap();
            for (node, known) in l.iter_mut() {
                let (commit, _) = &nodes[node];
                let ok = known.acked.as_ref() == Some(commit)
                    || known.in_flight.as_ref() == Some(commit);
                assert!(
                    ok,
                    "round {round}: {node} has {commit}, acknowledged {known:?}"
                );
                if known.in_flight.as_ref() == Some(commit) {
                    landed_in_flight += 1;
                }
                known.acked = Some(commit.clone());
                known.in_flight = None;
            }
        }
        // Seqs: n, n-1, …, 1 for every node written this round (and a sample of the rest).
        let touched: Vec<&String> = nodes
            .iter()
            .filter(|(n, (_, seq))| *seq > 1 || n.ends_with("00"))
            .map(|(n, _)| n)
            .collect();
        for node in &touched {
            let path = format!("/v1/zones/{ZONE}/nodes/{node}/history?limit=1000");
            let h = s.call("GET", &path, None);
            let seqs: Vec<u64> = h.json["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap())
                .collect();
            let want: Vec<u64> = (1..=nodes[*node].1).rev().collect();
            assert_eq!(seqs, want, "round {round}: {node}'s seqs");
        }
        let soa = u64::from(soa_serial(s.dns).expect("SOA"));
        let acked_serial = serial.load(Ordering::SeqCst);
        assert!(
            soa >= acked_serial,
            "round {round}: serial {soa} < acknowledged {acked_serial}"
        );
        serial.store(soa, Ordering::SeqCst);
        let text = verified_axfr(s.dns, &dir.path().join("herald-axfr.zone"));
        let served = axfr_commits(&text);
        assert_eq!(served.len(), NODES);
        for (node, (commit, _)) in &nodes {
            assert_eq!(&served[node], commit, "round {round}: {node} in DNS");
        }
        // A secondary restarted against the restarted primary catches up, and its copy verifies.
        drop(knot.take());
        let k = Peer::knot_by_address(dir.path(), s.dns, knot_port);
        // It learns of the new primary's serial from a NOTIFY (PowerDNS's notify call, as an
        // operator would send it once the secondary is up again).
        let mut last_notify = None::<std::time::Instant>;
        let caught_up = wait_for(
            Duration::from_secs(60),
            "Knot at the primary's serial",
            || {
                if last_notify.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    let path = format!("/api/v1/servers/localhost/zones/{ZONE}./notify");
                    s.call_as("PUT", &path, None, None, &[("X-API-Key", TOKEN)]);
                    last_notify = Some(std::time::Instant::now());
                }
                soa_serial(k.addr).is_some_and(|ks| u64::from(ks) == soa)
            },
        );
        let copy = verified_axfr(k.addr, &dir.path().join("knot-axfr.zone"));
        assert_eq!(
            axfr_commits(&copy),
            served,
            "round {round}: Knot serves what Herald does"
        );
        let how = if k.log().contains("IXFR, incoming") {
            "IXFR"
        } else {
            "AXFR"
        };
        knot = Some(k);
        report.push(format!(
            "round {round}: kill at {delay:?} after {} acknowledged writes, {landed_in_flight} \
             in-flight writes landed, serial {soa}, {} histories checked, Knot caught up by \
             {how} in {caught_up:?}",
            acks.load(Ordering::SeqCst),
            touched.len()
        ));
        eprintln!("{}", report.last().unwrap());
        server = Some(s);
    }
    // And a signed answer validates with delv against the zone's key.
    let s = server.unwrap();
    let (dnskey, _) = crate::dnssec::key_show(&data);
    let anchor = crate::dnssec::delv_anchor(dir.path(), &dnskey);
    let out = crate::dnssec::delv(s.dns, &anchor, "n1.example.test", "TXT");
    assert!(out.contains("; fully validated"), "{out}");
}
