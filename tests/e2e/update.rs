//! RFC 2136 UPDATE of node TXT records as clients no one here wrote send it: BIND's nsupdate
//! and Knot's knsupdate, TSIG-signed with scoped keys; checked by what Herald then serves (dig,
//! hickory, the admin API), and by a Knot secondary that follows the change by IXFR.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{Value, json};

use crate::harness::*;
use crate::secondary::Peer;

/// base64 of the 28 bytes "secret-secret-secret-secret!".
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";
/// base64 of "secret-secret-secret-secret": the same key names with the wrong secret.
const WRONG_SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0";

/// The keys every test server has: `upd` may update every node of example.test, `nstar` only
/// nodes whose label starts with n, `xfr` has no scope (transfers only), and `sha1`,
/// `sha384` and `sha512` are `upd` with the other algorithms.
fn key_flags() -> Vec<String> {
    [
        format!("upd:hmac-sha256:{SECRET},zone=example.test"),
        format!("nstar:hmac-sha256:{SECRET},zone=example.test,nodes=n*"),
        format!("xfr:hmac-sha256:{SECRET}"),
        format!("sha1:hmac-sha1:{SECRET},zone=example.test,nodes=*"),
        format!("sha384:hmac-sha384:{SECRET},zone=example.test"),
        format!("sha512:hmac-sha512:{SECRET},zone=example.test"),
    ]
    .into_iter()
    .flat_map(|k| ["--tsig-key".to_owned(), k])
    .collect()
}

/// The `-y` argument of nsupdate and knsupdate for one of the keys of [`key_flags`].
fn key(alg: &str, name: &str) -> String {
    format!("hmac-{alg}:{name}:{SECRET}")
}

fn upd() -> String {
    key("sha256", "upd")
}

/// Herald with the keys of [`key_flags`] and `extra` flags.
fn start(dir: &Path, extra: &[&str]) -> Server {
    let keys = key_flags();
    let mut args: Vec<&str> = keys.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    Server::start_with(dir, &repo_zones(), Some(TOKEN), &args)
}

/// A hex string of `n` times `c`: a commit id.
fn hex(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// One UPDATE message for example.test: the lines, then `send`.
fn msg(lines: &[&str]) -> String {
    msg_for("example.test", lines)
}

fn msg_for(zone: &str, lines: &[&str]) -> String {
    let mut s = format!("zone {zone}\n");
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("send\n");
    s
}

/// Runs a client with `script` on stdin after a `server` line for Herald: whether it exited
/// 0, and its stdout and stderr together.
fn run_client(mut cmd: Command, server: &Server, script: &str, what: &str) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} runs: {e}"));
    let input = format!("server {} {}\n{script}", server.dns.ip(), server.dns.port());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `nsupdate` (bind9-dnsutils) with `-y key` when given, and extra flags (`-v` for TCP).
/// The UDP retry interval is long: an add is not idempotent (a retried one would publish
/// again and raise seq), so a slow answer on a loaded machine must not cause a retry.
fn nsupdate_with(
    server: &Server,
    flags: &[&str],
    key: Option<&str>,
    script: &str,
) -> (bool, String) {
    let mut cmd = Command::new("nsupdate");
    cmd.args(["-t", "30", "-u", "10", "-r", "2"]).args(flags);
    if let Some(k) = key {
        cmd.arg("-y").arg(k);
    }
    run_client(
        cmd,
        server,
        script,
        "nsupdate (apt-get install bind9-dnsutils)",
    )
}

fn nsupdate(server: &Server, key: Option<&str>, script: &str) -> (bool, String) {
    nsupdate_with(server, &[], key, script)
}

/// `knsupdate` (knot-dnsutils) with `-y key`; the script ends with `quit`.
fn knsupdate(server: &Server, key: &str, script: &str) -> (bool, String) {
    let mut cmd = Command::new("knsupdate");
    cmd.args(["-t", "10", "-y", key]);
    let script = format!("{script}quit\n");
    run_client(
        cmd,
        server,
        &script,
        "knsupdate (apt-get install knot-dnsutils)",
    )
}

/// Asserts that nsupdate succeeded.
#[track_caller]
fn ok(result: (bool, String)) {
    let (success, out) = result;
    assert!(success, "nsupdate failed: {out}");
    assert!(!out.contains("failed"), "{out}");
    assert!(!out.contains("TSIG error"), "{out}");
}

