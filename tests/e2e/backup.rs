//! `herald backup` while serving, and `herald restore` into another data directory: the
//! restored server answers as the backed-up one did, with the same key, and a node that
//! applied a seq the backup never saw still runs its hook for the first publish after the
//! restore.

use std::path::Path;
use std::process::{Command, Output};

use hickory_proto::rr::RecordType;

use crate::harness::*;

fn herald(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `herald watch --once` for n1 of example.test against `server`, appending
/// `<seq> <commit>` to `log` when it runs the hook.
fn watch_once(server: &Server, anchor: &Path, state: &Path, log: &Path) -> Output {
    herald(&[
        "watch",
        "--once",
        "--server",
        &server.dns.to_string(),
        "--zone",
        "example.test",
        "--node",
        "n1",
        "--timeout",
        "2s",
        "--trust-anchor",
        p(anchor),
        "--state",
        p(state),
        "--exec",
        &format!("echo \"$HERALD_SEQ $HERALD_COMMIT\" >> {}", p(log)),
    ])
}

fn hook_runs(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[test]
fn a_restore_never_makes_a_node_skip_a_publish() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    let backup = dir.path().join("backup");
    let (anchor, state, log) = (
        dir.path().join("anchor.key"),
        dir.path().join("state.json"),
        dir.path().join("hook.log"),
    );

    let server = Server::start(&first, &repo_zones());
    let key = herald(&["key", "show", "--zone", "example.test", "--data", p(&first)]);
    assert!(key.status.success(), "{}", text(&key));
    std::fs::write(&anchor, &key.stdout).unwrap();
    assert_eq!(server.put("example.test", "n1", SHA1).status, 201);
    let backed_up = txt(&query(
        server.dns,
        "n1.example.test.",
        RecordType::TXT,
        false,
    ));

    // A backup while serving.
    let out = herald(&["backup", "--data", p(&first), p(&backup)]);
    assert!(out.status.success(), "{}", text(&out));
    // Never over an existing path.
    let again = herald(&["backup", "--data", p(&first), p(&backup)]);
    assert!(!again.status.success());
    assert!(text(&again).contains("exists"), "{}", text(&again));

    // The lost interval: seq 2, which the node applies.
    assert_eq!(server.put("example.test", "n1", SHA256).json["seq"], 2);
    let w = watch_once(&server, &anchor, &state, &log);
    assert_eq!(w.status.code(), Some(0), "{}", text(&w));
    assert_eq!(hook_runs(&log), [format!("2 {SHA256}")]);
    let status = server.signal("TERM");
    assert!(status.success());

    // Restore: not over the old directory without --force; into a new one, yes.
    let refused = herald(&["restore", p(&backup), "--data", p(&first)]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("not empty"), "{}", text(&refused));
    let out = herald(&["restore", p(&backup), "--data", p(&second)]);
    assert!(out.status.success(), "{}", text(&out));

    // The restored server answers as the backed-up one did, with the same key.
    let server = Server::start(&second, &repo_zones());
    assert!(
        server.log().contains("first start after a restore"),
        "{}",
        server.log()
    );
    assert_eq!(
        txt(&query(
            server.dns,
            "n1.example.test.",
            RecordType::TXT,
            false
        )),
        backed_up
    );
    let key2 = herald(&[
        "key",
        "show",
        "--zone",
        "example.test",
        "--data",
        p(&second),
    ]);
    assert_eq!(key2.stdout, key.stdout, "the signing key came back");
    // The node refuses the older record it now sees (seq 1 < its applied 2): no hook.
    let w = watch_once(&server, &anchor, &state, &log);
    assert_eq!(w.status.code(), Some(4), "{}", text(&w));
    assert_eq!(hook_runs(&log).len(), 1);

    // The first publish after the restore has a seq above the lost interval's: the node runs
    // its hook for it, even though it is the commit the node had before.
    let published = server.put("example.test", "n1", SHA1);
    let seq = published.json["seq"].as_u64().unwrap();
    assert!(seq > 2, "{published:?}");
    let w = watch_once(&server, &anchor, &state, &log);
    assert_eq!(w.status.code(), Some(0), "{}", text(&w));
    assert_eq!(
        hook_runs(&log),
        [format!("2 {SHA256}"), format!("{seq} {SHA1}")]
    );
}
