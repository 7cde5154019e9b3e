//! The API over real HTTP, and `herald publish`.

use std::process::Command;

use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::harness::*;

fn publish(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["publish", "--api", &server.api, "--token", TOKEN])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn herald_publish_prints_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let out = publish(&server, &["--zone", "example.test", "n1", SHA1]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(&format!("n1.example.test. commit={SHA1} seq=1 serial=")),
        "{stdout}"
    );

    let out = publish(
        &server,
        &["--zone", "example.test.", "--json", "N1", SHA256],
    );
    let node: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (node["node"].as_str(), node["seq"].as_u64()),
        (Some("n1"), Some(2))
    );
    assert!(
        txt(&query(
            server.dns,
            "n1.example.test.",
            RecordType::TXT,
            false
        ))[0]
            .contains(SHA256)
    );
}

#[test]
fn herald_publish_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let out = publish(&server, &["--zone", "example.test", "n1", "not-a-commit"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("422") && err.contains("commit"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "publish",
            "--api",
            &server.api,
            "--token",
            "wrong-token-0123456789",
            "--zone",
            "example.test",
            "n1",
            SHA1,
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stderr).unwrap().contains("401"));
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "publish",
            "--api",
            "http://127.0.0.1:9",
            "--token",
            TOKEN,
            "--zone",
            "example.test",
            "n1",
            SHA1,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot reach")
    );
    assert_eq!(
        server.call("GET", "/v1/zones/example.test", None).json["nodes"],
        0
    );
}

#[test]
fn refused_requests_over_http_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    server.put("example.test", "n1", SHA1);
    let before = server
        .call("GET", "/v1/zones/example.test/nodes", None)
        .json;
    let serial = server.call("GET", "/v1/zones/example.test", None).json["serial"].clone();

    let node = "/v1/zones/example.test/nodes/n1";
    /// A request that must be refused with `status`.
    struct Case<'a> {
        path: &'a str,
        body: serde_json::Value,
        token: Option<&'a str>,
        if_match: Option<&'a str>,
        status: u16,
    }
    let case = |path, body, status| Case {
        path,
        body,
        token: Some(TOKEN),
        if_match: None,
        status,
    };
    let cases = [
        case(node, json!({"commit": 5}), 400),
        Case {
            token: None,
            ..case(node, json!({"commit": SHA256}), 401)
        },
        case(
            "/v1/zones/nope.test/nodes/n1",
            json!({"commit": SHA256}),
            404,
        ),
        case(
            "/v1/zones/example.test/nodes/ns1",
            json!({"commit": SHA256}),
            409,
        ),
        Case {
            if_match: Some("\"9\""),
            ..case(node, json!({"commit": SHA256}), 412)
        },
        case(node, json!({"commit": "XYZ"}), 422),
    ];
    for c in cases {
        let headers: Vec<(&str, &str)> = c.if_match.map(|v| ("If-Match", v)).into_iter().collect();
        let r = server.call_as("PUT", c.path, Some(&c.body), c.token, &headers);
        assert_eq!(r.status, c.status, "{}: {:?}", c.path, r.json);
        assert!(r.json["error"].is_string(), "{:?}", r.json);
    }
    assert_eq!(too_large(&server, node), 413);
    assert_eq!(
        server
            .call("GET", "/v1/zones/example.test/nodes", None)
            .json,
        before
    );
    assert_eq!(
        server.call("GET", "/v1/zones/example.test", None).json["serial"],
        serial
    );
    let m = query(server.dns, "n1.example.test.", RecordType::TXT, false);
    assert!(txt(&m)[0].contains(&format!("commit={SHA1} seq=1 ")));
}

#[test]
fn healthz() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let r = server.call_as("GET", "/healthz", None, None, &[]);
    assert_eq!((r.status, r.json), (200, json!({"status": "ok"})));
}

/// Announces a 17 MiB body and reads the answer before sending it: the server must refuse it
/// from the Content-Length alone, as curl sees it (a client that insists on sending the whole
/// body first gets a broken pipe instead of the status).
fn too_large(server: &Server, path: &str) -> u16 {
    use std::io::{Read, Write};
    let addr = server.api.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"commit\": \"",
        17 * 1024 * 1024
    );
    conn.write_all(head.as_bytes()).unwrap();
    // Read until the JSON error body has arrived; the server need not close the connection.
    let mut answer = String::new();
    let mut buf = [0u8; 4096];
    while !answer.contains("bytes\"}") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(answer.contains("larger than"), "{answer}");
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}
