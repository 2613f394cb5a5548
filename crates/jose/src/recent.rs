//! A tiny bounded memo shared by signers and verifiers: the few protected
//! headers an issuer actually uses, kept so they are encoded or parsed once.

use std::sync::RwLock;

/// At most `capacity` entries; the oldest goes first. A poisoned lock only
/// turns the memo off, never fails the caller.
pub(crate) struct Recent<K, V> {
    capacity: usize,
    entries: RwLock<Vec<(K, V)>>,
}

impl<K: PartialEq, V: Clone> Recent<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Recent {
            capacity,
            entries: RwLock::new(Vec::with_capacity(capacity)),
        }
    }

    /// The value of the first entry whose key satisfies `matches`.
    pub(crate) fn find(&self, matches: impl Fn(&K) -> bool) -> Option<V> {
        let entries = self.entries.read().ok()?;
        entries
            .iter()
            .find(|(k, _)| matches(k))
            .map(|(_, v)| v.clone())
    }

    /// Remembers `value` under `key`, unless another thread got there first.
    pub(crate) fn insert(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.iter().any(|(k, _)| *k == key) {
                return;
            }
            if entries.len() >= self.capacity {
                entries.remove(0);
            }
            entries.push((key, value));
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.read().map_or(0, |e| e.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_oldest_first_no_duplicates() {
        let r = Recent::new(2);
        r.insert("a", 1);
        r.insert("a", 9);
        assert_eq!(r.find(|k| *k == "a"), Some(1));
        r.insert("b", 2);
        r.insert("c", 3);
        assert_eq!(r.len(), 2);
        assert_eq!(r.find(|k| *k == "a"), None);
        assert_eq!(r.find(|k| *k == "c"), Some(3));
    }
}
