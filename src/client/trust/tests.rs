//! Tests of `crate::client::trust`.

use super::*;
use crate::client::testing::{DAY, HOUR, Key, apex, dnskeys as records, rrsig};
use hickory_proto::dnssec::rdata::DS;
use hickory_proto::dnssec::{Algorithm, DigestType};
use hickory_proto::rr::DNSClass;

const T0: u32 = 1_800_000_000;
const HOLD: u32 = 30 * DAY;

fn answer(published: &[DNSKEY], signers: &[(&Key, &DNSKEY)], now: u32) -> Vec<Record> {
    crate::client::testing::dnskey_answer(published, signers, now)
}

fn anchors(keys: &[DNSKEY]) -> TrustAnchors {
    TrustAnchors {
        dnskeys: keys.to_vec(),
        ds: Vec::new(),
    }
}

fn observe(
    trust: &mut TrustState,
    answers: &[Record],
    anchors: &TrustAnchors,
    now: u32,
) -> Observed {
    trust.observe(&Probe {
        zone: &apex(),
        answers,
        anchors,
        holddown: HOLD,
        now,
        skew: 300,
    })
}

fn state(trust: &TrustState, key: &Key) -> Option<KeyState> {
    trust.find(&key.dnskey()).map(|t| t.state)
}

fn reasons(o: &Observed) -> Vec<String> {
    o.changes.iter().map(|c| c.reason.clone()).collect()
}

fn error(o: Observed) -> String {
    let e = o.result.expect_err("the RRset is refused");
    super::super::check::chain(&e)
}

/// A node that trusts `old` (from its anchor file), after its first probe.
fn bootstrapped(old: &Key) -> (TrustState, TrustAnchors) {
    let file = anchors(&[old.dnskey()]);
    let mut trust = TrustState::default();
    let o = observe(
        &mut trust,
        &answer(&[old.dnskey()], &[(old, &old.dnskey())], T0),
        &file,
        T0,
    );
    assert_eq!(o.result.as_ref().unwrap(), &[old.dnskey()]);
    assert_eq!(
        reasons(&o),
        [format!(
            "key {} (alg 13) trusted: it is a trust anchor",
            old.tag()
        )]
    );
    (trust, file)
}

/// `bootstrapped`, then a rollover to `new` published at T0 + 1 h, seen again halfway,
/// and trusted after the hold-down; returns the time it was trusted.
fn rolled(old: &Key, new: &Key) -> (TrustState, TrustAnchors, u32) {
    let (mut trust, file) = bootstrapped(old);
    let both = [old.dnskey(), new.dnskey()];
    let signers = [(old, &both[0]), (new, &both[1])];
    let t1 = T0 + HOUR;
    for t in [t1, t1 + HOLD / 2] {
        observe(&mut trust, &answer(&both, &signers, t), &file, t)
            .result
            .unwrap();
    }
    let t2 = t1 + HOLD;
    observe(&mut trust, &answer(&both, &signers, t2), &file, t2)
        .result
        .unwrap();
    assert_eq!(state(&trust, new), Some(KeyState::Valid));
    (trust, file, t2)
}

#[test]
fn the_anchor_is_recorded_and_the_validated_keys_kept_until_the_probe() {
    let old = Key::new();
    let (trust, _) = bootstrapped(&old);
    assert_eq!(state(&trust, &old), Some(KeyState::Valid));
    let entry = &trust.keys[0];
    assert_eq!(
        (entry.tag, entry.first_seen, entry.seen),
        (old.tag(), u64::from(T0), 1)
    );
    assert_eq!(entry.dnskey.0.flags(), 257);
    // TTL 3600: half is 30 min, under the floor of an hour.
    assert_eq!(trust.fresh_keys(T0), Some(vec![old.dnskey()]));
    assert_eq!(trust.fresh_keys(T0 + HOUR - 1), Some(vec![old.dnskey()]));
    assert_eq!(trust.fresh_keys(T0 + HOUR), None, "the probe is due");
    assert_eq!(trust.fresh_keys(T0 - 10), None, "the clock went back");
}

