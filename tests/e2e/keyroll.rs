//! Key rollover end to end, at an accelerated pace (TTLs of 2 s, a hold-down of 20 s): every
//! step of a CSK rollover checked by tools no one here wrote (delv, unbound-host,
//! ldns-verify-zone on the AXFR), a restart in the middle, and the API's refusals.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::crash::verified_axfr;
use crate::dnssec::{delv, delv_anchor, unbound_host};
use crate::harness::*;

/// The signing policy of the accelerated rollover: the publish step lasts 3 + 2 + 20 + 2×2 =
/// 29 s, the wait after the re-signing 3 + 2 = 5 s, the revoke step 3 + 2 + 2×2 = 9 s.
pub const FAST: &str = "example.test:validity=60s,refresh=30s,inception-offset=5s,node-ttl=2,\
                        holddown=20s,propagation=3s";

/// The example zone with every TTL at 2 s, so that DNSKEY TTLs do not stretch the steps.
pub fn fast_zones(dir: &Path) -> PathBuf {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    let text = std::fs::read_to_string(repo_zones().join("example.test.zone")).unwrap();
    let text = text
        .replace("$TTL 3600", "$TTL 2")
        .replace("1209600 60", "1209600 2");
    std::fs::write(zones.join("example.test.zone"), text).unwrap();
    zones
}

