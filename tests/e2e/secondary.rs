//! Herald as a primary: real secondaries (Knot and NSD) fed by NOTIFY, AXFR and IXFR, with
//! and without TSIG; the transfers checked by ldns-verify-zone, dig and delv; and the journal
//! across a restart, read with a transfer client written here on hickory.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::Value;

use crate::dnssec::{delv, delv_anchor, key_show};
use crate::harness::*;

pub const KEY_NAME: &str = "xfr.example";
/// base64 of 32 bytes: "herald-e2e-tsig-secret-0123456789".
pub const KEY_SECRET: &str = "aGVyYWxkLWUyZS10c2lnLXNlY3JldC0wMTIzNDU2Nzg5";

pub fn key_flag() -> String {
    format!("{KEY_NAME}:hmac-sha256:{KEY_SECRET}")
}

/// A secondary server process, killed on drop.
pub struct Peer {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
}

impl Peer {
    /// Knot as a secondary of `primary`, TSIG-authenticated with the test key: it accepts
    /// NOTIFY only signed with that key and signs its transfer requests.
    pub fn knot_on(dir: &Path, primary: SocketAddr, port: u16) -> Self {
        Self::knot(dir, primary, port, true)
    }

    /// Knot as a secondary of `primary`, with NOTIFY and transfers allowed by address.
    pub fn knot_by_address(dir: &Path, primary: SocketAddr, port: u16) -> Self {
        Self::knot(dir, primary, port, false)
    }

    fn knot(dir: &Path, primary: SocketAddr, port: u16, signed: bool) -> Self {
        let (key, with_key) = if signed {
            (
                format!(
                    "key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {KEY_SECRET}\n"
                ),
                format!("\n    key: {KEY_NAME}"),
            )
        } else {
            (String::new(), String::new())
        };
        let d = dir.join("knot");
        std::fs::create_dir_all(&d).unwrap();
        let conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    \
             tcp-workers: 1\n    background-workers: 1\n\
             database:\n    storage: \"{d}\"\n\
             control:\n    listen: \"{d}/knot.sock\"\n\
             log:\n  - target: \"{d}/knot.log\"\n    any: info\n{key}\
             remote:\n  - id: herald\n    address: {ip}@{pport}{with_key}\n\
             acl:\n  - id: notify_from_herald\n    address: 127.0.0.1{with_key}\n    \
             action: notify\n  - id: transfer_to_tests\n    address: 127.0.0.1\n    \
             action: transfer\n\
             template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    \
             zonefile-load: none\n    journal-content: changes\n\
             zone:\n  - domain: example.test\n    master: herald\n    \
             acl: [notify_from_herald, transfer_to_tests]\n",
            d = d.display(),
            ip = primary.ip(),
            pport = primary.port(),
        );
        std::fs::write(d.join("knot.conf"), conf).unwrap();
        let child = Command::new("knotd")
            .arg("-c")
            .arg(d.join("knot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("knotd runs (apt-get install knot)");
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: d.join("knot.log"),
        }
    }

