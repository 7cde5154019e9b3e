//! The names of an NSEC chain in canonical order (RFC 4034 §6.1), packed.
//!
//! The chain holds every name of the zone, a million of them for a million nodes, and the
//! entries already hold each name once more. So the chain stores its names as bytes, one after
//! the other, with four bytes to say where each ends: about 12 bytes for a node name like
//! `n123456`, where an inline key slot ([`CanonKey`]) takes 24 and a longer name a shared
//! allocation besides. The structure is the two levels of [`super::sorted::SortedMap`]: an array
//! of chunks, each up to [`MAX_KEYS`] names, both behind `Arc`s, so a new snapshot copies the
//! chunk array and the one chunk a change touches and shares the rest. A lookup is two binary
//! searches and allocates nothing.

use std::cmp::Ordering;
use std::sync::Arc;

use super::canon::{CanonKey, canonical_cmp};

/// A chunk that grows past this splits in two.
const MAX_KEYS: usize = 1024;
/// How full [`NameOrder::from_sorted`] fills its chunks, leaving room for inserts.
const FILL: usize = MAX_KEYS * 3 / 4;

/// Names packed back to back: name `i` is `bytes[ends[i - 1]..ends[i]]` (from 0 for the first).
#[derive(Debug, Default)]
struct Packed {
    ends: Vec<u32>,
    bytes: Vec<u8>,
}

impl Packed {
    fn len(&self) -> usize {
        self.ends.len()
    }

    #[inline]
    fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    /// The number of names `n` for which `pred(n)` holds; they must come first.
    #[inline]
    fn partition(&self, pred: impl Fn(&[u8]) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if pred(self.key(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Names `range` of this chunk, with `extra` inserted at `at` (relative to the range's
    /// start) when given, sized exactly.
    fn copy(&self, range: std::ops::Range<usize>, extra: Option<(usize, &[u8])>) -> Packed {
        let bytes_of = |r: &std::ops::Range<usize>| {
            let start = if r.start == 0 {
                0
            } else {
                self.ends[r.start - 1] as usize
            };
            let end = if r.end == 0 {
                0
            } else {
                self.ends[r.end - 1] as usize
            };
            end - start
        };
        let extra_len = extra.map_or(0, |(_, k)| k.len());
        let mut out = Packed {
            ends: Vec::with_capacity(range.len() + usize::from(extra.is_some())),
            bytes: Vec::with_capacity(bytes_of(&range) + extra_len),
        };
        for (n, i) in range.enumerate() {
            if let Some((at, k)) = extra
                && at == n
            {
                out.push(k);
            }
            out.push(self.key(i));
        }
        if let Some((at, k)) = extra
            && at == out.len()
        {
            out.push(k);
        }
        out
    }

    fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len() as u32);
    }
}

#[derive(Debug, Clone)]
struct Chunk {
    /// The chunk's smallest name, kept beside the pointer so the first search touches no chunk.
    first: CanonKey,
    names: Arc<Packed>,
}

impl Chunk {
    fn new(names: Packed) -> Self {
        Self {
            first: CanonKey::new(names.key(0)),
            names: Arc::new(names),
        }
    }
}

/// A set of relative names (lowercase wire-format labels, the apex empty) in canonical order,
/// with structure sharing between copies.
#[derive(Debug, Clone, Default)]
pub struct NameOrder {
    chunks: Arc<Vec<Chunk>>,
    len: usize,
}

impl NameOrder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks whose first name is `before` `key` (`Less`, or `Less`/`Equal`).
    #[inline]
    fn chunks_before(&self, key: &[u8], strict: bool) -> usize {
        self.chunks.partition_point(|c| {
            let o = canonical_cmp(c.first.as_bytes(), key);
            o == Ordering::Less || (!strict && o == Ordering::Equal)
        })
    }

    /// The greatest name ≤ `key`. Allocates nothing.
    #[inline]
    pub fn get_prev(&self, key: &[u8]) -> Option<&[u8]> {
        let ci = self.chunks_before(key, false).checked_sub(1)?;
        let names = &self.chunks[ci].names;
        let i = names.partition(|k| canonical_cmp(k, key) != Ordering::Greater);
        // i ≥ 1: the chunk's first name is ≤ key.
        Some(names.key(i - 1))
    }

    /// The greatest name < `key`.
    pub fn get_before(&self, key: &[u8]) -> Option<&[u8]> {
        let ci = self.chunks_before(key, true).checked_sub(1)?;
        let names = &self.chunks[ci].names;
        let i = names.partition(|k| canonical_cmp(k, key) == Ordering::Less);
        Some(names.key(i - 1))
    }

    /// The smallest name > `key`.
    pub fn get_after(&self, key: &[u8]) -> Option<&[u8]> {
        self.iter_after(Some(key)).next()
    }

    pub fn first(&self) -> Option<&[u8]> {
        self.chunks.first().map(|c| c.names.key(0))
    }

    pub fn last(&self) -> Option<&[u8]> {
        self.chunks.last().map(|c| c.names.key(c.names.len() - 1))
    }

    /// Whether `key` is in the set.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.get_prev(key) == Some(key)
    }

