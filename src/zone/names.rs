//! The name index of a zone snapshot: exact-match lookups for the query path, copy-on-write
//! updates for the publisher.
//!
//! Written here because the two needs pull apart: the query path wants one flat hash table (one
//! or two cache misses per lookup), the publisher wants to change one name without copying a
//! million. A persistent HAMT (`imbl::HashMap`) gives the second but not the first: its lookups
//! walk levels and compare keys, and it held Herald well below NSD's queries per second
//! (README, "Performance").
//!
//! So the index is 16,384 shards, each a SIMD hash table (hashbrown) behind an `Arc`, reached
//! through two levels of 128 pointers. A reader hashes the key once, picks a shard, and probes
//! it. A writer copies the two small pointer arrays on the way and then only the shard it
//! changes, about 60 entries at a million names; every other shard stays shared with older
//! snapshots. (One flat array of pointers costs a reference-count update per shard on every
//! publish; fewer, larger shards cost a batch more in copying shards and dropping the old
//! copies.) A batch touches each shard at most once.

use std::sync::Arc;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use super::entry::NameEntry;

const FANOUT_BITS: u32 = 7;
const FANOUT: usize = 1 << FANOUT_BITS;
const SHARDS: usize = FANOUT * FANOUT;

type Shard = HashTable<NameEntry>;
type Level = [Arc<Shard>; FANOUT];

/// Names of one zone, keyed by their [`NameKey`](super::snapshot::NameKey).
#[derive(Clone)]
pub struct NameMap {
    shards: Arc<[Arc<Level>; FANOUT]>,
    len: usize,
    /// Seeded once per map; kept by every snapshot derived from it.
    hasher: RandomState,
}

impl std::fmt::Debug for NameMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameMap").field("len", &self.len).finish()
    }
}

impl Default for NameMap {
    fn default() -> Self {
        Self::new()
    }
}

impl NameMap {
    pub fn new() -> Self {
        let empty = Arc::new(Shard::new());
        let level: Arc<Level> = Arc::new(std::array::from_fn(|_| empty.clone()));
        Self {
            shards: Arc::new(std::array::from_fn(|_| level.clone())),
            len: 0,
            hasher: RandomState::default(),
        }
    }

    /// The shard of a hash: bits 32–45, which hashbrown uses neither for the bucket index
    /// (low bits) nor for its control bytes (top 7 bits), so entries still spread in a shard.
    #[inline]
    fn shard_of(hash: u64) -> (usize, usize) {
        let shard = ((hash >> 32) as usize) & (SHARDS - 1);
        (shard >> FANOUT_BITS, shard & (FANOUT - 1))
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard {
        let (top, low) = Self::shard_of(hash);
        &self.shards[top][low]
    }

    /// The entry at `key`.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&NameEntry> {
        let hash = self.hasher.hash_one(key);
        self.shard(hash).find(hash, |e| e.key() == key)
    }

    /// Inserts `entry`, replacing the one with the same key.
    pub fn insert(&mut self, entry: NameEntry) {
        let hash = self.hasher.hash_one(entry.key());
        self.insert_hashed(hash, entry);
    }

    /// Inserts every entry as [`NameMap::insert`] would, shard by shard. At start a million
    /// inserts in arrival order touch a cold shard each time; grouped by shard, each shard is
    /// filled while it is in the cache.
    pub fn insert_many(&mut self, entries: Vec<NameEntry>) {
        let mut hashed: Vec<(u64, NameEntry)> = entries
            .into_iter()
            .map(|e| (self.hasher.hash_one(e.key()), e))
            .collect();
        // Stable, so a key given twice keeps its later entry.
        hashed.sort_by_key(|(hash, _)| Self::shard_of(*hash));
        for (hash, entry) in hashed {
            self.insert_hashed(hash, entry);
        }
    }

    fn insert_hashed(&mut self, hash: u64, entry: NameEntry) {
        let hasher = self.hasher.clone();
        let rehash = move |e: &NameEntry| hasher.hash_one(e.key());
        let shard = self.shard_mut(hash);
        match shard.find_mut(hash, |e| e.key() == entry.key()) {
            Some(slot) => *slot = entry,
            None => {
                shard.insert_unique(hash, entry, rehash);
                self.len += 1;
            }
        }
    }

