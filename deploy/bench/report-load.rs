//! The report load generator (`deploy/bench/report-load`): sends node reports, as `herald
//! watch --report-key` does, for many nodes at a fixed rate, and counts the answers by rcode.
//!
//! Each report is for node `n<i>` of the zone, seq 1 (or `--seq S`), signed with that node's key, derived
//! from the zone's report secret in the server's data directory (what `herald key report`
//! prints). One UDP socket sends them all; a second thread reads the answers.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use herald::client::report::{ReportKey, Reporter};
use herald::record::report::{Report, Status, node_report_secret, report_name};
use herald::record::{Commit, NodeLabel};
use hickory_proto::op::Message;

const USAGE: &str = "report-load --server ADDR --data DIR --zone ZONE --nodes N \
                     [--first K] [--rate PER_SECOND] [--seq S] [--forge yes]";

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut server, mut data, mut zone) = (None, None, None);
    let (mut nodes, mut first, mut rate) = (0u64, 1u64, 20_000u64);
    let mut forge = false;
    let mut seq = 1u64;
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{USAGE}"));
        match flag.as_str() {
            "--server" => server = Some(value.parse::<SocketAddr>().expect("ADDR")),
            "--data" => data = Some(PathBuf::from(value)),
            "--zone" => zone = Some(value),
            "--nodes" => nodes = value.parse().expect("N"),
            "--first" => first = value.parse().expect("K"),
            "--rate" => rate = value.parse().expect("PER_SECOND"),
            "--forge" => forge = value == "yes",
            "--seq" => seq = value.parse().expect("S"),
            _ => panic!("{USAGE}"),
        }
    }
    let (Some(server), Some(data), Some(zone)) = (server, data, zone) else {
        panic!("{USAGE}");
    };
    // With --forge yes, every report is signed with a key the server did not derive: a flood
    // of forgeries, each costing the server its checks.
    let secret = if forge {
        b"not the zone's report secret, not at all".to_vec()
    } else {
        herald::publish::reports::load_secret(&data, &zone).expect("the report secret")
    };
    let apex = hickory_proto::rr::Name::from_ascii(format!("{zone}.")).unwrap();
    let commit = Commit::parse(&"a".repeat(40)).unwrap();

    // Room for the answers while this thread is busy signing (the default buffer drops some).
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    socket.set_recv_buffer_size(8 << 20).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let socket = Arc::new(UdpSocket::from(socket));
    socket.connect(server).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (socket, done) = (socket.clone(), done.clone());
        std::thread::spawn(move || {
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut codes: BTreeMap<String, u64> = BTreeMap::new();
            let mut buf = [0u8; 4096];
            let mut quiet_since = Instant::now();
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        quiet_since = Instant::now();
                        let code = Message::from_vec(&buf[..n])
                            .map(|m| m.metadata.response_code.to_string())
                            .unwrap_or_else(|_| "unparsable".into());
                        *codes.entry(code).or_default() += 1;
                    }
                    Err(_)
                        if done.load(Ordering::Relaxed)
                            && quiet_since.elapsed() > Duration::from_secs(2) =>
                    {
                        return codes;
                    }
                    Err(_) => {}
                }
            }
        })
    };

    let start = Instant::now();
    let mut sent = 0u64;
    for i in first..first + nodes {
        let node = NodeLabel::parse(&format!("n{i}")).unwrap();
        let key =
            base64::engine::general_purpose::STANDARD.encode(node_report_secret(&secret, &node));
        let line = format!("{}:hmac-sha256:{key}", report_name(&node, &zone));
        let reporter = Reporter {
            key: ReportKey::parse(&line, &zone, node.as_str()).unwrap(),
            targets: vec![server],
            apex: apex.clone(),
            timeout: Duration::from_secs(1),
        };
        let report = Report {
            seq,
            commit: commit.clone(),
            status: Status::Applied,
            code: 0,
            at: herald::record::unix_now(),
        };
        let wire = reporter.message(&report).unwrap().to_vec().unwrap();
        // Paced: report number `sent` leaves at sent / rate seconds.
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        let _ = socket.send(&wire);
        sent += 1;
    }
    let took = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let codes = reader.join().unwrap();
    let answered: u64 = codes.values().sum();
    println!(
        "reports sent={sent} seconds={took:.1} rate={:.0} answered={answered} {}",
        sent as f64 / took,
        codes
            .iter()
            .map(|(c, n)| format!("{}={n}", c.to_lowercase().replace(' ', "_")))
            .collect::<Vec<_>>()
            .join(" ")
    );
}
