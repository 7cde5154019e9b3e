//! A persistent sorted map for the NSEC3 chain and the IXFR journal (the NSEC chain, a set of
//! names, packs them: [`super::order`]).
//!
//! Written here because the query path needs "the greatest key at or below this one" without
//! allocating, and the persistent B-tree of `imbl` answers that through a range cursor that
//! keeps its path in a heap-allocated stack. This map is two levels of sorted vectors: an array
//! of chunks, each holding up to `CHUNK_MAX` entries, both behind `Arc`s. A lookup is two
//! binary searches; an insert or removal copies the chunk array (one pointer and one key per
//! chunk) and the one chunk it changes, and shares everything else with older snapshots.

use std::borrow::Borrow;
use std::sync::Arc;

/// A chunk that grows past this splits in two.
const CHUNK_MAX: usize = 1024;

#[derive(Debug, Clone)]
struct Chunk<K, V> {
    /// The chunk's smallest key, kept beside the pointer so the first search touches no chunk.
    first: K,
    items: Arc<Vec<(K, V)>>,
}

/// A sorted map with structure sharing between copies.
#[derive(Debug, Clone)]
pub struct SortedMap<K, V> {
    chunks: Arc<Vec<Chunk<K, V>>>,
    len: usize,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        Self {
            chunks: Arc::new(Vec::new()),
            len: 0,
        }
    }
}

