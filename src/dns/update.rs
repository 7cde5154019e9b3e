//! RFC 2136 UPDATE of node TXT records, TSIG-signed with a scoped key (DESIGN.md, "DNS
//! behaviour").
//!
//! [`super::answer::handle`] defers every UPDATE here, so the query path pays one opcode
//! check for it. Over UDP the socket thread hands a copy of the message to a task on the
//! runtime ([`Updates::submit_udp`]) and goes on answering queries; the task answers from the
//! same socket once the change is published. Over TCP the connection awaits
//! [`Updates::answer`] in place.
//!
//! What a message must be, in the order of RFC 2136 §3, and what it gets otherwise:
//! 1. signed with a known `--tsig-key` (else NOTAUTH with the TSIG error, unsigned, RFC 8945
//!    §5.2), and unsigned messages are REFUSED; the key must carry a scope for the zone;
//! 2. one zone, class IN, type SOA, that Herald serves (FORMERR; NOTZONE);
//! 3. prerequisites (§2.4, §3.2), all five forms, names inside the zone (FORMERR; NOTZONE).
//!    Those on the zone file's names are decided here on the snapshot; those on node names
//!    become [`Condition`]s that the store checks inside the change's savepoint, so they are
//!    evaluated on the zone as the change finds it, not as it was when the message arrived;
//! 4. updates (§2.5, §3.4) of node TXT records only: an add (class IN) publishes the commit
//!    its content names, in the forms of [`Commit::from_content`]; a delete of the RRset
//!    (class ANY), of the name (ANY ANY) or of the record (class NONE, its content not
//!    compared) removes the node. Anything else, or a node outside the key's scope, REFUSES
//!    the whole message. A node's last update in the message wins.
//!
//! The message becomes one [`Change::Update`] for the single writer: NOERROR once it is
//! durable, signed and served; YXDOMAIN, YXRRSET, NXDOMAIN or NXRRSET for a failed
//! prerequisite, with nothing written. Every answer to a message whose signature verified is
//! signed (the NOTAUTH for a bad MAC or an unknown key cannot be, RFC 8945 §5.2; nor can the
//! FORMERR for a message that does not parse). A message played again within the TSIG fudge
//! gets its first answer and changes nothing ([`Replays`]).

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use super::answer::error_answer;
use super::message::rcode;
use super::report::{Reports, is_report_key};
use super::transfer::SharedAccess;
use super::tsig::{RequestAuth, ResponseSigner, TsigKey, check_request};
use crate::metrics::Source;
use crate::publish::{Change, Condition, Expect, PublishError, Publisher, Refusal};
use crate::record::{Commit, NodeLabel, Scope};
use crate::zone::SharedZones;
use crate::zone::file::StaticZone;
use crate::zone::snapshot::{KeySet, ZoneSnapshot, static_keys};
use crate::zone::wire::relative_key;

/// Updates in progress at most; more arriving over UDP are dropped (the client retries).
const IN_FLIGHT: usize = 256;

/// The UPDATE intake, shared by the sockets.
pub struct Updates {
    ctx: Arc<Context>,
    runtime: Handle,
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for Updates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updates").finish_non_exhaustive()
    }
}

struct Context {
    publisher: Publisher,
    zones: SharedZones,
    /// The TSIG keys (with the ACLs, which UPDATE does not use), as the transfers see them.
    access: SharedAccess,
    /// Per zone: the zone file, and the keys of its names; replaced on a reload.
    files: arc_swap::ArcSwap<HashMap<String, (StaticZone, KeySet)>>,
    replays: Replays,
    /// Node reports, signed with a node's report key, go here instead.
    reports: Option<Reports>,
}

impl Updates {
    /// The intake for the zones of `files`. Must be called inside the tokio runtime that is to
    /// run the updates.
    pub fn new(
        publisher: Publisher,
        zones: SharedZones,
        access: SharedAccess,
        files: &[StaticZone],
        reports: Option<Reports>,
    ) -> Self {
        Self {
            ctx: Arc::new(Context {
                publisher,
                zones,
                access,
                files: arc_swap::ArcSwap::from_pointee(file_index(files)),
                replays: Replays::default(),
                reports,
            }),
            runtime: Handle::current(),
            slots: Arc::new(Semaphore::new(IN_FLIGHT)),
        }
    }

