//! Acknowledged writes survive restarts and `kill -9`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::rr::RecordType;

use crate::harness::*;

#[test]
fn a_restart_keeps_the_data_and_the_serial_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &repo_zones());
    for i in 0..10 {
        assert_eq!(
            server.put("example.test", &format!("n{i}"), SHA1).status,
            201
        );
    }
    server.put("example.test", "n3", SHA256);
    server.call("DELETE", "/v1/zones/example.test/nodes/n9", None);
    let nodes = server
        .call("GET", "/v1/zones/example.test/nodes", None)
        .json;
    let serial = server.call("GET", "/v1/zones/example.test", None).json["serial"]
        .as_u64()
        .unwrap();
    assert!(server.signal("TERM").success());

    let server = Server::start(dir.path(), &repo_zones());
    assert_eq!(
        server
            .call("GET", "/v1/zones/example.test/nodes", None)
            .json,
        nodes
    );
    assert_eq!(
        server.call("GET", "/v1/zones/example.test", None).json["serial"].as_u64(),
        Some(serial)
    );
    assert!(
        txt(&query(
            server.dns,
            "n3.example.test.",
            RecordType::TXT,
            false
        ))[0]
            .contains(&format!("{SHA256} seq=2 "))
    );
    assert!(
        txt(&query(
            server.dns,
            "n9.example.test.",
            RecordType::TXT,
            false
        ))
        .is_empty()
    );
    // The next publish moves past the old serial; a re-published node continues its seq.
    let r = server.put("example.test", "n9", SHA1);
    assert_eq!(
        (r.json["seq"].as_u64(), r.json["serial"].as_u64()),
        (Some(2), Some(serial + 1))
    );
}

#[test]
fn kill_9_right_after_a_2xx_keeps_that_write() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3u64 {
        let server = Arc::new(Server::start(dir.path(), &repo_zones()));
        // Publish from another thread as fast as possible, until the server is gone; kill -9
        // while it runs.
        let acked = Arc::new(AtomicU64::new(0));
        let writer = {
            let (server, acked) = (server.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut seq_seen = 0;
                loop {
                    let body = serde_json::json!({"commit": SHA1});
                    let url = format!("{}/v1/zones/example.test/nodes/n1", server.api);
                    let Ok(mut res) = ureq::put(&url)
                        .header("Authorization", &format!("Bearer {TOKEN}"))
                        .send_json(&body)
                    else {
                        break; // the server is gone
                    };
                    let json: serde_json::Value = res.body_mut().read_json().unwrap();
                    seq_seen = json["seq"].as_u64().unwrap();
                    acked.store(seq_seen, Ordering::SeqCst);
                }
                seq_seen
            })
        };
        while acked.load(Ordering::SeqCst) < 20 * (round + 1) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let pid = server.pid();
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        let last_acked = writer.join().unwrap();
        drop(server);

        let server = Server::start(dir.path(), &repo_zones());
        let stored = server
            .call("GET", "/v1/zones/example.test/nodes/n1", None)
            .json["seq"]
            .as_u64()
            .unwrap();
        assert!(
            stored >= last_acked,
            "round {round}: acknowledged seq {last_acked} lost, store has {stored}"
        );
        let m = query(server.dns, "n1.example.test.", RecordType::TXT, false);
        assert!(txt(&m)[0].contains(&format!("seq={stored} ")));
        drop(server);
    }
}