impl<K: Ord + Clone, V: Clone> SortedMap<K, V> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunk that holds or would hold `key`: the last one whose first key is ≤ `key`.
    #[inline]
    fn chunk_of<Q: Ord + ?Sized>(&self, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
    {
        self.chunks
            .partition_point(|c| c.first.borrow() <= key)
            .checked_sub(1)
    }

    /// The value at `key`.
    #[inline]
    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        let items = &self.chunks[self.chunk_of(key)?].items;
        items
            .binary_search_by(|(k, _)| k.borrow().cmp(key))
            .ok()
            .map(|i| &items[i].1)
    }

    /// The entry with the greatest key ≤ `key`. Allocates nothing.
    #[inline]
    pub fn get_prev<Q: Ord + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        let items = &self.chunks[self.chunk_of(key)?].items;
        let i = items.partition_point(|(k, _)| k.borrow() <= key);
        // i ≥ 1: the chunk's first key is ≤ key.
        items.get(i - 1).map(|(k, v)| (k, v))
    }

    /// The entry with the greatest key < `key`.
    pub fn get_before<Q: Ord + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        let ci = self
            .chunks
            .partition_point(|c| c.first.borrow() < key)
            .checked_sub(1)?;
        let items = &self.chunks[ci].items;
        let i = items.partition_point(|(k, _)| k.borrow() < key);
        items.get(i.checked_sub(1)?).map(|(k, v)| (k, v))
    }

    /// The entry with the smallest key > `key`.
    pub fn get_after<Q: Ord + ?Sized>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
    {
        let ci = self.chunk_of(key).unwrap_or(0);
        for chunk in self.chunks.get(ci..)? {
            let i = chunk.items.partition_point(|(k, _)| k.borrow() <= key);
            if let Some((k, v)) = chunk.items.get(i) {
                return Some((k, v));
            }
        }
        None
    }

    pub fn first(&self) -> Option<(&K, &V)> {
        self.chunks.first().map(|c| {
            let (k, v) = &c.items[0];
            (k, v)
        })
    }

    pub fn last(&self) -> Option<(&K, &V)> {
        self.chunks
            .last()
            .and_then(|c| c.items.last())
            .map(|(k, v)| (k, v))
    }

    /// A map of `items`, which must be in strictly increasing key order (checked in debug
    /// builds). Chunks are filled to three quarters, leaving room for inserts. Building a
    /// million-name chain this way at start takes one pass; inserting one by one searched
    /// twice per name.
    pub fn from_sorted(items: impl IntoIterator<Item = (K, V)>) -> Self {
        const FILL: usize = CHUNK_MAX * 3 / 4;
        let mut chunks = Vec::new();
        let mut current: Vec<(K, V)> = Vec::with_capacity(FILL);
        let mut len = 0;
        let mut close = |current: Vec<(K, V)>| {
            if let Some((first, _)) = current.first() {
                chunks.push(Chunk {
                    first: first.clone(),
                    items: Arc::new(current),
                });
            }
        };
        for (k, v) in items {
            if current.len() == FILL {
                close(std::mem::replace(&mut current, Vec::with_capacity(FILL)));
            }
            current.push((k, v));
            len += 1;
        }
        close(current);
        let map = Self {
            chunks: Arc::new(chunks),
            len,
        };
        debug_assert!(
            map.iter()
                .zip(map.iter().skip(1))
                .all(|((a, _), (b, _))| a < b),
            "from_sorted was given keys out of order"
        );
        map
    }

    /// Inserts or replaces; returns the old value.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let chunks = Arc::make_mut(&mut self.chunks);
        if chunks.is_empty() {
            chunks.push(Chunk {
                first: key.clone(),
                items: Arc::new(vec![(key, value)]),
            });
            self.len = 1;
            return None;
        }
        let ci = chunks.partition_point(|c| c.first <= key).saturating_sub(1);
        let chunk = &mut chunks[ci];
        let items = Arc::make_mut(&mut chunk.items);
        match items.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => return Some(std::mem::replace(&mut items[i].1, value)),
            Err(i) => {
                if i == 0 {
                    chunk.first = key.clone();
                }
                items.insert(i, (key, value));
            }
        }
        self.len += 1;
        if items.len() > CHUNK_MAX {
            let second = items.split_off(items.len() / 2);
            let first = second[0].0.clone();
            chunks.insert(
                ci + 1,
                Chunk {
                    first,
                    items: Arc::new(second),
                },
            );
        }
        None
    }

    /// Removes `key`; returns its value. A missing key copies nothing.
    pub fn remove<Q: Ord + ?Sized>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let ci = self.chunk_of(key)?;
        let i = self.chunks[ci]
            .items
            .binary_search_by(|(k, _)| k.borrow().cmp(key))
            .ok()?;
        let chunks = Arc::make_mut(&mut self.chunks);
        let chunk = &mut chunks[ci];
        let items = Arc::make_mut(&mut chunk.items);
        let (_, value) = items.remove(i);
        if items.is_empty() {
            chunks.remove(ci);
        } else if i == 0 {
            chunk.first = items[0].0.clone();
        }
        self.len -= 1;
        Some(value)
    }

    /// Entries in order, starting after `after` (from the start when `None`).
    pub fn iter_after<'a, Q: Ord + ?Sized>(
        &'a self,
        after: Option<&Q>,
    ) -> impl Iterator<Item = (&'a K, &'a V)> + 'a
    where
        K: Borrow<Q>,
    {
        let (ci, skip) = match after.and_then(|k| self.chunk_of(k).map(|ci| (ci, k))) {
            Some((ci, k)) => (
                ci,
                self.chunks[ci]
                    .items
                    .partition_point(|(x, _)| x.borrow() <= k),
            ),
            None => (0, 0),
        };
        self.chunks
            .get(ci..)
            .into_iter()
            .flatten()
            .enumerate()
            .flat_map(move |(n, c)| c.items[if n == 0 { skip } else { 0 }..].iter())
            .map(|(k, v)| (k, v))
    }

    /// The keys whose values differ between `old` and `self` by `same`: added, removed or
    /// changed. Chunks still shared with `old` are skipped unread.
    pub fn changed_since(&self, old: &Self, same: impl Fn(&V, &V) -> bool) -> Vec<K> {
        use std::collections::HashSet;
        let ptrs = |m: &Self| -> HashSet<*const Vec<(K, V)>> {
            m.chunks.iter().map(|c| Arc::as_ptr(&c.items)).collect()
        };
        let (mine, theirs) = (ptrs(self), ptrs(old));
        let mut keys = Vec::new();
        for c in self
            .chunks
            .iter()
            .filter(|c| !theirs.contains(&Arc::as_ptr(&c.items)))
        {
            for (k, v) in c.items.iter() {
                if !old.get(k).is_some_and(|o| same(o, v)) {
                    keys.push(k.clone());
                }
            }
        }
        for c in old
            .chunks
            .iter()
            .filter(|c| !mine.contains(&Arc::as_ptr(&c.items)))
        {
            for (k, _) in c.items.iter() {
                if self.get(k).is_none() {
                    keys.push(k.clone());
                }
            }
        }
        keys
    }

    /// All entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.chunks
            .iter()
            .flat_map(|c| c.items.iter())
            .map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_like_a_btreemap() {
        let mut ours: SortedMap<u32, u32> = SortedMap::new();
        let mut model = BTreeMap::new();
        let mut x: u64 = 88172645463325252;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = (x % 5000) as u32 * 2;
            if x.is_multiple_of(5) {
                assert_eq!(ours.remove(&k), model.remove(&k), "remove {k}");
            } else {
                assert_eq!(ours.insert(k, step), model.insert(k, step), "insert {k}");
            }
        }
        assert_eq!(ours.len(), model.len());
        assert!(ours.chunks.len() > 1, "the map split into chunks");
        assert!(
            ours.iter()
                .map(|(k, v)| (*k, *v))
                .eq(model.iter().map(|(k, v)| (*k, *v)))
        );
        for q in 0..10_002u32 {
            assert_eq!(ours.get(&q), model.get(&q), "get {q}");
            assert_eq!(ours.get_prev(&q), model.range(..=q).next_back(), "prev {q}");
            assert_eq!(
                ours.get_before(&q),
                model.range(..q).next_back(),
                "before {q}"
            );
            assert_eq!(ours.get_after(&q), model.range(q + 1..).next(), "after {q}");
        }
        assert_eq!(ours.first(), model.iter().next());
        assert_eq!(ours.last(), model.iter().next_back());
        let from: Vec<_> = ours.iter_after(Some(&5000)).map(|(k, _)| *k).collect();
        let want: Vec<_> = model.range(5001..).map(|(k, _)| *k).collect();
        assert_eq!(from, want);
    }

    #[test]
    fn copies_share_chunks() {
        let mut a: SortedMap<u32, ()> = SortedMap::new();
        for k in 0..10_000 {
            a.insert(k, ());
        }
        let mut b = a.clone();
        b.insert(20_000, ());
        b.remove(&5);
        assert_eq!((a.len(), b.len()), (10_000, 10_000));
        assert!(a.get(&5).is_some() && b.get(&5).is_none());
        let shared = a
            .chunks
            .iter()
            .zip(b.chunks.iter())
            .filter(|(x, y)| Arc::ptr_eq(&x.items, &y.items))
            .count();
        assert!(
            shared >= a.chunks.len() - 2,
            "{shared} of {} chunks shared",
            a.chunks.len()
        );
        let c = b.clone();
        let mut d = c.clone();
        assert_eq!(d.remove(&77_777), None);
        assert!(
            Arc::ptr_eq(&c.chunks, &d.chunks),
            "removing nothing copies nothing"
        );
    }

    #[test]
    fn changed_since_finds_exactly_the_changes() {
        let mut a: SortedMap<u32, u32> = SortedMap::new();
        for k in 0..10_000 {
            a.insert(k, k);
        }
        let mut b = a.clone();
        b.insert(20_000, 0); // added
        b.remove(&5); // removed
        b.insert(7_000, 1); // changed
        b.insert(8_000, 8_000); // same value: not a change
        let mut changed = b.changed_since(&a, |x, y| x == y);
        changed.sort();
        assert_eq!(changed, [5, 7_000, 20_000]);
        assert!(a.changed_since(&a.clone(), |x, y| x == y).is_empty());
        // Maps that share nothing are compared by value.
        let mut fresh: SortedMap<u32, u32> = SortedMap::new();
        for k in 1..10_000 {
            fresh.insert(k, k);
        }
        assert_eq!(fresh.changed_since(&a, |x, y| x == y), [0]);
    }
}
