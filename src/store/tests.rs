use super::*;

impl Store {
    /// Applies a group of changes in one transaction, each in its savepoint, as the writer of
    /// `crate::publish` does.
    fn apply(
        &mut self,
        changes: &[(&str, &Change)],
        now: u64,
    ) -> Result<Vec<Result<Applied, Refusal>>, Error> {
        self.write(|w| {
            changes
                .iter()
                .map(|(zone, change)| w.apply(zone, change, now))
                .collect()
        })
    }
}

const A: &str = "1111111111111111111111111111111111111111";
const B: &str = "2222222222222222222222222222222222222222";

fn label(s: &str) -> NodeLabel {
    NodeLabel::parse(s).unwrap()
}

fn commit(s: &str) -> Commit {
    Commit::parse(s).unwrap()
}

fn put(node: &str, c: &str, if_match: Option<IfMatch>) -> Change {
    Change::Put {
        node: label(node),
        commit: commit(c),
        if_match,
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&Store::path_in(dir.path())).unwrap();
    store.init_zone("example.test", 100, b"digest").unwrap();
    (dir, store)
}

fn one(store: &mut Store, change: Change, now: u64) -> Result<Applied, Refusal> {
    store
        .apply(&[("example.test", &change)], now)
        .unwrap()
        .pop()
        .unwrap()
}

#[test]
fn publish_assigns_rising_seq_and_serial() {
    let (_dir, mut store) = open();
    let a = one(&mut store, put("n1", A, None), 10).unwrap();
    assert_eq!(a.serial, 101);
    assert_eq!(
        a.set,
        vec![(
            NodeRow {
                node: "n1".into(),
                commit: A.into(),
                seq: 1,
                ts: 10,
                serial: 101
            },
            true
        )]
    );
    // The same commit again is still a publish: new seq, not "created".
    let b = one(&mut store, put("n1", A, None), 11).unwrap();
    assert_eq!((b.set[0].0.seq, b.set[0].1, b.serial), (2, false, 102));
    let row = store.node("example.test", "n1").unwrap().unwrap();
    assert_eq!((row.seq, row.ts, row.serial), (2, 11, 102));
    assert_eq!(store.zone("example.test").unwrap().unwrap().node_count, 1);
}

#[test]
fn delete_keeps_history_and_seq_continues() {
    let (_dir, mut store) = open();
    one(&mut store, put("n1", A, None), 1).unwrap();
    one(&mut store, put("n1", B, None), 2).unwrap();
    let d = one(
        &mut store,
        Change::Delete {
            node: label("n1"),
            if_match: None,
        },
        3,
    )
    .unwrap();
    assert_eq!(d.deleted, vec!["n1".to_owned()]);
    assert_eq!(store.node("example.test", "n1").unwrap(), None);
    assert_eq!(store.zone("example.test").unwrap().unwrap().node_count, 0);
    let again = one(&mut store, put("n1", A, None), 4).unwrap();
    assert_eq!((again.set[0].0.seq, again.set[0].1), (3, true));
    let h = store.history("example.test", "n1", 10).unwrap();
    let seqs: Vec<_> = h.iter().map(|h| (h.seq, h.commit.as_str())).collect();
    assert_eq!(seqs, vec![(3, A), (2, B), (1, A)]);
    assert_eq!(store.history("example.test", "n1", 1).unwrap().len(), 1);
}

