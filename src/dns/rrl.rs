//! Response rate limiting (RRL), as NSD and Knot have it: off by default.
//!
//! A spoofed query makes Herald send its answer to the victim whose address was forged; RRL
//! caps the UDP answers that one client prefix (an IPv4 /24, an IPv6 /56) gets per second, so
//! Herald cannot be used to flood anyone. NXDOMAIN answers have a limit of their own, lower by
//! default: random-name floods are the usual way to make an authoritative server work hard.
//! Past the limit an answer is dropped, except every `slip`-th one, which goes out truncated
//! (TC, no records): a real client behind that prefix retries over TCP, which cannot be
//! spoofed. A client that proves its address with a valid DNS cookie ([`super::cookie`]) is
//! never limited; a cookie-aware client whose cookie is stale gets BADCOOKIE with a fresh one
//! instead of the truncated answer. TCP answers are never limited.
//!
//! The defaults are sized for NAT: 20,000 nodes behind one address polling once a minute ask
//! 333 times a second, well under [`Limits::default`]'s 1,000 answers and 500 NXDOMAINs.
//!
//! The table is a fixed array of [`TABLE_SIZE`] atomic words indexed by a hash of the prefix,
//! each holding a tag of the prefix, the second it counts and the count: no lock, no
//! allocation, one compare-and-swap per answer. Two prefixes that meet in one slot take it
//! from each other, which can only let a few more answers through, never hold back fewer.
//! Counting is per whole second, so a prefix may get up to twice its rate across a second's
//! edge, as in NSD.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Slots in the table (a power of two): 512 KiB.
pub const TABLE_SIZE: usize = 1 << 16;

/// The limits, per client prefix and second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Answers of every kind (NXDOMAIN aside).
    pub rate: u32,
    /// NXDOMAIN answers.
    pub nxdomain_rate: u32,
    /// Every `slip`-th answer held back goes out truncated; 0 drops them all, 1 truncates all.
    pub slip: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rate: 1000,
            nxdomain_rate: 500,
            slip: 2,
        }
    }
}

/// What to do with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send it truncated (or BADCOOKIE, to a client that sent a cookie).
    Slip,
    Drop,
}

/// The rate limiter: shared by every UDP thread.
#[derive(Debug)]
pub struct Rrl {
    limits: Limits,
    table: Box<[AtomicU64]>,
    hasher: foldhash::fast::FixedState,
    /// Answers held back so far, for the slip.
    held: AtomicU32,
}

const COUNT_BITS: u32 = 28;
const SECOND_BITS: u32 = 12;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const SECOND_MASK: u64 = (1 << SECOND_BITS) - 1;

impl Rrl {
    pub fn new(limits: Limits) -> Self {
        let mut seed = [0u8; 8];
        // A seed the senders cannot know, so they cannot aim at one slot.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        Self {
            limits,
            table: (0..TABLE_SIZE).map(|_| AtomicU64::new(0)).collect(),
            hasher: foldhash::fast::FixedState::with_seed(u64::from_le_bytes(seed)),
            held: AtomicU32::new(0),
        }
    }

    /// Counts an answer to `ip` (`nxdomain` when its RCODE is NXDOMAIN) in the second `now`,
    /// and says whether it may go.
    pub fn check(&self, ip: IpAddr, nxdomain: bool, now: u32) -> Verdict {
        let limit = if nxdomain {
            self.limits.nxdomain_rate
        } else {
            self.limits.rate
        };
        let hash = self.hasher.hash_one((prefix_of(ip), nxdomain));
        let slot = &self.table[hash as usize & (TABLE_SIZE - 1)];
        // The tag: the hash's top bits, which the index does not use.
        let tag = hash >> (COUNT_BITS + SECOND_BITS);
        let second = u64::from(now) & SECOND_MASK;
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let same = current >> (COUNT_BITS + SECOND_BITS) == tag
                && (current >> COUNT_BITS) & SECOND_MASK == second;
            let count = if same { current & COUNT_MASK } else { 0 };
            if count >= u64::from(limit) {
                return self.hold();
            }
            let next = (tag << (COUNT_BITS + SECOND_BITS)) | (second << COUNT_BITS) | (count + 1);
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Verdict::Send,
                Err(seen) => current = seen,
            }
        }
    }

    /// An answer over the limit: every `slip`-th is truncated, the rest dropped.
    fn hold(&self) -> Verdict {
        match self.limits.slip {
            0 => Verdict::Drop,
            1 => Verdict::Slip,
            n => {
                if self.held.fetch_add(1, Ordering::Relaxed).is_multiple_of(n) {
                    Verdict::Slip
                } else {
                    Verdict::Drop
                }
            }
        }
    }
}

/// The client's prefix: the /24 of an IPv4 address, the /56 of an IPv6 one, tagged by family.
fn prefix_of(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(u32::from(v4) & 0xFFFF_FF00),
        IpAddr::V6(v6) => (u128::from(v6) & !((1u128 << 72) - 1)) | 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn count(rrl: &Rrl, from: &str, nx: bool, now: u32, n: usize) -> [usize; 3] {
        let mut seen = [0; 3];
        for _ in 0..n {
            seen[match rrl.check(ip(from), nx, now) {
                Verdict::Send => 0,
                Verdict::Slip => 1,
                Verdict::Drop => 2,
            }] += 1;
        }
        seen
    }

    #[test]
    fn a_prefix_gets_its_rate_per_second_and_every_second_held_answer_slips() {
        let rrl = Rrl::new(Limits {
            rate: 100,
            nxdomain_rate: 10,
            slip: 2,
        });
        assert_eq!(count(&rrl, "192.0.2.1", false, 7, 300), [100, 100, 100]);
        // The whole /24 shares it; the next /24 and an IPv6 client have their own.
        assert_eq!(count(&rrl, "192.0.2.200", false, 7, 10), [0, 5, 5]);
        assert_eq!(count(&rrl, "192.0.3.1", false, 7, 100), [100, 0, 0]);
        assert_eq!(count(&rrl, "2001:db8:0:ff::1", false, 7, 100)[0], 100);
        assert_eq!(
            count(&rrl, "2001:db8:0:1::1", false, 7, 10)[0],
            0,
            "same /56"
        );
        assert_eq!(count(&rrl, "2001:db8:0:100::1", false, 7, 10)[0], 10);
        // NXDOMAIN has its own, lower limit.
        assert_eq!(count(&rrl, "192.0.2.1", true, 7, 20)[0], 10);
        // The next second starts again.
        assert_eq!(count(&rrl, "192.0.2.1", false, 8, 150)[0], 100);
        // IPv4-mapped IPv6 is the IPv4 client.
        assert_eq!(count(&rrl, "::ffff:192.0.2.9", false, 8, 5)[0], 0);
    }

    #[test]
    fn slip_zero_drops_all_and_one_truncates_all() {
        for (slip, want) in [(0, [5, 0, 10]), (1, [5, 10, 0]), (3, [5, 4, 6])] {
            let rrl = Rrl::new(Limits {
                rate: 5,
                nxdomain_rate: 5,
                slip,
            });
            assert_eq!(
                count(&rrl, "198.51.100.1", false, 1, 15),
                want,
                "slip {slip}"
            );
        }
    }

    #[test]
    fn threads_together_never_exceed_the_rate() {
        let rrl = std::sync::Arc::new(Rrl::new(Limits {
            rate: 1000,
            ..Limits::default()
        }));
        let sent: usize = (0..4)
            .map(|_| {
                let rrl = rrl.clone();
                std::thread::spawn(move || count(&rrl, "203.0.113.9", false, 42, 2000)[0])
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(sent, 1000);
    }
}