    /// Names in order, starting after `after` (from the start when `None`).
    pub fn iter_after<'a>(&'a self, after: Option<&[u8]>) -> impl Iterator<Item = &'a [u8]> + 'a {
        let (ci, skip) = match after {
            Some(key) => match self.chunks_before(key, false).checked_sub(1) {
                Some(ci) => (
                    ci,
                    self.chunks[ci]
                        .names
                        .partition(|k| canonical_cmp(k, key) != Ordering::Greater),
                ),
                None => (0, 0),
            },
            None => (0, 0),
        };
        self.chunks
            .get(ci..)
            .into_iter()
            .flatten()
            .enumerate()
            .flat_map(move |(n, c)| {
                let names = &*c.names;
                (if n == 0 { skip } else { 0 }..names.len()).map(move |i| names.key(i))
            })
    }

    /// A set of `names`, which must be in strictly increasing canonical order (checked in debug
    /// builds), in chunks filled to three quarters: one pass at start.
    pub fn from_sorted<'k>(names: impl IntoIterator<Item = &'k [u8]>) -> Self {
        let mut chunks = Vec::new();
        let mut current = Packed::default();
        let mut len = 0;
        for name in names {
            if current.len() == FILL {
                chunks.push(Chunk::new(std::mem::take(&mut current).shrunk()));
            }
            current.push(name);
            len += 1;
        }
        if current.len() > 0 {
            chunks.push(Chunk::new(current.shrunk()));
        }
        let set = Self {
            chunks: Arc::new(chunks),
            len,
        };
        debug_assert!(
            set.iter_after(None)
                .zip(set.iter_after(None).skip(1))
                .all(|(a, b)| canonical_cmp(a, b) == Ordering::Less),
            "from_sorted was given names out of order"
        );
        set
    }

    /// Adds `key`; false when it was there already.
    pub fn insert(&mut self, key: &[u8]) -> bool {
        if self.chunks.is_empty() {
            let mut names = Packed::default();
            names.push(key);
            Arc::make_mut(&mut self.chunks).push(Chunk::new(names));
            self.len = 1;
            return true;
        }
        let ci = self.chunks_before(key, false).saturating_sub(1);
        let names = &self.chunks[ci].names;
        let i = names.partition(|k| canonical_cmp(k, key) == Ordering::Less);
        if i < names.len() && names.key(i) == key {
            return false;
        }
        let n = names.len();
        let replaced: Vec<Chunk> = if n + 1 > MAX_KEYS {
            let half = n.div_ceil(2); // of the n + 1 names, rounded down
            // The new name goes to whichever half its position falls in.
            let (a, b) = if i < half {
                (
                    names.copy(0..half - 1, Some((i, key))),
                    names.copy(half - 1..n, None),
                )
            } else {
                (
                    names.copy(0..half, None),
                    names.copy(half..n, Some((i - half, key))),
                )
            };
            vec![Chunk::new(a), Chunk::new(b)]
        } else {
            vec![Chunk::new(names.copy(0..n, Some((i, key))))]
        };
        Arc::make_mut(&mut self.chunks).splice(ci..=ci, replaced);
        self.len += 1;
        true
    }

    /// Removes `key`; false when it was not there. A missing name copies nothing.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let Some(ci) = self.chunks_before(key, false).checked_sub(1) else {
            return false;
        };
        let names = &self.chunks[ci].names;
        let i = names.partition(|k| canonical_cmp(k, key) == Ordering::Less);
        if i >= names.len() || names.key(i) != key {
            return false;
        }
        let n = names.len();
        let rest = (n > 1).then(|| {
            let mut rest = Packed {
                ends: Vec::with_capacity(n - 1),
                bytes: Vec::with_capacity(names.bytes.len() - key.len()),
            };
            for j in (0..n).filter(|&j| j != i) {
                rest.push(names.key(j));
            }
            rest
        });
        let chunks = Arc::make_mut(&mut self.chunks);
        match rest {
            Some(rest) => chunks[ci] = Chunk::new(rest),
            None => {
                chunks.remove(ci);
            }
        }
        self.len -= 1;
        true
    }
}