/// The zone's keys and rollover, from the API.
pub fn keys(server: &Server) -> (Vec<Value>, Value) {
    let r = server.call("GET", "/v1/zones/example.test", None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    (
        r.json["keys"].as_array().unwrap().clone(),
        r.json["rollover"].clone(),
    )
}

/// The key tags the RRSIGs of `name`/`rtype` name, from dig.
fn rrsig_tags(server: &Server, name: &str, rtype: &str) -> BTreeSet<u16> {
    dig(server.dns, &["+dnssec", "+noall", "+answer", name, rtype])
        .lines()
        .filter(|l| l.contains("\tRRSIG\t"))
        .map(|l| l.split_whitespace().nth(10).unwrap().parse().unwrap())
        .collect()
}

/// The RDATA of a DNSKEY line (TTLs differ between `herald key show` and the zone).
fn rdata(line: &str) -> Vec<&str> {
    line.split_whitespace().skip(4).collect()
}

fn secure_for_delv(server: &Server, anchor: &Path, name: &str) -> bool {
    delv(server.dns, anchor, name, "TXT").contains("; fully validated")
}

fn secure_for_unbound(server: &Server, dir: &Path, anchor: &Path, name: &str) -> bool {
    let u = unbound_host(dir, server.dns, anchor, name, "TXT");
    u.contains("(secure)") && !u.contains("BOGUS")
}

#[test]
#[ignore = "needs dig, delv, unbound-host and ldns-verify-zone"]
fn a_key_rollover_validates_at_every_step_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let zones = fast_zones(dir.path());
    let data = dir.path().join("data");
    let extra = ["--dnssec", FAST, "--allow-transfer", "127.0.0.0/8"];
    let mut server = Server::start_with(&data, &zones, Some(TOKEN), &extra);
    for n in ["n1", "n2", "n3"] {
        assert_eq!(server.put("example.test", n, SHA1).status, 201);
    }
    let shown = herald(&[
        "key",
        "show",
        "--zone",
        "example.test",
        "--data",
        data.to_str().unwrap(),
    ]);
    let shown = String::from_utf8(shown.stdout).unwrap();
    let old_lines: Vec<&str> = shown.lines().collect();
    assert_eq!(old_lines.len(), 2, "{shown}");
    let old_dnskey = old_lines[0].to_owned();
    let (old_keys, rollover) = keys(&server);
    assert_eq!(old_keys.len(), 1);
    assert!(rollover.is_null(), "no rollover yet: {rollover}");
    let old_tag = old_keys[0]["tag"].as_u64().unwrap() as u16;

    // Refusals first: nothing changes.
    for (body, status, needle) in [
        (
            json!({"algorithm": 15, "revoke_old": true}),
            422,
            "cannot end by revoking",
        ),
        (json!({"algorithm": 7}), 422, "use 13"),
        (json!({"colour": "blue"}), 400, "unknown field"),
    ] {
        let r = server.call("POST", "/v1/zones/example.test/keys/roll", Some(&body));
        assert_eq!(r.status, status, "{body}: {:?}", r.json);
        assert!(r.json.to_string().contains(needle), "{body}: {}", r.json);
    }
    let r = server.call("POST", "/v1/zones/other.test/keys/roll", Some(&json!({})));
    assert_eq!(r.status, 404, "{:?}", r.json);
    let scoped = server.call(
        "POST",
        "/v1/tokens",
        Some(&json!({"zone": "example.test", "nodes": "n*"})),
    );
    assert_eq!(scoped.status, 201, "{:?}", scoped.json);
    let scoped = scoped.json["token"].as_str().unwrap().to_owned();
    let r = server.call_as(
        "POST",
        "/v1/zones/example.test/keys/roll",
        Some(&json!({})),
        Some(&scoped),
        &[],
    );
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!(keys(&server).0.len(), 1, "refusals changed nothing");

    // Start, with the old key revoked at the end.
    let r = server.call(
        "POST",
        "/v1/zones/example.test/keys/roll",
        Some(&json!({"revoke_old": true})),
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    let states: Vec<(&str, u64)> = r.json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["state"].as_str().unwrap(), k["tag"].as_u64().unwrap()))
        .collect();
    assert_eq!(states[0], ("signing", u64::from(old_tag)), "{states:?}");
    assert_eq!(states[1].0, "incoming", "{states:?}");
    let new_tag = states[1].1 as u16;
    assert_eq!(r.json["rollover"]["step"], "publish");
    let again = server.call("POST", "/v1/zones/example.test/keys/roll", Some(&json!({})));
    assert_eq!(again.status, 409, "{:?}", again.json);
    assert!(again.json.to_string().contains("already at step publish"));

    let zone = server.call("GET", "/v1/zones/example.test", None).json;
    let new_dnskey = zone["dnskey"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .find(|l| rdata(l) != rdata(&old_dnskey))
        .expect("the new key is published");
    let old_dir = dir.path().join("old");
    let new_dir = dir.path().join("new");
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::create_dir_all(&new_dir).unwrap();
    let old_delv = delv_anchor(&old_dir, &old_dnskey);
    let new_delv = delv_anchor(&new_dir, &new_dnskey);
    let old_file = old_dir.join("anchor.key");
    let new_file = new_dir.join("anchor.key");
    std::fs::write(&old_file, format!("{old_dnskey}\n")).unwrap();
    std::fs::write(&new_file, format!("{new_dnskey}\n")).unwrap();

    let mut seen = Vec::new();
    let mut restarted = false;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (published, rollover) = keys(&server);
        let step = rollover["step"].as_str().unwrap().to_owned();
        if seen.last() != Some(&step) {
            seen.push(step.clone());
            // The AXFR verifies, whatever the step.
            let axfr = verified_axfr(server.dns, &dir.path().join("axfr.zone"));
            let dnskeys = axfr.lines().filter(|l| l.contains("\tDNSKEY\t")).count();
            let cds = axfr.lines().filter(|l| l.contains("\tCDS\t")).count();
            let cdnskey = axfr.lines().filter(|l| l.contains("\tCDNSKEY\t")).count();
            let dnskey_sigs = rrsig_tags(&server, "example.test", "DNSKEY");
            let old_signs_keys = dnskey_sigs.contains(&old_tag);
            let old_alive = matches!(step.as_str(), "publish" | "switch");
            match step.as_str() {
                "publish" | "switch" => {
                    assert_eq!(dnskeys, 2, "{step}");
                    assert_eq!(dnskey_sigs, BTreeSet::from([old_tag, new_tag]), "{step}");
                }
                "revoke" => {
                    assert_eq!(dnskeys, 2, "{step}");
                    // The old key, revoked, signs the RRset under its revoked tag.
                    let revoked = published
                        .iter()
                        .find(|k| k["state"] == "revoked")
                        .expect("a revoked key")["tag"]
                        .as_u64()
                        .unwrap() as u16;
                    assert_ne!(revoked, old_tag);
                    assert_eq!(dnskey_sigs, BTreeSet::from([new_tag, revoked]), "{step}");
                    assert!(axfr.contains("DNSKEY\t385 3 13"), "{axfr}");
                }
                _ => {
                    assert_eq!(dnskeys, 1, "{step}");
                    assert_eq!(dnskey_sigs, BTreeSet::from([new_tag]), "{step}");
                }
            }
            // The step is in the metrics.
            let gauge = format!("herald_key_rollover{{zone=\"example.test\",step=\"{step}\"}}");
            assert_eq!(metric(&server, &gauge), Some(1.0), "{step}");
            // CDS and CDNSKEY name the new key while the parent may move its DS.
            let parent_moves = matches!(step.as_str(), "switch" | "revoke");
            assert_eq!(
                (cds, cdnskey),
                if parent_moves { (1, 1) } else { (0, 0) },
                "{step}"
            );
            if parent_moves {
                let cds_line = axfr.lines().find(|l| l.contains("\tCDS\t")).unwrap();
                assert!(
                    cds_line.contains(&format!("CDS\t{new_tag} 13 2 ")),
                    "{cds_line}"
                );
            }
            assert_eq!(old_signs_keys, old_alive, "{step}: {dnskey_sigs:?}");
            // Validators: the old anchor while the old key signs the DNSKEY RRset, the new
            // one at every step.
            for name in ["n1.example.test", "info.example.test"] {
                assert_eq!(
                    secure_for_delv(&server, &old_delv, name),
                    old_alive,
                    "{step}: delv with the old key, {name}"
                );
                assert!(
                    secure_for_delv(&server, &new_delv, name),
                    "{step}: delv, new key, {name}: {}",
                    delv(server.dns, &new_delv, name, "TXT")
                        + &delv(server.dns, &new_delv, "example.test", "DNSKEY")
                );
                assert_eq!(
                    secure_for_unbound(&server, &old_dir, &old_file, name),
                    old_alive,
                    "{step}: unbound-host with the old key, {name}"
                );
                assert!(
                    secure_for_unbound(&server, &new_dir, &new_file, name),
                    "{step}: unbound-host, new key, {name}"
                );
            }
            // A publish signs with the key of the step.
            assert!([200, 201].contains(&server.put("example.test", "n4", SHA256).status));
            let txt = rrsig_tags(&server, "n4.example.test", "TXT");
            let signer = if step == "publish" { old_tag } else { new_tag };
            assert_eq!(txt, BTreeSet::from([signer]), "{step}");
        }
        if step == "publish" && !restarted {
            // A restart resumes at the same step, at the same time.
            let before = rollover.clone();
            assert!(server.signal("TERM").success());
            server = Server::start_with(&data, &zones, Some(TOKEN), &extra);
            let (_, after) = keys(&server);
            assert_eq!(after["step"], before["step"]);
            assert_eq!(after["step_at"], before["step_at"]);
            assert_eq!(after["next_step_at"], before["next_step_at"]);
            restarted = true;
        }
        if step == "done" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the rollover stalled at {step}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seen, ["publish", "switch", "revoke", "done"]);
    let (published, rollover) = keys(&server);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["tag"], u64::from(new_tag));
    assert!(rollover["next_step_at"].is_null());
    // Every node's signature is the new key's: the sweep re-signed what the old key made.
    for n in ["n1", "n2", "n3"] {
        let tags = rrsig_tags(&server, &format!("{n}.example.test"), "TXT");
        assert_eq!(tags, BTreeSet::from([new_tag]), "{n}");
    }
    // `herald key show` now prints the new key.
    let shown = herald(&[
        "key",
        "show",
        "--zone",
        "example.test",
        "--data",
        data.to_str().unwrap(),
    ]);
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert_eq!(
        rdata(shown.lines().next().unwrap()),
        rdata(&new_dnskey),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 2);
    // A second rollover may start once the first is done.
    let r = server.call("POST", "/v1/zones/example.test/keys/roll", Some(&json!({})));
    assert_eq!(r.status, 200, "{:?}", r.json);
}