/// Asserts that nsupdate failed with `rcode` (`update failed: RCODE`).
#[track_caller]
fn failed(result: (bool, String), rcode: &str) {
    let (success, out) = result;
    assert!(!success, "expected {rcode}, got success: {out}");
    assert!(
        out.contains(&format!("update failed: {rcode}\n")),
        "expected update failed: {rcode}, got: {out}"
    );
}

fn node_path(node: &str) -> String {
    format!("/v1/zones/example.test/nodes/{node}")
}

fn fqdn(node: &str) -> String {
    format!("{node}.example.test.")
}

/// The TXT strings Herald serves for `node`, each checked to have TTL 60.
fn served(server: &Server, node: &str) -> Vec<String> {
    let m = query(server.dns, &fqdn(node), RecordType::TXT, false);
    for r in &m.answers {
        assert_eq!(r.ttl, 60, "{node}: {r}");
    }
    txt(&m)
}

/// Asserts that `node` is published with `commit` at `seq`, in the API and on the wire (the
/// whole TXT string, TTL 60, over UDP and TCP); returns the served string.
#[track_caller]
fn assert_published(server: &Server, node: &str, commit: &str, seq: u64) -> String {
    let r = server.call("GET", &node_path(node), None);
    assert_eq!(r.status, 200, "{node}: {r:?}");
    assert_eq!(r.json["commit"], commit, "{node}: {}", r.json);
    assert_eq!(r.json["seq"], seq, "{node}: {}", r.json);
    let ts = r.json["ts"].as_u64().expect("ts");
    let want = format!("v=herald1 commit={commit} seq={seq} ts={ts}");
    assert_eq!(
        served(server, node),
        std::slice::from_ref(&want),
        "{node} over UDP"
    );
    let m = query(server.dns, &fqdn(node), RecordType::TXT, true);
    assert_eq!(txt(&m), std::slice::from_ref(&want), "{node} over TCP");
    want
}

/// Asserts that `node` is not published: 404 from the API, NXDOMAIN on the wire.
#[track_caller]
fn assert_absent(server: &Server, node: &str) {
    let r = server.call("GET", &node_path(node), None);
    assert_eq!(r.status, 404, "{node}: {r:?}");
    let m = query(server.dns, &fqdn(node), RecordType::TXT, false);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{node}");
    assert!(txt(&m).is_empty(), "{node}: {:?}", txt(&m));
}

/// All a failed UPDATE could have changed: the serial, the journal, every node in the API and
/// what the wire serves for a few names.
fn state(server: &Server) -> Value {
    let zone = server.call("GET", "/v1/zones/example.test", None);
    assert_eq!(zone.status, 200, "{zone:?}");
    let nodes = server.call("GET", "/v1/zones/example.test/nodes", None);
    assert_eq!(nodes.status, 200, "{nodes:?}");
    let names = ["n1", "n2", "n3", "m1", "info", "ns1"];
    let wire: Vec<Value> = names
        .iter()
        .map(|n| json!(txt(&query(server.dns, &fqdn(n), RecordType::TXT, false))))
        .collect();
    json!({
        "serial": zone.json["serial"],
        "journal": zone.json["journal"],
        "nodes": nodes.json["nodes"],
        "wire": wire,
    })
}

fn serial(server: &Server) -> u64 {
    server.call("GET", "/v1/zones/example.test", None).json["serial"]
        .as_u64()
        .unwrap()
}