#[test]
fn a_rollover_is_followed_through_the_hold_down() {
    let old = Key::new();
    let new = Key::new();
    let (mut trust, file) = bootstrapped(&old);
    let both = [old.dnskey(), new.dnskey()];
    let signers = [(&old, &both[0]), (&new, &both[1])];

    // Publish: the new key is pending, and already one that answers may be signed with.
    let t1 = T0 + HOUR;
    let o = observe(&mut trust, &answer(&both, &signers, t1), &file, t1);
    assert_eq!(
        reasons(&o),
        [format!(
            "key {} (alg 13) seen for the first time; trusted after the hold-down at {}",
            new.tag(),
            utc(u64::from(t1 + HOLD))
        )]
    );
    assert_eq!(o.result.unwrap(), both);
    assert_eq!(state(&trust, &new), Some(KeyState::AddPend));
    assert!(!trust.trusted(&apex(), &file, &both).contains(&new.dnskey()));

    // Seen in many validated RRsets, but for less than the hold-down: still pending.
    for i in 1..60 {
        let t = t1 + i * (HOLD / 60);
        let o = observe(&mut trust, &answer(&both, &signers, t), &file, t);
        assert!(o.changes.is_empty(), "{i}: {:?}", reasons(&o));
    }
    assert_eq!(state(&trust, &new), Some(KeyState::AddPend));
    assert_eq!(trust.find(&new.dnskey()).unwrap().seen, 60);

    // The hold-down is over: trusted.
    let t2 = t1 + HOLD;
    let o = observe(&mut trust, &answer(&both, &signers, t2), &file, t2);
    assert_eq!(
        reasons(&o),
        [format!(
            "key {} (alg 13) trusted: seen for 30d in 61 validated DNSKEY RRsets",
            new.tag()
        )]
    );
    assert_eq!(o.changes[0].from, Some(KeyState::AddPend));
    assert_eq!(o.changes[0].to, Some(KeyState::Valid));

    // Done: only the new key, signed by it alone. The old one is missing, still trusted.
    let t3 = t2 + DAY;
    let only_new = [new.dnskey()];
    let o = observe(
        &mut trust,
        &answer(&only_new, &[(&new, &only_new[0])], t3),
        &file,
        t3,
    );
    assert_eq!(o.result.as_ref().unwrap(), &only_new);
    assert_eq!(
        reasons(&o),
        [format!(
            "key {} (alg 13) no longer published; still trusted until it is revoked",
            old.tag()
        )]
    );
    assert_eq!(state(&trust, &old), Some(KeyState::Missing));
    assert!(
        trust
            .trusted(&apex(), &TrustAnchors::default(), &only_new)
            .contains(&old.dnskey())
    );

    // Missing, then published again: valid.
    let t4 = t3 + DAY;
    let o = observe(&mut trust, &answer(&both, &signers, t4), &file, t4);
    assert_eq!(
        reasons(&o),
        [format!(
            "key {} (alg 13) published again; trusted as before",
            old.tag()
        )]
    );
    assert_eq!(state(&trust, &old), Some(KeyState::Valid));
}

#[test]
fn the_hold_down_needs_two_sightings_and_the_time() {
    let old = Key::new();
    let new = Key::new();
    let (mut trust, file) = bootstrapped(&old);
    let both = [old.dnskey(), new.dnskey()];
    let signers = [(&old, &both[0]), (&new, &both[1])];
    let probe = |trust: &mut TrustState, now: u32| {
        trust.observe(&Probe {
            zone: &apex(),
            answers: &answer(&both, &signers, now),
            anchors: &file,
            holddown: 2,
            now,
            skew: 300,
        })
    };
    probe(&mut trust, T0);
    probe(&mut trust, T0 + 1);
    assert_eq!(
        state(&trust, &new),
        Some(KeyState::AddPend),
        "one second of two"
    );
    probe(&mut trust, T0 + 2);
    assert_eq!(state(&trust, &new), Some(KeyState::Valid));

    // A key that leaves the RRset while pending is forgotten, and starts over.
    let third = Key::new();
    let three = [old.dnskey(), new.dnskey(), third.dnskey()];
    let t = T0 + 10;
    observe(
        &mut trust,
        &answer(&three, &[(&old, &three[0])], t),
        &file,
        t,
    );
    assert_eq!(state(&trust, &third), Some(KeyState::AddPend));
    let o = observe(
        &mut trust,
        &answer(&both, &[(&old, &both[0])], t + 1),
        &file,
        t + 1,
    );
    assert_eq!(
        reasons(&o),
        [format!(
            "key {} (alg 13) no longer published before its hold-down ended; forgotten",
            third.tag()
        )]
    );
    assert_eq!(o.changes[0].to, None);
    assert_eq!(state(&trust, &third), None);
    let later = t + HOLD;
    observe(
        &mut trust,
        &answer(&three, &[(&old, &three[0])], later),
        &file,
        later,
    );
    let entry = trust.find(&third.dnskey()).unwrap();
    assert_eq!(
        (entry.state, entry.first_seen),
        (KeyState::AddPend, u64::from(later)),
        "the hold-down starts again"
    );

    // Seen once, then not again until long after the hold-down: the RRset after the gap
    // is only the second with the key, and RFC 5011 §2.4.1 wants two before the one that
    // makes it trusted. The next one does.
    let (mut trust, file) = bootstrapped(&old);
    let t1 = T0 + HOUR;
    let o = observe(&mut trust, &answer(&both, &signers, t1), &file, t1);
    assert_eq!(o.changes[0].to, Some(KeyState::AddPend));
    let t2 = t1 + 3 * HOLD;
    let o = observe(&mut trust, &answer(&both, &signers, t2), &file, t2);
    assert!(o.changes.is_empty(), "{:?}", reasons(&o));
    assert_eq!(
        state(&trust, &new),
        Some(KeyState::AddPend),
        "one sighting before"
    );
    assert_eq!(trust.find(&new.dnskey()).unwrap().seen, 2);
    let t3 = t2 + HOUR;
    let o = observe(&mut trust, &answer(&both, &signers, t3), &file, t3);
    assert_eq!(
        reasons(&o),
        [format!(
            "key {} (alg 13) trusted: seen for 90d 1h in 3 validated DNSKEY RRsets",
            new.tag()
        )]
    );
    assert_eq!(state(&trust, &new), Some(KeyState::Valid));
}

