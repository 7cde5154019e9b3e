//! The README's "Deploying" section, followed on this machine (systemd aside): a primary from
//! a configuration file, a Knot secondary configured as the guide says, a publish with the
//! admin client, a scrape that shows queries and publishes, and a backup restored into a
//! second data directory that serves the same answers.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::harness::*;
use crate::secondary::{KEY_NAME, KEY_SECRET, Peer};

#[test]
#[ignore = "needs knot"]
fn the_deploying_guide_works() {
    let dir = tempfile::tempdir().unwrap();
    let knot_port = free_port();
    // 1. The primary, from a configuration file as deploy/herald.toml describes.
    let key_file = dir.path().join("xfr.key");
    std::fs::write(&key_file, KEY_SECRET).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.path().join("herald.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n\
             [[tsig-key]]\nname = \"{KEY_NAME}.\"\nalgorithm = \"hmac-sha256\"\nsecret-file = \"xfr.key\"\n\
             [[notify]]\naddress = \"127.0.0.1:{knot_port}\"\nkey = \"{KEY_NAME}.\"\n"
        ),
    )
    .unwrap();
    let check = herald(&["config", "check", "--config", config.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let data = dir.path().join("data");
    let server = Server::start_with(
        &data,
        &repo_zones(),
        Some(TOKEN),
        &["--config", config.to_str().unwrap()],
    );

    // 2. A Knot secondary with the TSIG key, as the guide's knot.conf has it.
    let knot = Peer::knot_on(dir.path(), server.dns, knot_port);

    // 5. Publish with the admin client.
    let out = herald(&[
        "publish",
        "--api",
        &server.api,
        "--token",
        TOKEN,
        "--zone",
        "example.test",
        "web-1",
        SHA1,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(Duration::from_secs(20), "Knot to serve the publish", || {
        knot.serves("web-1", SHA1)
    });

    // 7. A scrape shows the queries and the publish.
    for _ in 0..5 {
        query(server.dns, "web-1.example.test.", RecordType::TXT, false);
    }
    let mut r = ureq::get(&format!("{}/metrics", server.api))
        .call()
        .unwrap();
    let metrics = r.body_mut().read_to_string().unwrap();
    assert!(
        metrics.contains(r#"herald_publishes_total{path="api",result="applied"} 1"#),
        "{metrics}"
    );
    let txt_udp = r#"herald_dns_queries_total{transport="udp",type="TXT",rcode="NOERROR",dnssec_ok="false"} "#;
    let served: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(txt_udp))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(served >= 5, "{metrics}");

    // 6. A backup while serving, restored into a second data directory: the same answers.
    let backup = dir.path().join("backup");
    let out = herald(&[
        "backup",
        "--data",
        data.to_str().unwrap(),
        backup.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = dir.path().join("second");
    let out = herald(&[
        "restore",
        backup.to_str().unwrap(),
        "--data",
        second.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = Server::start(&second, &repo_zones());
    for (name, rtype) in [
        ("web-1.example.test.", RecordType::TXT),
        ("example.test.", RecordType::DNSKEY),
        ("info.example.test.", RecordType::TXT),
    ] {
        let a = query(server.dns, name, rtype, false);
        let b = query(restored.dns, name, rtype, false);
        assert_eq!(
            (a.metadata.response_code, &a.answers),
            (b.metadata.response_code, &b.answers),
            "{name} {rtype}"
        );
    }
}
