//! `herald check` and `herald watch` against the real server, with a UDP proxy in between
//! where the test needs an attacker: one byte flipped in transit, an old answer replayed.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    /// Changes one character of the commit in the TXT record (other answers, such as the
    /// DNSKEY RRset, pass untouched).
    Flip,
    /// Passes answers and keeps a copy of the last one.
    Record,
    /// Answers every query with the recorded answer, its ID patched and its DNS cookie made
    /// the query's, as an attacker on the path, who sees the query, can; asks no one.
    Replay,
    /// The same without patching the cookie, as an attacker off the path must.
    ReplayBlind,
}

/// `answer` with the ID of `query`, and (with `cookie`) its client cookie.
fn patched(answer: &[u8], query: &[u8], cookie: bool) -> Vec<u8> {
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let (Ok(mut a), Ok(q)) = (Message::from_vec(answer), Message::from_vec(query)) else {
        return answer.to_vec();
    };
    a.metadata.id = q.metadata.id;
    let theirs = q
        .edns
        .as_ref()
        .and_then(|e| e.option(EdnsCode::Cookie))
        .cloned();
    if cookie
        && let (Some(EdnsOption::Unknown(10, client)), Some(edns)) = (theirs, a.edns.as_mut())
        && let Some(EdnsOption::Unknown(10, recorded)) = edns.option(EdnsCode::Cookie).cloned()
    {
        let mut value = client[..8].to_vec();
        value.extend_from_slice(&recorded[8..]);
        edns.options_mut().remove(EdnsCode::Cookie);
        edns.options_mut().insert(EdnsOption::Unknown(10, value));
    }
    a.to_vec().unwrap()
}

/// A UDP man in the middle in front of one server.
struct Proxy {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn new(upstream: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (mode.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut recorded: Option<Vec<u8>> = None;
            let mut buf = [0u8; 65535];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, client)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let query = buf[..n].to_vec();
                let mode = *m.lock().unwrap();
                let answer = if mode == Mode::Replay || mode == Mode::ReplayBlind {
                    recorded
                        .as_ref()
                        .map(|a| patched(a, &query, mode == Mode::Replay))
                } else {
                    let up = UdpSocket::bind("127.0.0.1:0").unwrap();
                    up.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    up.send_to(&query, upstream).unwrap();
                    let mut reply = [0u8; 65535];
                    up.recv(&mut reply).ok().map(|k| reply[..k].to_vec())
                };
                let Some(mut answer) = answer else { continue };
                match mode {
                    Mode::Flip => {
                        if let Some(at) = answer.windows(7).position(|w| w == b"commit=") {
                            let at = at + 7;
                            answer[at] = if answer[at] == b'0' { b'1' } else { b'0' };
                        }
                    }
                    Mode::Record => recorded = Some(answer.clone()),
                    Mode::Pass | Mode::Replay | Mode::ReplayBlind => {}
                }
                let _ = socket.send_to(&answer, client);
            }
        });
        Self { addr, mode, stop }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A running server with its trust anchor written to a file.
struct Setup {
    dir: tempfile::TempDir,
    server: Server,
    anchor: PathBuf,
}

fn setup(extra: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, &repo_zones(), Some(TOKEN), extra);
    let anchor = dir.path().join("anchor.key");
    write_anchor(&data, &anchor);
    Setup {
        dir,
        server,
        anchor,
    }
}

