//! Incremental signing, stored-signature reuse and refresh, on an explicit clock.

use std::collections::BTreeMap;
use std::sync::Arc;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};

use super::*;
use crate::dns::answer::{Transport, respond};
use crate::dnssec::policy::ZonePolicy;
use crate::dnssec::sign::rrsig_inception;
use crate::dnssec::testing::{
    both_denials, node, publish, signer_for, static_zone, verify_all, zone_set,
};

const T0: u32 = 1_800_000_000;
const DAY: u32 = 86_400;
const ZONE: &str = "$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 900 1209600 60\n  IN NS ns1\nns1 IN A 127.0.0.1\na.b IN TXT \"x\"\n";

/// What a store would hold: the signatures kept so far, applied as `crate::publish` stores
/// them. No SQLite: the signed zone sees plain values only.
#[derive(Default)]
struct FakeStore {
    sigs: PriorSignatures,
    nodes: BTreeMap<String, PriorNode>,
}

impl FakeStore {
    fn put_node(&mut self, record: &NodeRecord) {
        let n = self
            .nodes
            .entry(record.node.to_string())
            .or_insert_with(|| PriorNode {
                record: record.clone(),
                txt_sig: None,
                denial_sig: None,
            });
        n.record = record.clone();
    }

    fn apply(&mut self, writes: &[NewSignature]) {
        for w in writes {
            match w {
                NewSignature::NodeTxt { node, seq, rrsig } => {
                    if let Some(n) = self.nodes.get_mut(node) {
                        n.txt_sig = Some((*seq, rrsig.clone()));
                    }
                }
                NewSignature::NodeDenial { node, next, rrsig } => {
                    if let Some(n) = self.nodes.get_mut(node) {
                        n.denial_sig = Some((next.clone(), rrsig.clone()));
                    }
                }
                NewSignature::Rrset {
                    owner,
                    rtype,
                    digest,
                    rrsig,
                } => {
                    self.sigs.insert(
                        (owner.clone(), *rtype),
                        PriorSignature {
                            digest: digest.to_vec(),
                            rrsig: rrsig.clone(),
                        },
                    );
                }
            }
        }
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    zone: StaticZone,
    policy: ZonePolicy,
    store: FakeStore,
}

impl Fixture {
    fn new(policy: ZonePolicy) -> Self {
        let (dir, zone) = static_zone("example.test", ZONE);
        Self {
            dir,
            zone,
            policy,
            store: FakeStore::default(),
        }
    }

    /// Starts the zone from what the store holds, as `herald serve` does.
    fn build(&mut self, serial: u32, now: u32) -> (SignedZone, Vec<NewSignature>) {
        self.build_in(serial, now, |nodes| nodes)
    }

    /// [`Fixture::build`] with the stored nodes handed over in the order `order` gives them
    /// (the store gives them sorted by name).
    fn build_in(
        &mut self,
        serial: u32,
        now: u32,
        order: impl Fn(Vec<PriorNode>) -> Vec<PriorNode>,
    ) -> (SignedZone, Vec<NewSignature>) {
        let signer = signer_for(self.dir.path(), &self.zone, self.policy.clone());
        let mut b = SignedZone::builder(
            Arc::new(self.zone.clone()),
            signer,
            self.store.sigs.clone(),
            now,
        )
        .unwrap();
        for n in order(self.store.nodes.values().cloned().collect()) {
            b.add_node(n).unwrap();
        }
        let (z, writes) = b.finish(serial).unwrap();
        self.store.apply(&writes);
        (z, writes)
    }