    /// Takes the zone files read again on a reload.
    pub fn set_files(&self, files: &[StaticZone]) {
        self.ctx.files.store(Arc::new(file_index(files)));
        if let Some(reports) = &self.ctx.reports
            && let Err(e) = reports.set_files(files)
        {
            tracing::error!(
                error = &e as &dyn std::error::Error,
                "a new zone has no report secret; its nodes' reports are refused"
            );
        }
    }

    /// Takes an UPDATE that arrived over UDP from `peer`: answered from `socket` when done.
    /// Called on a socket thread; returns at once.
    ///
    /// A node report is answered here, on the socket thread: it waits for nothing (the report
    /// writer's queue never blocks), and a hand-off to the runtime cost more than the report
    /// itself (a thread wake-up and two context switches per report; measured in the README,
    /// "Node reports").
    pub fn submit_udp(&self, msg: &[u8], socket: &Arc<UdpSocket>, peer: SocketAddr) {
        if let Some(reports) = &self.ctx.reports
            && let Ok(request) = Message::from_vec(msg)
            && let Some(t) = request.signature()
            && is_report_key(&t.name)
        {
            if let Some(out) = reports.answer(msg, &request, &t.name, peer)
                && let Err(e) = socket.send_to(&out, peer)
            {
                tracing::debug!(error = %e, %peer, "cannot send a report answer");
            }
            return;
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many updates in flight; dropped one");
            return;
        };
        let (ctx, msg, socket) = (self.ctx.clone(), msg.to_vec(), socket.clone());
        self.runtime.spawn(async move {
            if let Some(out) = ctx.answer(&msg, peer).await
                && let Err(e) = socket.send_to(&out, peer)
            {
                tracing::debug!(error = %e, %peer, "cannot send an update answer");
            }
            drop(permit);
        });
    }

    /// Answers an UPDATE (over TCP): `None` when nothing is to be sent.
    pub async fn answer(&self, msg: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
        let _permit = self.slots.acquire().await.ok()?;
        self.ctx.answer(msg, peer).await
    }
}

/// How many seconds an update may be signed before the newest one of its key, and how long a
/// MAC is remembered after newer ones arrive.
const REPLAY_WINDOW: u64 = 10;

/// The updates each key signed lately, so that a captured UPDATE cannot be played again while
/// its signature time is still inside the fudge (RFC 8945 §5.2.3: remember the latest time
/// signed by each key). A message is refused (BADTIME) when it was signed more than
/// [`REPLAY_WINDOW`] seconds before the newest one of its key; within the window its MAC is
/// remembered with its answer, so a retransmission (the same message, the same MAC) gets the
/// first answer again and changes nothing. Memory: the updates of the last window, per key.
#[derive(Default)]
struct Replays(Mutex<HashMap<Name, Seen>>);

#[derive(Default)]
struct Seen {
    /// The newest signature time accepted.
    latest: u64,
    /// Recent MACs: their signature time, and the answer once there is one.
    macs: HashMap<Vec<u8>, (u64, Option<Vec<u8>>)>,
}

/// What [`Replays::check`] found.
enum Replay {
    /// Not seen: go on.
    New,
    /// Seen and answered: send this again.
    Answered(Vec<u8>),
    /// Seen, still being applied: send nothing (the client retries).
    InFlight,
    /// Older than the window allows.
    Stale,
}

impl Replays {
    fn check(&self, key: &Name, time: u64, mac: &[u8]) -> Replay {
        let mut keys = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let seen = keys.entry(key.clone()).or_default();
        if let Some((_, answer)) = seen.macs.get(mac) {
            return answer.clone().map_or(Replay::InFlight, Replay::Answered);
        }
        if time.saturating_add(REPLAY_WINDOW) < seen.latest {
            return Replay::Stale;
        }
        if time > seen.latest {
            seen.latest = time;
            seen.macs
                .retain(|_, (t, _)| t.saturating_add(REPLAY_WINDOW) >= time);
        }
        seen.macs.insert(mac.to_vec(), (time, None));
        Replay::New
    }

    fn answered(&self, key: &Name, mac: &[u8], answer: &[u8]) {
        let mut keys = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, slot)) = keys.get_mut(key).and_then(|s| s.macs.get_mut(mac)) {
            *slot = Some(answer.to_vec());
        }
    }
}

