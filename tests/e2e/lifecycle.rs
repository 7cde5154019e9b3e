//! Start-up, the log lines, shutdown on signals, bad configuration.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::harness::*;

#[test]
fn logs_one_line_per_socket_and_stops_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let log = server.log();
    assert_eq!(
        log.matches("listening for dns on 127.0.0.1:").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("listening for api on 127.0.0.1:").count(),
        1,
        "{log}"
    );
    assert_ne!(server.dns.port(), 0);
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    let status = server.signal("TERM");
    assert!(status.success(), "exit status {status:?}");

    let server = Server::start(dir.path(), &repo_zones());
    assert_eq!(
        server
            .call("GET", "/v1/zones/example.test/nodes/n1", None)
            .json["seq"],
        1
    );
    assert!(server.signal("INT").success());
}

#[test]
fn several_dns_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        dir.path(),
        &repo_zones(),
        Some(TOKEN),
        &["--dns", "127.0.0.2:0"],
    );
    let log = server.log();
    assert!(log.contains("listening for dns on 127.0.0.2:"), "{log}");
    let second: std::net::SocketAddr = log
        .lines()
        .find_map(|l| {
            l.split("listening for dns on ")
                .nth(1)
                .filter(|a| a.starts_with("127.0.0.2"))
        })
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    server.put("example.test", "n1", SHA1);
    let m = query(
        second,
        "n1.example.test.",
        hickory_proto::rr::RecordType::TXT,
        false,
    );
    assert_eq!(txt(&m).len(), 1);
}

#[test]
fn generated_admin_token_is_private_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &repo_zones(), None, &[]);
    let path = dir.path().join("admin.token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert!(
        !server.log().contains(&token),
        "the token must not be logged"
    );
    let body = serde_json::json!({"commit": SHA1});
    let r = server.call_as(
        "PUT",
        "/v1/zones/example.test/nodes/n1",
        Some(&body),
        Some(&token),
        &[],
    );
    assert_eq!(r.status, 201);
    let r = server.call_as(
        "PUT",
        "/v1/zones/example.test/nodes/n1",
        Some(&body),
        Some(TOKEN),
        &[],
    );
    assert_eq!(r.status, 401);
}

fn serve_fails(args: &[&str], data: &std::path::Path, zones: &std::path::Path) -> String {
    let out = serve_command(data, zones)
        .args(args)
        .env("HERALD_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "expected failure");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let zones = copy_zones(dir.path());
    let data = dir.path().join("data");

    let err = serve_fails(&[], &data, &dir.path().join("nowhere"));
    assert!(err.contains("nowhere"), "{err}");

    std::fs::write(
        zones.join("broken.test.zone"),
        "$TTL 60\n@ IN SOA ns1 h 1 2 3 4 5\n",
    )
    .unwrap();
    let err = serve_fails(&[], &data, &zones);
    assert!(
        err.contains("broken.test.zone") && err.contains("no NS records"),
        "{err}"
    );
    std::fs::remove_file(zones.join("broken.test.zone")).unwrap();

    let err = serve_fails(&["--dns", "192.0.2.1:53"], &data, &zones);
    assert!(err.contains("cannot bind dns"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["serve", "--dns", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn a_readable_token_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("admin.token"),
        "0123456789abcdef0123456789\n",
    )
    .unwrap();
    std::fs::set_permissions(
        dir.path().join("admin.token"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = serve_command(dir.path(), &repo_zones())
        .env_remove("HERALD_ADMIN_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("chmod 600"), "{err}");
}

/// Kills the child when a test fails half-way, so no server outlives its test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `herald serve` with no flags, from a directory holding `zones/`: the README's command.
#[test]
#[ignore = "needs ports 5353 and 8053 free"]
fn serve_with_no_flags_uses_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    copy_zones(dir.path());
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("serve")
            .current_dir(dir.path())
            .env_remove("HERALD_ADMIN_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok);
    let head: Vec<String> = lines
        .by_ref()
        .take_while(|l| !l.contains("listening for api"))
        .collect();
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    assert!(
        head.iter()
            .any(|l| l.contains("listening for dns on 127.0.0.1:5353")),
        "{head:?}"
    );
    let token = std::fs::read_to_string(dir.path().join("herald-data/admin.token")).unwrap();
    assert!(dir.path().join("herald-data/herald.sqlite3").exists());
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "publish",
            "--token",
            token.trim(),
            "--zone",
            "example.test",
            "n1",
            SHA1,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = query(
        "127.0.0.1:5353".parse().unwrap(),
        "n1.example.test.",
        hickory_proto::rr::RecordType::TXT,
        false,
    );
    assert!(txt(&m)[0].contains(SHA1));
    Command::new("kill")
        .arg(child.0.id().to_string())
        .status()
        .unwrap();
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn a_stalled_api_client_does_not_block_shutdown() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    let addr = server.api.trim_start_matches("http://").to_owned();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    // Headers of a request whose body never comes.
    let head = format!(
        "PUT /v1/zones/example.test/nodes/n1 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n{{"
    );
    conn.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let started = std::time::Instant::now();
    assert!(server.signal("TERM").success());
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    drop(conn);
}

#[test]
fn a_closed_stderr_does_not_block_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve_command(dir.path(), &repo_zones())
        .env("HERALD_ADMIN_TOKEN", TOKEN)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _ = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .find(|l| l.contains("listening for api"));
    // The reader is gone: every later log line fails to write.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "herald hung on SIGTERM with stderr closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