    /// NSD as a secondary of `primary`, allowed by address (no TSIG).
    fn nsd_on(dir: &Path, primary: SocketAddr, port: u16) -> Self {
        let d = dir.join("nsd");
        std::fs::create_dir_all(&d).unwrap();
        let conf = format!(
            "server:\n    ip-address: 127.0.0.1@{port}\n    do-ip4: yes\n    do-ip6: no\n    \
             server-count: 1\n    username: \"\"\n    chroot: \"\"\n    zonesdir: \"{d}\"\n    \
             database: \"\"\n    zonelistfile: \"{d}/zone.list\"\n    xfrdfile: \"{d}/xfrd.state\"\n    \
             xfrdir: \"{d}\"\n    pidfile: \"{d}/nsd.pid\"\n    logfile: \"{d}/nsd.log\"\n    \
             verbosity: 2\n    rrl-ratelimit: 0\n    rrl-whitelist-ratelimit: 0\n    \
             xfrd-reload-timeout: 0\n\
             remote-control:\n    control-enable: no\n\
             zone:\n    name: example.test\n    zonefile: \"{d}/example.test.zone\"\n    \
             request-xfr: {ip}@{pport} NOKEY\n    allow-notify: 127.0.0.1 NOKEY\n",
            d = d.display(),
            ip = primary.ip(),
            pport = primary.port(),
        );
        std::fs::write(d.join("nsd.conf"), conf).unwrap();
        let child = Command::new("nsd")
            .arg("-d")
            .arg("-c")
            .arg(d.join("nsd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsd runs (apt-get install nsd)");
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log: d.join("nsd.log"),
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn serves(&self, node: &str, commit: &str) -> bool {
        ask(self.addr, &format!("{node}.example.test."), RecordType::TXT).is_some_and(|m| {
            txt(&m)
                .iter()
                .any(|t| t.contains(&format!("commit={commit}")))
        })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn zone_json(server: &Server) -> Value {
    let r = server.call("GET", "/v1/zones/example.test", None);
    assert_eq!(r.status, 200);
    r.json
}

#[test]
#[ignore = "needs knot, nsd and delv"]
fn knot_and_nsd_follow_publishes_by_ixfr_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    // The secondaries' ports are picked before Herald starts, so it can NOTIFY them.
    let (kport, nport) = (free_port(), free_port());
    let knot_target = format!("127.0.0.1:{kport},key={KEY_NAME}");
    let nsd_target = format!("127.0.0.1:{nport}");
    let server = Server::start_with(
        dir.path(),
        &repo_zones(),
        Some(TOKEN),
        &[
            "--tsig-key",
            &key_flag(),
            "--allow-transfer",
            "127.0.0.1/32",
            "--notify",
            &knot_target,
            "--notify",
            &nsd_target,
        ],
    );
    server.put("example.test", "n1", SHA1);
    let knot = Peer::knot_on(dir.path(), server.dns, kport);
    let nsd = Peer::nsd_on(dir.path(), server.dns, nport);
    let serial = |s: &Server| zone_json(s)["serial"].as_u64().unwrap() as u32;
    let first = serial(&server);
    for peer in [&knot, &nsd] {
        wait_for(Duration::from_secs(30), "the first transfer", || {
            soa_serial(peer.addr) == Some(first)
        });
        assert!(peer.serves("n1", SHA1), "{}", peer.log());
    }
    let before = zone_json(&server)["transfers"].clone();

    // A publish reaches both within 2 seconds, by IXFR.
    let commit = "4".repeat(40);
    let published = Instant::now();
    server.put("example.test", "n1", &commit);
    for peer in [&knot, &nsd] {
        wait_for(
            Duration::from_secs(2),
            "the publish on the secondary",
            || peer.serves("n1", &commit),
        );
    }
    let took = published.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    let after = zone_json(&server);
    let t = &after["transfers"];
    assert!(
        t["ixfr"].as_u64().unwrap() >= before["ixfr"].as_u64().unwrap() + 2,
        "both secondaries used IXFR: {t}"
    );
    assert_eq!(
        t["axfr"], before["axfr"],
        "no full transfer after the first: {t}"
    );
    wait_for(Duration::from_secs(5), "Knot's log", || {
        knot.log().contains("IXFR, incoming")
    });

    // Health: both targets acknowledged the current serial.
    let current = serial(&server);
    wait_for(Duration::from_secs(5), "NOTIFY acknowledgements", || {
        let z = zone_json(&server);
        z["secondaries"].as_array().unwrap().iter().all(|s| {
            s["last_notify"]["serial"].as_u64() == Some(u64::from(current))
                && s["last_notify"]["acked"] == true
        })
    });
    let z = zone_json(&server);
    assert_eq!(z["secondaries"].as_array().unwrap().len(), 2, "{z}");

    // delv validates what the secondaries serve, from the zone's key alone.
    let (dnskey, _) = key_show(dir.path());
    let anchor = delv_anchor(dir.path(), &dnskey);
    for peer in [&knot, &nsd] {
        let out = delv(peer.addr, &anchor, "n1.example.test", "TXT");
        assert!(out.contains("; fully validated"), "{out}");
        assert!(out.contains(&commit), "{out}");
        let out = delv(peer.addr, &anchor, "nobody.example.test", "TXT");
        assert!(out.contains("negative response, fully validated"), "{out}");
    }
}

/// A zone transfer over TCP with hickory's message codec: the answer records of every
/// message, until the closing SOA.
fn xfr(server: SocketAddr, qtype: RecordType, have: Option<u32>) -> Vec<Record> {
    let apex = Name::from_ascii("example.test.").unwrap();
    let mut q = Message::query();
    q.add_query(Query::query(apex.clone(), qtype));
    if let Some(serial) = have {
        let soa = SOA::new(apex.clone(), apex.clone(), serial, 0, 0, 0, 0);
        q.add_authority(Record::from_rdata(apex, 0, RData::SOA(soa)));
    }
    let wire = q.to_vec().unwrap();
    let mut stream = TcpStream::connect(server).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(&(wire.len() as u16).to_be_bytes())
        .unwrap();
    stream.write_all(&wire).unwrap();
    let mut rrs: Vec<Record> = Vec::new();
    let serial_of = |r: &Record| match &r.data {
        RData::SOA(s) => Some(s.serial),
        _ => None,
    };
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut msg).unwrap();
        let m = Message::from_vec(&msg).unwrap();
        assert_eq!(
            m.metadata.response_code,
            hickory_proto::op::ResponseCode::NoError
        );
        rrs.extend(m.answers);
        let done = rrs.len() == 1
            || (rrs.len() > 1
                && serial_of(rrs.last().unwrap()).is_some()
                && serial_of(rrs.last().unwrap()) == serial_of(&rrs[0]));
        if done {
            return rrs;
        }
    }
}

fn soa_serials(rrs: &[Record]) -> Vec<u32> {
    rrs.iter()
        .filter_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
        .collect()
}

/// The journal lives in SQLite: after a restart, a secondary at an old serial still gets
/// an incremental transfer, and a serial never repeats with different content.
#[test]
fn the_journal_and_the_serial_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--allow-transfer", "127.0.0.1"];
    let server = Server::start_with(dir.path(), &repo_zones(), Some(TOKEN), &args);
    server.put("example.test", "n1", SHA1);
    let s1 = soa_serial(server.dns).unwrap();
    let axfr_at_s1 = xfr(server.dns, RecordType::AXFR, None);
    server.put("example.test", "n2", SHA1);
    server.put("example.test", "n1", &"5".repeat(40));
    let s3 = soa_serial(server.dns).unwrap();
    assert_eq!(s3, s1.wrapping_add(2));
    let before = xfr(server.dns, RecordType::IXFR, Some(s1));
    assert_eq!(soa_serials(&before), [s3, s1, s1 + 1, s1 + 1, s3, s3]);
    assert_eq!(server.signal("TERM").code(), Some(0));