    fn publish(
        &mut self,
        zone: &mut SignedZone,
        records: &[NodeRecord],
        deleted: &[&str],
        serial: u32,
        now: u32,
    ) -> Vec<NewSignature> {
        for r in records {
            self.store.put_node(r);
        }
        for d in deleted {
            self.store.nodes.remove(*d);
        }
        let writes = publish(zone, records, deleted, serial, now);
        self.store.apply(&writes);
        writes
    }
}

fn commit(i: u64) -> String {
    format!("{i:040x}")
}

fn count(writes: &[NewSignature], pred: impl Fn(&NewSignature) -> bool) -> usize {
    writes.iter().filter(|w| pred(w)).count()
}

fn is_soa(w: &NewSignature) -> bool {
    matches!(w, NewSignature::Rrset { rtype: 6, .. })
}

fn ask(zone: &SignedZone, name: &str, rtype: RecordType) -> Message {
    let mut q = Message::query();
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let mut e = hickory_proto::op::Edns::new();
    e.set_dnssec_ok(true);
    e.set_max_payload(1232);
    q.set_edns(e);
    let mut out = Vec::new();
    assert!(respond(
        &zone_set(zone),
        &q.to_vec().unwrap(),
        Transport::Tcp,
        &mut out
    ));
    Message::from_vec(&out).unwrap()
}

/// Follows the NSEC chain from the apex through answers to NSEC queries; returns the names in
/// chain order.
fn walk_nsec(zone: &SignedZone) -> Vec<String> {
    let mut names = vec!["example.test.".to_owned()];
    loop {
        let m = ask(zone, names.last().unwrap(), RecordType::NSEC);
        let next = m
            .answers
            .iter()
            .find_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::NSEC(n)) => Some(n.next_domain_name().to_ascii()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no NSEC at {}", names.last().unwrap()));
        if next == "example.test." {
            return names;
        }
        assert!(!names.contains(&next), "the chain loops at {next}");
        names.push(next);
    }
}

/// Checks that every NSEC3 record's next hash is the following owner hash, wrapping around.
fn check_nsec3_ring(zone: &SignedZone) -> usize {
    let Chain::Nsec3(links) = &zone.snapshot.chain else {
        panic!("not NSEC3")
    };
    let hashes: Vec<Hash> = links.iter().map(|(h, _)| *h).collect();
    for (i, (hash, rec)) in links.iter().enumerate() {
        let rdata = first_rdata(rec.rrset.bytes()).expect("a real record, not a placeholder");
        let mut d = BinDecoder::new(rdata);
        let RData::DNSSEC(DNSSECRData::NSEC3(n)) =
            RData::read(&mut d, RecordType::NSEC3, Restrict::new(rdata.len() as u16)).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            n.next_hashed_owner_name(),
            &hashes[(i + 1) % hashes.len()][..]
        );
        assert_eq!(rec.label, nsec3_label(hash));
        assert!(rec.sigs.is_some());
    }
    hashes.len()
}

#[test]
fn one_publish_signs_only_what_changed() {
    let mut f = Fixture::new(ZonePolicy::default());
    let (mut z, _) = f.build(1, T0);
    // A new node: its TXT, its NSEC, its predecessor's NSEC, the SOA.
    let w = f.publish(&mut z, &[node("n5", &commit(1), 1)], &[], 2, T0);
    assert_eq!(count(&w, |w| matches!(w, NewSignature::NodeTxt { .. })), 1);
    assert_eq!(
        count(&w, |w| matches!(w, NewSignature::NodeDenial { .. })),
        1
    );
    assert_eq!(count(&w, is_soa), 1);
    assert_eq!(w.len(), 4, "{w:?}");
    // A new commit for it: the TXT and the SOA.
    let w = f.publish(&mut z, &[node("n5", &commit(2), 2)], &[], 3, T0);
    assert_eq!(w.len(), 2, "{w:?}");
    // A name after it: its own NSEC and n5's.
    let w = f.publish(&mut z, &[node("n6", &commit(1), 1)], &[], 4, T0);
    assert_eq!(
        count(&w, |w| matches!(w, NewSignature::NodeDenial { .. })),
        2
    );
    // Deleting n6: n5's NSEC and the SOA.
    let w = f.publish(&mut z, &[], &["n6"], 5, T0);
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(
        walk_nsec(&z),
        [
            "example.test.",
            "a.b.example.test.",
            "n5.example.test.",
            "ns1.example.test."
        ]
    );
}

