//! The node side: ask for this node's record, validate it locally, and act on a new seq.
//!
//! A check is one UDP query (`<node>.<zone> TXT` with the DO bit) and one answer, over TCP only
//! when the answer is truncated. It goes to a list of targets in order: authoritative servers
//! (primaries, secondaries, anycast addresses) or recursive resolvers. Whoever answers, the
//! answer is validated here, from a trust anchor, never taken on a resolver's word:
//!
//! - the zone's DNSKEY RRset, validated by a trusted key, fetched again only when the RFC 5011
//!   probe is due (an hour or more apart) or when an answer is signed by a key not seen yet;
//!   the trusted keys follow the zone's key rollovers by RFC 5011 ([`trust`]), so the anchor
//!   file is only the bootstrap;
//! - the RRSIG over the TXT RRset, with that RRset's zone keys;
//! - inception and expiration against the local clock, with a skew allowance;
//! - NSEC or NSEC3 proof for "no such record";
//! - the seq against the one already applied (a lower one is a replay);
//! - the signature's age against `max_age` (an old one means the server stopped refreshing).
//!
//! Any failure moves on to the next target, and a failure is never taken for "no update".
//!
//! - [`anchor`] reads trust anchors; [`transport`] does one exchange; [`validate`] and
//!   [`denial`] check an answer; [`trust`] tracks the zone's keys (RFC 5011); [`check`] tries
//!   the targets; [`state`] keeps the applied seq and the trust state; [`watch`] is the loop
//!   behind `herald watch`.
//!
//! # Example
//!
//! Embedding a check in another program:
//!
//! ```no_run
//! use std::time::Duration;
//! use herald::client::{CheckConfig, Checker, Outcome, Target, TrustAnchors, TrustState};
//! use herald::record::{Clock, NodeLabel, SystemClock};
//! use hickory_proto::rr::Name;
//!
//! let zone = Name::from_ascii("example.test.")?;
//! let config = CheckConfig {
//!     targets: vec![Target { addr: "127.0.0.1:5353".parse()?, recursive: false }],
//!     anchors: TrustAnchors::load("anchor.key".as_ref(), &zone)?,
//!     zone,
//!     node: NodeLabel::parse("n1")?,
//!     timeout: Duration::from_secs(2),
//!     max_age: Duration::from_secs(8 * 86_400),
//!     skew: Duration::from_secs(300),
//!     holddown: Duration::from_secs(30 * 86_400),
//! };
//! let checker = Checker::new(config);
//! // Keep the trust state between checks (and across restarts: `state::update`, which also
//! // locks the state file), or every check fetches the DNSKEY RRset and no new key ever
//! // outlasts the hold-down.
//! let mut trust = TrustState::default();
//! let report = checker.check(None, &mut trust, SystemClock.now());
//! for change in &report.trust_changes {
//!     println!("{change}");
//! }
//! match report.outcome {
//!     Outcome::Found { commit, seq, .. } => println!("run {commit} (seq {seq})"),
//!     Outcome::NoRecord => println!("nothing published for this node"),
//!     other => eprintln!("no trustworthy answer: {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod anchor;
pub mod check;
pub mod denial;
pub mod parent;
pub mod report;
pub mod state;
#[cfg(test)]
pub mod testing;
pub mod transport;
pub mod trust;
pub mod validate;
pub mod watch;

pub use anchor::TrustAnchors;
pub use check::{Attempt, CheckConfig, Checker, Outcome, Report, Target};
pub use trust::TrustState;
