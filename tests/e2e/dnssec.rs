//! DNSSEC end to end: answers of the real server checked by validators that no one here
//! wrote (delv from bind9-dnsutils, unbound-host), given only the zone's trust anchor; and by
//! hickory's verifier, which needs no Debian tool.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData};
use hickory_proto::dnssec::{PublicKey, Verifier};
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::harness::*;

/// `herald key show` for example.test: the DNSKEY line and the DS line.
pub fn key_show(data: &Path) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["key", "show", "--zone", "example.test", "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines().map(str::to_owned);
    (lines.next().unwrap(), lines.next().unwrap())
}

/// A query with DO=1 over UDP, decoded by hickory.
fn query_do(server: SocketAddr, name: &str, rtype: RecordType) -> Message {
    let mut q = Message::query();
    q.metadata.id = 4242;
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let mut e = Edns::new();
    e.set_dnssec_ok(true);
    e.set_max_payload(1232);
    q.set_edns(e);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    sock.send_to(&q.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 65535];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

/// Verifies every RRset of the answer and authority sections with `key`; returns the count.
fn verify(m: &Message, key: &DNSKEY) -> usize {
    let mut n = 0;
    for section in [&m.answers, &m.authorities] {
        let mut sets: HashMap<(Name, RecordType), Vec<&Record>> = HashMap::new();
        for r in section
            .iter()
            .filter(|r| r.record_type() != RecordType::RRSIG)
        {
            sets.entry((r.name.to_lowercase(), r.record_type()))
                .or_default()
                .push(r);
        }
        for ((name, rtype), records) in sets {
            let sig = section
                .iter()
                .find_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::RRSIG(s))
                        if r.name.to_lowercase() == name && s.input().type_covered == rtype =>
                    {
                        Some(s)
                    }
                    _ => None,
                })
                .unwrap_or_else(|| panic!("no RRSIG over {name} {rtype}"));
            key.verify_rrsig(&name, DNSClass::IN, sig, records.into_iter())
                .unwrap_or_else(|e| panic!("{name} {rtype}: {e}"));
            n += 1;
        }
    }
    n
}

#[test]
fn answers_verify_with_the_zone_key() {
    for denial in ["nsec", "nsec3"] {
        let dir = tempfile::tempdir().unwrap();
        let flag = format!("example.test:denial={denial}");
        let server =
            Server::start_with(dir.path(), &repo_zones(), Some(TOKEN), &["--dnssec", &flag]);
        server.put("example.test", "n1", SHA1);
        let keys = query_do(server.dns, "example.test.", RecordType::DNSKEY);
        let RData::DNSSEC(DNSSECRData::DNSKEY(key)) = &keys.answers[0].data else {
            panic!("{keys:?}")
        };
        assert_eq!(verify(&keys, key), 1);
        // The key DNS serves is the one the API and `herald key show` describe.
        let (dnskey_line, ds_line) = key_show(dir.path());
        let zone = server.call("GET", "/v1/zones/example.test", None).json;
        assert_eq!(zone["dnskey"][0], dnskey_line);
        assert_eq!(zone["ds"][0], ds_line);
        assert!(
            dnskey_line.ends_with(&data_encoding_b64(key.public_key().public_bytes())),
            "{dnskey_line}"
        );

        for (name, rtype, rrsets) in [
            ("n1.example.test.", RecordType::TXT, 1),
            ("info.example.test.", RecordType::TXT, 1),
            ("n1.example.test.", RecordType::A, 2),
        ] {
            let m = query_do(server.dns, name, rtype);
            assert_eq!(verify(&m, key), rrsets, "{denial} {name} {rtype}");
        }
        let m = query_do(server.dns, "nope.example.test.", RecordType::TXT);
        assert!(verify(&m, key) >= 2, "{denial}: SOA and the proof");
    }
}

fn data_encoding_b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A delv trust anchor (named.conf syntax) from a DNSKEY line.
pub fn delv_anchor(dir: &Path, dnskey_line: &str) -> std::path::PathBuf {
    let f: Vec<&str> = dnskey_line.split_whitespace().collect();
    let path = dir.join("anchor.conf");
    std::fs::write(
        &path,
        format!(
            "trust-anchors {{ \"example.test.\" static-key {} {} {} \"{}\"; }};\n",
            f[4],
            f[5],
            f[6],
            f[7..].concat()
        ),
    )
    .unwrap();
    path
}

