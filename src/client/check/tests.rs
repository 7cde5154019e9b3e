//! Tests of `crate::client::check`.

use super::*;
use crate::client::testing::{FakeServer, Key, apex, dnskey_answer, txt_answer};
use crate::client::trust::KeyState;
use hickory_proto::rr::Record;

const T0: u32 = 1_800_000_000;

fn checker(targets: &[&FakeServer], anchors: &[DNSKEY], holddown: u64) -> Checker {
    Checker::new(CheckConfig {
        targets: targets
            .iter()
            .map(|s| Target {
                addr: s.addr,
                recursive: false,
            })
            .collect(),
        zone: apex(),
        node: NodeLabel::parse("n1").unwrap(),
        anchors: TrustAnchors {
            dnskeys: anchors.to_vec(),
            ds: Vec::new(),
        },
        timeout: Duration::from_secs(1),
        max_age: Duration::from_secs(8 * 86_400),
        skew: Duration::from_secs(300),
        holddown: Duration::from_secs(holddown),
    })
}

fn seq(r: &Report) -> u64 {
    match &r.outcome {
        Outcome::Found { seq, .. } => *seq,
        other => panic!("expected a record, got {other:?}"),
    }
}

fn key_state(trust: &TrustState, key: &Key) -> Option<KeyState> {
    trust
        .keys
        .iter()
        .find(|t| t.dnskey.0.public_key() == key.dnskey().public_key())
        .map(|t| t.state)
}

use RecordType::{DNSKEY as K, TXT as T};

#[test]
fn the_dnskey_rrset_is_fetched_once_per_probe() {
    let old = Key::new();
    let server = FakeServer::new();
    let rrset = [old.dnskey()];
    server.serve(K, dnskey_answer(&rrset, &[(&old, &rrset[0])], T0));
    server.serve(T, txt_answer(1, &old, T0));
    let c = checker(&[&server], &[old.dnskey()], 30 * 86_400);
    let mut trust = TrustState::default();

    let r = c.check(None, &mut trust, T0);
    assert_eq!((seq(&r), server.asked()), (1, vec![K, T]));
    assert!(r.trust_changed);
    assert_eq!(r.trust_changes.len(), 1, "the anchor is recorded");
    // Within the probe interval (an hour): the TXT query alone, and nothing to save.
    let r = c.check(None, &mut trust, T0 + 600);
    assert_eq!((seq(&r), server.asked()), (1, vec![T]));
    assert!(!r.trust_changed && r.trust_changes.is_empty());
    // The probe is due.
    let r = c.check(None, &mut trust, T0 + 3600);
    assert_eq!((seq(&r), server.asked()), (1, vec![K, T]));
    assert!(r.trust_changed, "a new probe time");
    let json = serde_json::to_value(&r).unwrap();
    assert!(json.get("trust_changes").is_none() && json.get("trust_changed").is_none());
}

/// The server's rollover (DESIGN.md "Key rollover"), step by step, with a hold-down of
/// ten seconds: no check fails, the node trusts the new key after the hold-down, and the
/// stale anchor file (the old key only) does not matter.
#[test]
fn a_rollover_is_followed_without_a_failed_check() {
    let old = Key::new();
    let new = Key::new();
    let server = FakeServer::new();
    let only_old = [old.dnskey()];
    server.serve(K, dnskey_answer(&only_old, &[(&old, &only_old[0])], T0));
    server.serve(T, txt_answer(1, &old, T0));
    let c = checker(&[&server], &[old.dnskey()], 10);
    let mut trust = TrustState::default();
    assert_eq!(seq(&c.check(None, &mut trust, T0)), 1);

    // 1. Publish: both keys, both signing the DNSKEY RRset; data still by the old key.
    let both = [old.dnskey(), new.dnskey()];
    server.serve(
        K,
        dnskey_answer(&both, &[(&old, &both[0]), (&new, &both[1])], T0),
    );
    let r = c.check(None, &mut trust, T0 + 1);
    assert_eq!(seq(&r), 1);
    assert!(
        r.trust_changes[0]
            .reason
            .contains("seen for the first time")
    );
    assert_eq!(key_state(&trust, &new), Some(KeyState::AddPend));
    // 2. Switch: data re-signed by the new key, not yet trusted but validated.
    server.serve(T, txt_answer(2, &new, T0));
    server.asked();
    assert_eq!(seq(&c.check(None, &mut trust, T0 + 1)), 2);
    assert_eq!(
        server.asked(),
        [T],
        "the kept key set already holds the new key"
    );
    // Seen again within the hold-down (a probe every second with a hold-down of 10 s).
    c.check(None, &mut trust, T0 + 5);
    let r = c.check(None, &mut trust, T0 + 12);
    assert_eq!(seq(&r), 2);
    assert!(r.trust_changes[0].reason.contains("trusted: seen for 11s"));
    assert_eq!(key_state(&trust, &new), Some(KeyState::Valid));
    // 3. Revoke the old key.
    let revoking = [old.revoked(), new.dnskey()];
    server.serve(
        K,
        dnskey_answer(&revoking, &[(&new, &revoking[1]), (&old, &revoking[0])], T0),
    );
    let r = c.check(None, &mut trust, T0 + 14);
    assert_eq!(seq(&r), 2);
    assert!(
        r.trust_changes[0]
            .reason
            .contains("revoked by its own signature")
    );
    // 4. Done: the new key alone.
    let only_new = [new.dnskey()];
    server.serve(K, dnskey_answer(&only_new, &[(&new, &only_new[0])], T0));
    let r = c.check(None, &mut trust, T0 + 16);
    assert_eq!(seq(&r), 2);
    assert_eq!(key_state(&trust, &old), Some(KeyState::Revoked));
    // The old key, should it sign again, is not believed: not even when the zone (or
    // whoever holds the new key's signature over such an RRset) publishes it again,
    // unrevoked, in a DNSKEY RRset the new key validates (RFC 5011 §2.1).
    let both = [old.dnskey(), new.dnskey()];
    server.serve(K, dnskey_answer(&both, &[(&new, &both[1])], T0 + 17));
    server.serve(T, txt_answer(3, &old, T0));
    server.asked();
    let r = c.check(None, &mut trust, T0 + 18);
    assert!(
        matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("unknown key")),
        "{:?}",
        r.outcome
    );
    assert_eq!(server.asked(), [K, T], "the RRset was validated, and used");
    assert_eq!(key_state(&trust, &old), Some(KeyState::Revoked));
    assert_eq!(trust.fresh_keys(T0 + 18), Some(vec![new.dnskey()]));
}