#[test]
fn a_key_in_an_rrset_no_trusted_key_signs_is_never_recorded() {
    let old = Key::new();
    let forged = Key::new();
    let (mut trust, file) = bootstrapped(&old);
    let before = trust.clone();
    let t = T0 + DAY;
    let with_forged = [old.dnskey(), forged.dnskey()];

    // Signed by the forged key alone, with the real key copied in.
    let o = observe(
        &mut trust,
        &answer(&with_forged, &[(&forged, &with_forged[1])], t),
        &file,
        t,
    );
    assert!(o.changes.is_empty());
    assert!(
        error(o).contains("is not validly signed by a trusted key: unknown key"),
        "the trusted key is there but did not sign"
    );
    // The real key's signature over another RRset, replayed over this one.
    let mut replayed = records(&with_forged);
    replayed.push(rrsig(&old, old.tag(), &records(&[old.dnskey()]), t));
    let o = observe(&mut trust, &replayed, &file, t);
    assert!(error(o).contains("bad signature"));
    // Only the forged key.
    let alone = [forged.dnskey()];
    let o = observe(
        &mut trust,
        &answer(&alone, &[(&forged, &alone[0])], t),
        &file,
        t,
    );
    assert_eq!(
        error(o),
        format!(
            "no trusted key signs the DNSKEY RRset of example.test. (trusted: {}; the \
             zone's keys: {}): the key was rolled while this node was away, or the trust \
             anchor is not this zone's; give it a fresh trust anchor (herald key show)",
            old.tag(),
            forged.tag()
        )
    );
    // Unsigned.
    let o = observe(&mut trust, &records(&with_forged), &file, t);
    assert!(error(o).contains("missing signature"));
    assert_eq!(trust, before, "nothing recorded, not even the probe");
    assert_eq!(state(&trust, &forged), None);
}

#[test]
fn a_node_away_for_the_whole_rollover_is_told_so() {
    let old = Key::new();
    let new = Key::new();
    let mut trust = TrustState::default();
    let only_new = [new.dnskey()];
    let o = observe(
        &mut trust,
        &answer(&only_new, &[(&new, &only_new[0])], T0),
        &anchors(&[old.dnskey()]),
        T0,
    );
    let e = error(o);
    assert!(
        e.starts_with(&format!(
            "no trusted key signs the DNSKEY RRset of example.test. (trusted: {}; the zone's \
             keys: {}): the key was rolled while this node was away",
            old.tag(),
            new.tag()
        )),
        "{e}"
    );
    assert!(trust.is_empty());
}

