use super::*;

#[test]
fn placement_is_stable_and_follows_the_percentages() {
    let waves = [10, 50, 100];
    let mut per_wave = [0u32; 3];
    for i in 0..10_000 {
        let node = format!("n{i}");
        let w = place(7, &node, &waves);
        assert_eq!(w, place(7, &node, &waves), "the same inputs place alike");
        per_wave[w as usize] += 1;
    }
    // 10 %, 40 % and 50 % of 10,000, within a few standard deviations.
    assert!((850..1150).contains(&per_wave[0]), "{per_wave:?}");
    assert!((3750..4250).contains(&per_wave[1]), "{per_wave:?}");
    assert!((4750..5250).contains(&per_wave[2]), "{per_wave:?}");
    // Another rollout places nodes anew.
    let moved = (0..1000)
        .filter(|i| {
            let node = format!("n{i}");
            place(7, &node, &waves) != place(8, &node, &waves)
        })
        .count();
    assert!(moved > 300, "{moved} of 1000 moved");
    // Fixed points: a change of the hash moves nodes of rollouts already stored.
    assert_eq!(place(1, "n1", &[50, 100]), 1);
    assert_eq!(place(42, "web-7", &[1, 10, 50, 100]), 1);
    assert_eq!(place(7, "n0", &[10, 50, 100]), 2);
    let first = (0..1000)
        .filter(|i| place(7, &format!("n{i}"), &waves) == 0)
        .count();
    assert_eq!(first, 113);
    assert_eq!(place(1, "anything", &[100]), 0);
}

use crate::record::{Commit, NodeLabel};
use crate::store::{Change, Refusal};

const A: &str = "1111111111111111111111111111111111111111";
const B: &str = "2222222222222222222222222222222222222222";
const C: &str = "3333333333333333333333333333333333333333";

fn label(s: &str) -> NodeLabel {
    NodeLabel::parse(s).unwrap()
}

/// A store with nodes n0..n9 at commit A.
fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&Store::path_in(dir.path())).unwrap();
    store.init_zone("example.test", 100, b"digest").unwrap();
    let set = (0..10)
        .map(|i| (label(&format!("n{i}")), Commit::parse(A).unwrap()))
        .collect();
    apply(
        &mut store,
        Change::Batch {
            set,
            delete: vec![],
        },
    )
    .unwrap();
    (dir, store)
}

fn apply(store: &mut Store, change: Change) -> Result<super::super::Applied, Refusal> {
    store
        .write(|w| w.apply("example.test", &change, 1000))
        .unwrap()
}

fn new(commit: &str, selector: Selector, waves: Vec<u8>) -> NewRollout {
    NewRollout {
        zone: "example.test".into(),
        commit: Commit::parse(commit).unwrap(),
        selector,
        canary: vec![],
        waves,
        interval: 0,
        min_applied: 0,
        max_failed: 0,
        max_in_flight: None,
        created_by: "admin".into(),
    }
}

fn create(store: &mut Store, rollout: &NewRollout) -> Result<RolloutRow, Refusal> {
    store.write(|w| w.create_rollout(rollout, 1000)).unwrap()
}

fn act(store: &mut Store, id: u64, action: RolloutAction) -> Result<RolloutRow, Refusal> {
    store
        .write(|w| w.rollout_action("example.test", id, &action, 1001))
        .unwrap()
}

fn wave(id: u64, wave: u32, limit: u64) -> Change {
    Change::Rollout {
        id,
        step: RolloutStep::Wave { wave, limit },
    }
}

#[test]
fn a_wave_publishes_each_node_once_and_only_while_running() {
    let (_dir, mut store) = open();
    let all = Selector::Pattern(NodePattern::Any);
    let r = create(&mut store, &new(B, all, vec![100])).unwrap();
    assert_eq!(
        (r.state, r.wave, r.wave_done),
        (RolloutState::Running, 0, None)
    );
    // Under a cap: four, then the other six; a step after that publishes nothing.
    let first = apply(&mut store, wave(r.id, 0, 4)).unwrap();
    assert_eq!(first.set.len(), 4);
    assert!(
        first
            .set
            .iter()
            .all(|(row, _)| row.commit == B && row.seq == 2)
    );
    assert_eq!(
        store
            .rollout("example.test", r.id)
            .unwrap()
            .unwrap()
            .wave_done,
        None
    );
    let counts = store.rollout_counts(&r).unwrap();
    assert_eq!((counts[0].nodes, counts[0].published), (10, 4));
    // Paused, no wave goes out.
    act(&mut store, r.id, RolloutAction::Pause).unwrap();
    assert!(matches!(
        apply(&mut store, wave(r.id, 0, 100)),
        Err(Refusal::RolloutState {
            state: "paused",
            ..
        })
    ));
    act(&mut store, r.id, RolloutAction::Resume).unwrap();
    // A node deleted meanwhile leaves the wave instead of coming back.
    let gone = first
        .set
        .iter()
        .map(|(r, _)| r.node.clone())
        .collect::<Vec<_>>();
    let other = (0..10)
        .map(|i| format!("n{i}"))
        .find(|n| !gone.contains(n))
        .unwrap();
    apply(
        &mut store,
        Change::Delete {
            node: label(&other),
            if_match: None,
        },
    )
    .unwrap();
    let rest = apply(&mut store, wave(r.id, 0, 100)).unwrap();
    assert_eq!(rest.set.len(), 5);
    assert!(store.node("example.test", &other).unwrap().is_none());
    let row = store.rollout("example.test", r.id).unwrap().unwrap();
    assert_eq!(row.wave_done, Some(1000));
    let again = apply(&mut store, wave(r.id, 0, 100)).unwrap();
    assert!(again.set.is_empty(), "nothing is published twice");
    assert_eq!(again.serial, rest.serial, "and the serial stays");
    // A wave other than the current one is refused.
    assert!(apply(&mut store, wave(r.id, 1, 100)).is_err());
    let row = act(&mut store, r.id, RolloutAction::Advance { from: 0 }).unwrap();
    assert_eq!(row.state, RolloutState::Completed);
    let counts = store.rollout_counts(&row).unwrap();
    assert_eq!((counts[0].nodes, counts[0].published), (9, 9));
}