#[test]
fn a_batch_signs_the_soa_once_and_each_link_once() {
    for policy in both_denials() {
        let mut f = Fixture::new(policy.clone());
        let (mut z, _) = f.build(1, T0);
        let rows: Vec<NodeRecord> = (0..100)
            .map(|i| node(&format!("n{i}"), &commit(i), 1))
            .collect();
        let w = f.publish(&mut z, &rows, &[], 2, T0);
        assert_eq!(count(&w, is_soa), 1);
        assert_eq!(
            count(&w, |w| matches!(w, NewSignature::NodeTxt { .. })),
            100
        );
        let denials = count(&w, |w| matches!(w, NewSignature::NodeDenial { .. }));
        assert_eq!(denials, 100, "each new node's record once");
        // Up to four zone-file names (apex, ns1, a.b, and with NSEC3 the empty non-terminal b)
        // get new successors.
        assert!(
            w.len() <= 100 + 100 + 4 + 1,
            "{:?}: {} signatures",
            policy.denial,
            w.len()
        );
        match policy.denial {
            Denial::Nsec => assert_eq!(walk_nsec(&z).len(), 103),
            // 100 nodes, apex, ns1, a.b and the empty non-terminal b.
            Denial::Nsec3 => assert_eq!(check_nsec3_ring(&z), 104),
        }
    }
}

#[test]
fn the_chain_stays_closed_through_adds_and_deletes() {
    for policy in both_denials() {
        let mut f = Fixture::new(policy.clone());
        let (mut z, _) = f.build(1, T0);
        let mut serial = 1;
        let mut live = std::collections::BTreeSet::new();
        let mut x: u64 = 12345;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let name = format!("h{}", x % 40);
            serial += 1;
            if live.contains(&name) && x.is_multiple_of(3) {
                f.publish(&mut z, &[], &[&name], serial, T0);
                live.remove(&name);
            } else {
                f.publish(
                    &mut z,
                    &[node(&name, &commit(x % 1000), serial as u64)],
                    &[],
                    serial,
                    T0,
                );
                live.insert(name);
            }
        }
        match policy.denial {
            Denial::Nsec => assert_eq!(walk_nsec(&z).len(), 3 + live.len()),
            Denial::Nsec3 => assert_eq!(check_nsec3_ring(&z), 4 + live.len()),
        }
        let key = z.signer().key().dnskey.clone();
        for name in &live {
            verify_all(
                &ask(&z, &format!("{name}.example.test."), RecordType::TXT),
                &key,
            );
        }
        let m = ask(&z, "gone.example.test.", RecordType::TXT);
        assert!(verify_all(&m, &key) >= 2);
    }
}

#[test]
fn a_restart_reuses_stored_signatures() {
    for policy in both_denials() {
        let mut f = Fixture::new(policy.clone());
        let (mut z, first) = f.build(1, T0);
        assert!(!first.is_empty());
        let rows: Vec<NodeRecord> = (0..50)
            .map(|i| node(&format!("n{i}"), &commit(i), 1))
            .collect();
        f.publish(&mut z, &rows, &[], 2, T0);
        let before = z.snapshot.clone();

        // Same data, a day later: nothing to sign, the same answers.
        let (again, writes) = f.build(2, T0 + DAY);
        assert!(
            writes.is_empty(),
            "{:?}: re-signed {} RRsets: {:?}",
            policy.denial,
            writes.len(),
            writes.first()
        );
        for name in ["n7.example.test.", "example.test.", "nope.example.test."] {
            let a = ask(&again, name, RecordType::TXT);
            let b = ask(&z, name, RecordType::TXT);
            assert_eq!(a.answers, b.answers, "{name}");
            assert_eq!(a.authorities, b.authorities, "{name}");
        }
        assert_eq!(again.snapshot.serial, before.serial);
    }
}