#[test]
fn revocation_needs_a_self_signature_that_verifies() {
    let old = Key::new();
    let new = Key::new();
    let (mut trust, file, t) = rolled(&old, &new);
    let revoking = [old.revoked(), new.dnskey()];
    assert_ne!(tag(&old.revoked()), old.tag());
    let t = t + HOUR;

    // Signed by the new key only: no self-signature, no revocation.
    let o = observe(
        &mut trust,
        &answer(&revoking, &[(&new, &revoking[1])], t),
        &file,
        t,
    );
    assert!(o.changes.iter().all(|c| c.to != Some(KeyState::Revoked)));
    assert_ne!(state(&trust, &old), Some(KeyState::Revoked));
    // A bogus self-signature: made by the new key under the revoked key's tag.
    let o = observe(
        &mut trust,
        &answer(&revoking, &[(&new, &revoking[1]), (&new, &revoking[0])], t),
        &file,
        t,
    );
    assert!(o.changes.iter().all(|c| c.to != Some(KeyState::Revoked)));
    assert_ne!(state(&trust, &old), Some(KeyState::Revoked));
    // A self-signature over another RRset.
    let mut other = answer(&revoking, &[(&new, &revoking[1])], t);
    other.push(rrsig(
        &old,
        tag(&old.revoked()),
        &records(&[old.revoked()]),
        t,
    ));
    observe(&mut trust, &other, &file, t);
    assert_ne!(state(&trust, &old), Some(KeyState::Revoked));

    // The real thing: revoked at once.
    let o = observe(
        &mut trust,
        &answer(&revoking, &[(&new, &revoking[1]), (&old, &revoking[0])], t),
        &file,
        t,
    );
    assert_eq!(
        reasons(&o),
        [format!(
            "key {} (alg 13) revoked by its own signature (RFC 5011 §2.1); never trusted again",
            old.tag()
        )]
    );
    assert_eq!(o.changes[0].tag, old.tag(), "named by its unrevoked tag");
    assert_eq!(
        o.result.unwrap(),
        [new.dnskey()],
        "a revoked key signs no answers"
    );
    assert_eq!(state(&trust, &old), Some(KeyState::Revoked));
    assert_eq!(trust.find(&old.dnskey()).unwrap().dnskey.0.flags(), 257);

    // Never trusted again: neither republished unrevoked, nor from the anchor file.
    let only_old = [old.dnskey()];
    let t = t + DAY;
    let o = observe(
        &mut trust,
        &answer(&only_old, &[(&old, &only_old[0])], t),
        &file,
        t,
    );
    assert!(error(o).starts_with("no trusted key signs"));
    assert_eq!(state(&trust, &old), Some(KeyState::Revoked));
    assert_eq!(trust.trusted(&apex(), &file, &only_old), [new.dnskey()]);
}

#[test]
fn revoking_a_key_nobody_trusts_is_ignored() {
    let old = Key::new();
    let stranger = Key::new();
    let (mut trust, file) = bootstrapped(&old);
    let rrset = [old.dnskey(), stranger.revoked()];
    let t = T0 + DAY;
    let o = observe(
        &mut trust,
        &answer(&rrset, &[(&old, &rrset[0]), (&stranger, &rrset[1])], t),
        &file,
        t,
    );
    assert!(o.changes.is_empty(), "{:?}", reasons(&o));
    assert_eq!(state(&trust, &stranger), None);

    // A pending key that turns up revoked is forgotten, never revoked nor trusted.
    let new = Key::new();
    let both = [old.dnskey(), new.dnskey()];
    observe(&mut trust, &answer(&both, &[(&old, &both[0])], t), &file, t);
    assert_eq!(state(&trust, &new), Some(KeyState::AddPend));
    let rrset = [old.dnskey(), new.revoked()];
    let o = observe(
        &mut trust,
        &answer(&rrset, &[(&old, &rrset[0]), (&new, &rrset[1])], t + 1),
        &file,
        t + 1,
    );
    assert_eq!(o.changes.len(), 1);
    assert_eq!(o.changes[0].to, None);
    assert_eq!(state(&trust, &new), None);
}

#[test]
fn the_anchor_files_revoked_key_stays_revoked() {
    let old = Key::new();
    let new = Key::new();
    let (mut trust, file, t) = rolled(&old, &new);
    let revoking = [old.revoked(), new.dnskey()];
    let signers = [(&new, &revoking[1]), (&old, &revoking[0])];
    observe(&mut trust, &answer(&revoking, &signers, t), &file, t);
    assert_eq!(state(&trust, &old), Some(KeyState::Revoked));

    // Long after, the zone publishes only the new key; the stale anchor file still names
    // the old one, so the revocation is kept, whatever the remove hold-down.
    let only_new = [new.dnskey()];
    let later = t + 3 * HOLD;
    let o = observe(
        &mut trust,
        &answer(&only_new, &[(&new, &only_new[0])], later),
        &file,
        later,
    );
    assert!(o.changes.is_empty(), "{:?}", reasons(&o));
    assert_eq!(state(&trust, &old), Some(KeyState::Revoked));
    assert_eq!(trust.trusted(&apex(), &file, &only_new), [new.dnskey()]);

    // With an anchor file that no longer names it, the revoked key is dropped after the
    // remove hold-down, once the zone stopped publishing it.
    let fresh = anchors(&[new.dnskey()]);
    let o = observe(
        &mut trust,
        &answer(&revoking, &signers, later),
        &fresh,
        later,
    );
    assert!(o.changes.is_empty(), "still published: kept");
    let o = observe(
        &mut trust,
        &answer(&only_new, &[(&new, &only_new[0])], later),
        &fresh,
        later,
    );
    assert_eq!(
        reasons(&o),
        [format!(
            "key {} (alg 13) removed: revoked 90d ago and no longer published",
            old.tag()
        )]
    );
    assert_eq!(state(&trust, &old), None);
}