#[test]
fn refusals_change_nothing() {
    let (_dir, mut store) = open();
    one(&mut store, put("n1", A, None), 1).unwrap();
    let before = store.zone("example.test").unwrap();

    let del = Change::Delete {
        node: label("nope"),
        if_match: None,
    };
    assert_eq!(
        one(&mut store, del, 2),
        Err(Refusal::NoSuchNode("nope".into()))
    );
    assert_eq!(
        one(&mut store, put("n1", B, Some(IfMatch::Seq(7))), 2),
        Err(Refusal::SeqMismatch {
            node: "n1".into(),
            current: Some(1)
        })
    );
    assert_eq!(
        one(&mut store, put("n2", B, Some(IfMatch::Any)), 2),
        Err(Refusal::SeqMismatch {
            node: "n2".into(),
            current: None
        })
    );
    // A batch whose delete fails publishes none of its sets.
    let batch = Change::Batch {
        set: vec![(label("n3"), commit(A)), (label("n1"), commit(B))],
        delete: vec![label("missing")],
    };
    assert_eq!(
        one(&mut store, batch, 2),
        Err(Refusal::NoSuchNode("missing".into()))
    );
    let unknown = store
        .apply(&[("other.test", &put("n1", A, None))], 2)
        .unwrap();
    assert_eq!(
        unknown,
        vec![Err(Refusal::UnknownZone("other.test".into()))]
    );

    assert_eq!(store.zone("example.test").unwrap(), before);
    assert_eq!(store.node("example.test", "n3").unwrap(), None);
    assert_eq!(store.node("example.test", "n1").unwrap().unwrap().commit, A);
    assert_eq!(store.history("example.test", "n1", 10).unwrap().len(), 1);
}

#[test]
fn if_match_accepts_the_current_seq() {
    let (_dir, mut store) = open();
    one(&mut store, put("n1", A, None), 1).unwrap();
    let a = one(&mut store, put("n1", B, Some(IfMatch::Seq(1))), 2).unwrap();
    assert_eq!(a.set[0].0.seq, 2);
    let a = one(&mut store, put("n1", A, Some(IfMatch::Any)), 3).unwrap();
    assert_eq!(a.set[0].0.seq, 3);
}

#[test]
fn a_group_commits_the_good_and_drops_the_refused() {
    let (_dir, mut store) = open();
    let bad = Change::Delete {
        node: label("ghost"),
        if_match: None,
    };
    let p1 = put("n1", A, None);
    let p2 = put("n2", B, None);
    let results = store
        .apply(
            &[
                ("example.test", &p1),
                ("example.test", &bad),
                ("example.test", &p2),
            ],
            5,
        )
        .unwrap();
    assert_eq!(results[0].as_ref().unwrap().serial, 101);
    assert!(results[1].is_err());
    assert_eq!(results[2].as_ref().unwrap().serial, 102);
    let names: Vec<_> = store
        .nodes("example.test", None, None, 10)
        .unwrap()
        .into_iter()
        .map(|n| n.node)
        .collect();
    assert_eq!(names, ["n1", "n2"]);
}

#[test]
fn batch_is_one_serial() {
    let (_dir, mut store) = open();
    one(&mut store, put("old", A, None), 1).unwrap();
    let batch = Change::Batch {
        set: vec![(label("a"), commit(A)), (label("b"), commit(B))],
        delete: vec![label("old")],
    };
    let applied = one(&mut store, batch, 2).unwrap();
    assert_eq!(applied.serial, 102);
    assert!(applied.set.iter().all(|(n, new)| *new && n.serial == 102));
    assert_eq!(applied.deleted, ["old"]);
    assert_eq!(store.zone("example.test").unwrap().unwrap().node_count, 2);
}

#[test]
fn listing_pages_in_name_order() {
    let (_dir, mut store) = open();
    for n in ["c", "a", "b", "d"] {
        one(&mut store, put(n, A, None), 1).unwrap();
    }
    let page = |after, limit| -> Vec<String> {
        store
            .nodes("example.test", after, None, limit)
            .unwrap()
            .into_iter()
            .map(|n| n.node)
            .collect()
    };
    assert_eq!(page(None, 2), ["a", "b"]);
    assert_eq!(page(Some("b"), 2), ["c", "d"]);
    assert!(page(Some("d"), 2).is_empty());
}

