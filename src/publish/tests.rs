//! The writer thread on an injected clock: publishes are signed at the clock's time, and the
//! background refresh re-signs what comes due without being asked.

use std::collections::HashMap;
use std::path::Path;
use std::thread::JoinHandle;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};

use super::*;
use crate::dns::answer::{Transport, respond};
use crate::record::{Commit, ManualClock, NodeLabel};
use crate::store::Store;
use crate::zone::SharedZones;
use crate::zone::file::load_dir;

const T0: u32 = 1_800_000_000;
const DAY: u32 = 86_400;

/// The inceptions of the RRSIGs in the answer to `name`/`rtype` with DO=1.
fn inceptions(zones: &SharedZones, name: &str, rtype: RecordType) -> Vec<u32> {
    let mut q = Message::query();
    q.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    let mut e = Edns::new();
    e.set_dnssec_ok(true);
    q.set_edns(e);
    let mut out = Vec::new();
    assert!(respond(
        &zones.load(),
        &q.to_vec().unwrap(),
        Transport::Udp,
        &mut out
    ));
    let m = Message::from_vec(&out).unwrap();
    m.answers
        .iter()
        .chain(&m.authorities)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(s)) => Some(s.input().sig_inception.get()),
            _ => None,
        })
        .collect()
}

/// Starts the publisher on the store in `data` and the zone files in `zones`, as `herald serve`
/// does, on `clock`.
fn start_in(
    data: &Path,
    zones: &Path,
    clock: &Arc<ManualClock>,
) -> (Publisher, SharedZones, JoinHandle<()>) {
    let store = Store::open(&Store::path_in(data)).unwrap();
    start(
        store,
        Setup {
            zones: &load_dir(zones).unwrap(),
            policies: &HashMap::new(),
            data_dir: data,
            clock: clock.clone(),
            journal: Default::default(),
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_refresh_resigns_on_the_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let zones_dir = dir.path().join("zones");
    std::fs::create_dir(&zones_dir).unwrap();
    std::fs::write(
        zones_dir.join("example.test.zone"),
        "$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 900 1209600 60\n  IN NS ns1\nns1 IN A 127.0.0.1\n",
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let (publisher, zones, thread) = start_in(dir.path(), &zones_dir, &clock);
    let change = Change::Put {
        node: NodeLabel::parse("n1").unwrap(),
        commit: Commit::parse(&"a".repeat(40)).unwrap(),
        if_match: None,
    };
    let applied = publisher.apply("example.test", change).await.unwrap();
    assert_eq!(
        applied.set[0].0.ts,
        u64::from(T0),
        "the publish time comes from the clock"
    );
    let serial = zones.load().get("example.test").unwrap().serial;
    assert!(
        inceptions(&zones, "n1.example.test.", RecordType::TXT)
            .iter()
            .all(|&i| i == T0 - 3600)
    );

    // Three days on nothing is due: the zone stays as it is.
    clock.advance(3 * DAY);
    tokio::time::sleep(REFRESH_EVERY * 2).await;
    assert_eq!(zones.load().get("example.test").unwrap().serial, serial);

    // Eight days after signing, every signature is inside the refresh window: the background
    // step re-signs them at the clock's time and moves the serial on.
    clock.set(T0 + 8 * DAY);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let want = T0 + 8 * DAY - 3600;
    loop {
        let fresh = ["n1.example.test.", "ns1.example.test.", "example.test."]
            .iter()
            .all(|n| {
                inceptions(&zones, n, RecordType::A)
                    .iter()
                    .chain(&inceptions(&zones, n, RecordType::TXT))
                    .all(|&i| i == want)
            });
        if fresh {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not refreshed in time"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let refreshed = zones.load().get("example.test").unwrap().clone();
    assert!(refreshed.serial != serial);
    // The re-signing is journalled like a publish, so secondaries follow it by IXFR.
    let path = crate::zone::journal::path_from(&refreshed.journal, serial, refreshed.serial);
    assert!(path.is_some_and(|p| !p.is_empty()));
    publisher.stop();
    drop(publisher);
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();

    // A restart that has to re-sign (the stored signatures are about to expire) serves the
    // new signatures under a new serial: a secondary must not keep the old content at the
    // old serial. There is no journal entry for that step, so it gets a full transfer.
    clock.set(T0 + 8 * DAY + 13 * DAY + DAY / 2);
    let (publisher, zones, thread) = start_in(dir.path(), &zones_dir, &clock);
    let restarted = zones.load().get("example.test").unwrap().clone();
    assert!(crate::record::serial_gt(restarted.serial, refreshed.serial));
    assert!(
        crate::zone::journal::path_from(&restarted.journal, refreshed.serial, restarted.serial)
            .is_none()
    );
    assert!(
        crate::zone::journal::path_from(&restarted.journal, serial, refreshed.serial).is_some(),
        "the older journal was loaded from the store"
    );
    publisher.stop();
    drop(publisher);
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
}