/// An answer code, and a word for the log.
type Outcome = (u16, &'static str);

impl Context {
    async fn answer(&self, msg: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(256);
        let Ok(request) = Message::from_vec(msg) else {
            error_answer(msg, rcode::FORMERR, &mut out);
            return Some(out);
        };
        let tsig = request.signature();
        if let (Some(reports), Some(t)) = (&self.reports, tsig)
            && is_report_key(&t.name)
        {
            return reports.answer(msg, &request, &t.name, peer);
        }
        let auth = check_request(
            &self.access.load().keys,
            msg,
            tsig.map(|r| &r.data),
            tsig.map(|r| &r.name),
            request.metadata.id,
        );
        let (key, mac, id) = match auth {
            RequestAuth::Unsigned => {
                tracing::info!(%peer, "update refused: not signed");
                error_answer(msg, rcode::REFUSED, &mut out);
                return Some(out);
            }
            RequestAuth::Failed(failure) => {
                tracing::info!(%peer, key = %failure.key_name, error = ?failure.error, "update refused: TSIG failed");
                failure.answer(msg, &mut out);
                return Some(out);
            }
            RequestAuth::Signed { key, mac, id } => (key, mac, id),
        };
        let time = tsig.map_or(0, |r| r.data.time);
        match self.replays.check(&key.name, time, &mac) {
            Replay::New => {}
            Replay::Answered(answer) => {
                tracing::info!(%peer, key = %key.name, "update seen before: its answer again, nothing applied");
                return Some(answer);
            }
            Replay::InFlight => return None,
            Replay::Stale => {
                tracing::info!(%peer, key = %key.name, "update refused: older than the key's latest");
                error_answer(msg, rcode::NOTAUTH, &mut out);
                let signed = ResponseSigner::new(key, mac, id)
                    .with_error(TsigError::BadTime)
                    .sign(&mut out);
                return signed.is_ok().then_some(out);
            }
        }
        let (code, why) = self.apply(&request, &key).await;
        if code == rcode::NOERROR {
            tracing::debug!(%peer, key = %key.name, "update applied");
        } else {
            tracing::info!(%peer, key = %key.name, rcode = code, why, "update not applied");
        }
        error_answer(msg, code, &mut out);
        let name = key.name.clone();
        if let Err(e) = ResponseSigner::new(key, mac.clone(), id).sign(&mut out) {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "cannot sign an update answer"
            );
            return None;
        }
        self.replays.answered(&name, &mac, &out);
        Some(out)
    }

    /// Checks the message against the zone and the key's scope and hands it to the writer.
    async fn apply(&self, request: &Message, key: &TsigKey) -> Outcome {
        // §3.1: exactly one zone, class IN, type SOA.
        let [zone_q] = request.queries.as_slice() else {
            return (rcode::FORMERR, "the zone section must hold one zone");
        };
        if zone_q.query_type() != RecordType::SOA || zone_q.query_class() != DNSClass::IN {
            return (rcode::FORMERR, "the zone must be class IN, type SOA");
        }
        let apex = zone_q.name().to_lowercase();
        let set = self.zones.load();
        let Some(zone) = set.iter().find(|z| z.apex == apex).cloned() else {
            return (rcode::NOTZONE, "zone not served");
        };
        let files = self.files.load();
        let Some((file, static_names)) = files.get(&*zone.name) else {
            return (rcode::NOTZONE, "zone not served");
        };
        let Some(scope) = key.scope.as_ref().filter(|s| s.zone == *zone.name) else {
            return (rcode::REFUSED, "the key may not update this zone");
        };
        let names = Names {
            zone: &zone,
            file,
            static_names,
        };
        let Prerequisites {
            conditions: require,
            reads,
            serial,
        } = match names.prerequisites(&request.answers) {
            Ok(found) => found,
            Err(outcome) => return outcome,
        };
        let (set, delete) = match names.updates(&request.authorities) {
            Ok(ops) => ops,
            Err(outcome) => return outcome,
        };
        let touched = require
            .iter()
            .map(|c| &c.node)
            .chain(set.iter().map(|(n, _)| n))
            .chain(&delete)
            .chain(&reads);
        if let Some(node) = touched
            .into_iter()
            .find(|n| !in_scope(scope, &zone.name, n))
        {
            tracing::info!(node = %node, scope = %scope, "update outside the key's scope");
            return (rcode::REFUSED, "a node is outside the key's scope");
        }
        let change = Change::Update {
            require,
            serial,
            set,
            delete,
        };
        match self
            .publisher
            .apply_as(&zone.name, change, Source::Update)
            .await
        {
            Ok(_) => (rcode::NOERROR, "applied"),
            Err(PublishError::Refused(Refusal::Unmet { expect, .. })) => unmet(&expect),
            Err(PublishError::Refused(Refusal::SerialMoved { .. })) => RRSET_DIFFERS,
            Err(PublishError::Refused(Refusal::Denied { .. })) => {
                (rcode::REFUSED, "the commit is on the deny-list")
            }
            Err(PublishError::StaticName(_)) => (rcode::REFUSED, "a node name is a zone-file name"),
            Err(PublishError::UnknownZone(_)) => (rcode::NOTZONE, "zone not served"),
            Err(e) => {
                tracing::error!(error = &e as &dyn std::error::Error, "update failed");
                (rcode::SERVFAIL, "the write failed")
            }
        }
    }
}

