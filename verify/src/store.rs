//! The API server as the models' shared store.
//!
//! What the checked protocols rely on from the API server, and nothing more: objects keyed by kind and
//! name, each with a resourceVersion; `create` fails when the object exists; `update` and `delete` take
//! an optional resourceVersion precondition and fail when it does not match; a read returns a
//! [`Snapshot`] — a copy an actor may keep and act on any number of steps later (a stale read).
//!
//! ResourceVersions here are per-object counters, where the real server's are one global etcd
//! revision. Preconditions only compare a key's versions for equality, so the difference is invisible
//! to them, and per-object counters keep unrelated writes from making otherwise equal states distinct
//! (fewer states to check). A key's versions never repeat, even across a delete and a re-create: the
//! store remembers the last version of a deleted key, so a precondition taken before a delete can never
//! match the re-created object.
//!
//! Watches, field managers, server-side apply and admission are not modelled: an actor reads, and
//! writes whole values with or without a precondition.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// An object's address: its kind (`ConfigMap`, `Lease`, `NodeTask`, …) and its name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The object's kind.
    pub kind: &'static str,
    /// The object's name (namespaces are not modelled: one namespace per kind is enough here).
    /// Shared, so that copying a store — once per explored state — copies no text.
    pub name: Arc<str>,
}

impl Key {
    /// A key for `kind`/`name`.
    pub fn new(kind: &'static str, name: impl Into<Arc<str>>) -> Key {
        Key {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// A resourceVersion: an opaque token the server changes on every write of an object.
pub type Rv = u64;

/// What a read returned: the value and the resourceVersion it had when it was read. Keeping one and
/// acting on it later is exactly a stale read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot<V> {
    /// The object's value when it was read.
    pub value: V,
    /// Its resourceVersion when it was read: the precondition for a write based on this read.
    pub rv: Rv,
}

/// Why a write was refused, as the API server answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreError {
    /// `create` of an object that exists (HTTP 409 AlreadyExists).
    AlreadyExists,
    /// `update` or `delete` of an object that does not exist (HTTP 404).
    NotFound,
    /// The resourceVersion precondition did not match (HTTP 409 Conflict).
    Conflict {
        /// The version the writer expected.
        expected: Rv,
        /// The version the object has.
        actual: Rv,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::AlreadyExists => write!(f, "already exists"),
            StoreError::NotFound => write!(f, "not found"),
            StoreError::Conflict { expected, actual } => {
                write!(f, "conflict (expected rv {expected}, object has rv {actual})")
            }
        }
    }
}

/// The shared store: every object the modelled actors read and write.
///
/// `V` is the model's value type (usually an enum with one variant per kind). The store is part of
/// the model's state, so it is `Clone + Hash + Eq`, and ordered maps keep equal stores equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Store<V> {
    objects: BTreeMap<Key, Snapshot<V>>,
    /// The last version of each key that was deleted, so that a re-created key continues after it.
    deleted: BTreeMap<Key, Rv>,
}

impl<V> Default for Store<V> {
    fn default() -> Self {
        Store {
            objects: BTreeMap::new(),
            deleted: BTreeMap::new(),
        }
    }
}

impl<V: Clone> Store<V> {
    /// An empty store.
    pub fn new() -> Store<V> {
        Store::default()
    }

    /// Reads an object: a snapshot the reader may keep, or `None` when it does not exist.
    pub fn get(&self, key: &Key) -> Option<Snapshot<V>> {
        self.objects.get(key).cloned()
    }

    /// The current value, for properties and traces (an actor reads with [`Store::get`]).
    pub fn value(&self, key: &Key) -> Option<&V> {
        self.objects.get(key).map(|s| &s.value)
    }

    /// The current resourceVersion of an object, if it exists.
    pub fn rv(&self, key: &Key) -> Option<Rv> {
        self.objects.get(key).map(|s| s.rv)
    }

