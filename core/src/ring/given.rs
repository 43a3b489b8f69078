//! A ring's table as the `ring_tables` variable gives it: every point in base64, read entry by
//! entry as a lookup needs it and never decoded whole (a 64-bucket ring's is 68 KB of text, and
//! the component would decode it in every request).
//!
//! Nothing checks the whole table before it is used. Instead it must be exactly as long as every
//! point of the ring (buckets × replicas, equal points all kept), so that each entry sits where
//! `ring-plan` put it, and each lookup returns, with the owner, the entries its answer rests on:
//! the one below the key's point, the run of entries at the first point at or after it, and the
//! one above that run. The ring re-hashes those ([`super::Ring`]); when all are its own points,
//! the table as printed has them at the same places, so it gives the same answer. The whole table
//! is checked only when asked ([`Given::entries`], for the health check).

use super::entry_point;
use crate::codec;

/// A table given as text: the [`Given::encode`]d entries of every point of a ring, sorted.
#[derive(Debug, Clone)]
pub(super) struct Given {
    text: String,
    len: usize,
}

/// What a [`Given`] table answers for one ring position.
#[derive(Debug)]
pub(super) struct Lookup {
    /// The owning entry: the last of the run of entries at the first point at or after the
    /// position (wrapping around), so that of equal points the later bucket wins.
    pub owner: u64,
    /// Every entry the answer rests on, the owner among them.
    pub deciding: Vec<u64>,
}

impl Given {
    /// `text` as the table of a ring of `points` points; `None` unless it is exactly as long as
    /// their encoding.
    pub(super) fn new(text: String, points: usize) -> Option<Given> {
        let encoded = points.checked_mul(8)?.div_ceil(3).checked_mul(4)?;
        (points > 0 && text.len() == encoded).then_some(Given { text, len: points })
    }

    /// The text of a table of `entries` (every point of a ring, sorted).
    pub(super) fn encode(entries: &[u64]) -> String {
        codec::base64_encode(&entries.iter().flat_map(|e| e.to_be_bytes()).collect::<Vec<_>>())
    }

    fn entry(&self, i: usize) -> Option<u64> {
        codec::base64_u64_at(&self.text, i * 8)
    }

    /// Every entry in order (`None` for one that is not base64).
    pub(super) fn entries(&self) -> impl Iterator<Item = Option<u64>> + '_ {
        (0..self.len).map(|i| self.entry(i))
    }

    /// The owner of ring position `point` and the entries its answer rests on; `None` when an
    /// entry on the way is not base64.
    pub(super) fn lookup(&self, point: u32) -> Option<Lookup> {
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if entry_point(self.entry(mid)?) < point {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let mut deciding = Vec::with_capacity(3);
        if lo > 0 {
            deciding.push(self.entry(lo - 1)?);
        }
        let first = if lo == self.len { 0 } else { lo };
        let mut owner = self.entry(first)?;
        deciding.push(owner);
        // The rest of the run at the owner's point, then the first entry above it.
        for next in first + 1..self.len {
            let entry = self.entry(next)?;
            deciding.push(entry);
            if entry_point(entry) != entry_point(owner) {
                break;
            }
            owner = entry;
        }
        Some(Lookup { owner, deciding })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::entry;

    fn table(points: &[u32]) -> Given {
        let entries: Vec<u64> = points.iter().enumerate().map(|(i, &p)| entry(p, i as u16, 0)).collect();
        Given::new(Given::encode(&entries), entries.len()).unwrap()
    }

    fn answer(t: &Given, point: u32) -> (u32, Vec<u32>) {
        let found = t.lookup(point).unwrap();
        (entry_point(found.owner), found.deciding.iter().map(|&e| entry_point(e)).collect())
    }

    #[test]
    fn only_text_exactly_as_long_as_every_point_is_a_table() {
        let text = Given::encode(&[1, 2, 3]);
        assert!(Given::new(text.clone(), 3).is_some());
        assert!(Given::new(text.clone(), 2).is_none() && Given::new(text.clone(), 4).is_none());
        assert!(Given::new(text[..text.len() - 4].to_string(), 3).is_none(), "cut short");
        assert!(Given::new(String::new(), 0).is_none());
    }

    #[test]
    fn the_answer_rests_on_the_entries_around_it() {
        let t = table(&[10, 20, 20, 30]);
        assert_eq!(answer(&t, 15), (20, vec![10, 20, 20, 30]), "the run at 20, its last entry owning it");
        assert_eq!(answer(&t, 20), (20, vec![10, 20, 20, 30]));
        assert_eq!(answer(&t, 25), (30, vec![20, 30]), "the last entry: nothing above it");
        assert_eq!(answer(&t, 5), (10, vec![10, 20]), "the first entry: nothing below it");
        assert_eq!(answer(&t, 31), (10, vec![30, 10, 20]), "past the last point, wrapping to the first");
        assert_eq!(t.lookup(15).unwrap().owner, entry(20, 2, 0), "of equal points, the later entry");
    }

    #[test]
    fn an_unreadable_entry_on_the_way_is_no_answer() {
        let good = Given::encode(&[entry(10, 0, 0), entry(20, 1, 0), entry(30, 2, 0)]);
        let mut bad = good.into_bytes();
        bad[12] = b'*';
        let t = Given::new(String::from_utf8(bad).unwrap(), 3).unwrap();
        assert!(t.lookup(15).is_none());
        assert_eq!(t.entries().filter(Option::is_none).count(), 1);
    }
}