#[test]
#[ignore = "needs nsupdate and dig"]
fn nsupdate_adds_replaces_and_deletes_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let s0 = serial(&server);

    // Add: a bare 40-hex commit.
    let add = format!("update add n1.example.test. 60 TXT \"{SHA1}\"");
    ok(nsupdate(&server, Some(&upd()), &msg(&[&add])));
    let want = assert_published(&server, "n1", SHA1, 1);
    let out = dig(server.dns, &["+noall", "+answer", "n1.example.test", "TXT"]);
    assert_eq!(
        out.trim(),
        format!("n1.example.test.\t60\tIN\tTXT\t\"{want}\""),
        "{out}"
    );
    assert_eq!(serial(&server), s0 + 1);

    // Replace: `commit=<64 hex>`; the sequence number rises.
    let replace = format!("update add n1.example.test. 60 TXT \"commit={SHA256}\"");
    ok(nsupdate(&server, Some(&upd()), &msg(&[&replace])));
    let want = assert_published(&server, "n1", SHA256, 2);
    let out = dig(server.dns, &["+short", "+tcp", "n1.example.test", "TXT"]);
    assert_eq!(out.trim(), format!("\"{want}\""));

    // Replace over TCP with a served string (another commit): seq and ts are Herald's own.
    let third = hex('7', 40);
    let replay =
        format!("update add n1.example.test. 60 TXT \"v=herald1 commit={third} seq=99 ts=1\"");
    ok(nsupdate_with(
        &server,
        &["-v"],
        Some(&upd()),
        &msg(&[&replay]),
    ));
    let want = assert_published(&server, "n1", &third, 3);
    assert!(
        !want.contains("seq=99") && !want.contains("ts=1\""),
        "{want}"
    );
    assert_eq!(serial(&server), s0 + 3);

    // Three more nodes, then each delete form removes one; the others stay.
    for (node, c) in [("n2", '2'), ("n3", '3'), ("n4", '4')] {
        let add = format!("update add {node}.example.test. 60 TXT \"{}\"", hex(c, 64));
        ok(nsupdate(&server, Some(&upd()), &msg(&[&add])));
        assert_published(&server, node, &hex(c, 64), 1);
    }
    // Delete the RRset.
    ok(nsupdate(
        &server,
        Some(&upd()),
        &msg(&["update delete n1.example.test. TXT"]),
    ));
    assert_absent(&server, "n1");
    assert_published(&server, "n2", &hex('2', 64), 1);
    // Delete one record (its content is not compared), over TCP.
    ok(nsupdate_with(
        &server,
        &["-v"],
        Some(&upd()),
        &msg(&["update delete n2.example.test. TXT \"x\""]),
    ));
    assert_absent(&server, "n2");
    // Delete the name.
    ok(nsupdate(
        &server,
        Some(&upd()),
        &msg(&["update delete n3.example.test."]),
    ));
    assert_absent(&server, "n3");
    assert_published(&server, "n4", &hex('4', 64), 1);
    let out = dig(server.dns, &["n1.example.test", "TXT"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");

    // Deleting a node that is not there: NOERROR, and nothing changes (not even the serial).
    let before = state(&server);
    for line in [
        "update delete n9.example.test. TXT",
        "update delete n9.example.test.",
        "update delete n1.example.test. TXT \"x\"",
    ] {
        ok(nsupdate(&server, Some(&upd()), &msg(&[line])));
        assert_eq!(state(&server), before, "{line}");
    }
}

#[test]
#[ignore = "needs nsupdate"]
fn one_message_is_one_atomic_change() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    server.put("example.test", "n4", SHA1);
    let before = server.call("GET", "/v1/zones/example.test", None).json;

    let a = format!("update add n5.example.test. 60 TXT \"{SHA1}\"");
    let b = format!("update add n6.example.test. 60 TXT \"commit={SHA256}\"");
    ok(nsupdate_with(
        &server,
        &["-v"],
        Some(&upd()),
        &msg(&[&a, &b, "update delete n4.example.test. TXT"]),
    ));
    assert_published(&server, "n5", SHA1, 1);
    assert_published(&server, "n6", SHA256, 1);
    assert_absent(&server, "n4");
    let after = server.call("GET", "/v1/zones/example.test", None).json;
    assert_eq!(
        after["serial"].as_u64().unwrap(),
        before["serial"].as_u64().unwrap() + 1,
        "one serial for the message: {before} -> {after}"
    );
    assert_eq!(
        after["journal"]["entries"].as_u64().unwrap(),
        before["journal"]["entries"].as_u64().unwrap() + 1,
        "one journal entry for the message: {before} -> {after}"
    );
    let n5 = server.call("GET", &node_path("n5"), None).json;
    let n6 = server.call("GET", &node_path("n6"), None).json;
    assert_eq!(n5["serial"], after["serial"], "{n5}");
    assert_eq!(n6["serial"], after["serial"], "{n6}");
}