    /// Creates an object; fails with [`StoreError::AlreadyExists`] when it exists.
    pub fn create(&mut self, key: Key, value: V) -> Result<Rv, StoreError> {
        if self.objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        let rv = self.deleted.remove(&key).unwrap_or(0) + 1;
        self.objects.insert(key, Snapshot { value, rv });
        Ok(rv)
    }

    /// Replaces an object's value. With `precondition`, fails with [`StoreError::Conflict`] unless the
    /// object still has that resourceVersion; without, the write lands on whatever is there.
    pub fn update(&mut self, key: &Key, value: V, precondition: Option<Rv>) -> Result<Rv, StoreError> {
        let object = self.objects.get_mut(key).ok_or(StoreError::NotFound)?;
        check(object.rv, precondition)?;
        object.rv += 1;
        object.value = value;
        Ok(object.rv)
    }

    /// Deletes an object, with the same precondition rule as [`Store::update`].
    pub fn delete(&mut self, key: &Key, precondition: Option<Rv>) -> Result<(), StoreError> {
        let rv = self.objects.get(key).ok_or(StoreError::NotFound)?.rv;
        check(rv, precondition)?;
        self.objects.remove(key);
        self.deleted.insert(key.clone(), rv);
        Ok(())
    }

    /// Every object of one kind, in name order.
    pub fn list<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a Key, &'a Snapshot<V>)> + 'a {
        self.objects.iter().filter(move |(k, _)| k.kind == kind)
    }
}

fn check(actual: Rv, precondition: Option<Rv>) -> Result<(), StoreError> {
    match precondition {
        Some(expected) if expected != actual => Err(StoreError::Conflict { expected, actual }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cm(name: &str) -> Key {
        Key::new("ConfigMap", name)
    }

    #[test]
    fn create_fails_when_the_object_exists() {
        let mut s = Store::new();
        assert_eq!(s.create(cm("a"), 1), Ok(1));
        assert_eq!(s.create(cm("a"), 2), Err(StoreError::AlreadyExists));
        assert_eq!(s.value(&cm("a")), Some(&1));
    }

    #[test]
    fn an_update_from_a_stale_snapshot_conflicts_and_changes_nothing() {
        let mut s = Store::new();
        s.create(cm("a"), 1).unwrap();
        let stale = s.get(&cm("a")).unwrap();
        s.update(&cm("a"), 2, Some(stale.rv)).unwrap();
        assert_eq!(
            s.update(&cm("a"), 3, Some(stale.rv)),
            Err(StoreError::Conflict {
                expected: 1,
                actual: 2
            })
        );
        assert_eq!(s.value(&cm("a")), Some(&2));
        // Without a precondition the write lands on whatever is there.
        assert_eq!(s.update(&cm("a"), 4, None), Ok(3));
    }

    #[test]
    fn a_precondition_taken_before_a_delete_never_matches_the_recreated_object() {
        let mut s = Store::new();
        s.create(cm("a"), 1).unwrap();
        let before = s.get(&cm("a")).unwrap();
        s.delete(&cm("a"), Some(before.rv)).unwrap();
        assert_eq!(s.update(&cm("a"), 9, None), Err(StoreError::NotFound));
        s.create(cm("a"), 2).unwrap();
        assert!(matches!(
            s.update(&cm("a"), 3, Some(before.rv)),
            Err(StoreError::Conflict { .. })
        ));
        assert!(matches!(
            s.delete(&cm("a"), Some(before.rv)),
            Err(StoreError::Conflict { .. })
        ));
    }

    #[test]
    fn list_returns_one_kind_in_name_order() {
        let mut s = Store::new();
        s.create(cm("b"), 1).unwrap();
        s.create(Key::new("Lease", "x"), 2).unwrap();
        s.create(cm("a"), 3).unwrap();
        let names: Vec<_> = s.list("ConfigMap").map(|(k, _)| &*k.name).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