#[test]
fn zone_serial_never_goes_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.init_zone("z.test", 50, b"d1").unwrap().serial, 50);
    one_in(&mut store, "z.test", put("n1", A, None));
    drop(store);

    let mut store = Store::open(&path).unwrap();
    // Same file: the stored serial (51) stands, not the file's 50.
    assert_eq!(store.init_zone("z.test", 50, b"d1").unwrap().serial, 51);
    // Changed static records with an old file serial: past the stored one.
    assert_eq!(store.init_zone("z.test", 50, b"d2").unwrap().serial, 52);
    // The operator raised the file's serial: taken.
    assert_eq!(store.init_zone("z.test", 900, b"d2").unwrap().serial, 900);
    // Changed records with a raised serial: the file's serial, which is newer than stored + 1.
    assert_eq!(store.init_zone("z.test", 1000, b"d3").unwrap().serial, 1000);
    assert_eq!(store.node("z.test", "n1").unwrap().unwrap().seq, 1);
}

fn one_in(store: &mut Store, zone: &str, change: Change) {
    store
        .apply(&[(zone, &change)], 1)
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match Store::open(&path) {
        Err(Error::TooNew { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
        }
        other => panic!("expected TooNew, got {:?}", other.err()),
    }
}

#[test]
fn reader_sees_committed_writes() {
    let (dir, mut store) = open();
    let reader = Store::open_reader(&Store::path_in(dir.path())).unwrap();
    one(&mut store, put("n1", A, None), 1).unwrap();
    assert_eq!(reader.node("example.test", "n1").unwrap().unwrap().seq, 1);
    // The reader cannot write.
    assert!(reader.conn.execute("DELETE FROM node", []).is_err());
}

#[test]
fn journal_appends_trims_and_survives_reopen() {
    let (dir, mut store) = open();
    store
        .write(|w| -> Result<(), Error> {
            for i in 0..10u32 {
                w.journal_append("example.test", i, i + 1, 100 + u64::from(i), &[i as u8; 3])?;
            }
            // Another zone's entries are not touched by trimming this one.
            w.journal_append("other.test", 7, 8, 0, b"x")?;
            Ok(())
        })
        .unwrap();
    let all = store.journal("example.test").unwrap();
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(
        (all[3].serial_from, all[3].serial_to, all[3].created),
        (3, 4, 103)
    );
    assert_eq!(all[3].diff, vec![3u8; 3]);

    let gone = store
        .write(|w| w.journal_trim("example.test", all[4].id))
        .unwrap();
    assert_eq!(gone, 4);
    let left = store.journal("example.test").unwrap();
    assert_eq!(
        left.iter().map(|r| r.serial_from).collect::<Vec<_>>(),
        [4, 5, 6, 7, 8, 9]
    );
    let gone = store
        .write(|w| w.journal_trim("example.test", all[7].id))
        .unwrap();
    assert_eq!(gone, 3);
    let kept = store.journal("example.test").unwrap();
    let bytes: usize = kept.iter().map(|r| r.diff.len()).sum();
    assert_eq!((kept.len(), bytes), (3, 9));
    assert_eq!(store.journal("other.test").unwrap().len(), 1);

    // A rolled-back write leaves the journal as it was.
    let failed: Result<(), Error> = store.write(|w| {
        w.journal_append("example.test", 10, 11, 200, b"lost")?;
        Err(Error::Corrupt("abort".into()))
    });
    assert!(failed.is_err());
    drop(store);
    let store = Store::open(&Store::path_in(dir.path())).unwrap();
    let after = store.journal("example.test").unwrap();
    assert_eq!(
        after.iter().map(|r| r.serial_to).collect::<Vec<_>>(),
        [8, 9, 10]
    );
}

fn update(require: Vec<Condition>, set: Vec<(&str, &str)>, delete: Vec<&str>) -> Change {
    Change::Update {
        require,
        serial: None,
        set: set
            .into_iter()
            .map(|(n, c)| (label(n), commit(c)))
            .collect(),
        delete: delete.into_iter().map(label).collect(),
    }
}

fn cond(node: &str, expect: Expect) -> Condition {
    Condition {
        node: label(node),
        expect,
    }
}

#[test]
fn update_conditions_hold_or_refuse_the_whole_change() {
    let (_dir, mut store) = open();
    one(&mut store, put("n1", A, None), 10).unwrap();
    let served = "v=herald1 commit=1111111111111111111111111111111111111111 seq=1 ts=10";
    for (expect, node, holds) in [
        (Expect::NameInUse, "n1", true),
        (Expect::NameInUse, "n2", false),
        (Expect::NameNotInUse, "n2", true),
        (Expect::NameNotInUse, "n1", false),
        (Expect::TxtExists, "n1", true),
        (Expect::TxtAbsent, "n1", false),
        (Expect::TxtAbsent, "n2", true),
        (Expect::TxtIs(served.into()), "n1", true),
        (Expect::TxtIs(served.replace("seq=1", "seq=2")), "n1", false),
        (Expect::TxtIs(served.into()), "n2", false),
    ] {
        let before = store.zone("example.test").unwrap().unwrap();
        let result = one(
            &mut store,
            update(vec![cond(node, expect.clone())], vec![("n3", B)], vec![]),
            20,
        );
        if holds {
            let applied = result.unwrap();
            assert_eq!(applied.serial, before.serial + 1, "{expect:?} {node}");
            // Undo, so the next case starts from the same zone.
            one(&mut store, update(vec![], vec![], vec!["n3"]), 20).unwrap();
        } else {
            assert_eq!(
                result.unwrap_err(),
                Refusal::Unmet {
                    node: node.into(),
                    expect: expect.clone()
                }
            );
            assert_eq!(store.zone("example.test").unwrap().unwrap(), before);
            assert!(store.node("example.test", "n3").unwrap().is_none());
        }
    }
}

#[test]
fn an_update_that_changes_nothing_keeps_the_serial() {
    let (_dir, mut store) = open();
    one(&mut store, put("n1", A, None), 10).unwrap();
    let before = store.zone("example.test").unwrap().unwrap();
    // Removing a node that does not exist is no change (RFC 2136 §3.4.2), not a refusal.
    let applied = one(&mut store, update(vec![], vec![], vec!["gone"]), 20).unwrap();
    assert_eq!(applied.serial, before.serial);
    assert!(applied.deleted.is_empty() && applied.set.is_empty());
    assert_eq!(store.zone("example.test").unwrap().unwrap(), before);
    // Publish and delete together: one serial.
    let applied = one(&mut store, update(vec![], vec![("n2", B)], vec!["n1"]), 30).unwrap();
    assert_eq!(applied.serial, before.serial + 1);
    assert_eq!(applied.deleted, vec![label("n1")]);
    assert_eq!(store.zone("example.test").unwrap().unwrap().node_count, 1);
}

#[test]
fn tokens_are_stored_by_hash_and_removed() {
    let (dir, mut store) = open();
    let token = TokenRow {
        id: "0123456789abcdef".into(),
        hash: [7; 32],
        zone: "example.test".into(),
        nodes: "web-*".into(),
        description: "ci".into(),
        created: 5,
        expires: Some(10),
    };
    store.write(|w| w.add_token(&token)).unwrap();
    // The same hash twice is refused by the schema.
    let mut twin = token.clone();
    twin.id = "other".into();
    assert!(store.write(|w| w.add_token(&twin)).is_err());
    let reader = Store::open_reader(&Store::path_in(dir.path())).unwrap();
    assert_eq!(reader.tokens().unwrap(), vec![token.clone()]);
    assert!(store.write(|w| w.remove_token(&token.id)).unwrap());
    assert!(!store.write(|w| w.remove_token(&token.id)).unwrap());
    assert!(reader.tokens().unwrap().is_empty());
}

#[test]
fn a_restored_store_never_hands_out_a_seq_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    let backup = dir.path().join("backup.sqlite3");
    {
        let mut store = Store::open(&path).unwrap();
        store.init_zone("example.test", 100, b"digest").unwrap();
        one(&mut store, put("n1", A, None), 10).unwrap();
        store.backup_into(&backup, 12_000_000).unwrap();
        // The lost interval: n1 published again after the backup (seq 2), which a node may
        // have applied.
        one(&mut store, put("n1", B, None), 11).unwrap();
    }
    assert_eq!(restore::backup_time(&backup).unwrap(), Some(12_000_000));
    assert_eq!(restore::backup_time(&path).unwrap(), None);

    // Restored: marked, then opened three seconds after the backup was taken.
    restore::mark_restored(&backup).unwrap();
    let mut conn = rusqlite::Connection::open(&backup).unwrap();
    let step = restore::step_after_restore(&mut conn, 15_000_000)
        .unwrap()
        .unwrap();
    assert_eq!(step.elapsed_us, 3_000_000);
    // seq 1 stored, so the floor is 1 + 3,000,000 + 1; the serial moves by 4 × 100,000.
    assert_eq!(
        step.zones,
        vec![("example.test".to_owned(), 3_000_002, 101 + 400_000)]
    );
    // Taken once: the mark is gone.
    assert_eq!(
        restore::step_after_restore(&mut conn, 9_000_000).unwrap(),
        None
    );
    drop(conn);

    let mut store = Store::open(&backup).unwrap();
    let served = store.node("example.test", "n1").unwrap().unwrap();
    assert_eq!(
        (served.commit.as_str(), served.seq),
        (A, 1),
        "served as backed up"
    );
    let next = one(&mut store, put("n1", A, None), 20).unwrap();
    assert_eq!(next.set[0].0.seq, 3_000_002);
    assert!(next.set[0].0.seq > 2, "above the lost interval's seq 2");
    assert_eq!(next.serial, 101 + 400_000 + 1);
    // New nodes start at the floor too: a node created and deleted in the lost interval is
    // not remembered by the backup.
    let fresh = one(&mut store, put("n9", A, None), 20).unwrap();
    assert_eq!(fresh.set[0].0.seq, 3_000_002);
    // A zone the backup never knew (it may have been born in the lost interval) starts at the
    // same floor.
    store.init_zone("new.test", 1, b"d").unwrap();
    let born = store
        .apply(&[("new.test", &put("n1", A, None))], 20)
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(born.set[0].0.seq, 3_000_002);
    // The stamp is gone with the step: a later copy is dated by its own stamp or publishes.
    assert_eq!(restore::backup_time(&backup).unwrap(), None);
    // And a later publish goes on by one.
    let again = one(&mut store, put("n1", B, None), 21).unwrap();
    assert_eq!(again.set[0].0.seq, 3_000_003);
}

