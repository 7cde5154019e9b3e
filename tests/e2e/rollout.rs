//! Rollouts: waves gated by time and node reports, the halt rule, pause, resume, abort with
//! revert, the deny-list, overlaps and scopes; and 50 real `herald watch` processes following
//! rollouts through a server restart.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::*;

const THIRD: &str = "c0ffee0000000000000000000000000000000001";
const BAD: &str = "bad0000000000000000000000000000000000bad";

const ROLLOUTS: &str = "/v1/zones/example.test/rollouts";

fn start_rollout(server: &Server, body: Value) -> Reply {
    server.call("POST", ROLLOUTS, Some(&body))
}

fn rollout(server: &Server, id: u64) -> Value {
    let r = server.call("GET", &format!("{}/{id}", ROLLOUTS), None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json
}

fn act(server: &Server, id: u64, action: &str, body: Option<Value>) -> Reply {
    server.call(
        "POST",
        &format!("{}/{id}/{action}", ROLLOUTS),
        body.as_ref(),
    )
}

fn wait_state(server: &Server, id: u64, state: &str, limit: Duration) -> Value {
    let mut last = Value::Null;
    wait_for(limit, &format!("rollout {id} {state}"), || {
        last = rollout(server, id);
        last["state"] == state
    });
    last
}

fn node(server: &Server, node: &str) -> Value {
    let r = server.call("GET", &format!("/v1/zones/example.test/nodes/{node}"), None);
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json
}

/// The node's publishes of `commit`: (seq, ts).
fn publishes_of(server: &Server, node: &str, commit: &str) -> Vec<(u64, u64)> {
    let r = server.call(
        "GET",
        &format!("/v1/zones/example.test/nodes/{node}/history?limit=100"),
        None,
    );
    r.json["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["commit"] == commit)
        .map(|h| (h["seq"].as_u64().unwrap(), h["ts"].as_u64().unwrap()))
        .collect()
}

fn batch(server: &Server, nodes: &[String], commit: &str) {
    let set: Vec<Value> = nodes
        .iter()
        .map(|n| json!({"node": n, "commit": commit}))
        .collect();
    let r = server.call(
        "POST",
        "/v1/zones/example.test/batch",
        Some(&json!({ "set": set })),
    );
    assert_eq!(r.status, 200, "{:?}", r.json);
}

#[test]
fn rollouts_publish_in_waves_and_keep_their_rules() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &repo_zones());
    let names: Vec<String> = (0..20).map(|i| format!("n{i:02}")).collect();
    batch(&server, &names, SHA1);

    // Bad requests are refused and make nothing.
    for (body, status) in [
        (json!({"commit": SHA256, "nodes": "*", "waves": [50]}), 422),
        (
            json!({"commit": SHA256, "nodes": "*", "waves": [50, 40, 100]}),
            422,
        ),
        (
            json!({"commit": SHA256, "nodes": "*", "waves": [0, 100]}),
            422,
        ),
        (json!({"commit": "xyz", "nodes": "*"}), 422),
        (json!({"commit": SHA256, "nodes": []}), 422),
        (json!({"commit": SHA256, "nodes": ["n01", "n01"]}), 422),
        (
            json!({"commit": SHA256, "nodes": "*", "min_applied": 101}),
            422,
        ),
        (
            json!({"commit": SHA256, "nodes": "*", "max_in_flight": 0}),
            422,
        ),
        (json!({"commit": SHA256, "nodes": "*", "color": "red"}), 400),
        (json!({"commit": SHA256, "nodes": ["n01", "nope"]}), 404),
        (
            json!({"commit": SHA256, "nodes": "*", "canary": ["nope"]}),
            404,
        ),
        (json!({"commit": SHA256, "nodes": "zz*"}), 422),
    ] {
        let r = start_rollout(&server, body.clone());
        assert_eq!(r.status, status, "{body}: {:?}", r.json);
        assert!(r.json["error"].is_string(), "{:?}", r.json);
    }
    let list = server.call("GET", ROLLOUTS, None);
    assert_eq!(list.json["rollouts"], json!([]), "nothing was made");

    // Without a report gate, every wave goes out at once, each node exactly once.
    let r = start_rollout(
        &server,
        json!({"commit": SHA256, "nodes": "*", "waves": [50, 100], "min_applied": 0}),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    let first = r.json["id"].as_u64().unwrap();
    assert_eq!(r.json["created_by"], "admin");
    let done = wait_state(&server, first, "completed", Duration::from_secs(20));
    assert_eq!(done["total"]["nodes"], 20);
    assert_eq!(done["total"]["published"], 20);
    let labels: Vec<&str> = done["progress"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["50%", "100%"]);
    // Each node sits in the wave the rollout id and its name place it in.
    for (i, wave) in done["progress"].as_array().unwrap().iter().enumerate() {
        let expected = names
            .iter()
            .filter(|n| herald::store::place(first, n, &[50, 100]) == i as u32)
            .count();
        assert_eq!(wave["nodes"], expected, "{done}");
    }
    for n in &names {
        assert_eq!(node(&server, n)["commit"], SHA256);
        assert_eq!(publishes_of(&server, n, SHA256).len(), 1, "{n}");
    }

    // A rollout held at its first wave (no node reports) keeps its nodes: another rollout of
    // any of them is refused, naming it.
    let r = start_rollout(
        &server,
        json!({"commit": SHA1, "nodes": "n0*", "waves": [50, 100], "interval": 3600}),
    );
    assert_eq!(r.status, 201, "{:?}", r.json);
    let held = r.json["id"].as_u64().unwrap();
    let r = start_rollout(&server, json!({"commit": THIRD, "nodes": ["n11", "n05"]}));
    assert_eq!(r.status, 409, "{:?}", r.json);
    assert!(
        r.json["error"]
            .as_str()
            .unwrap()
            .contains(&format!("rollout {held}")),
        "{:?}",
        r.json
    );
    let held_json = wait_for_published(&server, held);
    let touched: Vec<String> = names[..10]
        .iter()
        .filter(|n| node(&server, n)["commit"] == SHA1)
        .cloned()
        .collect();
    assert_eq!(
        touched.len() as u64,
        held_json["progress"][0]["nodes"].as_u64().unwrap()
    );
    assert_eq!(held_json["state"], "running");
    assert_eq!(held_json["wave"], 0, "the gate holds it: nobody reported");

    // A scoped token starts rollouts only inside its scope, and sees only those.
    let t = server.call(
        "POST",
        "/v1/tokens",
        Some(&json!({"zone": "example.test", "nodes": "n1*"})),
    );
    let scoped = t.json["token"].as_str().unwrap().to_owned();
    let as_scoped = |method: &str, path: &str, body: Option<&Value>| {
        server.call_as(method, path, body, Some(&scoped), &[])
    };
    let body = json!({"commit": SHA1, "nodes": "*"});
    assert_eq!(as_scoped("POST", ROLLOUTS, Some(&body)).status, 403);
    let body = json!({"commit": SHA1, "nodes": "n1*", "canary": ["n05"]});
    assert_eq!(as_scoped("POST", ROLLOUTS, Some(&body)).status, 403);
    let body = json!({"commit": SHA1, "nodes": "n1*", "interval": 3600});
    let r = as_scoped("POST", ROLLOUTS, Some(&body));
    assert_eq!(r.status, 201, "{:?}", r.json);
    let mine = r.json["id"].as_u64().unwrap();
    assert_eq!(r.json["created_by"], t.json["id"]);
    let seen = as_scoped("GET", ROLLOUTS, None);
    let ids: Vec<u64> = seen.json["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [mine]);
    let path = format!("{}/{held}/pause", ROLLOUTS);
    assert_eq!(as_scoped("POST", &path, None).status, 403);

    // Pause and resume; an action the state does not allow is 409.
    let r = act(&server, held, "pause", None);
    assert_eq!((r.status, r.json["state"].as_str()), (200, Some("paused")));
    assert_eq!(act(&server, held, "pause", None).status, 409);
    let r = act(&server, held, "resume", None);
    assert_eq!((r.status, r.json["state"].as_str()), (200, Some("running")));
    assert_eq!(act(&server, first, "resume", None).status, 409);
    assert_eq!(act(&server, 999, "pause", None).status, 404);

    // Denying SHA1 halts its running rollouts at once, and every path refuses it.
    let body = json!({"commit": SHA1, "reason": "breaks the boot loader"});
    let path = "/v1/zones/example.test/denied-commits";
    assert_eq!(as_scoped("POST", path, Some(&body)).status, 403);
    let r = server.call("POST", path, Some(&body));
    assert_eq!(r.status, 201, "{:?}", r.json);
    let mut halted: Vec<u64> = serde_json::from_value(r.json["halted"].clone()).unwrap();
    halted.sort();
    assert_eq!(halted, [held, mine]);
    assert_eq!(server.call("POST", path, Some(&body)).status, 200);
    let h = rollout(&server, held);
    assert_eq!(h["state"], "halted");
    assert!(h["reason"].as_str().unwrap().contains("deny-list"), "{h}");
    let r = server.put("example.test", "n15", SHA1);
    assert_eq!(r.status, 409, "{:?}", r.json);
    assert!(r.json["error"].as_str().unwrap().contains("deny-list"));
    let n15 = node(&server, "n15");
    let r = server.call(
        "POST",
        "/v1/zones/example.test/batch",
        Some(&json!({"set": [{"node": "n15", "commit": THIRD}, {"node": "n16", "commit": SHA1}]})),
    );
    assert_eq!(r.status, 409, "{:?}", r.json);
    assert_eq!(node(&server, "n15"), n15, "nothing of the batch");
    let patch = json!({"rrsets": [{"name": "n15.example.test.", "type": "TXT", "ttl": 60,
        "changetype": "REPLACE", "records": [{"content": format!("\"{SHA1}\""), "disabled": false}]}]});
    let r = server.call_as(
        "PATCH",
        "/api/v1/servers/localhost/zones/example.test.",
        Some(&patch),
        None,
        &[("X-API-Key", TOKEN)],
    );
    assert_eq!(r.status, 409, "{:?}", r.json);
    let r = start_rollout(&server, json!({"commit": SHA1, "nodes": ["n19"]}));
    assert_eq!(r.status, 409, "{:?}", r.json);
    assert_eq!(act(&server, held, "resume", None).status, 409);
    let list = server.call("GET", path, None);
    assert_eq!(list.json["denied"][0]["commit"], SHA1);
    assert_eq!(list.json["denied"][0]["reason"], "breaks the boot loader");

    // Abort with revert: what the held rollout published goes back, with a new seq.
    let before: Vec<(String, u64)> = touched
        .iter()
        .map(|n| (n.clone(), node(&server, n)["seq"].as_u64().unwrap()))
        .collect();
    let r = act(&server, held, "abort", Some(json!({"revert": true})));
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["state"], "aborted");
    assert_eq!(r.json["reverted"], touched.len());
    for (n, seq) in &before {
        let now = node(&server, n);
        assert_eq!(now["commit"], SHA256, "{n}");
        assert_eq!(now["seq"], seq + 1, "{n}");
    }
    assert_eq!(act(&server, held, "abort", None).status, 409);
    let r = act(&server, mine, "abort", None);
    assert_eq!((r.status, r.json["reverted"].as_u64()), (200, Some(0)));

    // Allowed again: it publishes.
    let del = format!("{path}/{SHA1}");
    assert_eq!(server.call("DELETE", &del, None).status, 204);
    assert_eq!(server.call("DELETE", &del, None).status, 404);
    assert_eq!(server.put("example.test", "n15", SHA1).status, 200);
}

/// Waits until the rollout's current wave is published, and returns it.
fn wait_for_published(server: &Server, id: u64) -> Value {
    let mut last = Value::Null;
    wait_for(Duration::from_secs(20), "the wave published", || {
        last = rollout(server, id);
        let w = &last["progress"][last["wave"].as_u64().unwrap() as usize];
        w["published"] == w["nodes"]
    });
    last
}

/// One `herald watch` per node, with its report key, a 1 s interval and a 2 s hook timeout.
/// The hook fails for nodes `f*` on commit [`BAD`], hangs for nodes `h*` on it, and otherwise
/// appends `<seq> <commit>` to `applied/<node>`.
struct Fleet {
    dir: PathBuf,
    watchers: Vec<Child>,
}

impl Fleet {
    fn start(dir: &Path, data: &Path, dns: &str, nodes: &[String]) -> Self {
        let anchor = dir.join("anchor.key");
        write_anchor(data, &anchor);
        std::fs::create_dir_all(dir.join("applied")).unwrap();
        let exec = format!(
            "case \"$HERALD_COMMIT:$HERALD_NODE\" in {BAD}:f*) exit 1;; {BAD}:h*) sleep 600;; esac; \
             echo \"$HERALD_SEQ $HERALD_COMMIT\" >> {}/applied/$HERALD_NODE",
            dir.display()
        );
        let mut watchers = Vec::new();
        for n in nodes {
            let key = report_key_file(data, dir, n);
            let child = Command::new(env!("CARGO_BIN_EXE_herald"))
                .args(["watch", "--interval", "1s", "--hook-timeout", "2s"])
                .args(["--server", dns, "--timeout", "1s"])
                .args(["--zone", "example.test", "--node", n])
                .arg("--trust-anchor")
                .arg(&anchor)
                .arg("--state")
                .arg(dir.join(format!("{n}.state")))
                .arg("--report-key")
                .arg(&key)
                .args(["--exec", &exec])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            watchers.push(child);
        }
        Self {
            dir: dir.to_owned(),
            watchers,
        }
    }

    /// The last `<seq> <commit>` the node's hook applied.
    fn applied(&self, node: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join("applied").join(node))
            .ok()?
            .lines()
            .last()
            .map(str::to_owned)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for w in &mut self.watchers {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// 50 watchers follow four rollouts: a good one in gated waves, a bad one halted by its
/// canaries' failures (two hooks fail, one hangs and is killed), its abort with revert, and
/// one whose server is killed in the middle of a wave.
#[test]
fn fifty_watchers_follow_rollouts_through_halts_reverts_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let dns = format!("127.0.0.1:{port}");
    let extra = ["--dns", dns.as_str()];
    let mut server = Server::start_with(&data, &repo_zones(), Some(TOKEN), &extra);
    let mut names: Vec<String> = ["f1", "f2", "h1"].map(String::from).to_vec();
    names.extend((0..47).map(|i| format!("n{i:02}")));
    batch(&server, &names, SHA1);
    let fleet = Fleet::start(dir.path(), &data, &dns, &names);
    let current = |server: &Server, seq_commit: &dyn Fn(&str) -> bool| {
        names
            .iter()
            .all(|n| fleet.applied(n).is_some_and(|a| seq_commit(&a)))
            && server.call("GET", "/v1/zones/example.test", None).json["node_states"]["current"]
                == names.len()
    };
    wait_for(
        Duration::from_secs(30),
        "every watcher applied SHA1",
        || current(&server, &|a| a == format!("1 {SHA1}")),
    );

    // 1. A good commit in gated waves: each wave starts only after the one before has been
    //    published for the interval and 90 % of its nodes reported applied.
    let out = herald(&[
        "rollout",
        "--api",
        &server.api,
        "--token",
        TOKEN,
        "--json",
        "start",
        "--zone",
        "example.test",
        SHA256,
        "--waves",
        "10,50,100",
        "--interval",
        "2s",
        "--min-applied",
        "90",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started: Value = serde_json::from_slice(&out.stdout).unwrap();
    let good = started["id"].as_u64().unwrap();
    wait_state(&server, good, "completed", Duration::from_secs(90));
    let waves = [10, 50, 100];
    let mut by_wave: Vec<Vec<(u64, u64)>> = vec![Vec::new(); 3];
    for n in &names {
        let published = publishes_of(&server, n, SHA256);
        assert_eq!(published.len(), 1, "{n} published once");
        let received = node(&server, n)["applied"]["received"].as_u64().unwrap();
        by_wave[herald::store::place(good, n, &waves) as usize].push((published[0].1, received));
    }
    for w in 1..3 {
        let (before, this) = (&by_wave[w - 1], &by_wave[w]);
        let Some(start) = this.iter().map(|(ts, _)| *ts).min() else {
            continue;
        };
        let done = before.iter().map(|(ts, _)| *ts).max().unwrap_or(0);
        eprintln!(
            "wave {w}: {} nodes, started at {start}; wave {} ({} nodes) was done at {done}",
            this.len(),
            w - 1,
            before.len()
        );
        assert!(
            start >= done + 2,
            "wave {w} started {start}, the one before was done {done}"
        );
        let applied_before = before.iter().filter(|(_, r)| *r <= start).count();
        assert!(
            applied_before * 100 >= before.len() * 90,
            "wave {w} started with {applied_before} of {} applied",
            before.len()
        );
    }
    wait_for(
        Duration::from_secs(20),
        "every watcher applied SHA256",
        || current(&server, &|a| a == format!("2 {SHA256}")),
    );

    // 2. A bad commit: its canaries fail (f1, f2) or hang until killed (h1); three failures
    //    are more than max_failed = 2, so it halts before any other node gets it.
    let body = json!({"commit": BAD, "nodes": "*", "canary": ["f1", "f2", "h1", "n00", "n01"],
        "waves": [10, 50, 100], "interval": 1, "max_failed": 2});
    let r = start_rollout(&server, body);
    assert_eq!(r.status, 201, "{:?}", r.json);
    let bad = r.json["id"].as_u64().unwrap();
    let halted = wait_state(&server, bad, "halted", Duration::from_secs(30));
    assert_eq!(halted["wave"], 0, "{halted}");
    assert_eq!(halted["progress"][0]["label"], "canary");
    assert_eq!(halted["progress"][0]["failed"], 3, "{halted}");
    assert_eq!(halted["total"]["published"], 5, "{halted}");
    assert!(
        halted["reason"]
            .as_str()
            .unwrap()
            .contains("more than max_failed = 2"),
        "{halted}"
    );
    for n in &names[5..] {
        assert!(
            publishes_of(&server, n, BAD).is_empty(),
            "{n} never got BAD"
        );
    }
    let failed = server.call("GET", "/v1/zones/example.test/nodes?state=failed", None);
    let failed: Vec<&str> = failed.json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["f1", "f2", "h1"]);

    // 3. Abort with revert (from the CLI): the five canaries get SHA256 back with a new seq,
    //    and every watcher applies it, the one whose hook hung included.
    let out = herald(&[
        "rollout",
        "--api",
        &server.api,
        "--token",
        TOKEN,
        "abort",
        "--zone",
        "example.test",
        &bad.to_string(),
        "--revert",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("{bad} aborted commit={BAD}")),
        "{text}"
    );
    assert_eq!(rollout(&server, bad)["reverted"], 5);
    wait_for(Duration::from_secs(30), "the revert applied", || {
        names.iter().all(|n| {
            let want = if names[..5].contains(n) { "4" } else { "2" };
            fleet.applied(n) == Some(format!("{want} {SHA256}"))
        })
    });
    for n in &names[..5] {
        let now = node(&server, n);
        assert_eq!(
            (now["seq"].as_u64(), now["commit"].as_str()),
            (Some(4), Some(SHA256))
        );
    }

    // 4. A rollout capped at 10 nodes in flight; the server is killed in the middle of its
    //    wave and started again on the same store: nothing is published twice or skipped.
    let body = json!({"commit": THIRD, "nodes": "*", "max_in_flight": 10});
    let r = start_rollout(&server, body);
    assert_eq!(r.status, 201, "{:?}", r.json);
    let third = r.json["id"].as_u64().unwrap();
    let mut in_flight = Vec::new();
    wait_for(Duration::from_secs(30), "part of the wave out", || {
        let t = &rollout(&server, third)["total"];
        let published = t["published"].as_u64().unwrap();
        in_flight.push(published - t["applied"].as_u64().unwrap() - t["failed"].as_u64().unwrap());
        (10..40).contains(&published)
    });
    assert!(
        in_flight.iter().all(|n| *n <= 10),
        "the cap held: {in_flight:?}"
    );
    assert_eq!(server.signal("KILL").code(), None);
    server = Server::start_with(&data, &repo_zones(), Some(TOKEN), &extra);
    let done = wait_state(&server, third, "completed", Duration::from_secs(90));
    assert_eq!(done["total"]["published"], 50, "{done}");
    for n in &names {
        assert_eq!(
            publishes_of(&server, n, THIRD).len(),
            1,
            "{n} got THIRD once"
        );
    }
    wait_for(
        Duration::from_secs(30),
        "every watcher applied THIRD",
        || {
            names
                .iter()
                .all(|n| fleet.applied(n).is_some_and(|a| a.ends_with(THIRD)))
        },
    );
    drop(fleet);
}