#[test]
fn overlaps_denied_commits_and_missing_nodes_are_refused_whole() {
    let (_dir, mut store) = open();
    let list = |names: &[&str]| Selector::List(names.iter().map(|n| label(n)).collect());
    let held = create(&mut store, &new(B, list(&["n1", "n2"]), vec![100])).unwrap();
    let refused = create(&mut store, &new(C, list(&["n3", "n2"]), vec![100]));
    assert_eq!(
        refused,
        Err(Refusal::Overlap {
            node: "n2".into(),
            rollout: held.id
        })
    );
    assert_eq!(
        store.rollouts("example.test", 10).unwrap().len(),
        1,
        "nothing kept"
    );
    assert_eq!(
        create(&mut store, &new(C, list(&["n3", "n99"]), vec![100])),
        Err(Refusal::NoSuchNode("n99".into()))
    );
    let prefix = Selector::Pattern(NodePattern::Prefix("x".into()));
    assert_eq!(
        create(&mut store, &new(C, prefix, vec![100])),
        Err(Refusal::EmptyRollout)
    );
    // Once the holder ends, its nodes are free.
    act(&mut store, held.id, RolloutAction::Abort).unwrap();
    create(&mut store, &new(C, list(&["n2"]), vec![100])).unwrap();

    // A denied commit: no rollout of it, and no publish of it by any change.
    assert!(
        store
            .write(|w| w.deny_commit("example.test", A, "bad", 5))
            .unwrap()
    );
    assert!(
        !store
            .write(|w| w.deny_commit("example.test", A, "again", 6))
            .unwrap()
    );
    assert_eq!(
        store.denied_commits("example.test").unwrap()[0].reason,
        "bad"
    );
    assert_eq!(
        create(&mut store, &new(A, list(&["n5"]), vec![100])),
        Err(Refusal::Denied { commit: A.into() })
    );
    let put = Change::Put {
        node: label("n5"),
        commit: Commit::parse(A).unwrap(),
        if_match: None,
    };
    assert_eq!(
        apply(&mut store, put),
        Err(Refusal::Denied { commit: A.into() })
    );
    let update = Change::Update {
        require: vec![],
        serial: None,
        set: vec![
            (label("n6"), Commit::parse(C).unwrap()),
            (label("n7"), Commit::parse(A).unwrap()),
        ],
        delete: vec![],
    };
    assert_eq!(
        apply(&mut store, update),
        Err(Refusal::Denied { commit: A.into() })
    );
    assert_eq!(store.node("example.test", "n6").unwrap().unwrap().commit, A);
    assert!(store.write(|w| w.allow_commit("example.test", A)).unwrap());
    assert!(!store.write(|w| w.allow_commit("example.test", A)).unwrap());
}

#[test]
fn a_revert_puts_back_only_what_the_rollout_still_holds() {
    let (_dir, mut store) = open();
    let list = Selector::List(vec![label("n1"), label("n2"), label("n3")]);
    let r = create(&mut store, &new(B, list, vec![100])).unwrap();
    apply(&mut store, wave(r.id, 0, 100)).unwrap();
    // n2 is published by someone else since: the revert leaves it alone.
    let put = Change::Put {
        node: label("n2"),
        commit: Commit::parse(C).unwrap(),
        if_match: None,
    };
    apply(&mut store, put).unwrap();
    let revert = Change::Rollout {
        id: r.id,
        step: RolloutStep::Revert,
    };
    let done = apply(&mut store, revert.clone()).unwrap();
    let mut back: Vec<(String, String, u64)> = done
        .set
        .iter()
        .map(|(row, _)| (row.node.clone(), row.commit.clone(), row.seq))
        .collect();
    back.sort();
    assert_eq!(
        back,
        [("n1".into(), A.into(), 3), ("n3".into(), A.into(), 3)]
    );
    assert_eq!(store.node("example.test", "n2").unwrap().unwrap().commit, C);
    let row = store.rollout("example.test", r.id).unwrap().unwrap();
    assert_eq!((row.state, row.reverted), (RolloutState::Aborted, 2));
    assert!(matches!(
        apply(&mut store, revert),
        Err(Refusal::RolloutState {
            state: "aborted",
            ..
        })
    ));
}

#[test]
fn the_deny_list_halts_running_rollouts_of_the_commit() {
    let (_dir, mut store) = open();
    let all = Selector::Pattern(NodePattern::Any);
    let r = create(&mut store, &new(B, all, vec![50, 100])).unwrap();
    let halted = store
        .write(|w| {
            w.deny_commit("example.test", B, "", 7)?;
            w.halt_rollouts_of("example.test", B, "denied", 7)
        })
        .unwrap();
    assert_eq!(halted, [r.id]);
    let row = store.rollout("example.test", r.id).unwrap().unwrap();
    assert_eq!(
        (row.state, row.reason.as_deref()),
        (RolloutState::Halted, Some("denied"))
    );
    assert!(matches!(
        act(&mut store, r.id, RolloutAction::Resume),
        Err(Refusal::Denied { .. })
    ));
    assert_eq!(store.running_rollouts().unwrap(), []);
}