/// A revocation recorded from an RRset that is then refused takes the key out of the kept
/// key set at once: the next check, before the next probe, does not take its word.
#[test]
fn a_key_revoked_by_a_refused_rrset_is_not_used_until_the_next_probe() {
    let old = Key::new();
    let new = Key::new();
    let server = FakeServer::new();
    let only_old = [old.dnskey()];
    server.serve(K, dnskey_answer(&only_old, &[(&old, &only_old[0])], T0));
    server.serve(T, txt_answer(1, &old, T0));
    let c = checker(&[&server], &[old.dnskey()], 30 * 86_400);
    let mut trust = TrustState::default();
    assert_eq!(seq(&c.check(None, &mut trust, T0)), 1);

    // An emergency: the old key revoked, the new one not yet trusted; data by the new key.
    let revoking = [old.revoked(), new.dnskey()];
    server.serve(
        K,
        dnskey_answer(&revoking, &[(&old, &revoking[0]), (&new, &revoking[1])], T0),
    );
    server.serve(T, txt_answer(2, &new, T0));
    let r = c.check(None, &mut trust, T0 + 60);
    assert!(
        matches!(r.outcome, Outcome::Bogus { .. }),
        "{:?}",
        r.outcome
    );
    assert_eq!(key_state(&trust, &old), Some(KeyState::Revoked));
    // Within the probe interval, a record signed by the old key: not believed.
    server.serve(T, txt_answer(3, &old, T0));
    let r = c.check(None, &mut trust, T0 + 120);
    assert!(
        matches!(&r.outcome, Outcome::Bogus { .. }),
        "{:?}",
        r.outcome
    );
}

/// RFC 4034 §3.1.8.1: nothing of another class is signed, so a response with such a
/// record in its answer section is refused, on the DNSKEY query and on the TXT one.
#[test]
fn a_response_with_a_record_of_another_class_is_refused() {
    let old = Key::new();
    let forged = Key::new();
    let server = FakeServer::new();
    let only_old = [old.dnskey()];
    let chaos = |mut r: Record| {
        r.dns_class = hickory_proto::rr::DNSClass::CH;
        r
    };
    let mut keys = dnskey_answer(&only_old, &[(&old, &only_old[0])], T0);
    keys.push(chaos(
        crate::client::testing::dnskeys(&[forged.dnskey()]).remove(0),
    ));
    server.serve(K, keys);
    server.serve(T, txt_answer(1, &old, T0));
    let c = checker(&[&server], &[old.dnskey()], 30 * 86_400);
    let mut trust = TrustState::default();
    let r = c.check(None, &mut trust, T0);
    assert!(
        matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("class CH")),
        "{:?}",
        r.outcome
    );
    assert_eq!(server.asked(), [K]);
    assert!(trust.is_empty(), "nothing learnt from it");

    server.serve(K, dnskey_answer(&only_old, &[(&old, &only_old[0])], T0));
    let mut txt = txt_answer(1, &old, T0);
    txt.push(chaos(txt_answer(9, &forged, T0).remove(0)));
    server.serve(T, txt);
    let r = c.check(None, &mut trust, T0);
    assert!(
        matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("class CH")),
        "{:?}",
        r.outcome
    );
    server.serve(T, txt_answer(1, &old, T0));
    assert_eq!(seq(&c.check(None, &mut trust, T0 + 1)), 1);

    // A stray record of another class, of a type the DNSKEY RRset check never reads.
    let mut keys = dnskey_answer(&only_old, &[(&old, &only_old[0])], T0);
    keys.push(chaos(txt_answer(9, &forged, T0).remove(0)));
    server.serve(K, keys);
    let mut fresh = TrustState::default();
    let r = c.check(None, &mut fresh, T0);
    assert!(
        matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("class CH")),
        "{:?}",
        r.outcome
    );
}

