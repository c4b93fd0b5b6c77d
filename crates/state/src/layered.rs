//! A persistent hash index for a state that is shared with readers after
//! every commit and grows by a few keys each time.
//!
//! In a persistent trie (`imbl::HashMap`) the first change after a share
//! copies every node on the key's path, and copying an inner node touches
//! the reference count of each of its up to 32 children. Once the index
//! outgrows the cache those are cache misses, so an insertion into a
//! million-key trie costs several times one into a ten-thousand-key trie
//! (BENCHMARKS.md §8.1). Here new keys go to a small trie that stays in
//! cache (`recent`), in front of a large plain hash map (`base`) that is
//! shared, never copied per change. When `recent` reaches a share of the
//! base's size it is folded in: one copy of the base (a `memcpy` for plain
//! keys and values) for that many insertions, so its cost per insertion
//! stays constant as the index grows.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

/// `recent` is folded into `base` once it holds this share of the base's
/// keys (at least `MIN_RECENT`, at most `MAX_RECENT`).
const FOLD_DIVISOR: usize = 32;
const MIN_RECENT: usize = 4_096;
const MAX_RECENT: usize = 262_144;

#[derive(Clone, Debug)]
pub struct LayeredMap<K: Hash + Eq + Clone, V: Clone> {
    base: Arc<HashMap<K, V>>,
    recent: imbl::HashMap<K, V>,
}

impl<K: Hash + Eq + Clone, V: Clone> Default for LayeredMap<K, V> {
    fn default() -> Self {
        Self {
            base: Arc::default(),
            recent: imbl::HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> LayeredMap<K, V> {
    pub fn get(&self, key: &K) -> Option<&V> {
        self.recent.get(key).or_else(|| self.base.get(key))
    }

    pub fn insert(&mut self, key: K, value: V) {
        self.recent.insert(key, value);
        let fold_at = (self.base.len() / FOLD_DIVISOR).clamp(MIN_RECENT, MAX_RECENT);
        if self.recent.len() >= fold_at {
            self.fold();
        }
    }

    /// Moves every recent entry into the base. Copies the base first when a
    /// reader still shares it, so a reader's view never changes.
    fn fold(&mut self) {
        let recent = std::mem::take(&mut self.recent);
        let base = Arc::make_mut(&mut self.base);
        base.reserve(recent.len());
        base.extend(recent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_copy_never_sees_later_changes_across_folds() {
        let mut map = LayeredMap::default();
        let mut snapshots = Vec::new();
        for i in 0..3 * MIN_RECENT as u32 {
            map.insert(i, i);
            if i % 1_000 == 0 {
                snapshots.push((i, map.clone()));
            }
        }
        // A key written again replaces the base's value.
        map.insert(7, 70);
        assert_eq!(map.get(&7), Some(&70));
        assert_eq!(
            map.get(&(3 * MIN_RECENT as u32 - 1)),
            Some(&(3 * MIN_RECENT as u32 - 1))
        );
        for (last, snapshot) in snapshots {
            assert_eq!(snapshot.get(&last), Some(&last));
            assert_eq!(snapshot.get(&(last + 1)), None, "taken at {last}");
            let seven = (last >= 7).then_some(&7);
            assert_eq!(snapshot.get(&7), seven, "taken at {last}");
        }
    }
}