#[test]
fn revoking_every_trusted_key_makes_the_zone_bogus() {
    let old = Key::new();
    let new = Key::new();
    let (mut trust, file) = bootstrapped(&old);
    let revoking = [old.revoked(), new.dnskey()];
    let t = T0 + DAY;
    let o = observe(
        &mut trust,
        &answer(&revoking, &[(&new, &revoking[1]), (&old, &revoking[0])], t),
        &file,
        t,
    );
    assert_eq!(o.changes.len(), 1, "the revocation counts");
    let e = error(o);
    assert!(
        e.contains(&format!("(trusted: none; the zone's keys: {} (revoked), {})", tag(&old.revoked()), new.tag()))
            && e.ends_with("every key this node trusted was revoked; give it a fresh trust anchor (herald key show)"),
        "{e}"
    );
    assert_eq!(state(&trust, &old), Some(KeyState::Revoked));
    assert_eq!(state(&trust, &new), None, "not validated: not recorded");
    assert_eq!(
        trust.validated, None,
        "the kept key set held only the revoked key"
    );
    assert_eq!(trust.fresh_keys(t), None);
}

/// The DS record of `k` (SHA-256).
fn ds(k: &Key) -> DS {
    let digest = k.dnskey().to_digest(&apex(), DigestType::SHA256).unwrap();
    DS::new(
        k.tag(),
        Algorithm::ECDSAP256SHA256,
        DigestType::SHA256,
        digest.as_ref().to_vec(),
    )
}

#[test]
fn ds_anchors_make_their_keys_valid_on_first_use() {
    let old = Key::new();
    let other = Key::new();
    let file = TrustAnchors {
        dnskeys: Vec::new(),
        ds: vec![ds(&old)],
    };
    let rrset = [old.dnskey()];
    let mut trust = TrustState::default();
    let o = observe(
        &mut trust,
        &answer(&rrset, &[(&old, &rrset[0])], T0),
        &file,
        T0,
    );
    assert_eq!(o.result.unwrap(), rrset);
    assert_eq!(state(&trust, &old), Some(KeyState::Valid));

    let mut fresh = TrustState::default();
    let wrong = TrustAnchors {
        dnskeys: Vec::new(),
        ds: vec![ds(&other)],
    };
    let e = error(observe(
        &mut fresh,
        &answer(&rrset, &[(&old, &rrset[0])], T0),
        &wrong,
        T0,
    ));
    assert!(
        e.contains(&format!(
            "(trusted: DS {}; the zone's keys: {})",
            other.tag(),
            old.tag()
        )),
        "{e}"
    );
}

/// RFC 4034 §3.1.8.1: the signed data holds the RRset's IN records alone, so a CH DNSKEY
/// next to the zone's signed RRset leaves the signature valid. It must not become a zone
/// key (and, after the hold-down, a trust anchor): the RRset is refused.
#[test]
fn a_dnskey_of_another_class_is_refused() {
    let old = Key::new();
    let forged = Key::new();
    let (mut trust, file) = bootstrapped(&old);
    let before = trust.clone();
    let rrset = [old.dnskey()];
    for t in [T0 + DAY, T0 + DAY + HOLD] {
        let mut signed = answer(&rrset, &[(&old, &rrset[0])], t);
        let mut ch = records(&[forged.dnskey()]).remove(0);
        ch.dns_class = DNSClass::CH;
        signed.insert(1, ch);
        let o = observe(&mut trust, &signed, &file, t);
        assert!(o.changes.is_empty(), "{:?}", reasons(&o));
        assert_eq!(
            error(o),
            "the DNSKEY RRset of example.test. is not validly signed by a trusted key: \
             example.test. DNSKEY record of class CH: only class IN is signed and accepted"
        );
    }
    assert_eq!(trust, before, "nothing recorded");
    assert_eq!(state(&trust, &forged), None);
    // The same RRset without the CH record validates.
    let t = T0 + 2 * DAY;
    let o = observe(
        &mut trust,
        &answer(&rrset, &[(&old, &rrset[0])], t),
        &file,
        t,
    );
    assert_eq!(o.result.unwrap(), rrset);
}

