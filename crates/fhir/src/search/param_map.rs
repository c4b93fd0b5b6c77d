//! The values of an [`super::IndexEntry`] by parameter name: a few names
//! per entry, kept as one exactly sized vector sorted by name.
//!
//! A node holds an entry per current resource in memory; a `BTreeMap`
//! allocates a node of eleven slots (over 500 bytes) for the first name it
//! holds, so a map per kind of value cost kilobytes per resource for two or
//! three names each. Names are shared by every entry (one allocation
//! per distinct name, [`interned`]). Its JSON form is a `BTreeMap`'s (an object with the
//! names in order), so stored entries read and write as before.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Parameter name → values, in name order, each name once.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ParamMap<V> {
    pairs: Vec<(Arc<str>, V)>,
}

/// Beyond this many distinct names (more than every type's parameters
/// together), a name is allocated per map rather than kept forever.
const MAX_INTERNED: usize = 4096;

/// The one allocation of a parameter name.
fn interned(name: &str) -> Arc<str> {
    static NAMES: OnceLock<Mutex<HashSet<Arc<str>>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(shared) = names.get(name) {
        return shared.clone();
    }
    let shared: Arc<str> = Arc::from(name);
    if names.len() < MAX_INTERNED {
        names.insert(shared.clone());
    }
    shared
}

impl<V> Default for ParamMap<V> {
    fn default() -> Self {
        ParamMap { pairs: Vec::new() }
    }
}

impl<V> ParamMap<V> {
    /// An empty map (allocates nothing).
    pub fn new() -> Self {
        ParamMap::default()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.pairs.binary_search_by(|(n, _)| n.as_ref().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.position(name).ok().map(|i| &self.pairs[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets the values of `name`, returning those it replaces.
    pub fn insert(&mut self, name: String, values: V) -> Option<V> {
        match self.position(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.pairs[i].1, values)),
            Err(i) => {
                self.pairs.insert(i, (interned(&name), values));
                None
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The names and their values, in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &V)> + '_ {
        self.pairs.iter().map(|(n, v)| (n.as_ref(), v))
    }

    /// Frees the spare capacity left by building the map.
    pub fn shrink_to_fit(&mut self) {
        self.pairs.shrink_to_fit();
    }
}

impl<'a, V> IntoIterator for &'a ParamMap<V> {
    type Item = (&'a str, &'a V);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Arc<str>, V)>,
        fn(&'a (Arc<str>, V)) -> (&'a str, &'a V),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.pairs.iter().map(|(n, v)| (n.as_ref(), v))
    }
}

impl<V> std::ops::Index<&str> for ParamMap<V> {
    type Output = V;

    /// The values of `name`; panics when it has none (as a `BTreeMap` does).
    fn index(&self, name: &str) -> &V {
        match self.get(name) {
            Some(v) => v,
            None => panic!("no values for the parameter {name:?}"),
        }
    }
}

impl<V> FromIterator<(String, V)> for ParamMap<V> {
    /// A later value of a name replaces an earlier one, as in a `BTreeMap`.
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut map = ParamMap::new();
        for (name, values) in iter {
            map.insert(name, values);
        }
        map.shrink_to_fit();
        map
    }
}

impl<V: fmt::Debug> fmt::Debug for ParamMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: Serialize> Serialize for ParamMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (name, values) in self.iter() {
            map.serialize_entry(name, values)?;
        }
        map.end()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for ParamMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs<V>(std::marker::PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for Pairs<V> {
            type Value = ParamMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of parameter names")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut map = ParamMap::new();
                while let Some((name, values)) = access.next_entry::<String, V>()? {
                    map.insert(name, values);
                }
                map.shrink_to_fit();
                Ok(map)
            }
        }

        d.deserialize_map(Pairs(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Whatever order names come in, the map reads and serializes as a
    /// `BTreeMap` of the same pairs does.
    #[test]
    fn behaves_as_a_btree_map() {
        let pairs = [("status", 1), ("code", 2), ("subject", 3), ("code", 4)];
        let mut map = ParamMap::new();
        let mut reference = BTreeMap::new();
        for (name, v) in pairs {
            assert_eq!(
                map.insert(name.to_owned(), v),
                reference.insert(name.to_owned(), v)
            );
        }
        assert_eq!(map.len(), reference.len());
        assert!(map
            .iter()
            .eq(reference.iter().map(|(n, v)| (n.as_str(), v))));
        assert_eq!(map["code"], 4);
        assert_eq!(map.get("date"), None);
        assert!(map.contains_key("subject") && !map.contains_key("subjec"));
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, serde_json::to_string(&reference).unwrap());
        let back: ParamMap<i32> = serde_json::from_str(r#"{"z":1,"a":2,"m":3}"#).unwrap();
        assert_eq!(
            back.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            ["a", "m", "z"]
        );
        assert!(serde_json::from_str::<ParamMap<i32>>("[1]").is_err());
        let collected: ParamMap<i32> = reference.clone().into_iter().collect();
        assert_eq!(collected, map);
        // Every map holds a name in one shared allocation.
        assert!(Arc::ptr_eq(&collected.pairs[0].0, &map.pairs[0].0));
    }
}