/// A commit for publish number `i`.
fn commit(i: u64) -> String {
    format!("{i:040x}")
}

/// A running `herald watch` of one node, its log in `<dir>/<node>.log`, its hook appending
/// the seq it applied to `<dir>/<node>.applied`.
struct Watcher {
    child: std::process::Child,
    dir: PathBuf,
    node: String,
}

impl Watcher {
    fn start(server: &Server, dir: &Path, anchor: &Path, node: &str, holddown: &str) -> Self {
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

    fn applied(&self) -> Vec<u64> {
        std::fs::read_to_string(self.dir.join(format!("{}.applied", self.node)))
            .unwrap_or_default()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.node))).unwrap_or_default()
    }

    /// The node's RFC 5011 key states from its state file, by tag.
    fn trust(&self) -> Vec<(u64, String)> {
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

/// A full unbound resolver (`unbound -d`) for example.test, pointed at `upstream`, that keeps
/// its trust anchor by RFC 5011 in `<dir>/unbound/example.test.anchor`, started from
/// `dnskey_line`; hold-downs of 10 s. Killed on drop.
struct Resolver {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    anchor: PathBuf,
    log: PathBuf,
}

impl Resolver {
    fn start(dir: &Path, upstream: std::net::SocketAddr, dnskey_line: &str) -> Self {
        let d = dir.join("unbound");
        std::fs::create_dir_all(&d).unwrap();
        let anchor = d.join("example.test.anchor");
        std::fs::write(&anchor, format!("{dnskey_line}\n")).unwrap();
        let port = free_port();
        let log = d.join("unbound.log");
        let conf = format!(
            "server:\n    username: \"\"\n    chroot: \"\"\n    directory: \"{d}\"\n    \
             pidfile: \"\"\n    use-syslog: no\n    logfile: \"{log}\"\n    verbosity: 1\n    \
             interface: 127.0.0.1\n    port: {port}\n    do-ip6: no\n    \
             access-control: 127.0.0.0/8 allow\n    do-not-query-localhost: no\n    \
             module-config: \"validator iterator\"\n    local-zone: \"test.\" nodefault\n    \
             auto-trust-anchor-file: \"{anchor}\"\n    add-holddown: 10\n    \
             del-holddown: 10\n    keep-missing: 60\n    permit-small-holddown: yes\n    \
             trust-anchor-signaling: no\n    cache-max-ttl: 2\n    cache-max-negative-ttl: 2\n\
             stub-zone:\n    name: \"example.test.\"\n    stub-addr: {ip}@{uport}\n",
            d = d.display(),
            log = log.display(),
            anchor = anchor.display(),
            ip = upstream.ip(),
            uport = upstream.port(),
        );
        let conf_path = d.join("unbound.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let check = std::process::Command::new("unbound-checkconf")
            .arg(&conf_path)
            .output()
            .expect("unbound-checkconf runs (apt-get install unbound)");
        assert!(check.status.success(), "{check:?}");
        let child = std::process::Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("unbound runs (apt-get install unbound)");
        Self {
            child,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            anchor,
            log,
        }
    }

    /// The commit the resolver answers for `node`, if the answer is validated (AD set).
    fn validated_commit(&self, node: &str) -> Option<String> {
        let out = std::process::Command::new("dig")
            .arg(format!("@{}", self.addr.ip()))
            .args(["-p", &self.addr.port().to_string(), "+dnssec", "+time=2"])
            .args(["+tries=1", &format!("{node}.example.test"), "TXT"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let flags = text.lines().find(|l| l.starts_with(";; flags:"))?;
        if !flags
            .split(';')
            .nth(2)?
            .split_whitespace()
            .any(|f| f == "ad")
        {
            return None;
        }
        let at = text.find("commit=")? + "commit=".len();
        Some(text[at..at + 40].to_owned())
    }

    /// The resolver's RFC 5011 state: its anchor file's lines for example.test.
    fn anchors(&self) -> String {
        std::fs::read_to_string(&self.anchor).unwrap_or_default()
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Knot secondary follows every step by IXFR and its AXFR verifies at each; a full unbound
/// resolver, asking that secondary and started with the old key in an RFC 5011
/// `auto-trust-anchor-file`, validates a new publish at every step, adds the new key after
/// its hold-down, and marks the old one revoked.
#[test]
#[ignore = "needs knotd, unbound, dig and ldns-verify-zone"]
fn a_knot_secondary_and_an_rfc_5011_resolver_follow_a_rollover() {
    let dir = tempfile::tempdir().unwrap();
    let zones = fast_zones(dir.path());
    let data = dir.path().join("data");
    let kport = free_port();
    let notify = format!("127.0.0.1:{kport}");
    let server = Server::start_with(
        &data,
        &zones,
        Some(TOKEN),
        &[
            "--dnssec",
            FAST,
            "--notify",
            &notify,
            "--allow-transfer",
            "127.0.0.0/8",
        ],
    );
    let mut published = 1;
    assert_eq!(
        server.put("example.test", "n1", &commit(published)).status,
        201
    );
    let knot = crate::secondary::Peer::knot_by_address(dir.path(), server.dns, kport);
    wait_for(Duration::from_secs(20), "knot serves n1", || {
        knot.serves("n1", &commit(published))
    });
    let anchor = dir.path().join("old.anchor");
    write_anchor(&data, &anchor);
    let old_line = std::fs::read_to_string(&anchor).unwrap();
    let resolver = Resolver::start(dir.path(), knot.addr, old_line.lines().next().unwrap());
    wait_for(Duration::from_secs(20), "unbound validates n1", || {
        resolver.validated_commit("n1") == Some(commit(published))
    });
    let (old, _) = keys(&server);
    let old_tag = old[0]["tag"].as_u64().unwrap();
    let r = server.call(
        "POST",
        "/v1/zones/example.test/keys/roll",
        Some(&json!({"revoke_old": true})),
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    let new_tag = r.json["keys"][1]["tag"].as_u64().unwrap();
    let mut revoked_tag = None;

    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, rollover) = keys(&server);
        let step = rollover["step"].as_str().unwrap().to_owned();
        if seen.last() != Some(&step) {
            seen.push(step.clone());
            if step == "revoke" {
                let (published, _) = keys(&server);
                revoked_tag = published
                    .iter()
                    .find(|k| k["state"] == "revoked")
                    .and_then(|k| k["tag"].as_u64());
            }
            published += 1;
            let c = commit(published);
            assert_eq!(server.put("example.test", "n1", &c).status, 200);
            wait_for(Duration::from_secs(10), &format!("knot has {step}"), || {
                knot.serves("n1", &c)
            });
            verified_axfr(knot.addr, &dir.path().join("knot-axfr.zone"));
            wait_for(
                Duration::from_secs(10),
                &format!("unbound validates {step}"),
                || resolver.validated_commit("n1").as_deref() == Some(c.as_str()),
            );
        }
        if step == "done" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stalled at {step}\nunbound: {}\n{}",
            resolver.anchors(),
            std::fs::read_to_string(&resolver.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seen, ["publish", "switch", "revoke", "done"]);
    // unbound's own record of the rollover: the new key trusted, the old one revoked.
    let anchors = resolver.anchors();
    let state_of = |tag: u64| {
        anchors
            .lines()
            .find(|l| l.contains(&format!("id = {tag} ")))
            .map(|l| l.to_owned())
    };
    let new_state = state_of(new_tag).unwrap_or_default();
    assert!(new_state.contains("[  VALID  ]"), "{anchors}");
    let old_state =
        state_of(revoked_tag.expect("the revoke step showed the revoked tag")).unwrap_or_default();
    assert!(
        old_state.contains("385 3 13") && old_state.contains("[ REVOKED ]"),
        "{anchors}"
    );
    assert!(state_of(old_tag).is_none(), "{anchors}");
    assert!(knot.log().contains("example.test"), "{}", knot.log());
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

/// Knot serving the parent zone `test.` with `example.test`'s DS `ds` (`<tag> <alg> <type>
/// <hex>`); [`KnotParent::set_ds`] changes it.
struct KnotParent {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    dir: PathBuf,
    serial: u32,
}

impl KnotParent {
    fn start(dir: &Path, ds: &str) -> Self {
        let d = dir.join("parent");
        std::fs::create_dir_all(&d).unwrap();
        let port = free_port();
        let conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    \
             tcp-workers: 1\n    background-workers: 1\n\
             database:\n    storage: \"{d}\"\n\
             control:\n    listen: \"{d}/knot.sock\"\n\
             log:\n  - target: \"{d}/knot.log\"\n    any: info\n\
             template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    \
             journal-content: none\n\
             zone:\n  - domain: test.\n    file: \"{d}/test.zone\"\n",
            d = d.display()
        );
        std::fs::write(d.join("knot.conf"), conf).unwrap();
        let mut parent = Self {
            child: std::process::Command::new("true").spawn().unwrap(),
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            dir: d.clone(),
            serial: 0,
        };
        parent.write_zone(ds);
        parent.child = std::process::Command::new("knotd")
            .arg("-c")
            .arg(d.join("knot.conf"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("knotd runs (apt-get install knot)");
        parent
    }

    fn write_zone(&mut self, ds: &str) {
        self.serial += 1;
        let zone = format!(
            "$TTL 2\n@ IN SOA ns.test. hostmaster.test. {} 3600 600 86400 2\n  IN NS ns.test.\n\
             ns IN A 127.0.0.1\nexample IN NS ns1.example.test.\nns1.example IN A 127.0.0.1\n\
             example IN DS {ds}\n",
            self.serial
        );
        std::fs::write(self.dir.join("test.zone"), zone).unwrap();
    }

    fn set_ds(&mut self, ds: &str) {
        self.write_zone(ds);
        let out = std::process::Command::new("knotc")
            .arg("-c")
            .arg(self.dir.join("knot.conf"))
            .args(["zone-reload", "test."])
            .output()
            .expect("knotc runs (apt-get install knot)");
        assert!(out.status.success(), "{out:?}");
    }

    fn ds(&self) -> String {
        dig(self.addr, &["+short", "+norec", "example.test", "DS"])
    }
}

impl Drop for KnotParent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `herald key roll --wait-ds` holds the old key in the switch, however long, until the
/// parent (Knot, serving `test.`) has the new key's DS, taken from the CDS record as a parent
/// that scans for it would; then the rollover goes on by itself.
#[test]
#[ignore = "needs knotd, knotc and dig"]
fn wait_ds_holds_the_old_key_until_the_parent_has_the_new_ds() {
    let dir = tempfile::tempdir().unwrap();
    let zones = fast_zones(dir.path());
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &zones, Some(TOKEN), &["--dnssec", FAST]);
    let r = server.call(
        "POST",
        "/v1/zones/example.test/keys/ds-seen",
        Some(&json!({"ttl": 2})),
    );
    assert_eq!(r.status, 409, "no rollover waits: {:?}", r.json);
    let shown = herald(&[
        "key",
        "show",
        "--zone",
        "example.test",
        "--data",
        data.to_str().unwrap(),
    ]);
    let shown = String::from_utf8(shown.stdout).unwrap();
    let old_ds: String = rdata(shown.lines().nth(1).unwrap()).join(" ");
    let mut parent = KnotParent::start(dir.path(), &old_ds);
    wait_for(
        Duration::from_secs(10),
        "the parent serves the old DS",
        || !parent.ds().trim().is_empty(),
    );

    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "key",
            "roll",
            "--zone",
            "example.test",
            "--wait-ds",
            "--poll",
            "1s",
        ])
        .args(["--parent", &parent.addr.to_string(), "--api", &server.api])
        .env("HERALD_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(60), "the re-signing done", || {
        let (_, r) = keys(&server);
        r["step"] == "switch"
            && r["waiting_for"]
                .as_str()
                .unwrap()
                .starts_with("the parent's DS")
    });
    // Well past the 5 s the old key would otherwise stay: still there, still waiting.
    std::thread::sleep(Duration::from_secs(8));
    let (published, r) = keys(&server);
    assert_eq!(r["step"], "switch", "{r}");
    assert!(r["next_step_at"].is_null(), "{r}");
    assert_eq!(published.len(), 2);
    assert!(cli.try_wait().unwrap().is_none(), "the CLI still waits");

    // The parent takes the CDS as its DS (what a scanning parent does).
    let cds = dig(server.dns, &["+short", "example.test", "CDS"]);
    let cds = cds.trim();
    assert!(!cds.is_empty() && !cds.contains(&old_ds[..5]), "{cds}");
    parent.set_ds(cds);
    let out = cli.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("the parent's DS names the new key"),
        "{stdout}"
    );
    wait_for(Duration::from_secs(30), "the rollover done", || {
        keys(&server).1["step"] == "done"
    });
    let (published, r) = keys(&server);
    assert_eq!(published.len(), 1);
    assert!(r["ds_seen_at"].as_u64().is_some(), "{r}");
}

/// The algorithms of the RRSIGs over `name`/`rtype`, from dig.
fn rrsig_algorithms(server: &Server, name: &str, rtype: &str) -> BTreeSet<u8> {
    dig(server.dns, &["+dnssec", "+noall", "+answer", name, rtype])
        .lines()
        .filter(|l| l.contains("\tRRSIG\t"))
        .map(|l| l.split_whitespace().nth(5).unwrap().parse().unwrap())
        .collect()
}

/// A change of algorithm, 13 to 15, by RFC 6781 §4.1.4's double signatures: at every step the
/// AXFR verifies, delv and unbound-host say secure with the old key while it is published and
/// with the new one once it is, every RRset carries a signature of each algorithm of the
/// DNSKEY RRset, and watchers holding the old key follow by RFC 5011.
#[test]
#[ignore = "needs dig, delv, unbound-host and ldns-verify-zone"]
fn an_algorithm_change_validates_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let zones = fast_zones(dir.path());
    let data = dir.path().join("data");
    let extra = ["--dnssec", FAST, "--allow-transfer", "127.0.0.0/8"];
    let server = Server::start_with(&data, &zones, Some(TOKEN), &extra);
    let mut published = 1;
    for n in ["n1", "n2"] {
        assert_eq!(
            server.put("example.test", n, &commit(published)).status,
            201
        );
    }
    let anchor = dir.path().join("old.anchor");
    write_anchor(&data, &anchor);
    let old_dnskey = std::fs::read_to_string(&anchor)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert!(rdata(&old_dnskey).starts_with(&["257", "3", "13"]));
    let watchers: Vec<Watcher> = ["n1", "n2"]
        .iter()
        .map(|n| Watcher::start(&server, dir.path(), &anchor, n, "10s"))
        .collect();

    let r = server.call(
        "POST",
        "/v1/zones/example.test/keys/roll",
        Some(&json!({"algorithm": 15})),
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["rollover"]["step"], "sigs", "{}", r.json);
    assert_eq!(r.json["keys"][1]["algorithm"], 15);
    assert_eq!(r.json["keys"][1]["state"], "signing-unpublished");
    let new_tag = r.json["keys"][1]["tag"].as_u64().unwrap();
    let hurry = server.call(
        "POST",
        "/v1/zones/example.test/keys/roll",
        Some(&json!({"revoke_old": true})),
    );
    assert_eq!(hurry.status, 422, "{:?}", hurry.json);

    let old_dir = dir.path().join("old");
    let new_dir = dir.path().join("new");
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::create_dir_all(&new_dir).unwrap();
    let old_delv = delv_anchor(&old_dir, &old_dnskey);
    let old_file = old_dir.join("anchor.key");
    std::fs::write(&old_file, format!("{old_dnskey}\n")).unwrap();
    let (mut new_delv, new_file) = (None, new_dir.join("anchor.key"));

    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (_, rollover) = keys(&server);
        let step = rollover["step"].as_str().unwrap().to_owned();
        if seen.last() != Some(&step) {
            seen.push(step.clone());
            let zone = server.call("GET", "/v1/zones/example.test", None).json;
            let dnskeys: Vec<String> = zone["dnskey"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            if new_delv.is_none()
                && let Some(line) = dnskeys.iter().find(|l| rdata(l)[2] == "15")
            {
                new_delv = Some(delv_anchor(&new_dir, line));
                std::fs::write(&new_file, format!("{line}\n")).unwrap();
            }
            let old_published = matches!(step.as_str(), "sigs" | "publish" | "switch");
            let new_published = step != "sigs";
            assert_eq!(
                dnskeys.iter().any(|l| rdata(l) == rdata(&old_dnskey)),
                old_published,
                "{step}: {dnskeys:?}"
            );
            // The zone verifies; each RRset has a signature of each published algorithm.
            verified_axfr(server.dns, &dir.path().join("axfr.zone"));
            published += 1;
            for n in ["n1", "n2"] {
                let r = server.put("example.test", n, &commit(published));
                assert_eq!(r.status, 200, "{:?}", r.json);
            }
            let algs = rrsig_algorithms(&server, "n1.example.test", "TXT");
            let want: BTreeSet<u8> = if step == "done" {
                BTreeSet::from([15])
            } else {
                BTreeSet::from([13, 15])
            };
            assert_eq!(algs, want, "{step}: a fresh publish's signatures");
            for name in ["n1.example.test", "info.example.test"] {
                assert_eq!(
                    secure_for_delv(&server, &old_delv, name),
                    old_published,
                    "{step}: delv, old key, {name}"
                );
                // In `unpublish` the old key, no longer in the DNSKEY RRset, still signs it
                // (its signatures go last); unbound takes a signature by its anchor for the
                // RRset whether or not the anchor is in it, delv does not.
                if step != "unpublish" {
                    assert_eq!(
                        secure_for_unbound(&server, &old_dir, &old_file, name),
                        old_published,
                        "{step}: unbound-host, old key, {name}"
                    );
                }
                if let Some(new_delv) = &new_delv {
                    assert_eq!(
                        secure_for_delv(&server, new_delv, name),
                        new_published,
                        "{step}: delv, new key, {name}"
                    );
                    assert_eq!(
                        secure_for_unbound(&server, &new_dir, &new_file, name),
                        new_published,
                        "{step}: unbound-host, new key, {name}"
                    );
                }
            }
            // The watchers, with only the old key to start from, keep applying.
            let applied = published;
            wait_for(Duration::from_secs(20), &format!("{step}: applied"), || {
                watchers
                    .iter()
                    .all(|w| w.applied().last() == Some(&applied))
            });
        }
        if step == "done" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stalled at {step}:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seen, ["sigs", "publish", "switch", "unpublish", "done"]);
    // After it, the sweep drops the old algorithm's signatures from the rest of the zone.
    wait_for(Duration::from_secs(20), "single signatures again", || {
        rrsig_algorithms(&server, "n2.example.test", "NSEC") == BTreeSet::from([15])
            && rrsig_algorithms(&server, "info.example.test", "TXT") == BTreeSet::from([15])
    });
    verified_axfr(server.dns, &dir.path().join("axfr.zone"));
    for w in &watchers {
        let trust = w.trust();
        assert!(trust.contains(&(new_tag, "valid".into())), "{trust:?}");
    }
}