impl Packed {
    /// This, with no spare capacity.
    fn shrunk(mut self) -> Self {
        self.ends.shrink_to_fit();
        self.bytes.shrink_to_fit();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn names(order: &NameOrder) -> Vec<Vec<u8>> {
        order.iter_after(None).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn neighbours_in_canonical_order() {
        let keys: [&[u8]; 4] = [b"", b"\x01a", b"\x01b\x01a", b"\x01c"];
        let order = NameOrder::from_sorted(keys);
        assert_eq!(order.len(), 4);
        assert_eq!(order.first(), Some(&b""[..]));
        assert_eq!(order.last(), Some(&b"\x01c"[..]));
        // b.a sorts after a and before c (a name before the names below it).
        assert_eq!(order.get_prev(b"\x01z\x01a"), Some(&b"\x01b\x01a"[..]));
        assert_eq!(
            order.get_prev(b"\x01a"),
            Some(&b"\x01a"[..]),
            "≤ includes itself"
        );
        assert_eq!(order.get_before(b"\x01a"), Some(&b""[..]));
        assert_eq!(order.get_before(b""), None);
        assert_eq!(order.get_after(b"\x01a"), Some(&b"\x01b\x01a"[..]));
        assert_eq!(order.get_after(b"\x01c"), None);
        assert_eq!(
            order.get_after(b"\x02bb"),
            Some(&b"\x01c"[..]),
            "after a missing name"
        );
        assert!(order.contains(b"\x01b\x01a") && !order.contains(b"\x01b"));
        assert_eq!(
            order.iter_after(Some(b"\x01a")).collect::<Vec<_>>(),
            [&b"\x01b\x01a"[..], b"\x01c"]
        );
        assert!(NameOrder::new().get_prev(b"\x01a").is_none());
    }

    /// Inserts and removals in a shuffled order, against a `BTreeSet` in canonical order,
    /// through chunk splits and emptied chunks; older copies stay as they were.
    #[test]
    fn matches_an_ordered_set_through_splits_and_removals() {
        let key = |i: u32| format!("n{i}").into_bytes();
        let wire = |s: &[u8]| [&[s.len() as u8][..], s].concat();
        let mut model: BTreeSet<CanonKey> = BTreeSet::new();
        let mut order = NameOrder::new();
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        let mut snapshots = Vec::new();
        for round in 0..6000 {
            let k = wire(&key(next() % 3000));
            if round % 3 == 2 {
                assert_eq!(order.remove(&k), model.remove(&CanonKey::new(&k)));
            } else {
                assert_eq!(order.insert(&k), model.insert(CanonKey::new(&k)));
            }
            if round % 1000 == 0 {
                snapshots.push((order.clone(), names(&order)));
            }
        }
        assert_eq!(order.len(), model.len());
        let want: Vec<Vec<u8>> = model.iter().map(|k| k.as_bytes().to_vec()).collect();
        assert_eq!(names(&order), want);
        assert!(order.chunks.len() > 1, "the test crosses chunk splits");
        assert!(order.chunks.iter().all(|c| c.names.len() <= MAX_KEYS));
        for probe in 0..3100 {
            let k = wire(&key(probe));
            let c = CanonKey::new(&k);
            let prev = model.range(..=c.clone()).next_back().map(|k| k.as_bytes());
            let before = model.range(..c.clone()).next_back().map(|k| k.as_bytes());
            let after = model
                .range((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded))
                .next()
                .map(|k| k.as_bytes());
            assert_eq!(order.get_prev(&k), prev);
            assert_eq!(order.get_before(&k), before);
            assert_eq!(order.get_after(&k), after);
        }
        for (old, was) in snapshots {
            assert_eq!(names(&old), was, "a copy is not changed by later edits");
        }
        // Emptied entirely, chunk by chunk.
        for k in want {
            assert!(order.remove(&k));
        }
        assert!(order.is_empty() && order.chunks.is_empty());
        assert!(!order.remove(b"\x01a"));
    }

    #[test]
    fn from_sorted_equals_inserting_one_by_one() {
        let keys: Vec<Vec<u8>> = (0..5000u32)
            .map(|i| {
                let s = format!("{i:05}");
                [&[5u8][..], s.as_bytes()].concat()
            })
            .collect();
        let bulk = NameOrder::from_sorted(keys.iter().map(Vec::as_slice));
        let mut one = NameOrder::new();
        for k in keys.iter().rev() {
            one.insert(k);
        }
        assert_eq!(names(&bulk), names(&one));
        assert_eq!(names(&bulk), keys);
        assert!(bulk.chunks.iter().all(|c| c.names.len() <= FILL));
    }
}
