//! No secret in any log line or API answer of the suite: every [`Server`] checks its own when
//! dropped (the admin token, the `--tsig-key` secrets, the generated admin token and every
//! zone's private key, as text, hex and base64), and [`herald`] checks the admin token in what
//! the CLI prints. This test makes sure that check knows the secrets it looks for.

use crate::harness::*;

#[test]
fn the_leak_check_knows_every_secret() {
    let dir = tempfile::tempdir().unwrap();
    let tsig = "xfr.example:hmac-sha256:aGVyYWxkLWUyZS10c2lnLXNlY3JldC0wMTIzNDU2Nzg5";
    let args = ["--tsig-key", tsig, "--allow-transfer", "127.0.0.1/32"];
    let server = Server::start_with(dir.path(), &repo_zones(), None, &args);
    assert_eq!(
        server.put("example.test", "n1", SHA1).status,
        401,
        "no token given"
    );
    let from_data = data_dir_secrets(dir.path());
    // The generated admin token, and the zone key as stored, as DER in hex and in base64.
    assert!(from_data.len() >= 5, "{} secrets found", from_data.len());
    let key_file = std::fs::read_to_string(dir.path().join("keys/example.test.key")).unwrap();
    assert!(from_data.iter().any(|s| key_file.contains(s.as_str())));
    let token = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
    assert!(from_data.contains(&token.trim().to_owned()));
    let from_flags = command_line_secrets(Some(TOKEN), &args);
    assert!(from_flags.contains(&TOKEN.to_owned()));
    assert!(
        from_flags
            .iter()
            .any(|s| s == "aGVyYWxkLWUyZS10c2lnLXNlY3JldC0wMTIzNDU2Nzg5")
    );
    // The decoded secret in hex: "herald-e2e-tsig-secret-0123456789".
    let hex: String = b"herald-e2e-tsig-secret-0123456789"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(from_flags.contains(&hex));
    // And the server's log, checked on drop, does hold text: the check has something to read.
    assert!(server.log().contains("listening for dns"));
}