fn in_scope(scope: &Scope, zone: &str, node: &NodeLabel) -> bool {
    scope.allows(zone, node.as_str())
}

/// A value-dependent prerequisite that does not hold (§3.2.3).
const RRSET_DIFFERS: Outcome = (rcode::NXRRSET, "prerequisite: RRset differs");

/// The answer code of a failed prerequisite (RFC 2136 §3.2).
fn unmet(expect: &Expect) -> Outcome {
    match expect {
        Expect::NameInUse => (rcode::NXDOMAIN, "prerequisite: name not in use"),
        Expect::NameNotInUse => (rcode::YXDOMAIN, "prerequisite: name in use"),
        Expect::TxtExists => (rcode::NXRRSET, "prerequisite: RRset does not exist"),
        Expect::TxtIs(_) => RRSET_DIFFERS,
        Expect::TxtAbsent => (rcode::YXRRSET, "prerequisite: RRset exists"),
    }
}

/// The prerequisite section, read.
struct Prerequisites {
    /// Conditions on nodes, for the store.
    conditions: Vec<Condition>,
    /// Every node a prerequisite reads, for the scope check.
    reads: Vec<NodeLabel>,
    /// The SOA serial the zone must have, for the store.
    serial: Option<u32>,
}

/// What a name of an UPDATE is.
enum Owner {
    /// A name of the zone file (the apex included), or one below it.
    Static(Vec<u8>),
    /// A node's name.
    Node(NodeLabel),
    /// Any other name of the zone: it has no records and cannot get any.
    Other,
}

/// The names of one zone, to classify the names of a message.
struct Names<'a> {
    zone: &'a ZoneSnapshot,
    file: &'a StaticZone,
    static_names: &'a KeySet,
}

