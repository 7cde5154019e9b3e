//! The table of open TCP connections, and what keeps one client from filling it (RFC 7766
//! §6.2.3, and what NSD and Knot do).
//!
//! - **Per address and per prefix:** at most [`PER_ADDRESS`] connections from one address (an
//!   IPv6 /64 counts as one) and [`PER_PREFIX`] from one /24 (IPv4) or /56 (IPv6). A new one
//!   beyond either closes the idlest of its own address or prefix, so a flood from one network
//!   cannot shut out the others, and a flood from one address cannot take its neighbours'
//!   share of the prefix. (Many prefixes together can fill the table; then the idlest goes.)
//! - **When full,** the idlest connection of the prefix that holds the most slots is closed to
//!   make room, never the newest: many networks flooding together each give up their own
//!   first, and a client from a quiet network keeps its slot however long it takes to ask.
//!   A connection serving a zone transfer is never chosen, so secondaries keep their slots.
//! - **Secondaries' addresses** (those `--allow-transfer` admits) are outside the per-address
//!   and per-prefix shares: a flood from their network cannot close them or keep them out.
//! - **The idle timeout shrinks as the table fills:** from [`IDLE_TIMEOUT`] when empty to
//!   [`MIN_IDLE`] when full.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Connections idle this long are closed while the table is nearly empty.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The idle timeout when the table is full.
pub const MIN_IDLE: Duration = Duration::from_millis(500);
/// At most this many TCP connections at once.
pub const MAX_CONNECTIONS: usize = 512;
/// At most this many from one /24 or /56.
pub const PER_PREFIX: usize = 64;
/// At most this many from one address: a quarter of its prefix's share.
pub const PER_ADDRESS: usize = 16;

/// One open connection, as the table and the connection's task share it.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    addr: u128,
    prefix: u128,
    /// From an address `--allow-transfer` admits: outside the address and prefix shares.
    trusted: bool,
    /// Milliseconds since the table's start when the connection last read a message.
    active: AtomicU64,
    /// Set while it serves a zone transfer: never evicted then.
    transfer: AtomicBool,
    /// Cancelled to evict it.
    pub evicted: CancellationToken,
}

impl Conn {
    /// The connection read a message now.
    pub fn touch(&self, table: &Table) {
        self.active.store(table.now_ms(), Ordering::Relaxed);
    }

    /// It serves (or stopped serving) a zone transfer, or waits for an UPDATE to be applied.
    pub fn transferring(&self, on: bool) {
        self.transfer.store(on, Ordering::Relaxed);
    }
}

/// The open connections.
#[derive(Debug)]
pub struct Table {
    start: Instant,
    open: AtomicUsize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    conns: HashMap<u64, Arc<Conn>>,
    prefixes: HashMap<u128, usize>,
    addrs: HashMap<u128, usize>,
}

/// Which of a connection's groups an eviction chooses from.
#[derive(Clone, Copy)]
enum Among {
    Address(u128),
    Prefix(u128),
    /// The prefixes that hold the most slots (every untrusted one when they tie).
    Heaviest,
    All,
}

/// The keys of a peer: its "address" (an IPv4 address, or an IPv6 /64, which one host
/// usually holds whole) and its prefix (the /24 or the /56), each one number. The low two bits
/// (zero in an IPv4 key shifted left, and in every IPv6 /64 or /56) tag the family and kind,
/// so that no two kinds of key collide.
fn keys_of(ip: IpAddr) -> (u128, u128) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let v4 = u32::from(v4);
            (u128::from(v4) << 2, (u128::from(v4 & 0xFFFF_FF00) << 2) | 1)
        }
        IpAddr::V6(v6) => {
            let v6 = u128::from(v6);
            (
                (v6 & !((1u128 << 64) - 1)) | 2,
                (v6 & !((1u128 << 72) - 1)) | 3,
            )
        }
    }
}

impl Default for Table {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            open: AtomicUsize::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }
}

impl Table {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The idle timeout now: shorter the fuller the table.
    pub fn idle_timeout(&self) -> Duration {
        let open = self.open.load(Ordering::Relaxed).min(MAX_CONNECTIONS);
        let free = (MAX_CONNECTIONS - open) as u32;
        let span = IDLE_TIMEOUT - MIN_IDLE;
        MIN_IDLE + span * free / MAX_CONNECTIONS as u32
    }

    /// Takes a connection from `peer`. When its address or its prefix has its share, the
    /// idlest connection of that address or prefix makes room; when the table is full, the
    /// idlest of all does. A connection serving a transfer is never chosen: `None` when
    /// nothing can go.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, trusted: bool) -> Option<Guard> {
        let (addr, prefix) = keys_of(peer);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !trusted && inner.addrs.get(&addr).copied().unwrap_or(0) >= PER_ADDRESS {
            self.evict_idlest(&mut inner, Among::Address(addr))?;
        }
        if !trusted && inner.prefixes.get(&prefix).copied().unwrap_or(0) >= PER_PREFIX {
            self.evict_idlest(&mut inner, Among::Prefix(prefix))?;
        }
        if inner.conns.len() >= MAX_CONNECTIONS {
            self.evict_idlest(&mut inner, Among::Heaviest)
                .or_else(|| self.evict_idlest(&mut inner, Among::All))?;
        }
        inner.next += 1;
        let conn = Arc::new(Conn {
            id: inner.next,
            addr,
            prefix,
            trusted,
            active: AtomicU64::new(self.now_ms()),
            transfer: AtomicBool::new(false),
            evicted: CancellationToken::new(),
        });
        inner.conns.insert(conn.id, conn.clone());
        if !trusted {
            *inner.prefixes.entry(prefix).or_default() += 1;
            *inner.addrs.entry(addr).or_default() += 1;
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        Some(Guard {
            table: self.clone(),
            conn,
        })
    }

