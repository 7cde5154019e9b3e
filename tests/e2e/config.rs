//! The configuration file: `deploy/herald.toml` passes `herald config check`; errors name the
//! file, the line and the key; flags and HERALD_* variables win over the file, which wins over
//! the defaults; and `herald serve --config` serves with the file's settings.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hickory_proto::rr::RecordType;

use crate::harness::*;

/// base64 of 28 bytes.
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";

fn check(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    cmd.args(["config", "check", "--config"])
        .arg(config)
        .args(extra)
        .env_remove("HERALD_ADMIN_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn secret_file(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The example of deploy/ in a directory of its own, with the secret files it names.
fn example(dir: &Path) -> PathBuf {
    let config = dir.join("herald.toml");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/herald.toml"),
        &config,
    )
    .unwrap();
    secret_file(
        &dir.join("admin.token"),
        "admin-token-from-a-file-0123456789\n",
    );
    secret_file(&dir.join("xfr.example.key"), SECRET);
    secret_file(&dir.join("ci.example.key"), SECRET);
    secret_file(
        &dir.join("cookie.key"),
        "00112233445566778899aabbccddeeff\n",
    );
    // Its zones-dir, "zones", is taken from the file's directory.
    copy_zones(dir);
    config
}

#[test]
fn the_example_passes_and_prints_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = example(dir.path());
    let o = check(&config, &[], &[]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let effective: toml::Table = toml::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap();
    assert_eq!(effective["version"].as_integer(), Some(1));
    assert_eq!(effective["data"].as_str(), Some("/var/lib/herald"));
    // Relative paths are the file's directory's.
    assert_eq!(
        effective["zones-dir"].as_str().map(PathBuf::from),
        Some(dir.path().join("zones"))
    );
    assert_eq!(effective["dns"].as_array().unwrap().len(), 2);
    assert_eq!(
        effective["cookie-secret-file"].as_str().map(PathBuf::from),
        Some(dir.path().join("cookie.key"))
    );
    assert_eq!(effective["rrl"].as_bool(), Some(true));
    assert_eq!(effective["rrl-slip"].as_integer(), Some(2));
    assert!(!text.contains("00112233445566778899aabbccddeeff"), "{text}");
    let keys = effective["tsig-key"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[1]["nodes"].as_str(), Some("web-*"));
    let zone = &effective["zone"]["example.test"];
    assert_eq!(zone["node-ttl"].as_str(), Some("60s"));
    assert_eq!(zone["notify"][0]["address"].as_str(), Some("192.0.2.12:53"));
    assert_eq!(zone["allow-transfer"][0].as_str(), Some("198.51.100.0/24"));
    // No secret is printed.
    assert!(!text.contains(SECRET), "{text}");
    assert!(!text.contains("admin-token-from-a-file"), "{text}");
    assert!(text.contains("(redacted)"), "{text}");
}

#[test]
fn flags_and_variables_win_over_the_file_and_the_file_over_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = example(dir.path());
    let o = check(
        &config,
        &[
            "--dns",
            "127.0.0.1:5999",
            "--dnssec",
            "example.test:node-ttl=300",
        ],
        &[
            ("HERALD_DATA", "/srv/herald"),
            ("HERALD_JOURNAL_MAX_ENTRIES", "7"),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let effective: toml::Table = toml::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap();
    assert_eq!(effective["dns"][0].as_str(), Some("127.0.0.1:5999"));
    assert_eq!(effective["data"].as_str(), Some("/srv/herald"));
    assert_eq!(effective["journal-max-entries"].as_integer(), Some(7));
    // The flag's setting over the file's; the file's others stay.
    let zone = &effective["zone"]["example.test"];
    assert_eq!(zone["node-ttl"].as_str(), Some("300s"));
    assert_eq!(zone["validity"].as_str(), Some("1209600s"));
    // A flag wins over its variable.
    let o = check(&config, &["--data", "/a"], &[("HERALD_DATA", "/b")]);
    let effective: toml::Table = toml::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap();
    assert_eq!(effective["data"].as_str(), Some("/a"));
    // Without a file: the defaults.
    let o = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["config", "check"])
        .env_remove("HERALD_CONFIG")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let effective: toml::Table = toml::from_str(&String::from_utf8_lossy(&o.stdout)).unwrap();
    assert_eq!(effective["data"].as_str(), Some("./herald-data"));
    assert_eq!(effective["dns"][0].as_str(), Some("127.0.0.1:5353"));
    assert_eq!(effective["api"].as_str(), Some("127.0.0.1:8053"));
}

#[test]
fn errors_name_the_file_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = example(dir.path());
    let original = std::fs::read_to_string(&config).unwrap();
    let line_of = |needle: &str| original.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for (edit, needles) in [
        (
            original.replace("journal-max-entries", "journal-max-entrys"),
            vec![
                format!("line {}", line_of("journal-max-entries")),
                "journal-max-entrys".into(),
            ],
        ),
        (
            original.replace("validity = \"14d\"", "validity = \"fortnight\""),
            vec![
                format!("line {}", line_of("validity = ")),
                "fortnight".into(),
            ],
        ),
        (
            original.replace("denial = \"nsec\"", "denial = \"nsec5\""),
            vec![format!("line {}", line_of("[zone.")), "nsec5".into()],
        ),
        (
            original.replace("key = \"xfr.example.\"", "key = \"nokey.\""),
            vec![format!("line {}", line_of("[[notify]]")), "nokey".into()],
        ),
        (
            original.replace(
                "secret-file = \"ci.example.key\"",
                "secret-file = \"missing.key\"",
            ),
            vec![
                format!("line {}", line_of("name = \"ci.example.\"") - 3),
                "missing.key".into(),
            ],
        ),
        (
            original.replace("version = 1", "version = 3"),
            vec!["version 3".into(), "version = 1".into()],
        ),
    ] {
        std::fs::write(&config, &edit).unwrap();
        let o = check(&config, &[], &[]);
        let text = out(&o);
        assert_eq!(o.status.code(), Some(2), "{text}");
        assert!(text.contains("herald.toml"), "{text}");
        for n in &needles {
            assert!(text.contains(n.as_str()), "{n:?} not in {text}");
        }
        assert!(!text.contains(SECRET), "{text}");
    }
    // A secret file others may read is refused, naming the file.
    std::fs::write(&config, &original).unwrap();
    std::fs::set_permissions(
        dir.path().join("xfr.example.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = check(&config, &[], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("xfr.example.key"), "{}", out(&o));
}

#[test]
fn serve_takes_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("herald.toml");
    secret_file(&dir.path().join("ci.key"), SECRET);
    // A secondary of this zone only, from the zone's own `notify`.
    let secondary = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    secondary
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    std::fs::write(
        &config,
        format!(
            "version = 1\n\
             [[tsig-key]]\nname = \"ci.\"\nalgorithm = \"hmac-sha256\"\nsecret-file = \"ci.key\"\n\
             zone = \"example.test\"\n\
             [zone.\"example.test\"]\nnode-ttl = 300\nnotify = [{{ address = \"{}\" }}]\n",
            secondary.local_addr().unwrap()
        ),
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &repo_zones(),
        Some(TOKEN),
        &["--config", config.to_str().unwrap()],
    );
    server.put("example.test", "n1", SHA1);
    let answer = query(server.dns, "n1.example.test.", RecordType::TXT, false);
    assert_eq!(answer.answers[0].ttl, 300);
    let mut buf = [0u8; 512];
    let (n, _) = secondary.recv_from(&mut buf).expect("a NOTIFY");
    let notify = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(notify.metadata.op_code, hickory_proto::op::OpCode::Notify);
    assert_eq!(notify.queries[0].name().to_ascii(), "example.test.");
}