#[test]
#[ignore = "needs nsupdate"]
fn prerequisites_pass_and_fail_with_their_rcodes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let add = format!("update add n1.example.test. 60 TXT \"{SHA1}\"");
    ok(nsupdate(&server, Some(&upd()), &msg(&[&add])));
    let n1 = assert_published(&server, "n1", SHA1, 1);
    let n1_other_commit = n1.replace(SHA1, &hex('e', 40));
    let n1_other_seq = n1.replace("seq=1", "seq=2");

    // Each prerequisite goes with an add of n2 (a new commit each time): on success n2 gets
    // it; on failure nothing changes. n1 exists, n9 does not.
    let v_ok = format!("prereq yxrrset n1.example.test. TXT \"{n1}\"");
    let v_commit = format!("prereq yxrrset n1.example.test. TXT \"{n1_other_commit}\"");
    let v_seq = format!("prereq yxrrset n1.example.test. TXT \"{n1_other_seq}\"");
    let cases: Vec<(&str, Option<&str>)> = vec![
        // Nodes.
        ("prereq nxdomain n9.example.test.", None),
        ("prereq nxdomain n1.example.test.", Some("YXDOMAIN")),
        ("prereq yxdomain n1.example.test.", None),
        ("prereq yxdomain n9.example.test.", Some("NXDOMAIN")),
        ("prereq nxrrset n9.example.test. TXT", None),
        ("prereq nxrrset n1.example.test. TXT", Some("YXRRSET")),
        ("prereq yxrrset n1.example.test. TXT", None),
        ("prereq yxrrset n9.example.test. TXT", Some("NXRRSET")),
        (&v_ok, None),
        (&v_commit, Some("NXRRSET")),
        (&v_seq, Some("NXRRSET")),
        ("prereq yxrrset n1.example.test. TXT \"x\"", Some("NXRRSET")),
        // Names of the zone file.
        ("prereq yxrrset ns1.example.test. A", None),
        ("prereq nxrrset ns1.example.test. A", Some("YXRRSET")),
        ("prereq yxrrset ns1.example.test. A 127.0.0.1", None),
        (
            "prereq yxrrset ns1.example.test. A 127.0.0.2",
            Some("NXRRSET"),
        ),
        ("prereq yxrrset ns1.example.test. TXT", Some("NXRRSET")),
        ("prereq nxrrset ns1.example.test. TXT", None),
        ("prereq yxdomain info.example.test.", None),
        ("prereq nxdomain info.example.test.", Some("YXDOMAIN")),
        ("prereq nxrrset info.example.test. TXT", Some("YXRRSET")),
        (
            "prereq yxrrset info.example.test. TXT \"wrong\"",
            Some("NXRRSET"),
        ),
        ("prereq nxdomain example.test.", Some("YXDOMAIN")),
        ("prereq yxrrset example.test. NS", None),
        ("prereq yxdomain nothing.example.test.", Some("NXDOMAIN")),
    ];
    let mut seq = 0;
    for (i, (prereq, outcome)) in cases.iter().enumerate() {
        let commit = format!("{:040x}", i + 1);
        let add = format!("update add n2.example.test. 60 TXT \"{commit}\"");
        let before = state(&server);
        let result = nsupdate(&server, Some(&upd()), &msg(&[prereq, &add]));
        match outcome {
            None => {
                let (success, out) = &result;
                assert!(*success && !out.contains("failed"), "{prereq}: {out}");
                seq += 1;
                assert_published(&server, "n2", &commit, seq);
            }
            Some(rcode) => {
                let (success, out) = &result;
                assert!(
                    !success && out.contains(&format!("update failed: {rcode}\n")),
                    "{prereq}: expected {rcode}, got: {out}"
                );
                assert_eq!(state(&server), before, "{prereq} changed something");
            }
        }
    }
    assert_published(&server, "n1", SHA1, 1);

    // A failed prerequisite stops every update of the message.
    let before = state(&server);
    let add3 = format!("update add n3.example.test. 60 TXT \"{SHA256}\"");
    failed(
        nsupdate_with(
            &server,
            &["-v"],
            Some(&upd()),
            &msg(&[
                "prereq yxdomain n1.example.test.",
                "prereq nxdomain n1.example.test.",
                &add3,
                "update delete n1.example.test. TXT",
            ]),
        ),
        "YXDOMAIN",
    );
    assert_eq!(state(&server), before);
    assert_absent(&server, "n3");
    assert_published(&server, "n1", SHA1, 1);

    // Compare-and-swap: the value prerequisite as a client would use it.
    let swap = format!("update add n1.example.test. 60 TXT \"{SHA256}\"");
    ok(nsupdate(
        &server,
        Some(&upd()),
        &msg(&[&v_ok, "update delete n1.example.test. TXT", &swap]),
    ));
    assert_published(&server, "n1", SHA256, 2);
    // The same swap again: n1 changed, so it fails.
    let before = state(&server);
    failed(
        nsupdate(&server, Some(&upd()), &msg(&[&v_ok, &swap])),
        "NXRRSET",
    );
    assert_eq!(state(&server), before);
}