impl Names<'_> {
    /// Classifies `name`; NOTZONE when it is outside the zone (§3.2.1, §3.4.1.3).
    fn owner(&self, name: &Name) -> Result<Owner, Outcome> {
        let name = name.to_lowercase();
        if !self.zone.apex.zone_of(&name) {
            return Err((rcode::NOTZONE, "a name is outside the zone"));
        }
        let key = relative_key(&name, &self.zone.apex);
        if self.static_names.contains(&key[..]) {
            return Ok(Owner::Static(key));
        }
        if name.num_labels() == self.zone.apex.num_labels() + 1 {
            let label = String::from_utf8_lossy(&key[1..]);
            if let Ok(node) = NodeLabel::parse(&label) {
                return Ok(Owner::Node(node));
            }
        }
        // Below a zone-file name other than the apex (its records decide), or a name that no
        // node can have.
        let mut up = name.base_name();
        while up.num_labels() > self.zone.apex.num_labels() {
            if self
                .static_names
                .contains(&relative_key(&up, &self.zone.apex)[..])
            {
                return Ok(Owner::Static(key));
            }
            up = up.base_name();
        }
        Ok(Owner::Other)
    }

    /// Reads the prerequisite section (§3.2): decides those on zone-file names now and returns
    /// those on nodes as conditions for the store, with every node a prerequisite reads (for
    /// the scope check).
    fn prerequisites(&self, records: &[Record]) -> Result<Prerequisites, Outcome> {
        let mut conditions = Vec::new();
        let mut reads = Vec::new();
        let mut serial = None;
        // §3.2.3: value-dependent prerequisites are compared as whole RRsets.
        let mut values: Vec<(Name, RecordType, Vec<&RData>)> = Vec::new();
        for rr in records {
            if rr.ttl != 0 {
                return Err((rcode::FORMERR, "a prerequisite has a TTL"));
            }
            let rtype = rr.record_type();
            let empty = matches!(rr.data, RData::Update0(_));
            let owner = self.owner(&rr.name)?;
            let expect = match (rr.dns_class, rtype) {
                (DNSClass::ANY, _) | (DNSClass::NONE, _) if !empty => {
                    return Err((
                        rcode::FORMERR,
                        "a prerequisite of class ANY or NONE has data",
                    ));
                }
                (DNSClass::ANY, RecordType::ANY) => Expect::NameInUse,
                (DNSClass::NONE, RecordType::ANY) => Expect::NameNotInUse,
                (DNSClass::ANY, _) => Expect::TxtExists,
                (DNSClass::NONE, _) => Expect::TxtAbsent,
                (DNSClass::IN, RecordType::ANY | RecordType::AXFR | RecordType::IXFR) => {
                    return Err((rcode::FORMERR, "a prerequisite has a meta type"));
                }
                (DNSClass::IN, _) if empty => {
                    return Err((rcode::FORMERR, "a value prerequisite has no data"));
                }
                (DNSClass::IN, _) => {
                    let name = rr.name.to_lowercase();
                    match values
                        .iter_mut()
                        .find(|(n, t, _)| *n == name && *t == rtype)
                    {
                        Some((_, _, set)) => set.push(&rr.data),
                        None => values.push((name, rtype, vec![&rr.data])),
                    }
                    continue;
                }
                _ => return Err((rcode::FORMERR, "a prerequisite has a bad class")),
            };
            match owner {
                Owner::Node(node) if rtype == RecordType::TXT || rtype == RecordType::ANY => {
                    conditions.push(Condition { node, expect })
                }
                // A node has a TXT record only: other types are absent.
                Owner::Node(node) => {
                    if expect == Expect::TxtExists {
                        return Err(unmet(&expect));
                    }
                    reads.push(node);
                }
                Owner::Static(key) => {
                    let entry = self.zone.lookup(&key).filter(|e| !e.is_empty());
                    let holds = match (&expect, rtype) {
                        (Expect::NameInUse, _) => entry.is_some(),
                        (Expect::NameNotInUse, _) => entry.is_none(),
                        (Expect::TxtExists, t) => entry.is_some_and(|e| e.rrset(t).is_some()),
                        (_, t) => entry.is_none_or(|e| e.rrset(t).is_none()),
                    };
                    if !holds {
                        return Err(unmet(&expect));
                    }
                }
                Owner::Other => {
                    if matches!(expect, Expect::NameInUse | Expect::TxtExists) {
                        return Err(unmet(&expect));
                    }
                }
            }
        }
        for (name, rtype, set) in values {
            match self.owner(&name)? {
                Owner::Node(node) => {
                    let text = match (rtype, set.as_slice()) {
                        (RecordType::TXT, [RData::TXT(txt)]) => match &*txt.txt_data {
                            [one] => String::from_utf8(one.to_vec()).ok(),
                            _ => None,
                        },
                        _ => None,
                    };
                    match text {
                        Some(text) => conditions.push(Condition {
                            node,
                            expect: Expect::TxtIs(text),
                        }),
                        // No node RRset can equal it.
                        None => return Err(RRSET_DIFFERS),
                    }
                }
                // The SOA: its serial moves with every change, so the writer compares it, in
                // the change's transaction; the rest of it is the zone file's.
                Owner::Static(_) if rtype == RecordType::SOA && name == self.file.apex => {
                    match set.as_slice() {
                        [RData::SOA(soa)] if self.soa_is(soa) => serial = Some(soa.serial),
                        _ => return Err(RRSET_DIFFERS),
                    }
                }
                Owner::Static(_) => {
                    if !self.static_rrset_is(&name, rtype, &set) {
                        return Err(RRSET_DIFFERS);
                    }
                }
                Owner::Other => return Err(RRSET_DIFFERS),
            }
        }
        Ok(Prerequisites {
            conditions,
            reads,
            serial,
        })
    }

    /// Whether the zone file's RRset `name`/`rtype` is exactly `want` (as a set).
    fn static_rrset_is(&self, name: &Name, rtype: RecordType, want: &[&RData]) -> bool {
        let have: &[RData] = self
            .file
            .rrsets
            .get(name)
            .and_then(|sets| sets.iter().find(|s| s.rtype == rtype))
            .map_or(&[], |s| &s.rdatas);
        have.iter().all(|h| want.contains(&h)) && want.iter().all(|w| have.contains(w))
    }

    /// Whether `soa` is the zone's SOA but for the serial.
    fn soa_is(&self, soa: &SOA) -> bool {
        let mut file = self.file.soa.clone();
        file.serial = soa.serial;
        file == *soa
    }

    /// Reads the update section (§3.4.1 prescan, then Herald's rule: node TXT records only).
    /// Returns the nodes to publish and to remove, each node once, its last update winning.
    #[allow(clippy::type_complexity)]
    fn updates(
        &self,
        records: &[Record],
    ) -> Result<(Vec<(NodeLabel, Commit)>, Vec<NodeLabel>), Outcome> {
        // §3.4.1: the prescan, over every record, before anything else is decided.
        let mut owners = Vec::with_capacity(records.len());
        for rr in records {
            owners.push(self.owner(&rr.name)?);
            let rtype = rr.record_type();
            let empty = matches!(rr.data, RData::Update0(_));
            // AXFR, IXFR, MAILB (253) and MAILA (254) are never data; ANY only in deletes.
            let meta = matches!(u16::from(rtype), 251..=254);
            let any = rtype == RecordType::ANY;
            let ok = match rr.dns_class {
                DNSClass::IN => !meta && !any && !empty,
                DNSClass::ANY => !meta && rr.ttl == 0 && empty,
                DNSClass::NONE => !meta && !any && rr.ttl == 0,
                _ => false,
            };
            if !ok {
                return Err((
                    rcode::FORMERR,
                    "an update fails the prescan of RFC 2136 §3.4.1",
                ));
            }
        }
        let mut ops: Vec<(NodeLabel, Option<Commit>)> = Vec::new();
        for (rr, owner) in records.iter().zip(owners) {
            let rtype = rr.record_type();
            let Owner::Node(node) = owner else {
                return Err((rcode::REFUSED, "only node TXT records can be updated"));
            };
            let op = match (rr.dns_class, rtype, &rr.data) {
                (DNSClass::IN, RecordType::TXT, RData::TXT(txt)) => {
                    let [one] = &*txt.txt_data else {
                        return Err((rcode::REFUSED, "a node TXT record is one string"));
                    };
                    let text = std::str::from_utf8(one)
                        .map_err(|_| (rcode::REFUSED, "the TXT content is not text"))?;
                    let commit = Commit::from_content(text)
                        .map_err(|_| (rcode::REFUSED, "the TXT content names no valid commit"))?;
                    Some(commit)
                }
                (DNSClass::ANY, RecordType::TXT | RecordType::ANY, _)
                | (DNSClass::NONE, RecordType::TXT, _) => None,
                _ => return Err((rcode::REFUSED, "only node TXT records can be updated")),
            };
            match ops.iter_mut().find(|(n, _)| *n == node) {
                Some((_, slot)) => *slot = op,
                None => ops.push((node, op)),
            }
        }
        let mut set = Vec::new();
        let mut delete = Vec::new();
        for (node, op) in ops {
            match op {
                Some(commit) => set.push((node, commit)),
                None => delete.push(node),
            }
        }
        Ok((set, delete))
    }
}

/// Each zone's file and the keys of its names.
fn file_index(files: &[StaticZone]) -> HashMap<String, (StaticZone, KeySet)> {
    files
        .iter()
        .map(|f| (f.name.clone(), (f.clone(), static_keys(f))))
        .collect()
}

/// The answer to an UPDATE when Herald takes none: NOTIMP (RFC 2136 §3.1).
pub fn not_implemented(msg: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    error_answer(msg, rcode::NOTIMP, &mut out);
    Some(out)
}
