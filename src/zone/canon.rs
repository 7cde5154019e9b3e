//! Canonical DNS name order (RFC 4034 §6.1) for names relative to a zone apex, which the NSEC
//! chain follows.
//!
//! Names are compared label by label from the rightmost one; labels compare as lowercase octet
//! strings, a shorter label sorting before a longer one it prefixes; a name sorts before the
//! names below it. Keys here are [`NameKey`]s (lowercase wire-format labels without the apex),
//! so the apex, the empty key, sorts first.

use std::cmp::Ordering;

use super::snapshot::NameKey;

/// An owned relative name in canonical order: what the start sorts a million node names as
/// before packing them into the NSEC chain ([`super::order::NameOrder`]), and each chain chunk's
/// first name.
///
/// A name of up to [`INLINE`] octets (every node name Herald makes) is stored in the key itself,
/// 24 bytes with no allocation; a longer one in an `Arc`. A shared [`NameKey`] would cost its
/// 16-byte pointer plus a 32-byte allocation per name.
#[derive(Clone)]
pub struct CanonKey(Compact);

/// Octets a [`CanonKey`] holds without allocating.
pub const INLINE: usize = 22;

#[derive(Clone)]
enum Compact {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(NameKey),
}

impl CanonKey {
    pub fn new(key: &[u8]) -> Self {
        if key.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            Self(Compact::Inline {
                len: key.len() as u8,
                bytes,
            })
        } else {
            Self(Compact::Heap(NameKey::from(key)))
        }
    }

    /// The key's lowercase wire-format labels.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Compact::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Compact::Heap(k) => k,
        }
    }

    /// The key as a shared [`NameKey`] (an allocation for an inline key).
    pub fn to_key(&self) -> NameKey {
        match &self.0 {
            Compact::Inline { .. } => NameKey::from(self.as_bytes()),
            Compact::Heap(k) => k.clone(),
        }
    }
}

impl std::fmt::Debug for CanonKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CanonKey").field(&self.as_bytes()).finish()
    }
}

impl PartialEq for CanonKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for CanonKey {}

impl std::hash::Hash for CanonKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl Ord for CanonKey {
    fn cmp(&self, other: &Self) -> Ordering {
        canonical_cmp(self.as_bytes(), other.as_bytes())
    }
}

impl PartialOrd for CanonKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Start offsets of the labels of a relative wire-format name (at most 127 labels fit in 255
/// octets). Returns the count.
fn label_starts(name: &[u8], starts: &mut [u8; 128]) -> usize {
    let (mut i, mut n) = (0usize, 0usize);
    while i < name.len() && n < starts.len() {
        starts[n] = i as u8;
        n += 1;
        i += usize::from(name[i]) + 1;
    }
    n
}

/// RFC 4034 §6.1 order of two relative names.
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    // Fast path: two single labels (every node name) compare as their octets.
    let single = |n: &[u8]| n.first().is_some_and(|&l| usize::from(l) + 1 == n.len());
    if single(a) && single(b) {
        return a[1..].cmp(&b[1..]);
    }
    let (mut sa, mut sb) = ([0u8; 128], [0u8; 128]);
    let (na, nb) = (label_starts(a, &mut sa), label_starts(b, &mut sb));
    fn label(n: &[u8], at: u8) -> &[u8] {
        let at = usize::from(at);
        &n[at + 1..at + 1 + usize::from(n[at])]
    }
    for k in 1..=na.min(nb) {
        match label(a, sa[na - k]).cmp(label(b, sb[nb - k])) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    na.cmp(&nb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Vec<u8> {
        if name.is_empty() {
            return Vec::new();
        }
        let mut k = Vec::new();
        for l in name.split('.') {
            k.push(l.len() as u8);
            k.extend_from_slice(l.as_bytes());
        }
        k
    }

    /// The example of RFC 4034 §6.1, relative to `example.`.
    #[test]
    fn rfc4034_example_order() {
        // The RFC's \001.z and \200.z are written with raw octets.
        let names: Vec<Vec<u8>> = vec![
            key(""),
            key("a"),
            key("yljkjljk.a"),
            key("z.a"),
            key("zabc.a"),
            key("z"),
            [&[1u8, 1][..], &key("z")].concat(),
            key("*.z"),
            [&[1u8, 0xC8][..], &key("z")].concat(),
        ];
        for w in names.windows(2) {
            assert_eq!(
                canonical_cmp(&w[0], &w[1]),
                Ordering::Less,
                "{:?} < {:?}",
                w[0],
                w[1]
            );
            assert_eq!(canonical_cmp(&w[1], &w[0]), Ordering::Greater);
        }
        for n in &names {
            assert_eq!(canonical_cmp(n, n), Ordering::Equal);
        }
    }

    #[test]
    fn single_labels_and_prefixes() {
        assert_eq!(canonical_cmp(&key("n1"), &key("n10")), Ordering::Less);
        assert_eq!(canonical_cmp(&key("n2"), &key("n10")), Ordering::Greater);
        // A wildcard sorts before every node label made of a-z 0-9 -.
        assert_eq!(canonical_cmp(&key("*"), &key("-a")), Ordering::Less);
        assert_eq!(canonical_cmp(&key("*"), &key("0")), Ordering::Less);
        // A name sorts before the names below it, and those before its next sibling.
        assert_eq!(canonical_cmp(&key("n1"), &key("x.n1")), Ordering::Less);
        assert_eq!(canonical_cmp(&key("x.n1"), &key("n2")), Ordering::Less);
        assert_eq!(canonical_cmp(&key("x.n1"), &key("n10")), Ordering::Less);
    }

    #[test]
    fn keys_inline_and_on_the_heap_compare_alike() {
        assert_eq!(std::mem::size_of::<CanonKey>(), 24);
        let short = key("n123456");
        let long = key("a-rather-long-label.below-the-node");
        assert!(long.len() > INLINE);
        for k in [&short, &long, &Vec::new()] {
            let c = CanonKey::new(k);
            assert_eq!(c.as_bytes(), &k[..]);
            assert_eq!(&*c.to_key(), &k[..]);
            assert_eq!(c, CanonKey::new(k));
        }
        assert_eq!(
            CanonKey::new(&short).cmp(&CanonKey::new(&long)),
            canonical_cmp(&short, &long)
        );
        let at_limit = [&[21u8][..], &[b'x'; 21]].concat();
        assert_eq!(at_limit.len(), INLINE);
        assert_eq!(CanonKey::new(&at_limit).as_bytes(), &at_limit[..]);
    }
}