/// A way to reorder the stored nodes handed to the builder.
type Order = fn(Vec<PriorNode>) -> Vec<PriorNode>;

#[test]
fn a_restart_links_the_chain_whatever_order_the_nodes_come_in() {
    for policy in both_denials() {
        let mut f = Fixture::new(policy.clone());
        let (mut z, _) = f.build(1, T0);
        // Nodes on both sides of the zone file's ns1, so zone-file names sit inside the run.
        let rows: Vec<NodeRecord> = (0..60)
            .map(|i| node(&format!("{}{i}", ["n", "z"][i as usize % 2]), &commit(i), 1))
            .collect();
        f.publish(&mut z, &rows, &[], 2, T0);
        let names = [
            "z7.example.test.",
            "n58.example.test.",
            "nz.example.test.",
            "ns1.example.test.",
        ];
        let answers = |zone: &SignedZone| -> Vec<Message> {
            names
                .iter()
                .map(|n| ask(zone, n, RecordType::TXT))
                .collect()
        };
        let want = answers(&z);
        let orders: [(&str, Order); 3] = [
            ("sorted", |v| v),
            ("reversed", |mut v| {
                v.reverse();
                v
            }),
            ("interleaved", |v| {
                let (even, odd): (Vec<_>, Vec<_>) =
                    v.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
                odd.into_iter().chain(even).map(|(_, n)| n).collect()
            }),
        ];
        for (label, order) in orders {
            let (again, writes) = f.build_in(2, T0 + DAY, order);
            assert!(
                writes.is_empty(),
                "{:?} {label}: re-signed {:?}",
                policy.denial,
                writes.first()
            );
            let got = answers(&again);
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.answers, w.answers, "{:?} {label}", policy.denial);
                assert_eq!(g.authorities, w.authorities, "{:?} {label}", policy.denial);
            }
            let key = again.signer().key().dnskey.clone();
            for m in &got {
                assert!(verify_all(m, &key) >= 1, "{:?} {label}", policy.denial);
            }
            if policy.denial == Denial::Nsec {
                for e in again.snapshot.names_iter().filter(|e| !e.is_empty()) {
                    assert!(
                        e.rrset(RecordType::NSEC).is_some(),
                        "{label}: no NSEC at {:?}",
                        e.key()
                    );
                }
                assert_eq!(walk_nsec(&again), walk_nsec(&z), "{label}");
            } else {
                assert_eq!(check_nsec3_ring(&again), check_nsec3_ring(&z), "{label}");
            }
        }
    }
}

#[test]
fn a_restart_re_signs_the_links_a_vanished_node_leaves() {
    for policy in both_denials() {
        let mut f = Fixture::new(policy.clone());
        let (mut z, _) = f.build(1, T0);
        let rows: Vec<NodeRecord> = (0..30)
            .map(|i| node(&format!("n{i}"), &commit(i), 1))
            .collect();
        f.publish(&mut z, &rows, &[], 2, T0);
        // A store whose node rows changed behind the signatures' back: the chain must close
        // over the gap with a new signature on the predecessor's link, and nothing else.
        f.store.nodes.remove("n17");
        let (again, writes) = f.build(2, T0 + DAY);
        assert_eq!(
            count(&writes, |w| matches!(w, NewSignature::NodeDenial { .. })),
            1,
            "{:?}: {writes:?}",
            policy.denial
        );
        let key = again.signer().key().dnskey.clone();
        let gone = ask(&again, "n17.example.test.", RecordType::TXT);
        assert_eq!(gone.response_code, ResponseCode::NXDomain);
        assert!(verify_all(&gone, &key) >= 2);
        if policy.denial == Denial::Nsec {
            let walked = walk_nsec(&again);
            assert!(!walked.contains(&"n17.example.test.".to_owned()));
            assert_eq!(walked.len(), walk_nsec(&z).len() - 1);
        } else {
            check_nsec3_ring(&again);
        }
    }
}