    let server = Server::start_with(dir.path(), &repo_zones(), Some(TOKEN), &args);
    assert_eq!(
        soa_serial(server.dns),
        Some(s3),
        "same content, same serial"
    );
    let after = xfr(server.dns, RecordType::IXFR, Some(s1));
    assert_eq!(
        after.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        before.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "the same difference sequences after the restart"
    );
    // Current: one SOA. Unknown (older than the journal): the whole zone.
    assert_eq!(xfr(server.dns, RecordType::IXFR, Some(s3)).len(), 1);
    let full = xfr(server.dns, RecordType::IXFR, Some(s1 - 10));
    assert_eq!(soa_serials(&full), [s3, s3]);
    assert!(full.len() > axfr_at_s1.len(), "one more node than at {s1}");
    let z = server.call("GET", "/v1/zones/example.test", None).json;
    // One entry per publish.
    assert_eq!(z["journal"]["entries"], 3, "{z}");
    assert_eq!(z["transfers"]["ixfr"], 1, "{z}");
    assert_eq!(z["transfers"]["current"], 1, "{z}");
    assert_eq!(z["transfers"]["ixfr_fallback"], 1, "{z}");
}

/// Zone file text of an AXFR as dig prints it, minus the closing SOA (ldns-verify-zone wants
/// each record once).
fn axfr_zone_text(server: SocketAddr, extra: &[&str]) -> String {
    let mut args = vec!["AXFR", "example.test", "+nocmd", "+nostats", "+nocomments"];
    args.extend_from_slice(extra);
    let out = dig(server, &args);
    let mut lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines.pop().unwrap();
    assert!(last.contains("\tSOA\t"), "ends with the SOA: {last}");
    lines.join("\n") + "\n"
}