#[test]
#[ignore = "needs nsupdate"]
fn refused_updates_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    server.put("example.test", "n1", SHA1);
    server.put("example.test", "m1", SHA1);
    let n2 = format!("update add n2.example.test. 60 TXT \"{SHA256}\"");
    let wrong = format!("hmac-sha256:upd:{WRONG_SECRET}");
    let unknown = key("sha256", "nokey");
    let nstar = key("sha256", "nstar");
    let xfr = key("sha256", "xfr");
    let upd = upd();
    let m1 = format!("update add m1.example.test. 60 TXT \"{SHA256}\"");
    let ns1 = format!("update add ns1.example.test. 60 TXT \"{SHA256}\"");
    let info = format!("update add info.example.test. 60 TXT \"{SHA256}\"");
    let apex = format!("update add example.test. 60 TXT \"{SHA256}\"");
    let other = msg_for(
        "other.test",
        &[&format!("update add n1.other.test. 60 TXT \"{SHA256}\"")],
    );
    // (what, key, message, what nsupdate must print)
    let cases: Vec<(&str, Option<&str>, String, &str)> = vec![
        ("unsigned", None, msg(&[&n2]), "update failed: REFUSED\n"),
        (
            "wrong secret",
            Some(&wrong),
            msg(&[&n2]),
            "update failed: NOTAUTH(BADSIG)",
        ),
        (
            "unknown key",
            Some(&unknown),
            msg(&[&n2]),
            "update failed: NOTAUTH(BADKEY)",
        ),
        (
            "node outside the key's scope (add)",
            Some(&nstar),
            msg(&[&m1]),
            "update failed: REFUSED\n",
        ),
        (
            "node outside the key's scope (delete)",
            Some(&nstar),
            msg(&["update delete m1.example.test. TXT"]),
            "update failed: REFUSED\n",
        ),
        (
            "one node in scope, one outside",
            Some(&nstar),
            msg(&[&n2, &m1]),
            "update failed: REFUSED\n",
        ),
        (
            "an A record beside a valid TXT add",
            Some(upd.as_str()),
            msg(&["update add n3.example.test. 60 A 192.0.2.1", &n2]),
            "update failed: REFUSED\n",
        ),
        (
            "an A record after a valid TXT add",
            Some(upd.as_str()),
            msg(&[&n2, "update add n2.example.test. 60 A 192.0.2.1"]),
            "update failed: REFUSED\n",
        ),
        (
            "a key without scope",
            Some(&xfr),
            msg(&[&n2]),
            "update failed: REFUSED\n",
        ),
        (
            "a zone not served",
            Some(upd.as_str()),
            other,
            "update failed: NOTZONE\n",
        ),
        (
            "an add on a zone-file name (ns1)",
            Some(upd.as_str()),
            msg(&[&ns1]),
            "update failed: REFUSED\n",
        ),
        (
            "an add on a zone-file name (info)",
            Some(upd.as_str()),
            msg(&[&info]),
            "update failed: REFUSED\n",
        ),
        (
            "an add at the apex",
            Some(upd.as_str()),
            msg(&[&apex]),
            "update failed: REFUSED\n",
        ),
        (
            "a delete of a zone-file RRset",
            Some(upd.as_str()),
            msg(&["update delete info.example.test. TXT"]),
            "update failed: REFUSED\n",
        ),
        (
            "TXT content that names no commit",
            Some(upd.as_str()),
            msg(&["update add n2.example.test. 60 TXT \"hello\""]),
            "update failed: REFUSED\n",
        ),
    ];
    let before = state(&server);
    for (what, key, script, needle) in &cases {
        let (success, out) = nsupdate(&server, *key, script);
        assert!(!success, "{what}: expected failure, got: {out}");
        assert!(
            out.contains(needle),
            "{what}: expected {needle:?}, got: {out}"
        );
        if key.is_some() && !needle.contains("NOTAUTH") {
            // The answer was signed, and nsupdate verified it.
            assert!(!out.contains("TSIG error"), "{what}: {out}");
        }
        assert_eq!(state(&server), before, "{what} changed something");
    }
    assert_absent(&server, "n2");
    assert_absent(&server, "n3");

    // The same messages succeed where they should: the scoped key inside its scope.
    ok(nsupdate(&server, Some(&nstar), &msg(&[&n2])));
    assert_published(&server, "n2", SHA256, 1);
    ok(nsupdate(&server, Some(upd.as_str()), &msg(&[&m1])));
    assert_published(&server, "m1", SHA256, 2);
}

