//! SIGHUP: zone files, TSIG keys, ACLs and NOTIFY targets read again while serving; what
//! needs a restart stays as it runs, with a log line naming it; a bad configuration changes
//! nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, RecordType, TSigner};

use crate::harness::*;

const SECRET: &[u8] = b"secret-secret-secret-secret!";
const SECRET_B64: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";

fn hup(server: &Server) {
    let ok = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Waits for the `n`th log line containing `what`.
fn wait_log(server: &Server, what: &str, n: usize) {
    wait_for(Duration::from_secs(10), what, || {
        server.log().matches(what).count() >= n
    });
}

/// A TSIG-signed SOA query for example.test with key `name`: the answer's RCODE.
fn signed_soa(server: &Server, name: &str) -> ResponseCode {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.add_query(Query::query(
        Name::from_ascii("example.test.").unwrap(),
        RecordType::SOA,
    ));
    let signer = TSigner::new(
        SECRET.to_vec(),
        TsigAlgorithm::HmacSha256,
        Name::from_ascii(name).unwrap(),
        300,
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (tsig, _) = signer.sign_message(&m, now).unwrap();
    m.set_signature(tsig);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    socket.send_to(&m.to_vec().unwrap(), server.dns).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).unwrap();
    Message::from_vec(&buf[..n]).unwrap().metadata.response_code
}

fn write_config(path: &Path, keys: &[&str], extra: &str) {
    let mut text = String::from("version = 1\n");
    text.push_str(extra);
    for k in keys {
        text.push_str(&format!(
            "[[tsig-key]]\nname = \"{k}\"\nalgorithm = \"hmac-sha256\"\nsecret-file = \"{k}key\"\n"
        ));
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn sighup_reloads_zones_and_keys_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let zones = copy_zones(dir.path());
    let config = dir.path().join("herald.toml");
    for k in ["one.", "two."] {
        let f = dir.path().join(format!("{k}key"));
        std::fs::write(&f, SECRET_B64).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    write_config(&config, &["one."], "");
    let server = Server::start_with(
        &dir.path().join("data"),
        &zones,
        Some(TOKEN),
        &["--config", config.to_str().unwrap()],
    );
    server.put("example.test", "n1", SHA1);
    let serial = soa_serial(server.dns).unwrap();
    assert_eq!(signed_soa(&server, "one."), ResponseCode::NoError);
    assert_eq!(signed_soa(&server, "two."), ResponseCode::NotAuth);

    // A zone file changed, a zone added, a key added, and a setting that needs a restart.
    let file = zones.join("example.test.zone");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("Herald example zone", "Reloaded zone")).unwrap();
    std::fs::write(
        zones.join("other.test.zone"),
        "$TTL 3600\n@ IN SOA ns1 hostmaster 7 3600 900 1209600 60\n  IN NS ns1\nns1 IN A 127.0.0.1\n",
    )
    .unwrap();
    write_config(&config, &["one.", "two."], "journal-max-entries = 7\n");
    // Queries keep being answered while the reload runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asker = {
        let (stop, dns) = (stop.clone(), server.dns);
        std::thread::spawn(move || {
            let (mut asked, mut unanswered) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                asked += 1;
                if ask(dns, "n1.example.test.", RecordType::TXT).is_none() {
                    unanswered += 1;
                }
            }
            (asked, unanswered)
        })
    };
    hup(&server);
    wait_log(&server, "serve::reload: reloaded", 1);
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (asked, unanswered) = asker.join().unwrap();
    assert!(asked > 10, "{asked}");
    assert_eq!(unanswered, 0, "of {asked}");
    let info = query(server.dns, "info.example.test.", RecordType::TXT, false);
    assert_eq!(
        txt(&info),
        ["Reloaded zone: nodes are published through the admin API"]
    );
    assert!(
        soa_serial(server.dns).unwrap() > serial,
        "a changed file moves the serial"
    );
    assert_eq!(
        txt(&query(
            server.dns,
            "n1.example.test.",
            RecordType::TXT,
            false
        ))
        .len(),
        1,
        "the nodes stay"
    );
    let other = query(server.dns, "other.test.", RecordType::SOA, false);
    assert_eq!(other.metadata.response_code, ResponseCode::NoError);
    assert_eq!(signed_soa(&server, "two."), ResponseCode::NoError);
    // Read from the server's log on the harness's own thread: it may lag a moment.
    wait_for(
        Duration::from_secs(5),
        "the restart-only settings named in the log",
        || {
            let log = server.log();
            log.contains("cannot change without a restart") && log.contains("journal-max-*")
        },
    );

    // A configuration that does not check changes nothing.
    std::fs::write(&config, "version = 1\ncolour = \"blue\"\n").unwrap();
    hup(&server);
    wait_log(&server, "reload refused", 1);
    assert_eq!(signed_soa(&server, "two."), ResponseCode::NoError);

    // A zone whose file is gone is no longer served; a key removed fails.
    std::fs::remove_file(zones.join("other.test.zone")).unwrap();
    write_config(&config, &["one."], "");
    hup(&server);
    wait_log(&server, "serve::reload: reloaded", 2);
    let other = query(server.dns, "other.test.", RecordType::SOA, false);
    assert_eq!(other.metadata.response_code, ResponseCode::Refused);
    assert_eq!(signed_soa(&server, "two."), ResponseCode::NotAuth);
    assert_eq!(signed_soa(&server, "one."), ResponseCode::NoError);
}
