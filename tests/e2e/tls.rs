//! The admin API over TLS, with a certificate made at test time (rcgen): `herald publish` and
//! curl with the CA get through, plain HTTP to that port does not, a client with the wrong CA
//! refuses the server; and plain HTTP on an address other than loopback is refused at start
//! unless the configuration allows it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::harness::*;

/// A CA and a certificate it signed for 127.0.0.1 and localhost, as PEM files in `dir`:
/// (CA file, certificate file, key file).
fn certificates(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // Names of their own: OpenSSL (curl) takes a leaf named like its issuer for self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("Herald test CA {name}"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "herald test server");
    let cert = leaf.signed_by(&key, &ca).unwrap();
    let paths = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

fn publish(api: &str, ca: Option<&Path>, node: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.args([
        "publish",
        "--api",
        api,
        "--token",
        TOKEN,
        "--zone",
        "example.test",
    ]);
    if let Some(ca) = ca {
        cmd.arg("--ca-file").arg(ca);
    }
    cmd.args([node, SHA1]).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_api_speaks_tls_with_a_certificate_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path(), "good");
    let (wrong_ca, _, _) = certificates(dir.path(), "other");
    let server = Server::start_with(
        &dir.path().join("data"),
        &repo_zones(),
        Some(TOKEN),
        &[
            "--api-tls-cert",
            cert.to_str().unwrap(),
            "--api-tls-key",
            key.to_str().unwrap(),
        ],
    );
    let https = server.api.replace("http://", "https://");

    // With the CA: published.
    let o = publish(&https, Some(&ca), "n1");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("n1.example.test. commit="),
        "{}",
        text(&o)
    );
    // Plain HTTP to the TLS port: no answer the client can read.
    let o = publish(&server.api, None, "n2");
    assert!(!o.status.success(), "{}", text(&o));
    // Another CA: the client refuses the server.
    let o = publish(&https, Some(&wrong_ca), "n3");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(TOKEN), "{}", text(&o));
    // Only n1 was published.
    for (node, want) in [("n1", true), ("n2", false), ("n3", false)] {
        let answer = query(
            server.dns,
            &format!("{node}.example.test."),
            hickory_proto::rr::RecordType::TXT,
            false,
        );
        assert_eq!(!txt(&answer).is_empty(), want, "{node}");
    }
}

#[test]
#[ignore = "needs curl"]
fn curl_with_the_ca_gets_through() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path(), "good");
    let server = Server::start_with(
        &dir.path().join("data"),
        &repo_zones(),
        Some(TOKEN),
        &[
            "--api-tls-cert",
            cert.to_str().unwrap(),
            "--api-tls-key",
            key.to_str().unwrap(),
        ],
    );
    let https = server.api.replace("http://", "https://");
    let curl = |args: &[&str]| {
        Command::new("curl")
            .args(["-s", "-H", &format!("Authorization: Bearer {TOKEN}")])
            .args(args)
            .output()
            .expect("curl runs (apt-get install curl)")
    };
    let o = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        &format!("{https}/v1/zones"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("\"zone\":\"example.test\""),
        "{}",
        text(&o)
    );
    // Without the CA, curl refuses the certificate (exit 60).
    let o = curl(&[&format!("{https}/v1/zones")]);
    assert_eq!(o.status.code(), Some(60), "{}", text(&o));
    // Plain HTTP gets no HTTP answer.
    let o = curl(&[&format!("{}/v1/zones", server.api)]);
    assert!(!text(&o).contains("example.test"), "{}", text(&o));
}

#[test]
fn plain_http_beyond_loopback_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |api: &str, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
        cmd.args(["serve", "--dns", "127.0.0.1:0", "--api", api, "--zones"])
            .arg(repo_zones())
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(extra)
            .env("HERALD_ADMIN_TOKEN", TOKEN);
        cmd
    };
    let out = serve("0.0.0.0:0", &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("clear text"), "{}", text(&out));
    assert!(text(&out).contains("allow-plain-http"), "{}", text(&out));
    assert!(!text(&out).contains("listening"), "{}", text(&out));
    // Half a TLS configuration is a usage error.
    let out = serve_command(&dir.path().join("data"), &repo_zones())
        .args(["--api-tls-cert", "/nonexistent.pem"])
        .env("HERALD_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("go together"), "{}", text(&out));
    // Allowed by the flag: it starts.
    let mut child = serve("0.0.0.0:0", &["--allow-plain-http"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let started = std::io::BufRead::lines(stderr)
        .map_while(Result::ok)
        .any(|l| l.contains("listening for api on 0.0.0.0:"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(started);
}

/// SIGHUP takes a new certificate and key: new connections get them.
#[test]
fn a_reload_takes_a_new_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca1, cert1, key1) = certificates(dir.path(), "first");
    let (ca2, cert2, key2) = certificates(dir.path(), "second");
    let (cert, key) = (dir.path().join("api.crt"), dir.path().join("api.key"));
    std::fs::copy(&cert1, &cert).unwrap();
    std::fs::copy(&key1, &key).unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        "version = 1\napi-tls-cert = \"api.crt\"\napi-tls-key = \"api.key\"\n",
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &repo_zones(),
        Some(TOKEN),
        &["--config", config.to_str().unwrap()],
    );
    let https = server.api.replace("http://", "https://");
    assert!(publish(&https, Some(&ca1), "n1").status.success());
    assert!(!publish(&https, Some(&ca2), "n2").status.success());
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    let ok = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    wait_for(std::time::Duration::from_secs(10), "the reload", || {
        server.log().contains("serve::reload: reloaded")
    });
    let o = publish(&https, Some(&ca2), "n3");
    assert!(o.status.success(), "{}", text(&o));
    assert!(!publish(&https, Some(&ca1), "n4").status.success());
}