#[test]
#[ignore = "needs nsupdate"]
fn hmac_sha1_sha384_and_sha512_keys_update() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let add = format!("update add n1.example.test. 60 TXT \"{SHA1}\"");
    ok(nsupdate(&server, Some(&key("sha1", "sha1")), &msg(&[&add])));
    assert_published(&server, "n1", SHA1, 1);
    let replace = format!("update add n1.example.test. 60 TXT \"{SHA256}\"");
    ok(nsupdate_with(
        &server,
        &["-v"],
        Some(&key("sha512", "sha512")),
        &msg(&[&replace]),
    ));
    assert_published(&server, "n1", SHA256, 2);
    let third = format!(
        "update add n1.example.test. 60 TXT \"commit={}\"",
        hex('c', 40)
    );
    ok(nsupdate(
        &server,
        Some(&key("sha384", "sha384")),
        &msg(&[&third]),
    ));
    assert_published(&server, "n1", &hex('c', 40), 3);
    ok(nsupdate(
        &server,
        Some(&key("sha512", "sha512")),
        &msg(&["update delete n1.example.test. TXT"]),
    ));
    assert_absent(&server, "n1");
    // The algorithm is part of the key: the right name and secret with another algorithm is
    // not that key.
    let before = state(&server);
    let (success, out) = nsupdate(&server, Some(&key("sha1", "upd")), &msg(&[&add]));
    assert!(!success && out.contains("update failed: NOTAUTH"), "{out}");
    assert_eq!(state(&server), before);
}

#[test]
#[ignore = "needs knsupdate"]
fn knsupdate_adds_replaces_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let with_dot = |lines: &[&str]| msg_for("example.test.", lines);

    let add = format!("update add n1.example.test. 60 TXT \"{SHA256}\"");
    let (success, out) = knsupdate(&server, &upd(), &with_dot(&[&add]));
    assert!(success && !out.contains("ERROR"), "{out}");
    assert_published(&server, "n1", SHA256, 1);

    let replace = format!("update add n1.example.test. 60 TXT \"commit={SHA1}\"");
    let (success, out) = knsupdate(&server, &upd(), &with_dot(&[&replace]));
    assert!(success && !out.contains("ERROR"), "{out}");
    let n1 = assert_published(&server, "n1", SHA1, 2);

    // A failing prerequisite: an error naming the rcode, nothing changed.
    let before = state(&server);
    let (success, out) = knsupdate(
        &server,
        &upd(),
        &with_dot(&["prereq nxdomain n1.example.test.", &add]),
    );
    assert!(!success, "{out}");
    assert!(out.contains("update failed with error 'YXDOMAIN'"), "{out}");
    assert!(!out.contains("failed to verify TSIG"), "{out}");
    assert_eq!(state(&server), before);

    // A passing value prerequisite over TCP.
    let prereq = format!("prereq yxrrset n1.example.test. TXT \"{n1}\"");
    let mut cmd = Command::new("knsupdate");
    cmd.args(["-v", "-t", "10", "-y", &upd()]);
    let script = with_dot(&[&prereq, &add]) + "quit\n";
    let (success, out) = run_client(cmd, &server, &script, "knsupdate");
    assert!(success && !out.contains("ERROR"), "{out}");
    assert_published(&server, "n1", SHA256, 3);

    let (success, out) = knsupdate(
        &server,
        &upd(),
        &with_dot(&["update delete n1.example.test. TXT"]),
    );
    assert!(success && !out.contains("ERROR"), "{out}");
    assert_absent(&server, "n1");

    // A wrong secret: knsupdate reports the TSIG failure.
    let before = state(&server);
    let (success, out) = knsupdate(
        &server,
        &format!("hmac-sha256:upd:{WRONG_SECRET}"),
        &with_dot(&[&add]),
    );
    assert!(!success, "{out}");
    assert!(out.contains("BADSIG"), "{out}");
    assert_eq!(state(&server), before);
}

/// What a server answers for a node's TXT: the rcode and the strings.
fn view(addr: SocketAddr, node: &str) -> Option<(ResponseCode, Vec<String>)> {
    let m = ask(addr, &fqdn(node), RecordType::TXT)?;
    Some((m.metadata.response_code, txt(&m)))
}