/// delv's verdict for one query: its first lines.
pub fn delv(server: SocketAddr, anchor: &Path, name: &str, rtype: &str) -> String {
    let out = Command::new("delv")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-a"])
        .arg(anchor)
        .args(["+root=example.test", name, rtype])
        .output()
        .expect("delv runs (apt-get install bind9-dnsutils)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// unbound-host's verdict, with a stub zone pointing at Herald and the anchor file.
pub fn unbound_host(
    dir: &Path,
    server: SocketAddr,
    anchor: &Path,
    name: &str,
    rtype: &str,
) -> String {
    let conf = dir.join("unbound.conf");
    std::fs::write(
        &conf,
        format!(
            "server:\n    do-not-query-localhost: no\n    local-zone: \"test.\" nodefault\n\
             stub-zone:\n    name: \"example.test\"\n    stub-addr: {}@{}\n",
            server.ip(),
            server.port()
        ),
    )
    .unwrap();
    let out = Command::new("unbound-host")
        .arg("-C")
        .arg(&conf)
        .arg("-f")
        .arg(anchor)
        .args(["-v", "-t", rtype, name])
        .output()
        .expect("unbound-host runs (apt-get install unbound-host)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
#[ignore = "needs delv and unbound-host"]
fn delv_and_unbound_validate_nsec_and_nsec3_zones() {
    for denial in ["nsec", "nsec3"] {
        let dir = tempfile::tempdir().unwrap();
        let flag = format!("example.test:denial={denial}");
        let server =
            Server::start_with(dir.path(), &repo_zones(), Some(TOKEN), &["--dnssec", &flag]);
        server.put("example.test", "n1", SHA1);
        let (dnskey, ds) = key_show(dir.path());
        let delv_ta = delv_anchor(dir.path(), &dnskey);
        let unbound_ta = dir.path().join("anchor.key");
        std::fs::write(&unbound_ta, format!("{dnskey}\n{ds}\n")).unwrap();

        let cases = [
            ("n1.example.test", "TXT", "; fully validated", "(secure)"),
            ("info.example.test", "TXT", "; fully validated", "(secure)"),
            (
                "n1.example.test",
                "A",
                "; negative response, fully validated",
                "(secure)",
            ),
            (
                "nope.example.test",
                "TXT",
                "; negative response, fully validated",
                "(secure)",
            ),
            (
                "x.n1.example.test",
                "TXT",
                "; negative response, fully validated",
                "(secure)",
            ),
        ];
        for (name, rtype, delv_ok, unbound_ok) in cases {
            let d = delv(server.dns, &delv_ta, name, rtype);
            assert!(
                d.contains(delv_ok),
                "{denial} {name} {rtype}: delv said\n{d}"
            );
            let u = unbound_host(dir.path(), server.dns, &unbound_ta, name, rtype);
            assert!(
                u.contains(unbound_ok) && !u.contains("BOGUS"),
                "{denial} {name} {rtype}: unbound-host said\n{u}"
            );
        }

        // After a publish the new commit validates; after a delete the NXDOMAIN does.
        server.put("example.test", "n1", SHA256);
        let d = delv(server.dns, &delv_ta, "n1.example.test", "TXT");
        assert!(
            d.contains("; fully validated") && d.contains(SHA256),
            "{denial}: {d}"
        );
        let u = unbound_host(
            dir.path(),
            server.dns,
            &unbound_ta,
            "n1.example.test",
            "TXT",
        );
        assert!(
            u.contains(SHA256) && u.contains("(secure)"),
            "{denial}: {u}"
        );
        assert_eq!(
            server
                .call("DELETE", "/v1/zones/example.test/nodes/n1", None)
                .status,
            204
        );
        let d = delv(server.dns, &delv_ta, "n1.example.test", "TXT");
        assert!(
            d.contains("; negative response, fully validated"),
            "{denial}: {d}"
        );
        let u = unbound_host(
            dir.path(),
            server.dns,
            &unbound_ta,
            "n1.example.test",
            "TXT",
        );
        assert!(
            u.contains("NXDOMAIN") && u.contains("(secure)"),
            "{denial}: {u}"
        );
    }
}

#[test]
#[ignore = "needs delv and unbound-host"]
fn a_wrong_trust_anchor_fails() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    server.put("example.test", "n1", SHA1);
    // The key of another server's zone of the same name.
    let other = tempfile::tempdir().unwrap();
    drop(Server::start(other.path(), &repo_zones()));
    let (dnskey, ds) = key_show(other.path());
    let delv_ta = delv_anchor(other.path(), &dnskey);
    let d = delv(server.dns, &delv_ta, "n1.example.test", "TXT");
    assert!(
        !d.contains("fully validated"),
        "delv accepted a wrong anchor:\n{d}"
    );
    let unbound_ta = other.path().join("anchor.key");
    std::fs::write(&unbound_ta, format!("{ds}\n")).unwrap();
    let u = unbound_host(
        other.path(),
        server.dns,
        &unbound_ta,
        "n1.example.test",
        "TXT",
    );
    assert!(
        u.contains("BOGUS") && !u.contains("(secure)"),
        "unbound-host accepted a wrong anchor:\n{u}"
    );
}

#[test]
fn key_files_are_private_and_checked_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let zones = repo_zones();
    drop(Server::start(dir.path(), &zones));
    let key = dir.path().join("keys/example.test.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let server = Server::start(dir.path(), &zones);
    assert!(!server.log().contains("private-key"));
    drop(server);

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = serve_command(dir.path(), &zones)
        .env("HERALD_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("example.test.key") && err.contains("chmod 600"),
        "{err}"
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        &key,
        "zone: example.test.\nalgorithm: 13\nprivate-key: bm90IGEga2V5\n",
    )
    .unwrap();
    let out = serve_command(dir.path(), &zones)
        .env("HERALD_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("example.test.key") && err.contains("not a P-256"),
        "{err}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["key", "show", "--zone", "other.test", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no signing key for other.test"));
}

#[test]
fn ed25519_zones() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        &repo_zones(),
        Some(TOKEN),
        &["--dnssec", "example.test:algorithm=ed25519"],
    );
    server.put("example.test", "n1", SHA1);
    let (dnskey, _) = key_show(dir.path());
    assert!(dnskey.contains(" DNSKEY 257 3 15 "), "{dnskey}");
    let keys = query_do(server.dns, "example.test.", RecordType::DNSKEY);
    let RData::DNSSEC(DNSSECRData::DNSKEY(key)) = &keys.answers[0].data else {
        panic!()
    };
    assert_eq!(
        verify(
            &query_do(server.dns, "n1.example.test.", RecordType::TXT),
            key
        ),
        1
    );
    drop(server);
    // Changing the algorithm of an existing key is refused, not done silently.
    let out = serve_command(dir.path(), &repo_zones())
        .env("HERALD_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("rollover"));
}