    /// Closes the connection of the group that read its last message longest ago, leaving
    /// transfers alone. A scan of at most [`MAX_CONNECTIONS`], only when a share is used up.
    fn evict_idlest(&self, inner: &mut Inner, among: Among) -> Option<()> {
        // Only a full table asks which prefix holds the most.
        let heaviest = match among {
            Among::Heaviest => inner.prefixes.values().copied().max().unwrap_or(0),
            _ => 0,
        };
        let idlest = inner
            .conns
            .values()
            .filter(|c| match among {
                Among::Address(a) => c.addr == a && !c.trusted,
                Among::Prefix(p) => c.prefix == p && !c.trusted,
                Among::Heaviest => !c.trusted && inner.prefixes.get(&c.prefix) == Some(&heaviest),
                Among::All => true,
            })
            .filter(|c| !c.transfer.load(Ordering::Relaxed))
            .min_by_key(|c| c.active.load(Ordering::Relaxed))
            .cloned()?;
        idlest.evicted.cancel();
        Self::forget(inner, &idlest);
        self.open.fetch_sub(1, Ordering::Relaxed);
        Some(())
    }

    fn forget(inner: &mut Inner, conn: &Conn) {
        if inner.conns.remove(&conn.id).is_none() || conn.trusted {
            return;
        }
        for (counts, key) in [
            (&mut inner.prefixes, conn.prefix),
            (&mut inner.addrs, conn.addr),
        ] {
            if let Some(n) = counts.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&key);
                }
            }
        }
    }

    /// Open connections.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// A connection's place in the table, given back when dropped.