/// RFC 5011 §2.1: a revoked key "MUST NOT be used to validate any other response", even
/// when the zone publishes it again without the REVOKE bit in an RRset that another
/// trusted key validates, and even when a kept key set still lists it.
#[test]
fn a_revoked_key_published_again_unrevoked_signs_nothing() {
    let old = Key::new();
    let new = Key::new();
    let (mut trust, file, t) = rolled(&old, &new);
    let revoking = [old.revoked(), new.dnskey()];
    observe(
        &mut trust,
        &answer(&revoking, &[(&new, &revoking[1]), (&old, &revoking[0])], t),
        &file,
        t,
    );
    assert_eq!(state(&trust, &old), Some(KeyState::Revoked));

    let t = t + HOUR;
    let both = [old.dnskey(), new.dnskey()];
    let o = observe(&mut trust, &answer(&both, &[(&new, &both[1])], t), &file, t);
    assert!(o.changes.is_empty(), "{:?}", reasons(&o));
    let keys = o.result.unwrap();
    assert_eq!(keys, [new.dnskey()]);
    assert_eq!(trust.fresh_keys(t), Some(vec![new.dnskey()]));
    assert_eq!(state(&trust, &old), Some(KeyState::Revoked));
    // The old key's signature over a node record does not hold with these keys.
    let qname = Name::from_ascii("n1.example.test.").unwrap();
    let mut m = hickory_proto::op::Message::query();
    m.answers = crate::client::testing::txt_answer(3, &old, t);
    let cx = Context {
        qname: &qname,
        zone: &apex(),
        keys: &keys,
        now: t,
        skew: 300,
    };
    let verdict = crate::client::validate::verify_answer(&m, &cx);
    assert!(
        matches!(
            &verdict,
            crate::client::validate::Verdict::Bogus(e)
                if super::super::check::chain(e).contains("unknown key")
        ),
        "{verdict:?}"
    );
    // A kept key set that still lists it (a state file from before) does not hand it out.
    trust
        .validated
        .as_mut()
        .unwrap()
        .dnskeys
        .push(Dnskey(old.dnskey()));
    assert_eq!(trust.fresh_keys(t), Some(vec![new.dnskey()]));
}

/// The revocation is recorded even when the RRset is refused (here the new key did not
/// sign it), and the kept key set loses the key at once, not at the next probe.
#[test]
fn a_revocation_takes_the_key_out_of_the_kept_key_set_at_once() {
    let old = Key::new();
    let new = Key::new();
    let (mut trust, file, t) = rolled(&old, &new);
    let kept = |trust: &TrustState| -> Vec<DNSKEY> {
        trust
            .validated
            .as_ref()
            .unwrap()
            .dnskeys
            .iter()
            .map(|k| k.0.clone())
            .collect()
    };
    assert_eq!(kept(&trust), [old.dnskey(), new.dnskey()]);
    let t = t + 60;
    let revoking = [old.revoked(), new.dnskey()];
    let o = observe(
        &mut trust,
        &answer(&revoking, &[(&old, &revoking[0])], t),
        &file,
        t,
    );
    assert_eq!(o.changes.len(), 1);
    assert_eq!(o.changes[0].to, Some(KeyState::Revoked));
    assert!(error(o).contains("not validly signed by a trusted key: unknown key"));
    assert_eq!(kept(&trust), [new.dnskey()]);
    assert_eq!(trust.fresh_keys(t), Some(vec![new.dnskey()]));
}

/// A revoked key that only a DS anchor names is kept, revoked, whatever the remove
/// hold-down: dropped, the DS would make it trusted again.
#[test]
fn a_revoked_key_a_ds_anchor_names_stays_revoked() {
    let old = Key::new();
    let new = Key::new();
    let file = TrustAnchors {
        dnskeys: Vec::new(),
        ds: vec![ds(&old)],
    };
    let mut trust = TrustState::default();
    let only_old = [old.dnskey()];
    observe(
        &mut trust,
        &answer(&only_old, &[(&old, &only_old[0])], T0),
        &file,
        T0,
    )
    .result
    .unwrap();
    let both = [old.dnskey(), new.dnskey()];
    let signers = [(&old, &both[0]), (&new, &both[1])];
    let t1 = T0 + HOUR;
    for t in [t1, t1 + HOLD / 2, t1 + HOLD] {
        observe(&mut trust, &answer(&both, &signers, t), &file, t)
            .result
            .unwrap();
    }
    assert_eq!(state(&trust, &new), Some(KeyState::Valid));
    let t = t1 + HOLD + HOUR;
    let revoking = [old.revoked(), new.dnskey()];
    observe(
        &mut trust,
        &answer(&revoking, &[(&new, &revoking[1]), (&old, &revoking[0])], t),
        &file,
        t,
    );
    assert_eq!(state(&trust, &old), Some(KeyState::Revoked));

    // Long after, the zone publishes only the new key: the revocation is kept.
    let later = t + 3 * HOLD;
    let only_new = [new.dnskey()];
    let o = observe(
        &mut trust,
        &answer(&only_new, &[(&new, &only_new[0])], later),
        &file,
        later,
    );
    assert!(o.changes.is_empty(), "{:?}", reasons(&o));
    assert_eq!(state(&trust, &old), Some(KeyState::Revoked));
    // The old key alone, signing for itself, as a stale copy of the zone: not trusted.
    assert_eq!(trust.trusted(&apex(), &file, &only_old), [new.dnskey()]);
    let o = observe(
        &mut trust,
        &answer(&only_old, &[(&old, &only_old[0])], later + HOUR),
        &file,
        later + HOUR,
    );
    assert!(error(o).starts_with("no trusted key signs"));
    // With the DS gone from the anchor file, it is dropped.
    let o = observe(
        &mut trust,
        &answer(&only_new, &[(&new, &only_new[0])], later + 2 * HOUR),
        &TrustAnchors::default(),
        later + 2 * HOUR,
    );
    assert_eq!(o.changes.len(), 1);
    assert_eq!(o.changes[0].to, None);
    assert_eq!(state(&trust, &old), None);
}