/// A server whose DNSKEY answer does not validate does not use up the check's one extra
/// look for a key not seen yet: the next server, honest, still gets it.
#[test]
fn a_failed_refresh_does_not_use_up_the_next_servers_look() {
    let old = Key::new();
    let new = Key::new();
    let broken = FakeServer::new();
    let honest = FakeServer::new();
    let only_old = [old.dnskey()];
    for s in [&broken, &honest] {
        s.serve(K, dnskey_answer(&only_old, &[(&old, &only_old[0])], T0));
        s.serve(T, txt_answer(1, &old, T0));
    }
    let c = checker(&[&broken, &honest], &[old.dnskey()], 30 * 86_400);
    let mut trust = TrustState::default();
    assert_eq!(seq(&c.check(None, &mut trust, T0)), 1);
    broken.asked();

    // The zone signs with a new key; the first server hands out an unsigned DNSKEY RRset.
    let both = [old.dnskey(), new.dnskey()];
    broken.serve(K, crate::client::testing::dnskeys(&both));
    broken.serve(T, txt_answer(2, &new, T0));
    honest.serve(K, dnskey_answer(&both, &[(&old, &both[0])], T0 + 30));
    honest.serve(T, txt_answer(2, &new, T0));
    let r = c.check(None, &mut trust, T0 + 60);
    assert_eq!(seq(&r), 2, "{:?}", r.attempts);
    assert_eq!(r.server, Some(honest.addr));
    assert_eq!(broken.asked(), [T, K]);
    assert_eq!(honest.asked(), [T, K]);
}

#[test]
fn an_answer_by_an_unknown_key_fetches_the_dnskey_rrset_once_per_check() {
    let old = Key::new();
    let new = Key::new();
    let stranger = Key::new();
    let server = FakeServer::new();
    let only_old = [old.dnskey()];
    server.serve(K, dnskey_answer(&only_old, &[(&old, &only_old[0])], T0));
    server.serve(T, txt_answer(1, &old, T0));
    let c = checker(&[&server, &server], &[old.dnskey()], 30 * 86_400);
    let mut trust = TrustState::default();
    assert_eq!(seq(&c.check(None, &mut trust, T0)), 1);
    server.asked();

    // The zone published a new key and signs with it, within the probe interval.
    let both = [old.dnskey(), new.dnskey()];
    server.serve(K, dnskey_answer(&both, &[(&old, &both[0])], T0));
    server.serve(T, txt_answer(2, &new, T0));
    let r = c.check(None, &mut trust, T0 + 60);
    assert_eq!(seq(&r), 2);
    assert_eq!(server.asked(), [T, K]);
    assert_eq!(key_state(&trust, &new), Some(KeyState::AddPend));

    // Signed by a key the zone does not publish: one more look, not one per server.
    server.serve(T, txt_answer(3, &stranger, T0));
    let r = c.check(None, &mut trust, T0 + 120);
    assert!(
        matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("unknown key")),
        "{:?}",
        r.outcome
    );
    assert_eq!(server.asked(), [T, K, T]);
    assert_eq!(r.exit_code(), 4);
}

#[test]
fn a_node_that_missed_the_rollover_is_bogus_and_told_why() {
    let old = Key::new();
    let new = Key::new();
    let server = FakeServer::new();
    let only_new = [new.dnskey()];
    server.serve(K, dnskey_answer(&only_new, &[(&new, &only_new[0])], T0));
    server.serve(T, txt_answer(1, &new, T0));
    let c = checker(&[&server], &[old.dnskey()], 30 * 86_400);
    let mut trust = TrustState::default();
    let r = c.check(None, &mut trust, T0);
    let Outcome::Bogus { reason } = &r.outcome else {
        panic!("{:?}", r.outcome);
    };
    assert_eq!(
        reason,
        &format!(
            "no trusted key signs the DNSKEY RRset of example.test. (trusted: {}; the zone's \
             keys: {}): the key was rolled while this node was away, or the trust anchor is \
             not this zone's; give it a fresh trust anchor (herald key show)",
            old.tag(),
            new.tag()
        )
    );
    assert_eq!(r.exit_code(), 4);
    assert_eq!(
        server.asked(),
        [K],
        "no TXT query without a validated key set"
    );
    assert!(!r.trust_changed && trust.is_empty());

    // A DNSKEY answer without DNSKEY records, or a failing server, is no key set either.
    server.serve(K, Vec::new());
    let r = c.check(None, &mut trust, T0);
    assert!(
        matches!(&r.outcome, Outcome::Bogus { reason } if reason.contains("holds no DNSKEY")),
        "{:?}",
        r.outcome
    );
}