#[test]
fn a_store_marked_restored_is_not_backed_up_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    {
        let mut store = Store::open(&path).unwrap();
        store.init_zone("example.test", 100, b"digest").unwrap();
    }
    restore::mark_restored(&path).unwrap();
    let reader = Store::open_reader(&path).unwrap();
    let err = reader
        .backup_into(&dir.path().join("copy"), 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("start it once"), "{err}");
}

#[test]
fn without_a_backup_stamp_the_newest_publish_dates_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = Store::path_in(dir.path());
    {
        let mut store = Store::open(&path).unwrap();
        store.init_zone("example.test", 100, b"digest").unwrap();
        one(&mut store, put("n1", A, None), 10).unwrap();
    }
    restore::mark_restored(&path).unwrap();
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    // Published at 10 s; started at 70 s: 60 s elapsed.
    let step = restore::step_after_restore(&mut conn, 70_000_000)
        .unwrap()
        .unwrap();
    assert_eq!(step.elapsed_us, 60_000_000);
    assert_eq!(step.zones[0].1, 1 + 60_000_000 + 1);
    // The serial step is capped at 2^31 - 1 for a very old copy.
    restore::mark_restored(&path).unwrap();
    let step = restore::step_after_restore(&mut conn, 10_000_000_000_000)
        .unwrap()
        .unwrap();
    let before = 101u32 + 61 * 100_000;
    assert_eq!(step.zones[0].2, before.wrapping_add(1 << 30));
}

