//! DNS cookies (RFC 7873, RFC 9018) and response rate limiting, end to end: the server answers
//! and checks cookies, `herald check` and `herald watch` send and remember them, and a client
//! that proves its address by its cookie is never held back by the rate limiter.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

use crate::harness::*;

/// One UDP query for `n1.example.test TXT` with EDNS and, when given, a COOKIE option; the
/// answer, or `None` when none came within a second.
fn ask_with(server: SocketAddr, cookie: Option<&[u8]>) -> Option<Message> {
    let mut q = Message::query();
    q.metadata.id = 0x4242;
    q.add_query(Query::query(
        Name::from_ascii("n1.example.test.").unwrap(),
        RecordType::TXT,
    ));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    if let Some(c) = cookie {
        edns.options_mut()
            .insert(EdnsOption::Unknown(10, c.to_vec()));
    }
    q.set_edns(edns);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    socket.send_to(&q.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 1500];
    let n = socket.recv(&mut buf).ok()?;
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 0x4242);
    Some(m)
}

fn cookie_of(m: &Message) -> Vec<u8> {
    match m.edns.as_ref().unwrap().option(EdnsCode::Cookie) {
        Some(EdnsOption::Unknown(10, v)) => v.clone(),
        other => panic!("no cookie in the answer: {other:?}"),
    }
}

fn scrape(server: &Server) -> String {
    let url = format!("{}/metrics", server.api);
    let mut r = ureq::get(&url).call().expect("metrics answer");
    r.body_mut().read_to_string().unwrap()
}

fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .unwrap_or(0)
}

/// Ten `herald check`s in a row, each a new process with a new client cookie, against a
/// server that lets one answer a second through to their /24: each check past the first gets
/// BADCOOKIE with a fresh cookie, asks again with it, and is answered in full, over UDP. A
/// client without cookies meanwhile gets truncated answers.
#[test]
fn checks_with_cookies_pass_the_rate_limiter() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(
        &data,
        &repo_zones(),
        Some(TOKEN),
        &["--rrl", "--rrl-rate", "1", "--rrl-slip", "1"],
    );
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    let anchor_file = dir.path().join("anchor.key");
    write_anchor(&data, &anchor_file);
    let dns = server.dns.to_string();
    let started = std::time::Instant::now();
    for i in 0..10 {
        let out = herald(&[
            "check",
            "--server",
            &dns,
            "--zone",
            "example.test",
            "--node",
            "n1",
            "--timeout",
            "2s",
            "--trust-anchor",
            anchor_file.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "check {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["commit"].as_str(), Some(SHA1));
        assert_eq!(json["attempts"][0]["tcp"].as_bool(), Some(false), "{json}");
    }
    // Without a cookie, past the limit: truncated, empty.
    let plain = (0..3)
        .filter_map(|_| ask_with(server.dns, None))
        .find(|m| m.metadata.truncation)
        .expect("a truncated answer");
    assert!(plain.answers.is_empty());
    let m = scrape(&server);
    let valid = value(&m, "herald_dns_cookies_total{result=\"valid\"}");
    let new = value(&m, "herald_dns_cookies_total{result=\"new\"}");
    let slipped = value(&m, "herald_rrl_limited_total{action=\"slipped\"}");
    let seconds = started.elapsed().as_secs() + 1;
    assert_eq!(new, 10, "each check's first query: a client cookie alone");
    // At most one check a second was answered at once; every other one retried with the
    // cookie its BADCOOKIE carried, which checked.
    assert!(
        valid + seconds >= 10,
        "{valid} retried with a valid cookie in {seconds} s"
    );
    // Each check asks twice (the DNSKEY RRset for its RFC 5011 trust state, then the TXT
    // record); the second query carries the server's cookie without having been slipped.
    assert!(
        slipped + 10 >= valid,
        "{slipped} slipped, {valid} with a valid cookie"
    );
}

/// `herald watch` remembers the server's cookie from one poll to the next: one new cookie,
/// then only valid ones.
#[test]
fn watch_remembers_its_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &repo_zones());
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    let anchor_file = dir.path().join("anchor.key");
    write_anchor(&data, &anchor_file);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "watch",
            "--interval",
            "1s",
            "--server",
            &server.dns.to_string(),
        ])
        .args(["--zone", "example.test", "--node", "n1", "--trust-anchor"])
        .arg(&anchor_file)
        .arg("--state")
        .arg(dir.path().join("state.json"))
        .args(["--exec", "true"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(15), "four polls", || {
        let m = scrape(&server);
        value(&m, "herald_dns_cookies_total{result=\"valid\"}") >= 3
    });
    let _ = child.kill();
    let _ = child.wait();
    let m = scrape(&server);
    assert_eq!(value(&m, "herald_dns_cookies_total{result=\"new\"}"), 1);
}