#[derive(Debug)]
pub struct Guard {
    table: Arc<Table>,
    pub conn: Arc<Conn>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut inner = self.table.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.conns.contains_key(&self.conn.id) {
            Table::forget(&mut inner, &self.conn);
            self.table.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_prefix_past_its_share_makes_room_from_its_own_idlest() {
        let table = Arc::new(Table::default());
        let mut mine: Vec<Guard> = (0..PER_PREFIX)
            .map(|i| {
                let g = table
                    .admit_untrusted(ip(&format!("192.0.2.{}", i % 250)))
                    .unwrap();
                g.conn.active.store(1000 + i as u64, Ordering::Relaxed);
                g
            })
            .collect();
        let other = table.admit_untrusted(ip("198.51.100.1")).unwrap();
        other.conn.active.store(0, Ordering::Relaxed); // idlest of all, but another /24
        // The /24 is at its share: its idlest goes, not the other network's, not the newest.
        mine[0].conn.transferring(true);
        let newcomer = table.admit_untrusted(ip("192.0.2.77")).unwrap();
        assert!(!other.conn.evicted.is_cancelled());
        assert!(
            !mine[0].conn.evicted.is_cancelled(),
            "a transfer keeps its slot"
        );
        assert!(mine[1].conn.evicted.is_cancelled());
        assert!(mine[2..].iter().all(|g| !g.conn.evicted.is_cancelled()));
        assert_eq!(table.len(), PER_PREFIX + 1);
        // All of a prefix transferring: nothing can go, and the newcomer is refused.
        let full: Vec<Guard> = (0..PER_PREFIX)
            .map(|i| {
                let g = table
                    .admit_untrusted(ip(&format!("2001:db8:0:1{i:02x}::1")))
                    .unwrap();
                g.conn.transferring(true);
                g
            })
            .collect();
        assert!(
            table.admit_untrusted(ip("2001:db8:0:1ff::9")).is_none(),
            "same /56"
        );
        assert!(
            table.admit_untrusted(ip("2001:db8:0:200::1")).is_some(),
            "another /56"
        );
        drop(full);
        mine.clear();
        drop(newcomer);
        assert_eq!(table.len(), 1, "slots come back, evicted ones counted once");
    }

    impl Table {
        fn admit_untrusted(self: &Arc<Self>, peer: IpAddr) -> Option<Guard> {
            self.admit(peer, false)
        }
    }

    #[test]
    fn a_secondarys_address_is_outside_the_shares() {
        let table = Arc::new(Table::default());
        let secondary: Vec<Guard> = (0..PER_ADDRESS * 2)
            .map(|_| table.admit(ip("192.0.2.53"), true).unwrap())
            .collect();
        // Its neighbours flood the /24, and even its own address, untrusted.
        let flood: Vec<Guard> = (0..PER_PREFIX * 4)
            .map(|i| {
                table
                    .admit_untrusted(ip(&format!("192.0.2.{}", i % 250)))
                    .unwrap()
            })
            .collect();
        assert!(secondary.iter().all(|g| !g.conn.evicted.is_cancelled()));
        let live = flood
            .iter()
            .filter(|g| !g.conn.evicted.is_cancelled())
            .count();
        assert_eq!(live, PER_PREFIX, "the flood keeps its share and no more");
        assert_eq!(table.len(), PER_ADDRESS * 2 + PER_PREFIX);
        drop(flood);
        drop(secondary);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn one_address_cannot_take_its_neighbours_share() {
        // Started ten seconds ago, so that newcomers are "active" after the flood set below.
        let table = Arc::new(Table {
            start: Instant::now() - Duration::from_secs(10),
            ..Table::default()
        });
        let neighbour = table.admit_untrusted(ip("192.0.2.1")).unwrap();
        neighbour.conn.active.store(0, Ordering::Relaxed); // the idlest of all
        let flood: Vec<Guard> = (0..PER_ADDRESS)
            .map(|i| {
                let g = table.admit_untrusted(ip("192.0.2.2")).unwrap();
                g.conn.active.store(1000 + i as u64, Ordering::Relaxed);
                g
            })
            .collect();
        // A thousand more from the flooding address: each closes the flood's own idlest.
        let newest: Vec<Guard> = (0..1000)
            .map(|_| table.admit_untrusted(ip("192.0.2.2")).unwrap())
            .collect();
        assert!(flood.iter().all(|g| g.conn.evicted.is_cancelled()));
        assert!(!neighbour.conn.evicted.is_cancelled());
        let still = newest.iter().filter(|g| !g.conn.evicted.is_cancelled());
        assert_eq!(still.count(), PER_ADDRESS);
        assert_eq!(table.len(), PER_ADDRESS + 1);
        // No two kinds of key collide; one IPv6 /64 is one address.
        let (a4, p4) = keys_of(ip("0.0.0.0"));
        let (a6, p6) = keys_of(ip("::"));
        assert_eq!(
            [a4, p4, a6, p6]
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            4
        );
        assert_eq!(
            keys_of(ip("2001:db8::1")).0,
            keys_of(ip("2001:db8::ffff:1")).0
        );
        assert_ne!(
            keys_of(ip("2001:db8::1")).0,
            keys_of(ip("2001:db8:0:1::1")).0
        );
    }

    #[test]
    fn a_full_table_evicts_from_the_prefix_that_holds_the_most() {
        let table = Arc::new(Table::default());
        // A lone client from a quiet /24, the idlest of all (it is slow to ask).
        let quiet = table.admit_untrusted(ip("198.51.100.7")).unwrap();
        quiet.conn.active.store(0, Ordering::Relaxed);
        // Many networks fill the rest, one of them with more than the others.
        let mut flood = Vec::new();
        for i in 0..MAX_CONNECTIONS - 1 {
            let net = if i < PER_PREFIX {
                0
            } else {
                1 + i / (PER_PREFIX / 2)
            };
            let g = table
                .admit_untrusted(ip(&format!("10.0.{net}.{}", i % PER_PREFIX)))
                .unwrap();
            g.conn.active.store(1000 + i as u64, Ordering::Relaxed);
            flood.push(g);
        }
        assert_eq!(table.len(), MAX_CONNECTIONS);
        let newcomer = table.admit_untrusted(ip("203.0.113.1")).unwrap();
        assert!(!quiet.conn.evicted.is_cancelled(), "the quiet client stays");
        assert!(
            flood[0].conn.evicted.is_cancelled(),
            "the heaviest /24 gives up its idlest"
        );
        assert!(flood[1..].iter().all(|g| !g.conn.evicted.is_cancelled()));
        drop(newcomer);
    }

    #[test]
    fn a_full_table_evicts_the_idlest_but_never_a_transfer() {
        let table = Arc::new(Table::default());
        let mut guards = Vec::new();
        for i in 0..MAX_CONNECTIONS {
            // Each from its own /24, so the per-prefix cap does not interfere.
            let g = table
                .admit_untrusted(ip(&format!("10.{}.{}.1", i / 256, i % 256)))
                .unwrap();
            g.conn.active.store(1000 + i as u64, Ordering::Relaxed);
            guards.push(g);
        }
        assert_eq!(table.len(), MAX_CONNECTIONS);
        assert_eq!(table.idle_timeout(), MIN_IDLE);
        // The idlest (the first) serves a transfer: the next idlest goes.
        guards[0].conn.transferring(true);
        let newcomer = table.admit_untrusted(ip("203.0.113.1")).unwrap();
        assert!(!guards[0].conn.evicted.is_cancelled());
        assert!(guards[1].conn.evicted.is_cancelled());
        assert_eq!(table.len(), MAX_CONNECTIONS);
        drop(guards);
        assert_eq!(table.len(), 1);
        assert!(table.idle_timeout() > IDLE_TIMEOUT - Duration::from_millis(100));
        drop(newcomer);
        assert_eq!(table.len(), 0);
    }
}