#[test]
#[ignore = "needs dig and ldns-verify-zone"]
fn ldns_verify_zone_accepts_the_axfr() {
    for denial in ["nsec", "nsec3"] {
        let dir = tempfile::tempdir().unwrap();
        let flag = format!("example.test:denial={denial}");
        let server = Server::start_with(
            dir.path(),
            &repo_zones(),
            Some(TOKEN),
            &["--dnssec", &flag, "--allow-transfer", "127.0.0.0/8"],
        );
        for i in 0..50 {
            server.put("example.test", &format!("n{i}"), SHA1);
        }
        server.call("DELETE", "/v1/zones/example.test/nodes/n7", None);
        let text = axfr_zone_text(server.dns, &[]);
        let file = dir.path().join("axfr.zone");
        std::fs::write(&file, &text).unwrap();
        let out = Command::new("ldns-verify-zone")
            .arg(&file)
            .output()
            .expect("ldns-verify-zone runs (apt-get install ldnsutils)");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{denial}: {report}\n{text}");
        assert!(report.contains("Zone is verified and complete"), "{report}");
        let nodes = |i: usize| format!("n{i}.example.test.");
        assert!(
            (0..50)
                .filter(|&i| i != 7)
                .all(|i| text.contains(&nodes(i)))
        );
        assert!(
            !text.contains(&nodes(7)),
            "{denial}: the deleted node is gone"
        );
    }
}

#[test]
#[ignore = "needs dig"]
fn transfers_are_refused_unless_allowed_by_address_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        &repo_zones(),
        Some(TOKEN),
        &[
            "--allow-transfer",
            "127.0.0.1/32",
            "--tsig-key",
            &key_flag(),
        ],
    );
    server.put("example.test", "n1", SHA1);
    let refused = dig(server.dns, &["-b", "127.0.0.2", "AXFR", "example.test"]);
    assert!(refused.contains("Transfer failed"), "{refused}");
    assert!(!refused.contains("\tTXT\t"), "{refused}");
    let ixfr = dig(server.dns, &["-b", "127.0.0.2", "IXFR=1", "example.test"]);
    assert!(ixfr.contains("Transfer failed"), "{ixfr}");

    // The allowed address, and the key from anywhere (dig checks every message's TSIG).
    let allowed = dig(server.dns, &["-b", "127.0.0.1", "AXFR", "example.test"]);
    assert!(allowed.contains("commit=3f2a"), "{allowed}");
    let key = format!("hmac-sha256:{KEY_NAME}:{KEY_SECRET}");
    let signed = dig(
        server.dns,
        &["-b", "127.0.0.2", "-y", &key, "AXFR", "example.test"],
    );
    assert!(signed.contains("commit=3f2a"), "{signed}");
    assert!(!signed.contains("failure"), "{signed}");
    // A wrong secret is refused with a TSIG error.
    let bad = format!("hmac-sha256:{KEY_NAME}:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0");
    let wrong = dig(
        server.dns,
        &["-b", "127.0.0.1", "-y", &bad, "AXFR", "example.test"],
    );
    assert!(!wrong.contains("commit=3f2a"), "{wrong}");
    // A signed ordinary query gets a signed answer that dig verifies.
    let soa = dig(server.dns, &["-y", &key, "example.test", "SOA"]);
    assert!(
        soa.contains("status: NOERROR") && !soa.contains("failure"),
        "{soa}"
    );
    let z = server.call("GET", "/v1/zones/example.test", None).json;
    assert_eq!(z["transfers"]["refused"], 3, "{z}");
    assert_eq!(z["transfers"]["axfr"], 2, "{z}");
}