/// Whether Knot serves exactly what Herald serves: the serial, and n1 and n2.
fn knot_matches(server: &Server, knot: &Peer) -> bool {
    let serial = soa_serial(server.dns);
    serial.is_some()
        && soa_serial(knot.addr) == serial
        && ["n1", "n2"]
            .iter()
            .all(|n| view(knot.addr, n).is_some() && view(knot.addr, n) == view(server.dns, n))
}

#[test]
#[ignore = "needs knot and nsupdate"]
fn knot_follows_updates_by_ixfr() {
    let dir = tempfile::tempdir().unwrap();
    let kport = free_port();
    let notify = format!("127.0.0.1:{kport}");
    let server = start(
        dir.path(),
        &["--allow-transfer", "127.0.0.1/32", "--notify", &notify],
    );
    server.put("example.test", "n1", SHA1);
    let knot = Peer::knot_by_address(dir.path(), server.dns, kport);
    wait_for(Duration::from_secs(30), "the first transfer", || {
        knot_matches(&server, &knot)
    });
    let n1 = assert_published(&server, "n1", SHA1, 1);
    assert_eq!(view(knot.addr, "n1").unwrap().1, [n1], "{}", knot.log());
    let before = server.call("GET", "/v1/zones/example.test", None).json["transfers"].clone();

    // An add by UPDATE reaches Knot.
    let add = format!("update add n2.example.test. 60 TXT \"{SHA256}\"");
    ok(nsupdate(&server, Some(&upd()), &msg(&[&add])));
    let n2 = assert_published(&server, "n2", SHA256, 1);
    wait_for(Duration::from_secs(10), "the add on Knot", || {
        knot_matches(&server, &knot)
    });
    assert_eq!(
        view(knot.addr, "n2").unwrap(),
        (ResponseCode::NoError, vec![n2.clone()])
    );

    // A delete by UPDATE (over TCP) too.
    ok(nsupdate_with(
        &server,
        &["-v"],
        Some(&upd()),
        &msg(&["update delete n1.example.test. TXT"]),
    ));
    assert_absent(&server, "n1");
    wait_for(Duration::from_secs(10), "the delete on Knot", || {
        knot_matches(&server, &knot)
    });
    let (rcode, strings) = view(knot.addr, "n1").unwrap();
    assert_eq!(rcode, ResponseCode::NXDomain, "{}", knot.log());
    assert!(strings.is_empty(), "{strings:?}");
    assert_eq!(
        view(knot.addr, "n2").unwrap(),
        (ResponseCode::NoError, vec![n2])
    );

    // Both changes went by IXFR.
    let z = server.call("GET", "/v1/zones/example.test", None).json;
    let after = &z["transfers"];
    assert!(
        after["ixfr"].as_u64().unwrap() >= before["ixfr"].as_u64().unwrap() + 2,
        "IXFR for each update: {before} -> {after}"
    );
    assert_eq!(
        after["axfr"], before["axfr"],
        "no full transfer: {before} -> {after}"
    );
    wait_for(Duration::from_secs(5), "IXFR in Knot's log", || {
        knot.log().contains("IXFR, incoming")
    });
}

/// An UPDATE of example.test adding node `node` with `commit`, signed by `upd` at `time`
/// (hickory's own TSIG signer, so the time can be chosen).
fn signed_update(node: &str, commit: &str, time: u64, id: u16) -> Vec<u8> {
    signed_update_with(node, commit, time, id, 300)
}

/// [`signed_update`] with the fudge given in the TSIG record.
fn signed_update_with(node: &str, commit: &str, time: u64, id: u16, fudge: u16) -> Vec<u8> {
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::TXT;
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::{Record, TSigner};
    let mut m = Message::new(id, MessageType::Query, OpCode::Update);
    m.add_query(Query::query(
        Name::from_ascii("example.test.").unwrap(),
        RecordType::SOA,
    ));
    m.add_authority(Record::from_rdata(
        Name::from_ascii(format!("{node}.example.test.")).unwrap(),
        60,
        RData::TXT(TXT::new(vec![commit.to_owned()])),
    ));
    let signer = TSigner::new(
        b"secret-secret-secret-secret!".to_vec(),
        TsigAlgorithm::HmacSha256,
        Name::from_ascii("upd.").unwrap(),
        fudge,
    )
    .unwrap();
    let (tsig, _) = signer.sign_message(&m, time).unwrap();
    m.set_signature(tsig);
    m.to_vec().unwrap()
}