#[test]
fn a_batch_signed_on_several_threads_keeps_its_order_and_verifies() {
    let mut f = Fixture::new(ZonePolicy::default());
    let (mut z, _) = f.build(1, T0);
    let set: Vec<NodeRecord> = (0..101)
        .map(|i| node(&format!("p{i}"), &commit(i), 1))
        .collect();
    let signed = z.sign_txts_on(&set, T0, 3).unwrap();
    assert_eq!(signed.len(), set.len());
    for (record, s) in set.iter().zip(signed) {
        z.put_node(record, s).unwrap();
    }
    z.finish(2, T0).unwrap();
    let key = z.signer().key().dnskey.clone();
    for i in 0..101 {
        let m = ask(&z, &format!("p{i}.example.test."), RecordType::TXT);
        let txt: Vec<String> = m
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(t.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(txt.len(), 1, "p{i}");
        assert!(txt[0].contains(&commit(i)), "p{i} got {txt:?}");
        assert!(verify_all(&m, &key) >= 1, "p{i}");
    }
}

#[test]
fn expired_signatures_are_made_again_at_start() {
    let mut f = Fixture::new(ZonePolicy::default());
    let (mut z, _) = f.build(1, T0);
    let rows: Vec<NodeRecord> = (0..10)
        .map(|i| node(&format!("n{i}"), &commit(i), 1))
        .collect();
    f.publish(&mut z, &rows, &[], 2, T0);
    // Down for 20 days: every signature has expired (validity 14 days).
    let later = T0 + 20 * DAY;
    let (z, writes) = f.build(2, later);
    // 10 TXT + 10 NSEC for nodes; SOA, NS, DNSKEY, ns1 A, a.b TXT and 3 NSEC for the rest.
    assert_eq!(writes.len(), 28, "{writes:?}");
    let m = ask(&z, "n3.example.test.", RecordType::TXT);
    for r in &m.answers {
        if let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &r.data {
            assert_eq!(sig.input().sig_inception.get(), later - 3600);
        }
    }
}

#[test]
fn refresh_spreads_resigning_and_keeps_the_zone_valid() {
    for policy in both_denials() {
        let mut f = Fixture::new(policy.clone());
        let (mut z, _) = f.build(1, T0);
        let rows: Vec<NodeRecord> = (0..800)
            .map(|i| node(&format!("n{i}"), &commit(i), 1))
            .collect();
        f.publish(&mut z, &rows, &[], 2, T0);
        // Fresh signatures: nothing to do.
        assert!(z.refresh(T0 + 3600).unwrap().is_none());

        // Eight days on, everything is inside the refresh window (validity 14 d, refresh 7 d,
        // expirations jittered down to 10.5 d): steps re-sign at most 500 signatures each.
        let now = T0 + 8 * DAY;
        let mut serial = 2;
        let mut steps = 0;
        while let Some(writes) = z.refresh(now).unwrap() {
            steps += 1;
            assert!(steps < 20, "refresh does not converge");
            serial += 1;
            let mut all = writes;
            assert!(all.len() <= 500 + 10);
            all.extend(z.finish(serial, now).unwrap());
            f.store.apply(&all);
        }
        assert!(
            steps >= 3,
            "{:?}: work was spread over {steps} steps",
            policy.denial
        );
        let key = z.signer().key().dnskey.clone();
        for name in [
            "n1.example.test.",
            "n799.example.test.",
            "ns1.example.test.",
            "example.test.",
        ] {
            let m = ask(&z, name, RecordType::TXT);
            verify_all(&m, &key);
            for r in m.answers.iter().chain(&m.authorities) {
                if let RData::DNSSEC(DNSSECRData::RRSIG(sig)) = &r.data {
                    assert_eq!(sig.input().sig_inception.get(), now - 3600, "{name}: {r}");
                }
            }
        }
        let sig = ask(&z, "nope.example.test.", RecordType::TXT);
        verify_all(&sig, &key);
        let _ = rrsig_inception;
    }
}

/// The churn of issue 16: `validity=1h,refresh=55m` re-signed a signature every second, each
/// with a new serial. Such a policy is now refused (`policy::largest_refresh`); the largest
/// one allowed, and a signature made again by a publish, are left alone until they are a
/// refresh period old.
#[test]
fn a_short_validity_never_re_signs_fresh_signatures() {
    use crate::dnssec::policy::parse_flag;
    assert!(parse_flag("example.test:validity=1h,refresh=55m").is_err());
    let (_, policy) = parse_flag("example.test:validity=1h,refresh=2250s").unwrap();
    let mut f = Fixture::new(policy);
    let (mut z, _) = f.build(1, T0);
    let rows: Vec<NodeRecord> = (0..50)
        .map(|i| node(&format!("n{i}"), &commit(i), 1))
        .collect();
    f.publish(&mut z, &rows, &[], 2, T0);
    // Every second for the first 37 minutes and a half: nothing is due.
    for now in (T0 + 1..T0 + 2250).step_by(1) {
        assert!(
            z.refresh(now).unwrap().is_none(),
            "re-signed at T0 + {}",
            now - T0
        );
    }
    // From then on, what is due is re-signed once, and then left alone again.
    let now = T0 + 2250;
    let mut serial = 2;
    let mut made = 0;
    while let Some(writes) = z.refresh(now).unwrap() {
        serial += 1;
        made += writes.len();
        let mut all = writes;
        all.extend(z.finish(serial, now).unwrap());
        f.store.apply(&all);
        assert!(serial < 10, "refresh does not converge");
    }
    assert!(
        made > 0,
        "signatures that old and that close to expiry are re-signed"
    );
    for later in now + 1..now + 600 {
        assert!(
            z.refresh(later).unwrap().is_none(),
            "again at T0 + {}",
            later - T0
        );
    }
}

/// A key rollover's steps on the working zone: the new key published and signing the DNSKEY
/// RRset beside the old one; then signing, with CDS and CDNSKEY at the apex, while the sweep
/// re-signs every signature the old key made (a larger budget, and then no more); then alone.
#[test]
fn a_new_signing_key_re_signs_the_zone_through_the_sweep() {
    use crate::dnssec::ZoneKey;
    use crate::dnssec::roll::{KeySet, Step};
    for policy in both_denials() {
        let mut f = Fixture::new(policy.clone());
        let (mut z, _) = f.build(1, T0);
        let rows: Vec<NodeRecord> = (0..3000)
            .map(|i| node(&format!("n{i}"), &commit(i), 1))
            .collect();
        f.publish(&mut z, &rows, &[], 2, T0);
        let apex = Name::from_ascii("example.test.").unwrap();
        let old = Arc::new(ZoneKey::load(f.dir.path(), "example.test", &apex).unwrap());
        let new = Arc::new(
            ZoneKey::generate(
                f.dir.path(),
                "example.test",
                &apex,
                policy.algorithm,
                &[old.key_tag, old.revoked_tag],
            )
            .unwrap(),
        );
        let step = |z: &mut SignedZone, step, active: &Arc<ZoneKey>, other, serial, now| {
            let keys = KeySet::at(step, active.clone(), other);
            let signer = Arc::new(Signer::with_keys(keys, policy.clone()));
            let mut writes = z.set_signer(signer, now).unwrap();
            writes.extend(z.finish(serial, now).unwrap());
            writes
        };
        let dnskey_sigs = |z: &SignedZone| -> Vec<u16> {
            let m = ask(z, "example.test.", RecordType::DNSKEY);
            let mut tags: Vec<u16> = m
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::DNSSEC(DNSSECRData::RRSIG(s)) => Some(s.input().key_tag),
                    _ => None,
                })
                .collect();
            tags.sort_unstable();
            tags
        };
        let sorted = |mut v: Vec<u16>| {
            v.sort_unstable();
            v
        };

        // Publish: two keys, both sign the DNSKEY RRset; the data keeps the old key's.
        let writes = step(&mut z, Step::Publish, &old, Some(new.clone()), 3, T0 + 10);
        assert!(writes.len() <= 4, "{:?}: {}", policy.denial, writes.len());
        assert_eq!(dnskey_sigs(&z), sorted(vec![old.key_tag, new.key_tag]));
        let m = ask(&z, "example.test.", RecordType::DNSKEY);
        assert_eq!(verify_all(&m, &new.dnskey), 1);
        verify_all(&ask(&z, "n7.example.test.", RecordType::TXT), &old.dnskey);
        assert!(
            z.refresh(T0 + 11).unwrap().is_none(),
            "nothing to re-sign yet"
        );
        assert!(!z.types_at(&[]).contains(&RecordType::CDS));

        // Switch: the new key signs; CDS and CDNSKEY name it; the sweep re-signs the rest.
        let sweeps = z.sweeps();
        step(&mut z, Step::Switch, &new, Some(old.clone()), 4, T0 + 20);
        assert_eq!(dnskey_sigs(&z), sorted(vec![old.key_tag, new.key_tag]));
        let types = z.types_at(&[]);
        assert!(
            types.contains(&RecordType::CDS) && types.contains(&RecordType::CDNSKEY),
            "{types:?}"
        );
        let cds = ask(&z, "example.test.", RecordType::CDS);
        assert!(
            cds.answers.iter().any(|r| matches!(&r.data,
                RData::DNSSEC(DNSSECRData::CDS(c)) if c.key_tag() == new.key_tag)),
            "{cds:?}"
        );
        verify_all(&cds, &old.dnskey);
        let mut serial = 4;
        let mut steps = 0;
        while let Some(mut writes) = z.refresh(T0 + 21).unwrap() {
            steps += 1;
            assert!(steps < 20, "the re-signing does not converge");
            assert!(writes.len() <= 2_000 + 10, "{}", writes.len());
            serial += 1;
            writes.extend(z.finish(serial, T0 + 21).unwrap());
            f.store.apply(&writes);
        }
        // 6,000 node signatures at 2,000 a step.
        assert!(steps >= 3, "{:?}: {steps} steps", policy.denial);
        assert!(z.sweeps() > sweeps);
        for name in [
            "n0.example.test.",
            "n2999.example.test.",
            "nope.example.test.",
        ] {
            verify_all(&ask(&z, name, RecordType::TXT), &new.dnskey);
        }

        // Done: the new key alone, no CDS.
        step(&mut z, Step::Done, &new, None, serial + 1, T0 + 30);
        assert_eq!(dnskey_sigs(&z), vec![new.key_tag]);
        assert!(!z.types_at(&[]).contains(&RecordType::CDS));
        assert!(ask(&z, "example.test.", RecordType::CDS).answers.is_empty());
        assert_eq!(z.snapshot.dnskey.len(), 1);
        verify_all(&ask(&z, "nope.example.test.", RecordType::TXT), &new.dnskey);
    }
}