/// A stand-in secondary that records each NOTIFY's SOA serial and acknowledges all but the
/// first `ignore` of them.
fn fake_secondary(ignore: usize) -> (SocketAddr, std::sync::mpsc::Receiver<(Instant, u32)>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut seen = 0;
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let Ok(m) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            assert_eq!(m.metadata.op_code, hickory_proto::op::OpCode::Notify);
            let serial = soa_serials(&m.answers)[0];
            if tx.send((Instant::now(), serial)).is_err() {
                return;
            }
            seen += 1;
            if seen > ignore {
                let mut reply = buf[..n].to_vec();
                reply[2] |= 0x80; // QR
                let _ = socket.send_to(&reply, from);
            }
        }
    });
    (addr, rx)
}

/// A burst of publishes costs a few NOTIFYs, the last one for the final serial; and an
/// unacknowledged NOTIFY is sent again until it is acknowledged.
#[test]
fn notifies_coalesce_bursts_and_retry_until_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (target, notifies) = fake_secondary(2);
    let server = Server::start_with(
        dir.path(),
        &repo_zones(),
        Some(TOKEN),
        &["--notify", &target.to_string()],
    );
    // At start: one NOTIFY, unanswered twice, answered the third time (after 1 s and 2 s).
    let start_serial = soa_serial(server.dns).unwrap();
    let first: Vec<(Instant, u32)> = notifies.iter().take(3).collect();
    assert!(first.iter().all(|(_, s)| *s == start_serial));
    let gaps: Vec<Duration> = first.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(
        gaps[0] >= Duration::from_millis(900) && gaps[1] >= Duration::from_millis(1900),
        "{gaps:?}"
    );
    wait_for(Duration::from_secs(5), "the acknowledgement", || {
        let z = zone_json(&server);
        z["secondaries"][0]["last_notify"]["acked"] == true
    });
    let z = zone_json(&server);
    assert_eq!(z["secondaries"][0]["last_notify"]["attempts"], 3, "{z}");

    // 1,000 publishes from 8 writers.
    std::thread::scope(|s| {
        for w in 0..8 {
            let server = &server;
            s.spawn(move || {
                for i in 0..125 {
                    let r = server.put("example.test", &format!("w{w}n{i}"), SHA1);
                    assert!(r.status == 201, "{r:?}");
                }
            });
        }
    });
    let last = soa_serial(server.dns).unwrap();
    wait_for(
        Duration::from_secs(10),
        "a NOTIFY of the final serial",
        || {
            zone_json(&server)["secondaries"][0]["last_notify"]["serial"].as_u64()
                == Some(u64::from(last))
        },
    );
    std::thread::sleep(Duration::from_millis(700));
    let burst: Vec<u32> = notifies.try_iter().map(|(_, s)| s).collect();
    eprintln!(
        "{} NOTIFYs for 1000 publishes (serials {start_serial}..{last})",
        burst.len()
    );
    assert!(
        !burst.is_empty() && burst.len() <= 40,
        "{} NOTIFYs: {burst:?}",
        burst.len()
    );
    assert_eq!(*burst.last().unwrap(), last);
    assert!(
        burst.windows(2).all(|w| w[0] < w[1]),
        "each newer than the last: {burst:?}"
    );
    // The end of the burst is announced once more, SETTLE (10 s) after its NOTIFY, for a
    // secondary that dropped it while transferring; then again 30 s later (and 90 s after
    // that), and nothing in between.
    let ended = Instant::now();
    let (at, again) = notifies
        .recv_timeout(Duration::from_secs(15))
        .expect("the final serial announced again");
    assert_eq!(again, last);
    let after = at - ended;
    assert!(
        after >= Duration::from_secs(8) && after <= Duration::from_secs(12),
        "{after:?} after the burst's last NOTIFY was seen"
    );
    let (next, again) = notifies
        .recv_timeout(Duration::from_secs(35))
        .expect("the final serial announced a third time");
    assert_eq!(again, last);
    let gap = next - at;
    assert!(
        gap >= Duration::from_secs(29) && gap <= Duration::from_secs(32),
        "{gap:?} between the repeats"
    );
    assert!(
        notifies.recv_timeout(Duration::from_secs(5)).is_err(),
        "no NOTIFY between the repeats"
    );
}