fn check(servers: &[SocketAddr], anchor: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["check".to_owned()];
    for s in servers {
        args.extend(["--server".to_owned(), s.to_string()]);
    }
    args.extend(
        [
            "--zone",
            "example.test",
            "--node",
            "n1",
            "--timeout",
            "1s",
            "--trust-anchor",
        ]
        .map(String::from),
    );
    args.push(anchor.display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(&args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_reports_the_commit_and_the_denial() {
    let s = setup(&[]);
    s.server.put("example.test", "n1", SHA1);
    let out = check(&[s.server.dns], &s.anchor, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("n1.example.test. commit={SHA1} seq=1")
    );

    // The first check with a state file also fetches the DNSKEY RRset (RFC 5011 probe) and
    // keeps it there; the next one, within the probe interval, is one query and one answer.
    let state = s.dir.path().join("state.json").display().to_string();
    let first = check(&[s.server.dns], &s.anchor, &["--json", "--state", &state]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let out = check(&[s.server.dns], &s.anchor, &["--json", "--state", &state]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["outcome"].as_str(), json["seq"].as_u64()),
        (Some("found"), Some(1))
    );
    assert_eq!(json["attempts"][0]["tcp"], false);
    let sent = json["attempts"][0]["bytes_sent"].as_u64().unwrap();
    assert!(sent < 100, "{json}");
    assert!(json["attempts"][0]["bytes_received"].as_u64().unwrap() < 512);
    let json: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(
        json["attempts"][0]["bytes_sent"].as_u64().unwrap() > sent,
        "two queries: {json}"
    );

    assert_eq!(
        s.server
            .call("DELETE", "/v1/zones/example.test/nodes/n1", None)
            .status,
        204
    );
    let out = check(&[s.server.dns], &s.anchor, &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("no record"));
}

#[test]
fn nsec3_zones_and_ds_anchors() {
    let s = setup(&["--dnssec", "example.test:denial=nsec3"]);
    s.server.put("example.test", "n1", SHA256);
    let ds_only = s.dir.path().join("ds.key");
    let text = std::fs::read_to_string(&s.anchor).unwrap();
    std::fs::write(&ds_only, text.lines().find(|l| l.contains(" DS ")).unwrap()).unwrap();
    for anchor in [&s.anchor, &ds_only] {
        let out = check(&[s.server.dns], anchor, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains(SHA256));
    }
    assert_eq!(
        s.server
            .call("DELETE", "/v1/zones/example.test/nodes/n1", None)
            .status,
        204
    );
    let out = check(&[s.server.dns], &ds_only, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn a_wrong_trust_anchor_exits_4() {
    let s = setup(&[]);
    s.server.put("example.test", "n1", SHA1);
    let other = tempfile::tempdir().unwrap();
    drop(Server::start(other.path(), &repo_zones()));
    let wrong = other.path().join("anchor.key");
    write_anchor(other.path(), &wrong);
    let out = check(&[s.server.dns], &wrong, &[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no trusted key signs the DNSKEY RRset of example.test."),
        "{}",
        stderr(&out)
    );
}

#[test]
fn one_flipped_byte_in_transit_exits_4() {
    let s = setup(&[]);
    s.server.put("example.test", "n1", SHA1);
    let proxy = Proxy::new(s.server.dns);
    assert_eq!(check(&[proxy.addr], &s.anchor, &[]).status.code(), Some(0));
    proxy.set(Mode::Flip);
    let out = check(&[proxy.addr], &s.anchor, &[]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains("bad signature"), "{}", stderr(&out));
    // A good second server saves the check.
    let out = check(&[proxy.addr, s.server.dns], &s.anchor, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn watch_once(s: &Setup, server: SocketAddr, exec: &str) -> Output {
    let state = s.dir.path().join("state.json");
    herald(&[
        "watch",
        "--once",
        "--server",
        &server.to_string(),
        "--zone",
        "example.test",
        "--node",
        "n1",
        "--timeout",
        "1s",
        "--trust-anchor",
        &s.anchor.display().to_string(),
        "--state",
        &state.display().to_string(),
        "--exec",
        exec,
    ])
}

fn hook_log(s: &Setup) -> (PathBuf, String) {
    let log = s.dir.path().join("hook.log");
    let exec = format!(
        "echo \"$HERALD_ZONE $HERALD_NODE $HERALD_SEQ $HERALD_COMMIT\" >> {}",
        log.display()
    );
    (log, exec)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[test]
fn a_replayed_old_answer_exits_4_and_runs_no_hook() {
    let s = setup(&[]);
    let (log, exec) = hook_log(&s);
    s.server.put("example.test", "n1", SHA1);
    let proxy = Proxy::new(s.server.dns);
    proxy.set(Mode::Record);
    assert_eq!(check(&[proxy.addr], &s.anchor, &[]).status.code(), Some(0));
    // A newer commit, applied.
    s.server.put("example.test", "n1", SHA256);
    let out = watch_once(&s, s.server.dns, &exec);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lines(&log), [format!("example.test n1 2 {SHA256}")]);
    // An attacker off the path replays the old, validly signed answer with seq 1: it holds
    // another client's cookie, and the watcher ignores it (RFC 7873 §5.3): no answer at all.
    proxy.set(Mode::ReplayBlind);
    let out = watch_once(&s, proxy.addr, &exec);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(lines(&log).len(), 1, "the hook did not run");
    // On the path, the attacker copies the query's cookie into it: the seq stops it.
    proxy.set(Mode::Replay);
    let out = watch_once(&s, proxy.addr, &exec);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(lines(&log).len(), 1, "the hook did not run");
    let state = s.dir.path().join("state.json").display().to_string();
    let out = check(&[proxy.addr], &s.anchor, &["--state", &state]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("replayed: seq 1 is below the 2 already applied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn failover_and_no_server() {
    let s = setup(&[]);
    s.server.put("example.test", "n1", SHA1);
    // One address refuses (nothing listens), one never answers (bound, silent).
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let refused: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let out = check(
        &[refused, silent_addr, s.server.dns],
        &s.anchor,
        &["--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let outcomes: Vec<&str> = json["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["unreachable", "timeout", "found"]);
    assert_eq!(json["server"], s.server.dns.to_string());

    let out = check(&[refused, silent_addr], &s.anchor, &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // A resolver address works the same way (here the server itself, asked with RD and CD).
    let out = herald(&[
        "check",
        "--resolver",
        &s.server.dns.to_string(),
        "--zone",
        "example.test",
        "--node",
        "n1",
        "--trust-anchor",
        &s.anchor.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn watch_once_runs_the_hook_once_per_new_seq() {
    let s = setup(&[]);
    let (log, exec) = hook_log(&s);
    s.server.put("example.test", "n1", SHA1);
    assert_eq!(watch_once(&s, s.server.dns, &exec).status.code(), Some(0));
    assert_eq!(lines(&log), [format!("example.test n1 1 {SHA1}")]);
    // Not again: the state file says seq 1 is applied, across runs.
    assert_eq!(watch_once(&s, s.server.dns, &exec).status.code(), Some(0));
    assert_eq!(lines(&log).len(), 1);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.path().join("state.json")).unwrap())
            .unwrap();
    assert_eq!(
        (state["seq"].as_u64(), state["commit"].as_str()),
        (Some(1), Some(SHA1))
    );
    // A new publish runs it again.
    s.server.put("example.test", "n1", SHA256);
    assert_eq!(watch_once(&s, s.server.dns, &exec).status.code(), Some(0));
    assert_eq!(
        lines(&log),
        [
            format!("example.test n1 1 {SHA1}"),
            format!("example.test n1 2 {SHA256}")
        ]
    );
}

#[test]
fn a_failing_hook_is_not_recorded() {
    let s = setup(&[]);
    let (log, exec) = hook_log(&s);
    s.server.put("example.test", "n1", SHA1);
    let out = watch_once(&s, s.server.dns, "exit 3");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The state file keeps the trust anchors, and no applied seq.
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.path().join("state.json")).unwrap())
            .unwrap();
    assert_eq!(
        (state["seq"].as_u64(), state["commit"].as_str()),
        (Some(0), Some(""))
    );
    // The next pass runs the (now working) hook for the same seq.
    assert_eq!(watch_once(&s, s.server.dns, &exec).status.code(), Some(0));
    assert_eq!(lines(&log), [format!("example.test n1 1 {SHA1}")]);
}

#[test]
fn watch_follows_publishes_and_finishes_its_hook_on_sigterm() {
    let s = setup(&[]);
    let log = s.dir.path().join("hook.log");
    // A slow hook, so SIGTERM arrives while it runs.
    let exec = format!("sleep 1; echo \"$HERALD_SEQ\" >> {}", log.display());
    let state = s.dir.path().join("state.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args([
            "watch",
            "--interval",
            "1s",
            "--server",
            &s.server.dns.to_string(),
            "--zone",
            "example.test",
            "--node",
            "n1",
        ])
        .args([
            "--trust-anchor",
            &s.anchor.display().to_string(),
            "--state",
            &state.display().to_string(),
            "--exec",
            &exec,
        ])
        .spawn()
        .unwrap();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while lines(&log).len() < n {
            assert!(
                Instant::now() < deadline,
                "the hook did not run: {:?}",
                lines(&log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    s.server.put("example.test", "n1", SHA1);
    wait_for(1);
    // The first hook has finished and been recorded.
    until("seq 1 recorded", &|| {
        std::fs::read_to_string(&state).is_ok_and(|t| t.contains("\"seq\": 1"))
            && !hook_running(child.id())
    });
    s.server.put("example.test", "n1", SHA256);
    // Stop the watcher while the hook for seq 2 runs.
    until("the second hook", &|| hook_running(child.id()));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(lines(&log), ["1", "2"], "the running hook finished");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(state["seq"], 2);
}

/// A hook that hangs on a bad commit, and ignores SIGTERM with a child of its own, is killed
/// with its whole process group after `--hook-timeout` and the grace; it counts as failed, and
/// the next pass applies the rollback published meanwhile.
#[test]
fn a_hanging_hook_is_killed_and_the_rollback_is_applied() {
    let s = setup(&[]);
    let log = s.dir.path().join("hook.log");
    let pids = s.dir.path().join("pids");
    let exec = format!(
        "if [ \"$HERALD_COMMIT\" = {SHA1} ]; then echo $$ > {pids}; trap '' TERM; \
         sleep 300 & echo $! >> {pids}; wait; fi; echo \"$HERALD_SEQ $HERALD_COMMIT\" >> {log}",
        pids = pids.display(),
        log = log.display()
    );
    let state = s.dir.path().join("state.json");
    s.server.put("example.test", "n1", SHA1);
    let child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["watch", "--interval", "1s", "--hook-timeout", "1s"])
        .args(["--server", &s.server.dns.to_string()])
        .args(["--zone", "example.test", "--node", "n1"])
        .args(["--trust-anchor", &s.anchor.display().to_string()])
        .args(["--state", &state.display().to_string(), "--exec", &exec])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let hung: Vec<u32> = loop {
        let got: Vec<u32> = lines(&pids).iter().filter_map(|l| l.parse().ok()).collect();
        if got.len() == 2 {
            break got;
        }
        assert!(Instant::now() < deadline, "the hook did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let started = Instant::now();
    // The rollback, published while the bad commit's hook hangs.
    s.server.put("example.test", "n1", SHA256);
    let deadline = Instant::now() + Duration::from_secs(15);
    while lines(&log).is_empty() {
        assert!(Instant::now() < deadline, "the rollback was not applied");
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    assert_eq!(
        lines(&log),
        [format!("2 {SHA256}")],
        "only the rollback ran"
    );
    // 1 s of timeout and 1 s of grace (the grace is 10 s, or the timeout if shorter), then the
    // retry after an eighth of the interval.
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(8),
        "{took:?}"
    );
    for pid in &hung {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        assert!(
            stat.is_empty() || state.starts_with('Z'),
            "{pid} of the hung hook still runs: {stat}"
        );
    }
    // The hook's line is written before it exits; the state is recorded after, under the
    // state file's lock: wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let applied = loop {
        let applied: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
        if applied["seq"] == 2 || Instant::now() >= deadline {
            break applied;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        (applied["seq"].as_u64(), applied["commit"].as_str()),
        (Some(2), Some(SHA256))
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let text = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "sending its process group SIGTERM",
        "outlived SIGTERM; SIGKILL",
        "the hook ran longer than 1 s; its process group was killed",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
}

/// Whether process `pid` has a child (the hook's `sh`).
fn hook_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|c| !c.trim().is_empty())
        .unwrap_or(false)
}

#[test]
fn usage_errors_exit_2() {
    let s = setup(&[]);
    let anchor = s.anchor.display().to_string();
    let fresh_state = s.dir.path().join("fresh.json").display().to_string();
    for args in [
        vec![
            "check",
            "--zone",
            "example.test",
            "--node",
            "n1",
            "--trust-anchor",
            &anchor,
        ],
        vec![
            "check",
            "--server",
            "nonsense",
            "--zone",
            "example.test",
            "--node",
            "n1",
            "--trust-anchor",
            &anchor,
        ],
        vec![
            "check",
            "--server",
            "127.0.0.1",
            "--zone",
            "example.test",
            "--node",
            "-bad",
            "--trust-anchor",
            &anchor,
        ],
        vec![
            "check",
            "--server",
            "127.0.0.1",
            "--zone",
            "example.test",
            "--node",
            "n1",
            "--trust-anchor",
            "/nonexistent",
        ],
        vec![
            "watch",
            "--server",
            "127.0.0.1",
            "--zone",
            "example.test",
            "--node",
            "n1",
            "--trust-anchor",
            &anchor,
            "--exec",
            "true",
        ],
        vec![
            "watch",
            "--server",
            "127.0.0.1",
            "--zone",
            "example.test",
            "--node",
            "n1",
            "--trust-anchor",
            &anchor,
            "--state",
            &fresh_state,
            "--exec",
            "true",
            "--hook-timeout",
            "0s",
        ],
        vec!["check", "--server", "127.0.0.1"],
        vec![
            "check",
            "--server",
            "127.0.0.1",
            "--zone",
            "example.test",
            "--node",
            "n1",
            "--trust-anchor",
            &anchor,
            "--holddown",
            "0s",
        ],
    ] {
        let out = herald(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let state = s.dir.path().join("state.json");
    std::fs::write(&state, "garbage").unwrap();
    let out = herald(&[
        "check",
        "--server",
        "127.0.0.1",
        "--zone",
        "example.test",
        "--node",
        "n1",
        "--trust-anchor",
        &anchor,
        "--state",
        &state.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a Herald state file"));
}

/// `herald check --state` on a node that has applied nothing keeps the trust anchors (RFC
/// 5011) in a new state file, logs what it learnt, and the file then stands in for the anchor
/// file: a stale or wrong anchor file next to it does not break the node.
#[test]
fn check_keeps_the_trust_state() {
    let s = setup(&[]);
    s.server.put("example.test", "n1", SHA1);
    let state = s.dir.path().join("fresh").join("state.json");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    let path = state.display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["check", "--server", &s.server.dns.to_string()])
        .args(["--zone", "example.test", "--node", "n1", "--trust-anchor"])
        .arg(&s.anchor)
        .args(["--state", &path, "--holddown", "10s"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("trust anchor: key ")
            && stderr(&out).contains("it is a trust anchor"),
        "{}",
        stderr(&out)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(
        (json["seq"].as_u64(), json["commit"].as_str()),
        (Some(0), Some(""))
    );
    let key = &json["trust"]["keys"][0];
    assert_eq!(key["state"], "valid", "{json}");
    let anchor_text = std::fs::read_to_string(&s.anchor).unwrap();
    let rdata = key["dnskey"].as_str().unwrap();
    assert!(
        rdata.starts_with("257 3 13 ") && anchor_text.contains(rdata),
        "{json}"
    );
    assert!(
        json["trust"]["validated"]["next_probe"].as_u64().is_some(),
        "{json}"
    );

    // Another zone's anchor file, with this state: the state's keys are trusted.
    let other = tempfile::tempdir().unwrap();
    drop(Server::start(other.path(), &repo_zones()));
    let wrong = other.path().join("anchor.key");
    write_anchor(other.path(), &wrong);
    std::thread::sleep(Duration::from_millis(1100));
    let out = check(
        &[s.server.dns],
        &wrong,
        &["--state", &path, "--holddown", "10s"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // `herald watch` keeps the same trust state, and applies.
    let (log, exec) = hook_log(&s);
    let out = herald(&[
        "watch",
        "--once",
        "--server",
        &s.server.dns.to_string(),
        "--zone",
        "example.test",
        "--node",
        "n1",
        "--trust-anchor",
        &wrong.display().to_string(),
        "--state",
        &path,
        "--holddown",
        "10s",
        "--exec",
        &exec,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(lines(&log), [format!("example.test n1 1 {SHA1}")]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(json["seq"], 1);
    assert_eq!(json["trust"]["keys"][0]["state"], "valid");
}

/// `herald check --state` reads, checks and writes the state under the state file's lock, as
/// `herald watch` does: while another holds it (here the test, through the library), the
/// check waits, then records the trust state into the file as it is by then, keeping what the
/// other wrote.
#[test]
fn check_waits_for_the_state_files_lock() {
    use herald::client::state;
    let s = setup(&[]);
    s.server.put("example.test", "n1", SHA1);
    let path = s.dir.path().join("state.json");
    let lock = state::lock(&path).unwrap();
    assert!(state::lock_path(&path).exists());
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["check", "--server", &s.server.dns.to_string()])
        .args(["--zone", "example.test", "--node", "n1", "--trust-anchor"])
        .arg(&s.anchor)
        .arg("--state")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the check did not wait"
    );
    // Meanwhile, the holder records an applied seq.
    let mut held = state::State::new("example.test", "n1");
    held.apply(1, SHA1, 1);
    state::save(&path, &held).unwrap();
    drop(lock);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["seq"], 1, "{json}");
    assert_eq!(json["trust"]["keys"][0]["state"], "valid", "{json}");
}