/// A full disk, a read-only file and a failing disk are told apart from other failures, so
/// that the API can answer 507 or 503 instead of a bare 500.
#[test]
fn disk_faults_are_recognised() {
    use rusqlite::ffi;
    let sqlite = |code| Error::Sqlite(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None));
    assert_eq!(sqlite(ffi::SQLITE_FULL).fault(), Some(StorageFault::Full));
    for code in [
        ffi::SQLITE_READONLY,
        ffi::SQLITE_IOERR_WRITE,
        ffi::SQLITE_IOERR_FSYNC,
        ffi::SQLITE_CANTOPEN,
    ] {
        assert_eq!(
            sqlite(code).fault(),
            Some(StorageFault::Unwritable),
            "{code}"
        );
    }
    assert_eq!(sqlite(ffi::SQLITE_CONSTRAINT).fault(), None);
    assert_eq!(Error::Corrupt("x".into()).fault(), None);
}

/// A real full file system: a store whose file may not grow fails its write with
/// [`StorageFault::Full`], and the data written before is intact.
#[test]
fn a_store_that_may_not_grow_fails_as_full_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let mut store = Store::open(&path).unwrap();
    store.init_zone("example.test", 100, b"digest").unwrap();
    one(&mut store, put("n1", A, None), 10).unwrap();
    // SQLite's own limit on the file's pages stands in for the disk: SQLITE_FULL either way.
    let pages: i64 = store
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    store
        .conn
        .execute_batch(&format!("PRAGMA max_page_count = {pages}"))
        .unwrap();
    let mut failed = None;
    for i in 0..10_000 {
        let change = put(&format!("node-{i:05}"), B, None);
        if let Err(e) = store.apply(&[("example.test", &change)], 20) {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("the store fills up");
    assert_eq!(e.fault(), Some(StorageFault::Full), "{e:?}");
    assert_eq!(
        store
            .node("example.test", "n1")
            .unwrap()
            .unwrap()
            .commit
            .as_str(),
        A
    );
}

#[test]
fn a_report_replaces_the_stored_one_only_when_newer() {
    let (_dir, mut store) = open();
    let report = |node: &str, seq, status: &str, signed| ReportRow {
        zone: "example.test".into(),
        node: node.into(),
        seq,
        commit: A.into(),
        status: status.into(),
        code: 0,
        at: signed,
        signed,
        received: signed,
    };
    assert_eq!(store.report("example.test", "n1").unwrap(), None);
    let first = report("n1", 2, "failed", 100);
    assert_eq!(
        store
            .save_reports(&[first.clone(), report("n2", 1, "applied", 100)])
            .unwrap(),
        2
    );
    // The same message again, one signed earlier, and one for a lower seq: none replaces it.
    let stale = [
        first.clone(),
        report("n1", 2, "applied", 99),
        report("n1", 1, "applied", 200),
    ];
    assert_eq!(store.save_reports(&stale).unwrap(), 0);
    assert_eq!(store.report("example.test", "n1").unwrap(), Some(first));
    // The same seq signed later, and a higher seq signed at the same second, do.
    let later = report("n1", 2, "applied", 101);
    assert_eq!(store.save_reports(std::slice::from_ref(&later)).unwrap(), 1);
    assert_eq!(store.report("example.test", "n1").unwrap(), Some(later));
    let higher = report("n1", 3, "applied", 101);
    assert_eq!(
        store.save_reports(std::slice::from_ref(&higher)).unwrap(),
        1
    );
    assert_eq!(store.report("example.test", "n1").unwrap(), Some(higher));
    let page = store.reports_between("example.test", "n1", "n2").unwrap();
    assert_eq!(
        page.iter().map(|r| r.node.as_str()).collect::<Vec<_>>(),
        ["n1", "n2"]
    );
    assert!(
        store
            .reports_between("example.test", "n3", "n9")
            .unwrap()
            .is_empty()
    );
}