    /// Makes room for about `additional` more names before a bulk load, so the shards do not
    /// grow step by step. Small loads are left to normal growth, which sizes small tables more
    /// tightly.
    pub fn reserve(&mut self, additional: usize) {
        let per_shard = additional / SHARDS;
        if per_shard < 8 {
            return;
        }
        // Names spread over shards binomially: a quarter more covers the fuller ones.
        let per_shard = per_shard + per_shard / 4;
        let hasher = self.hasher.clone();
        for level in Arc::make_mut(&mut self.shards).iter_mut() {
            for shard in Arc::make_mut(level).iter_mut() {
                Arc::make_mut(shard).reserve(per_shard, |e| hasher.hash_one(e.key()));
            }
        }
    }

    /// Removes the entry at `key`; returns whether there was one.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        let hash = self.hasher.hash_one(key);
        // Look before copying: removing an absent name must not unshare a shard.
        if self.shard(hash).find(hash, |e| e.key() == key).is_none() {
            return false;
        }
        let table = self.shard_mut(hash);
        if let Ok(entry) = table.find_entry(hash, |e| e.key() == key) {
            entry.remove();
        }
        self.len -= 1;
        true
    }

    /// Every entry, in no particular order (for zone transfers).
    pub fn iter(&self) -> impl Iterator<Item = &NameEntry> {
        self.shards
            .iter()
            .flat_map(|level| level.iter())
            .flat_map(|shard| shard.iter())
    }

    /// The keys whose entries differ between `old` and `self`: added, removed or changed.
    /// Shards still shared with `old` are skipped unread, so after one publish this reads
    /// the one or two shards it copied (for the IXFR journal).
    pub fn changed_since(&self, old: &NameMap) -> Vec<Box<[u8]>> {
        let mut keys = Vec::new();
        for (new_level, old_level) in self.shards.iter().zip(old.shards.iter()) {
            if Arc::ptr_eq(new_level, old_level) {
                continue;
            }
            for (new_shard, old_shard) in new_level.iter().zip(old_level.iter()) {
                if Arc::ptr_eq(new_shard, old_shard) {
                    continue;
                }
                if Self::replaced_in_place(new_shard, old_shard, &mut keys) {
                    continue;
                }
                // Both sides are looked up by key, so this is right even for maps that do not
                // share a hasher; they are merely slower to compare.
                for e in new_shard.iter() {
                    if !old.get(e.key()).is_some_and(|o| o.same(e)) {
                        keys.push(e.key().into());
                    }
                }
                for e in old_shard.iter() {
                    if self.get(e.key()).is_none() {
                        keys.push(e.key().into());
                    }
                }
            }
        }
        keys
    }

    /// The fast path of [`NameMap::changed_since`] for a shard whose entries were only
    /// replaced (a publish of existing nodes): a copied table keeps its layout, so both iterate
    /// in the same order and each pair is compared by pointer first. Pushes the changed keys
    /// and returns true; returns false without pushing when the layouts differ (a name was
    /// added or removed), and the caller compares by key instead, at the cost of a hash lookup
    /// for each of the ~60 entries of every copied shard.
    fn replaced_in_place(new: &Shard, old: &Shard, keys: &mut Vec<Box<[u8]>>) -> bool {
        if new.len() != old.len() || new.capacity() != old.capacity() {
            return false;
        }
        let start = keys.len();
        for (n, o) in new.iter().zip(old.iter()) {
            if n.key() != o.key() {
                keys.truncate(start);
                return false;
            }
            if !n.same(o) {
                keys.push(n.key().into());
            }
        }
        true
    }

    /// The number of names.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The shard of `hash`, unshared from older snapshots (copied if it is shared).
    fn shard_mut(&mut self, hash: u64) -> &mut Shard {
        let (top, low) = Self::shard_of(hash);
        let level = &mut Arc::make_mut(&mut self.shards)[top];
        Arc::make_mut(&mut Arc::make_mut(level)[low])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::entry::RrsetEntry;
    use crate::zone::wire::WireRrset;
    use hickory_proto::rr::RecordType;

    fn entry(key: &[u8]) -> NameEntry {
        NameEntry::new(key, &[]).unwrap()
    }

    #[test]
    fn insert_get_remove() {
        let mut m = NameMap::new();
        for i in 0..10_000u32 {
            m.insert(entry(&i.to_be_bytes()));
        }
        assert_eq!(m.len(), 10_000);
        assert!(m.get(&7u32.to_be_bytes()).is_some());
        assert!(m.get(&10_001u32.to_be_bytes()).is_none());
        // Replacing keeps the count.
        m.insert(entry(&7u32.to_be_bytes()));
        assert_eq!(m.len(), 10_000);
        assert!(m.remove(&7u32.to_be_bytes()));
        assert!(!m.remove(&7u32.to_be_bytes()));
        assert!(m.get(&7u32.to_be_bytes()).is_none());
        assert_eq!(m.len(), 9_999);
        assert_eq!(m.iter().count(), 9_999);
    }

    #[test]
    fn insert_many_is_insert_of_each() {
        let mut one = NameMap::new();
        let mut many = NameMap::new();
        let mut batch = Vec::new();
        for i in 0..5_000u32 {
            one.insert(txt(&i.to_be_bytes(), b"a"));
            batch.push(txt(&i.to_be_bytes(), b"a"));
        }
        // A key given twice keeps the later entry, as two inserts would.
        one.insert(txt(&7u32.to_be_bytes(), b"b"));
        batch.push(txt(&7u32.to_be_bytes(), b"b"));
        many.insert_many(batch);
        assert_eq!(many.len(), one.len());
        for i in 0..5_000u32 {
            assert_eq!(many.get(&i.to_be_bytes()), one.get(&i.to_be_bytes()), "{i}");
        }
        assert_eq!(
            many.get(&7u32.to_be_bytes()),
            Some(&txt(&7u32.to_be_bytes(), b"b"))
        );
    }

    #[test]
    fn copies_share_untouched_shards() {
        let mut a = NameMap::new();
        for i in 0..10_000u32 {
            a.insert(entry(&i.to_be_bytes()));
        }
        let mut b = a.clone();
        b.insert(entry(b"new"));
        b.remove(&1u32.to_be_bytes());
        assert!(a.get(b"new").is_none() && a.get(&1u32.to_be_bytes()).is_some());
        assert!(b.get(b"new").is_some() && b.get(&1u32.to_be_bytes()).is_none());
        let shared = a
            .shards
            .iter()
            .zip(b.shards.iter())
            .flat_map(|(x, y)| x.iter().zip(y.iter()))
            .filter(|(x, y)| Arc::ptr_eq(x, y))
            .count();
        assert!(
            shared >= SHARDS - 2,
            "only the two changed shards are copied ({shared} shared)"
        );
        let mut changed = b.changed_since(&a);
        changed.sort();
        assert_eq!(
            changed,
            [Box::from(&1u32.to_be_bytes()[..]), Box::from(&b"new"[..])]
        );
        assert!(a.changed_since(&a.clone()).is_empty());
        // Removing a name that is not there copies nothing.
        let c = b.clone();
        let mut d = c.clone();
        assert!(!d.remove(b"absent"));
        assert!(Arc::ptr_eq(&c.shards, &d.shards));
    }

    fn txt(key: &[u8], text: &[u8]) -> NameEntry {
        let rrset = WireRrset::from_rdata(RecordType::TXT, 60, [text]).unwrap();
        let e = RrsetEntry {
            rrset,
            sigs: None,
            glue: Vec::new(),
        };
        NameEntry::new(key, &[e]).unwrap()
    }

    #[test]
    fn changed_since_finds_replacements_additions_and_removals() {
        let mut a = NameMap::new();
        for i in 0..20_000u32 {
            a.insert(txt(&i.to_be_bytes(), b"old"));
        }
        // Replacements only: new content, and the same content in a new allocation (which is
        // not a change).
        let mut b = a.clone();
        for i in (0..20_000u32).step_by(7) {
            b.insert(txt(&i.to_be_bytes(), b"new"));
        }
        for i in (3..20_000u32).step_by(11) {
            b.insert(txt(&i.to_be_bytes(), b"old"));
        }
        let want: Vec<Box<[u8]>> = (0..20_000u32)
            .step_by(7)
            .filter(|i| *i < 3 || (i - 3) % 11 != 0)
            .map(|i| Box::from(&i.to_be_bytes()[..]))
            .collect();
        let mut changed = b.changed_since(&a);
        changed.sort();
        assert_eq!(changed, want);
        // Replacements mixed with additions and removals in the same shards.
        let mut c = b.clone();
        for i in 20_000..21_000u32 {
            c.insert(txt(&i.to_be_bytes(), b"added"));
        }
        for i in (1..20_000u32).step_by(13) {
            c.remove(&i.to_be_bytes());
        }
        for i in (2..20_000u32).step_by(5) {
            c.insert(txt(&i.to_be_bytes(), b"again"));
        }
        let mut want: Vec<u32> = (20_000..21_000).collect();
        want.extend((1..20_000).step_by(13));
        want.extend((2..20_000u32).step_by(5));
        want.sort();
        want.dedup();
        let want: Vec<Box<[u8]>> = want
            .iter()
            .map(|i| Box::from(&i.to_be_bytes()[..]))
            .collect();
        let mut changed = c.changed_since(&b);
        changed.sort();
        assert_eq!(changed, want);
    }
}