/// PowerDNS's `PUT …/notify` announces the zone once more to every target, already
/// acknowledged or not: one call, one NOTIFY each, and then quiet.
#[test]
fn the_powerdns_notify_call_sends_one_notify() {
    let dir = tempfile::tempdir().unwrap();
    let (one, first) = fake_secondary(0);
    let (two, second) = fake_secondary(0);
    let server = Server::start_with(
        dir.path(),
        &repo_zones(),
        Some(TOKEN),
        &["--notify", &one.to_string(), "--notify", &two.to_string()],
    );
    let serial = soa_serial(server.dns).unwrap();
    // The start-up NOTIFY, acknowledged.
    for rx in [&first, &second] {
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap().1, serial);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(first.try_iter().count() + second.try_iter().count(), 0);
    for round in 1..=2 {
        let r = server.call_as(
            "PUT",
            "/api/v1/servers/localhost/zones/example.test./notify",
            None,
            None,
            &[("X-API-Key", TOKEN)],
        );
        assert_eq!(r.status, 200, "{r:?}");
        for rx in [&first, &second] {
            let (_, got) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(got, serial, "round {round}");
        }
        // Nothing more: the request is served once, not on every later pass.
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(
            first.try_iter().count() + second.try_iter().count(),
            0,
            "round {round}: NOTIFYs after the one asked for"
        );
    }
}

/// Bad secondary flags stop `herald serve` before it binds anything, with exit code 2 and a
/// message that names the flag.
#[test]
fn bad_secondary_flags_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (
            vec!["--tsig-key", "xfr:hmac-md5:c2VjcmV0LXNlY3JldC1zZWNyZXQ="],
            "algorithm",
        ),
        (
            vec!["--tsig-key", "xfr:hmac-sha256:c2hvcnQ="],
            "shorter than 16 bytes",
        ),
        (
            vec![
                "--tsig-key",
                "xfr:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQ=,nodes=n1",
            ],
            "nodes= needs zone=",
        ),
        (
            vec![
                "--tsig-key",
                "xfr:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQ=,zone=example.test,color=red",
            ],
            "unknown option",
        ),
        (
            vec!["--notify", "127.0.0.1:5300,key=nokey"],
            "no --tsig-key is named nokey",
        ),
        (vec!["--notify", "somewhere"], "expected IP"),
        (
            vec!["--allow-transfer", "10.0.0.0/33"],
            "not an address prefix",
        ),
        (vec!["--journal-max-bytes", "lots"], "not a size"),
        (vec!["--journal-max-age", "forever"], "--journal-max-age"),
    ] {
        let out = serve_command(dir.path(), &repo_zones())
            .args(&args)
            .env("HERALD_ADMIN_TOKEN", TOKEN)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("listening"), "{args:?}: {err}");
        // A key's secret is never repeated back, even in the message of a bad flag.
        assert!(!err.contains("c2VjcmV0"), "{args:?}: {err}");
    }
}
