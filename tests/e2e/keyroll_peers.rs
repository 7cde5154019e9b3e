//! Key rollover and the peers Herald works with: a Knot secondary and an unbound resolver that
//! keeps its trust anchor by RFC 5011 (`auto-trust-anchor-file`) follow every step, and Knot
//! serving the parent zone holds the old key until its DS has moved (`--wait-ds`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::crash::verified_axfr;
use crate::harness::*;
use crate::keyroll::{FAST, fast_zones, keys, rdata};
use crate::keyroll_nodes::commit;

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

    /// The DS the parent serves; empty while knotd is not answering yet.
    fn ds(&self) -> String {
        let out = std::process::Command::new("dig")
            .arg(format!("@{}", self.addr.ip()))
            .args(["-p", &self.addr.port().to_string(), "+short", "+norec"])
            .args(["+time=1", "+tries=1", "example.test", "DS"])
            .output()
            .expect("dig runs (apt-get install bind9-dnsutils)");
        if out.status.success() {
            String::from_utf8_lossy(&out.stdout).into_owned()
        } else {
            String::new()
        }
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
    let shown = shown_keys(&data);
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