/// An algorithm change on the working zone (RFC 6781 §4.1.4): in `sigs` the sweep adds the
/// new key's signature to every RRset while the DNSKEY RRset keeps the old key alone; through
/// `publish`, `switch` and `unpublish` every RRset has both; `done` drops the old ones.
#[test]
fn an_algorithm_change_double_signs_then_drops_the_old_signatures() {
    use crate::dnssec::ZoneKey;
    use crate::dnssec::roll::{KeySet, Step};
    use hickory_proto::dnssec::Algorithm;
    let policy = ZonePolicy::default();
    let mut f = Fixture::new(policy.clone());
    let (mut z, _) = f.build(1, T0);
    let rows: Vec<NodeRecord> = (0..1500)
        .map(|i| node(&format!("n{i}"), &commit(i), 1))
        .collect();
    f.publish(&mut z, &rows, &[], 2, T0);
    let apex = Name::from_ascii("example.test.").unwrap();
    let old = Arc::new(ZoneKey::load(f.dir.path(), "example.test", &apex).unwrap());
    let new = Arc::new(
        ZoneKey::generate(
            f.dir.path(),
            "example.test",
            &apex,
            Algorithm::ED25519,
            &[old.key_tag, old.revoked_tag],
        )
        .unwrap(),
    );
    let mut serial = 2;
    let mut step =
        |z: &mut SignedZone, step, active: &Arc<ZoneKey>, other: Option<Arc<ZoneKey>>, now| {
            serial += 1;
            let keys = KeySet::at(step, active.clone(), other);
            let signer = Arc::new(Signer::with_keys(keys, policy.clone()));
            z.set_signer(signer, now).unwrap();
            z.finish(serial, now).unwrap();
            // Let the sweep finish whatever the step asks.
            let mut steps = 0;
            while z.refresh(now).unwrap().is_some() {
                steps += 1;
                assert!(steps < 20);
                serial += 1;
                z.finish(serial, now).unwrap();
            }
        };
    let algorithms = |z: &SignedZone, name: &str, rtype| -> Vec<u8> {
        let m = ask(z, name, rtype);
        let mut algs: Vec<u8> = m
            .answers
            .iter()
            .chain(&m.authorities)
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(s)) if s.input().type_covered == rtype => {
                    Some(u8::from(s.input().algorithm))
                }
                _ => None,
            })
            .collect();
        algs.sort_unstable();
        algs
    };
    let dnskeys = |z: &SignedZone| {
        ask(z, "example.test.", RecordType::DNSKEY)
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::DNSKEY)
            .count()
    };

    step(&mut z, Step::Sigs, &old, Some(new.clone()), T0 + 10);
    assert_eq!(dnskeys(&z), 1, "the new key is not published yet");
    for name in [
        "n0.example.test.",
        "n1499.example.test.",
        "a.b.example.test.",
    ] {
        assert_eq!(
            algorithms(&z, name, RecordType::TXT),
            vec![13, 15],
            "{name}"
        );
        let m = ask(&z, name, RecordType::TXT);
        verify_all(&m, &old.dnskey);
        verify_all(&m, &new.dnskey);
    }
    assert_eq!(
        algorithms(&z, "example.test.", RecordType::SOA),
        vec![13, 15]
    );

    step(&mut z, Step::Publish, &old, Some(new.clone()), T0 + 20);
    assert_eq!(dnskeys(&z), 2);
    step(&mut z, Step::Switch, &new, Some(old.clone()), T0 + 30);
    assert_eq!(
        algorithms(&z, "n7.example.test.", RecordType::TXT),
        vec![13, 15]
    );
    step(&mut z, Step::Unpublish, &new, Some(old.clone()), T0 + 40);
    assert_eq!(dnskeys(&z), 1, "the old key is gone from the DNSKEY RRset");
    assert_eq!(
        algorithms(&z, "n7.example.test.", RecordType::TXT),
        vec![13, 15]
    );

    step(&mut z, Step::Done, &new, None, T0 + 50);
    for name in [
        "n0.example.test.",
        "n1499.example.test.",
        "nope.example.test.",
    ] {
        let m = ask(&z, name, RecordType::TXT);
        verify_all(&m, &new.dnskey);
    }
    assert_eq!(
        algorithms(&z, "n0.example.test.", RecordType::TXT),
        vec![15]
    );
    assert_eq!(algorithms(&z, "example.test.", RecordType::SOA), vec![15]);
}
