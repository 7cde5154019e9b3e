//! Key rollover end to end, at an accelerated pace (TTLs of 2 s, a hold-down of 20 s): every
//! step of a CSK rollover and of an algorithm change checked by tools no one here wrote
//! (delv, unbound-host, ldns-verify-zone on the AXFR), a restart in the middle, and the API's
//! refusals. The nodes' side is in `keyroll_nodes.rs`, Knot and unbound as peers in
//! `keyroll_peers.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::crash::verified_axfr;
use crate::dnssec::{delv, delv_anchor, unbound_host};
use crate::harness::*;
use crate::keyroll_nodes::{Watcher, commit};

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
pub fn rrsig_tags(server: &Server, name: &str, rtype: &str) -> BTreeSet<u16> {
    dig(server.dns, &["+dnssec", "+noall", "+answer", name, rtype])
        .lines()
        .filter(|l| l.contains("\tRRSIG\t"))
        .map(|l| l.split_whitespace().nth(10).unwrap().parse().unwrap())
        .collect()
}

/// The RDATA of a DNSKEY line (TTLs differ between `herald key show` and the zone).
pub fn rdata(line: &str) -> Vec<&str> {
    line.split_whitespace().skip(4).collect()
}

pub fn secure_for_delv(server: &Server, anchor: &Path, name: &str) -> bool {
    delv(server.dns, anchor, name, "TXT").contains("; fully validated")
}

pub fn secure_for_unbound(server: &Server, dir: &Path, anchor: &Path, name: &str) -> bool {
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
    let shown = shown_keys(&data);
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
    let shown = shown_keys(&data);
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