/// Servers that share a cookie secret (an anycast set) accept each other's cookies; a secret
/// rolled by SIGHUP keeps the old one as staging, so cookies made before stay valid. Bad
/// secret files stop the start with a message naming the file, and never print the secret.
#[test]
fn a_shared_secret_makes_cookies_every_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old.key"), dir.path().join("new.key"));
    for (path, hex) in [
        (&old, "00112233445566778899aabbccddeeff"),
        (&new, "ffeeddccbbaa99887766554433221100"),
    ] {
        std::fs::write(path, format!("{hex}\n")).unwrap();
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    let config = dir.path().join("herald.toml");
    std::fs::write(&config, "version = 1\ncookie-secret-file = \"old.key\"\n").unwrap();
    let config_arg = config.to_str().unwrap();
    let a = Server::start_with(
        &dir.path().join("a"),
        &repo_zones(),
        Some(TOKEN),
        &["--config", config_arg],
    );
    let b = Server::start_with(
        &dir.path().join("b"),
        &repo_zones(),
        Some(TOKEN),
        &["--cookie-secret-file", old.to_str().unwrap()],
    );
    let from_a = cookie_of(&ask_with(a.dns, Some(&[3; 8])).unwrap());
    assert_eq!(from_a.len(), 24);
    // B knows A's cookie as its own: a fresh, valid cookie is echoed unchanged.
    assert_eq!(cookie_of(&ask_with(b.dns, Some(&from_a)).unwrap()), from_a);
    let m = scrape(&b);
    assert_eq!(value(&m, "herald_dns_cookies_total{result=\"valid\"}"), 1);

    // A moves to the new secret with the old one as staging: the old cookie is still valid,
    // and A answers it with one made by the new secret.
    std::fs::write(
        &config,
        "version = 1\ncookie-secret-file = \"new.key\"\ncookie-staging-secret-file = \"old.key\"\n",
    )
    .unwrap();
    let log_before = a.log().len();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &a.pid().to_string()])
            .status()
            .unwrap()
            .success()
    );
    wait_for(Duration::from_secs(10), "the reload", || {
        a.log()[log_before..].contains("reloaded")
    });
    assert!(a.log()[log_before..].contains("cookie_secrets_changed=true"));
    let renewed = cookie_of(&ask_with(a.dns, Some(&from_a)).unwrap());
    assert_ne!(renewed, from_a);
    assert_eq!(renewed[..8], [3; 8]);
    let m = scrape(&a);
    assert_eq!(value(&m, "herald_dns_cookies_total{result=\"valid\"}"), 1);
    // B, still on the old secret alone, no longer takes A's new cookies.
    assert_ne!(
        cookie_of(&ask_with(b.dns, Some(&renewed)).unwrap()),
        renewed
    );

    // Bad files: not hex, readable by others, staging without an active secret.
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not a secret at all, but long enough\n").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let open = dir.path().join("open.key");
    std::fs::write(&open, "00112233445566778899aabbccddeeff").unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    for (args, want) in [
        (
            vec!["--cookie-secret-file", bad.to_str().unwrap()],
            "32 hexadecimal digits",
        ),
        (
            vec!["--cookie-secret-file", open.to_str().unwrap()],
            "chmod 600",
        ),
        (
            vec!["--cookie-staging-secret-file", old.to_str().unwrap()],
            "needs cookie-secret-file",
        ),
        (vec!["--rrl-rate", "0"], "rrl-rate must be at least 1"),
    ] {
        let mut full = vec!["config", "check"];
        full.extend(args.iter().copied());
        let out = herald(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(
            !err.contains("long enough") && !err.contains("0011223344"),
            "{err}"
        );
    }
    let out = herald(&["config", "check", "--config", config_arg, "--rrl"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("new.key") && text.contains("rrl = true"),
        "{text}"
    );
    assert!(text.contains("rrl-rate = 1000"), "{text}");
    assert!(!text.contains("ffeeddcc"), "{text}");
}

/// dig, which no one here wrote, sees Herald's cookies as good.
#[test]
#[ignore = "needs dig"]
fn dig_sees_good_cookies() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let first = dig(
        server.dns,
        &["+cookie=0102030405060708", "example.test", "SOA"],
    );
    let line = first
        .lines()
        .find(|l| l.contains("COOKIE:"))
        .unwrap_or_else(|| panic!("{first}"));
    let cookie = line.split_whitespace().nth(2).unwrap();
    assert_eq!(cookie.len(), 48, "{line}");
    let again = dig(
        server.dns,
        &[&format!("+cookie={cookie}"), "example.test", "SOA"],
    );
    assert!(
        again.contains(&format!("COOKIE: {cookie} (good)")),
        "{again}"
    );
}