/// An RRset signed before the newest one taken in (replayed by an attacker, or from a
/// lagging secondary) checks answers but neither forgets a pending key, restarting its
/// hold-down, nor makes a trusted key missing.
#[test]
fn an_older_dnskey_rrset_changes_no_key() {
    let old = Key::new();
    let new = Key::new();
    let (mut trust, file) = bootstrapped(&old);
    let only_old = [old.dnskey()];
    // Signed before the new key was published; its signature holds for 14 days.
    let replay = answer(&only_old, &[(&old, &only_old[0])], T0 + HOUR);
    let both = [old.dnskey(), new.dnskey()];
    let signers = [(&old, &both[0]), (&new, &both[1])];
    let t1 = T0 + 2 * HOUR;
    observe(&mut trust, &answer(&both, &signers, t1), &file, t1);
    assert_eq!(state(&trust, &new), Some(KeyState::AddPend));
    assert_eq!(trust.dnskey_inception, Some(t1 - HOUR));
    let kept = trust.validated.clone();

    for t in [t1 + HOUR, t1 + 10 * DAY] {
        let o = observe(&mut trust, &replay, &file, t);
        assert!(o.changes.is_empty(), "{:?}", reasons(&o));
        assert_eq!(o.result.unwrap(), only_old, "its keys check this answer");
        assert_eq!(state(&trust, &new), Some(KeyState::AddPend));
        assert_eq!(trust.validated, kept, "not kept as the validated key set");
        assert_eq!(trust.dnskey_inception, Some(t1 - HOUR));
    }
    let t = t1 + HOLD / 2;
    observe(&mut trust, &answer(&both, &signers, t), &file, t);
    let t2 = t1 + HOLD;
    let o = observe(&mut trust, &answer(&both, &signers, t2), &file, t2);
    assert_eq!(o.changes[0].to, Some(KeyState::Valid));
    assert_eq!(
        trust.find(&new.dnskey()).unwrap().first_seen,
        u64::from(t1),
        "the hold-down ran from the first sighting"
    );

    // The zone signed without the new key a day before its newest RRset: older, so the
    // new key is not missing.
    let older = answer(&only_old, &[(&old, &only_old[0])], t2 - DAY);
    let o = observe(&mut trust, &older, &file, t2 + HOUR);
    assert!(o.changes.is_empty(), "{:?}", reasons(&o));
    assert_eq!(state(&trust, &new), Some(KeyState::Valid));
    // The same RRset signed after the newest: it counts.
    let t3 = t2 + 2 * HOUR;
    let o = observe(
        &mut trust,
        &answer(&only_old, &[(&old, &only_old[0])], t3),
        &file,
        t3,
    );
    assert_eq!(o.changes[0].to, Some(KeyState::Missing));
}

/// Times later than the check's clock are brought back to it: a hold-down, or a removal,
/// is not put off to a time that may never come, nor is every RRset taken for an older one.
#[test]
fn times_from_the_future_are_brought_back() {
    let old = Key::new();
    let new = Key::new();
    let (mut trust, file) = bootstrapped(&old);
    let future = u64::from(T0) + u64::from(100 * DAY);
    trust.keys.push(TrackedKey {
        dnskey: Dnskey(new.dnskey()),
        tag: new.tag(),
        state: KeyState::AddPend,
        first_seen: future,
        last_change: future,
        seen: 1,
    });
    trust.dnskey_inception = Some(T0 + 100 * DAY);
    let both = [old.dnskey(), new.dnskey()];
    let signers = [(&old, &both[0]), (&new, &both[1])];
    let t1 = T0 + HOUR;
    observe(&mut trust, &answer(&both, &signers, t1), &file, t1);
    let entry = trust.find(&new.dnskey()).unwrap();
    assert_eq!(
        (entry.first_seen, entry.last_change, entry.seen),
        (u64::from(t1), u64::from(t1), 2)
    );
    assert_eq!(trust.dnskey_inception, Some(t1 - HOUR));
    let t = t1 + HOLD;
    let o = observe(&mut trust, &answer(&both, &signers, t), &file, t);
    assert_eq!(o.changes[0].to, Some(KeyState::Valid));
}