/// A captured UPDATE played again changes nothing: the same message gets its first answer
/// again (so a client's retransmission is safe), and one signed well before the key's newest
/// gets BADTIME, signed. A signature outside Herald's 300 s fudge is BADTIME whatever fudge the
/// client asked for.
#[test]
fn replayed_updates_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let t = now();
    let first = signed_update("n1", &hex('a', 40), t - 60, 1);
    let answer = udp_exchange(server.dns, &first);
    let m = Message::from_vec(&answer).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.signature().is_some(), "the answer is signed");
    assert_published(&server, "n1", &hex('a', 40), 1);

    // The same bytes again: the same answer, nothing applied (seq stays 1).
    assert_eq!(udp_exchange(server.dns, &first), answer);
    assert_published(&server, "n1", &hex('a', 40), 1);

    // A newer update, then an old one signed 60 s before it: BADTIME, signed, nothing applied.
    ok_update(&server, &signed_update("n2", &hex('b', 40), t, 2));
    let before = state(&server);
    let stale = signed_update("n1", &hex('c', 40), t - 30, 3);
    let m = Message::from_vec(&udp_exchange(server.dns, &stale)).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
    let tsig = m.signature().expect("a TSIG record");
    assert_eq!(
        tsig.data.error,
        Some(hickory_proto::rr::rdata::tsig::TsigError::BadTime)
    );
    assert!(
        !tsig.data.mac.is_empty(),
        "BADTIME is signed (RFC 8945 §5.2.3)"
    );
    assert_eq!(state(&server), before);

    // Signed an hour ago, with a fudge of an hour asked for: still BADTIME.
    let old = signed_update_with("n3", &hex('d', 40), t - 3600, 4, 3600);
    let m = Message::from_vec(&udp_exchange(server.dns, &old)).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
    assert_eq!(state(&server), before);
}

fn ok_update(server: &Server, msg: &[u8]) {
    let m = Message::from_vec(&udp_exchange(server.dns, msg)).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
}

/// A prerequisite on the SOA's value is a compare-and-swap on the zone: it holds with the
/// serial served now, and fails (NXRRSET) once another change has moved it.
#[test]
#[ignore = "needs nsupdate"]
fn an_soa_prerequisite_compares_the_current_serial() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    let soa = |serial: u64| {
        format!(
            "prereq yxrrset example.test. SOA ns1.example.test. hostmaster.example.test. \
             {serial} 3600 900 1209600 60"
        )
    };
    let s = serial(&server);
    let add = format!("update add n1.example.test. 60 TXT \"{}\"", hex('a', 40));
    ok(nsupdate(&server, Some(&upd()), &msg(&[&soa(s), &add])));
    assert_published(&server, "n1", &hex('a', 40), 1);
    // The serial moved with that change: the old one no longer holds.
    let before = state(&server);
    let add = format!("update add n1.example.test. 60 TXT \"{}\"", hex('b', 40));
    failed(
        nsupdate(&server, Some(&upd()), &msg(&[&soa(s), &add])),
        "NXRRSET",
    );
    assert_eq!(state(&server), before);
    // Another SOA field wrong: NXRRSET too.
    let wrong = soa(serial(&server)).replace("3600 900", "3601 900");
    failed(
        nsupdate(&server, Some(&upd()), &msg(&[&wrong, &add])),
        "NXRRSET",
    );
    assert_eq!(state(&server), before);
    ok(nsupdate(
        &server,
        Some(&upd()),
        &msg(&[&soa(serial(&server)), &add]),
    ));
    assert_published(&server, "n1", &hex('b', 40), 2);
}

/// A key scoped to some nodes may update them but not transfer the zone, which would read
/// the others; a key scoped to the whole zone, and one without scope, may.
#[test]
#[ignore = "needs dig"]
fn only_keys_covering_the_zone_transfer_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &[]);
    server.put("example.test", "m1", &hex('a', 40));
    let axfr = |key: &str| {
        let y = format!("hmac-sha256:{key}:{SECRET}");
        dig(server.dns, &["-y", &y, "+tcp", "example.test", "AXFR"])
    };
    for key in ["upd", "xfr"] {
        let out = axfr(key);
        assert!(out.contains("m1.example.test."), "{key}: {out}");
    }
    let out = axfr("nstar");
    assert!(!out.contains("m1.example.test."), "{out}");
    assert!(out.contains("Transfer failed"), "{out}");
    // The harness reads the server's log on a thread of its own: the line may come a moment
    // after dig's answer.
    wait_for(
        Duration::from_secs(5),
        "\"outside the key's scope\" in the log",
        || server.log().contains("outside the key's scope"),
    );
}
