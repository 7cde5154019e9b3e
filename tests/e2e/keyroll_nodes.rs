//! Key rollover seen from the nodes: `herald watch` processes that hold only the old key
//! follow a rollover by RFC 5011, drop a revoked key, and fail closed (exit 4, with the reason)
//! when they cannot follow.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;
use crate::keyroll::{FAST, fast_zones, keys};

/// A commit for publish number `i`.
pub fn commit(i: u64) -> String {
    format!("{i:040x}")
}

/// A running `herald watch` of one node, its log in `<dir>/<node>.log`, its hook appending
/// the seq it applied to `<dir>/<node>.applied`.
pub struct Watcher {
    child: std::process::Child,
    dir: PathBuf,
    node: String,
}

impl Watcher {
    pub fn start(server: &Server, dir: &Path, anchor: &Path, node: &str, holddown: &str) -> Self {
        let log = std::fs::File::create(dir.join(format!("{node}.log"))).unwrap();
        let exec = format!("echo $HERALD_SEQ >> {}/{node}.applied", dir.display());
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["watch", "--interval", "1s", "--holddown", holddown])
            .args(["--server", &server.dns.to_string(), "--timeout", "1s"])
            .args(["--zone", "example.test", "--node", node])
            .arg("--trust-anchor")
            .arg(anchor)
            .arg("--state")
            .arg(dir.join(format!("{node}.state")))
            .args(["--exec", &exec])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self {
            child,
            dir: dir.to_owned(),
            node: node.to_owned(),
        }
    }

    pub fn applied(&self) -> Vec<u64> {
        std::fs::read_to_string(self.dir.join(format!("{}.applied", self.node)))
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.node))).unwrap_or_default()
    }

    /// The node's RFC 5011 key states from its state file, by tag.
    pub fn trust(&self) -> Vec<(u64, String)> {
        let path = self.dir.join(format!("{}.state", self.node));
        let state: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default())
            .unwrap_or(Value::Null);
        state["trust"]["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .map(|k| {
                        (
                            k["tag"].as_u64().unwrap(),
                            k["state"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check_with(server: &Server, anchor: &Path, state: Option<&Path>) -> std::process::Output {
    let mut args = vec![
        "check".to_owned(),
        "--server".into(),
        server.dns.to_string(),
        "--zone".into(),
        "example.test".into(),
        "--node".into(),
        "n1".into(),
        "--timeout".into(),
        "2s".into(),
        "--holddown".into(),
        "10s".into(),
        "--json".into(),
        "--trust-anchor".into(),
        anchor.to_str().unwrap().into(),
    ];
    if let Some(s) = state {
        args.extend(["--state".into(), s.to_str().unwrap().into()]);
    }
    herald(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Watchers that hold only the old key follow a whole rollover by RFC 5011 (hold-down 10 s
/// against the server's 20 s), applying a publish at every step; the old key, revoked, is
/// dropped. A watcher whose hold-down is longer than the rollover's never trusts the new key,
/// and fails once the old one is revoked. After the rollover, the old anchor file with a
/// state file still works; without one it fails with the reason.
#[test]
fn watchers_follow_a_rollover_by_rfc_5011() {
    let dir = tempfile::tempdir().unwrap();
    let zones = fast_zones(dir.path());
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &zones, Some(TOKEN), &["--dnssec", FAST]);
    let nodes = ["n1", "n2", "n3"];
    let mut published = 0;
    let mut publish_all = |server: &Server| {
        published += 1;
        for n in nodes.iter().chain(["slow"].iter()) {
            let r = server.put("example.test", n, &commit(published));
            assert!([200, 201].contains(&r.status), "{:?}", r.json);
        }
        published
    };
    publish_all(&server);
    let anchor = dir.path().join("old.anchor");
    write_anchor(&data, &anchor);
    let watchers: Vec<Watcher> = nodes
        .iter()
        .map(|n| Watcher::start(&server, dir.path(), &anchor, n, "10s"))
        .collect();
    // A hold-down of 60 s (it probes every 6 s) outlasts the 29 s the new key is published
    // before the old one stops signing the DNSKEY RRset.
    let slow = Watcher::start(&server, dir.path(), &anchor, "slow", "60s");
    let wait_applied = |seq: u64, who: &[&Watcher], step: &str| {
        wait_for(
            Duration::from_secs(20),
            &format!("seq {seq} applied ({step})"),
            || who.iter().all(|w| w.applied().last() == Some(&seq)),
        );
    };
    let all: Vec<&Watcher> = watchers.iter().chain([&slow]).collect();
    wait_applied(1, &all, "before");
    let (old, _) = keys(&server);
    let old_tag = old[0]["tag"].as_u64().unwrap();

    let r = server.call(
        "POST",
        "/v1/zones/example.test/keys/roll",
        Some(&json!({"revoke_old": true})),
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    let new_tag = r.json["keys"][1]["tag"].as_u64().unwrap();

    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, rollover) = keys(&server);
        let step = rollover["step"].as_str().unwrap().to_owned();
        if seen.last() != Some(&step) {
            seen.push(step.clone());
            let seq = publish_all(&server);
            let w: Vec<&Watcher> = watchers.iter().collect();
            wait_applied(seq, &w, &step);
            if step == "publish" || step == "switch" {
                // The slow watcher, with the old key still signing the DNSKEY RRset, too.
                wait_applied(seq, &[&slow], &step);
            }
        }
        if step == "done" {
            break;
        }
        assert!(Instant::now() < deadline, "stalled at {step}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seen, ["publish", "switch", "revoke", "done"]);
    for w in &watchers {
        let trust = w.trust();
        assert!(
            trust.contains(&(new_tag, "valid".into())),
            "{}: {trust:?}",
            w.node
        );
        assert!(
            trust.contains(&(old_tag, "revoked".into())),
            "{}: {trust:?}",
            w.node
        );
        let log = w.log();
        assert!(log.contains("revoked by its own signature"), "{log}");
        assert!(
            log.contains(&format!("key {new_tag} (alg 13) trusted")),
            "{log}"
        );
    }
    // The slow watcher never trusted the new key: once it saw the old one revoked, it could
    // validate nothing more, and says why.
    wait_for(Duration::from_secs(20), "the slow watcher's reason", || {
        slow.log().contains("give it a fresh trust anchor")
    });
    let trust = slow.trust();
    assert!(trust.contains(&(old_tag, "revoked".into())), "{trust:?}");
    assert!(!trust.contains(&(new_tag, "valid".into())), "{trust:?}");
    let seq = publish_all(&server);
    let w: Vec<&Watcher> = watchers.iter().collect();
    wait_applied(seq, &w, "after");
    std::thread::sleep(Duration::from_secs(3));
    assert!(!slow.applied().contains(&seq), "{:?}", slow.applied());

    // The old anchor file with a state file that followed the rollover: still fine.
    let copy = dir.path().join("copy.state");
    std::fs::copy(dir.path().join("n1.state"), &copy).unwrap();
    let out = check_with(&server, &anchor, Some(&copy));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The old anchor alone: exit 4, with the reason.
    let out = check_with(&server, &anchor, None);
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("no trusted key signs the DNSKEY RRset")
            && text.contains("give it a fresh trust anchor"),
        "{text}"
    );
}

/// An emergency: once the watchers trust the new key, `revoke_old` cuts the rollover short.
/// The new key signs at once, the old one is published revoked as soon as the new one has
/// re-signed everything, and the watchers drop it while they go on applying publishes.
#[test]
fn an_emergency_revoke_cuts_the_rollover_short_and_watchers_drop_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let zones = fast_zones(dir.path());
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &zones, Some(TOKEN), &["--dnssec", FAST]);
    let nodes = ["n1", "n2"];
    let mut published = 0;
    let mut publish_all = |server: &Server| {
        published += 1;
        for n in nodes {
            let r = server.put("example.test", n, &commit(published));
            assert!([200, 201].contains(&r.status), "{:?}", r.json);
        }
        published
    };
    publish_all(&server);
    let anchor = dir.path().join("old.anchor");
    write_anchor(&data, &anchor);
    let watchers: Vec<Watcher> = nodes
        .iter()
        .map(|n| Watcher::start(&server, dir.path(), &anchor, n, "5s"))
        .collect();
    let (old, _) = keys(&server);
    let old_tag = old[0]["tag"].as_u64().unwrap();
    let r = server.call("POST", "/v1/zones/example.test/keys/roll", Some(&json!({})));
    assert_eq!(r.status, 200, "{:?}", r.json);
    let new_tag = r.json["keys"][1]["tag"].as_u64().unwrap();
    let started = Instant::now();
    wait_for(
        Duration::from_secs(20),
        "the watchers trust the new key",
        || {
            watchers
                .iter()
                .all(|w| w.trust().contains(&(new_tag, "valid".into())))
        },
    );
    let (_, rollover) = keys(&server);
    assert_eq!(rollover["step"], "publish");
    assert_eq!(rollover["revoke_old"], false);

    let r = server.call(
        "POST",
        "/v1/zones/example.test/keys/roll",
        Some(&json!({"revoke_old": true})),
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["rollover"]["step"], "switch", "{}", r.json);
    assert_eq!(r.json["rollover"]["revoke_old"], true);
    assert_eq!(
        r.json["keys"][0]["tag"], new_tag,
        "the new key signs at once"
    );
    wait_for(Duration::from_secs(30), "the old key revoked", || {
        keys(&server).1["step"] == "revoke"
    });
    // Well before the 29 s the publish step would have lasted, plus the rest.
    assert!(
        started.elapsed() < Duration::from_secs(29),
        "{:?}",
        started.elapsed()
    );
    let seq = publish_all(&server);
    wait_for(
        Duration::from_secs(20),
        "the watchers drop the old key",
        || {
            watchers.iter().all(|w| {
                w.trust()
                    .iter()
                    .any(|(tag, state)| *tag == old_tag && state == "revoked")
                    && w.applied().last() == Some(&seq)
            })
        },
    );
    wait_for(Duration::from_secs(30), "the rollover done", || {
        keys(&server).1["step"] == "done"
    });
    let seq = publish_all(&server);
    wait_for(
        Duration::from_secs(20),
        "the watchers apply after it",
        || watchers.iter().all(|w| w.applied().last() == Some(&seq)),
    );
}