/// A state file whose keys make no sense is refused, not guessed at.
#[test]
fn a_trust_state_that_makes_no_sense_is_refused() {
    let old = Key::new();
    let (trust, _) = bootstrapped(&old);
    let good = serde_json::to_value(&trust).unwrap();
    let entry = good["keys"][0].clone();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::from_value::<TrustState>(v)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(with(&|_| {}), Ok(()));
    let twice = with(&|v| v["keys"].as_array_mut().unwrap().push(entry.clone()));
    assert!(twice.unwrap_err().contains("listed twice"));
    let revoked = with(&|v| v["keys"][0]["dnskey"] = old.revoked().to_string().into());
    assert!(revoked.unwrap_err().contains("has the REVOKE bit"));
    let zsk = DNSKEY::with_flags(256, old.dnskey().public_key().clone());
    let not_sep = with(&|v| v["keys"][0]["dnskey"] = zsk.to_string().into());
    assert!(not_sep.unwrap_err().contains("is not a SEP zone key"));
    let wrong_tag = with(&|v| v["keys"][0]["tag"] = (old.tag() ^ 1).into());
    assert!(
        wrong_tag
            .unwrap_err()
            .contains(&format!("its tag is {}", old.tag()))
    );
}

#[test]
fn only_sep_zone_keys_are_tracked() {
    let old = Key::new();
    let zsk = Key::new();
    let (mut trust, file) = bootstrapped(&old);
    let zsk256 = DNSKEY::with_flags(256, zsk.dnskey().public_key().clone());
    let rrset = [old.dnskey(), zsk256.clone()];
    let o = observe(
        &mut trust,
        &answer(&rrset, &[(&old, &rrset[0])], T0 + 1),
        &file,
        T0 + 1,
    );
    assert_eq!(o.result.unwrap(), rrset, "a ZSK still signs answers");
    assert!(o.changes.is_empty());
    assert_eq!(trust.keys.len(), 1);
}

#[test]
fn probes_follow_rfc_5011_section_2_3() {
    // TTL 3600 and the default hold-down: hourly (the floor).
    assert_eq!(probe_interval(3600, 14 * DAY, HOLD), HOUR);
    // A day's TTL: half of it.
    assert_eq!(probe_interval(DAY, 14 * DAY, HOLD), DAY / 2);
    // Long TTL and expiration: 15 days at most... but a tenth of the hold-down first.
    assert_eq!(probe_interval(100 * DAY, 100 * DAY, 300 * DAY), 15 * DAY);
    assert_eq!(probe_interval(100 * DAY, 100 * DAY, HOLD), 3 * DAY);
    // A signature about to expire: the floor.
    assert_eq!(probe_interval(DAY, 60, HOLD), HOUR);
    // Hold-downs of seconds, as in tests: every second or so.
    assert_eq!(probe_interval(3600, 14 * DAY, 10), 1);
    assert_eq!(probe_interval(3600, 14 * DAY, 1), 1);
    assert_eq!(probe_interval(3600, 14 * DAY, 100), 10);
}

#[test]
fn times_and_spans_read_well() {
    assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(utc(1_764_086_400), "2025-11-25 16:00:00 UTC");
    assert_eq!(utc(951_868_799), "2000-02-29 23:59:59 UTC");
    assert_eq!(span(0), "0s");
    assert_eq!(span(2), "2s");
    assert_eq!(span(65), "1m 5s");
    assert_eq!(span(u64::from(HOLD)), "30d");
    assert_eq!(span(u64::from(HOLD + HOUR + 5)), "30d 1h");
}

#[test]
fn the_state_serializes_as_presentation_rdata() {
    let old = Key::new();
    let (trust, _) = bootstrapped(&old);
    let text = serde_json::to_string(&trust).unwrap();
    assert!(
        text.contains(&format!("\"dnskey\":\"{}\"", old.dnskey())),
        "{text}"
    );
    assert!(text.contains("\"state\":\"valid\""), "{text}");
    let back: TrustState = serde_json::from_str(&text).unwrap();
    assert_eq!(back, trust);
    for bad in ["257 3 13 !!", "257 2 13 AAAA", "257 3"] {
        let text = text.replace(&old.dnskey().to_string(), bad);
        let err = serde_json::from_str::<TrustState>(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("DNSKEY"), "{bad}: {err}");
    }
    assert_eq!(serde_json::to_string(&TrustState::default()).unwrap(), "{}");
}
