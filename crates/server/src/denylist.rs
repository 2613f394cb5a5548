//! Revoked tokens that have no session (`client_credentials`): their `jti`s,
//! kept in the store until the tokens expire and mirrored in memory, so that
//! introspection answers without a store round trip per request.
//!
//! A revocation made through this node is in memory at once; one made on
//! another node is read within `clients.cache_for` (the same bound as a
//! client's deletion). The first read takes every live revocation; later
//! ones only those of the last [`OVERLAP`] seconds (by the revoking node's
//! clock, so clocks may differ by up to that much), so a reload costs what
//! was revoked lately, not all that ever was. Revocations are never undone,
//! so a reload only adds: nothing revoked here can be lost to a reload
//! racing it. While one request reloads, the others answer from the mirror
//! they have.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::store::{Store, StoreError};

/// How far back a reload reads, in seconds: a revocation committed this
/// late, or stamped by a clock this far behind, is still seen.
pub const OVERLAP: i64 = 60;

/// The in-memory mirror of the store's revoked `jti`s.
#[derive(Debug)]
pub struct Denylist {
    reload_every: Duration,
    state: Mutex<Mirror>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Mirror {
    /// `jti` → when the token expires (Unix seconds).
    revoked: HashMap<String, i64>,
    /// When the last reload began: by this process's monotonic clock, and
    /// as the Unix time it read from.
    loaded: Option<(Instant, i64)>,
}

impl Denylist {
    /// A mirror read from the store again once it is `reload_every` old
    /// (zero: on every question).
    pub fn new(reload_every: Duration) -> Self {
        Denylist {
            reload_every,
            state: Mutex::new(Mirror::default()),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The mirror; a panic elsewhere while it was held leaves it usable
    /// (it is only ever added to), never silently empty.
    fn mirror(&self) -> MutexGuard<'_, Mirror> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the mirror is recent enough to answer from.
    fn fresh(&self, m: &Mirror) -> bool {
        m.loaded
            .is_some_and(|(at, _)| !self.reload_every.is_zero() && at.elapsed() < self.reload_every)
    }

    /// Whether the token `jti` was revoked (as of `now`).
    pub async fn contains<S: Store>(
        &self,
        store: &S,
        jti: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let revoked = |m: &Mirror| m.revoked.get(jti).is_some_and(|exp| *exp >= now);
        let loaded_once = {
            // The usual case: one lock, one lookup.
            let m = self.mirror();
            if self.fresh(&m) {
                return Ok(revoked(&m));
            }
            m.loaded.is_some()
        };
        // Someone else reloading: answer from what is there, unless nothing
        // was ever loaded (or every question must read).
        let guard = if loaded_once && !self.reload_every.is_zero() {
            self.reloading.try_lock().ok()
        } else {
            Some(self.reloading.lock().await)
        };
        if guard.is_some() && !self.fresh(&self.mirror()) {
            let started = Instant::now();
            let since = self
                .mirror()
                .loaded
                .map_or(i64::MIN, |(_, from)| from.saturating_sub(OVERLAP));
            let rows = store.revoked_jtis(since, now).await?;
            let mut m = self.mirror();
            m.revoked.retain(|_, exp| *exp >= now);
            m.revoked.extend(rows);
            m.loaded = Some((started, now));
        }
        Ok(revoked(&self.mirror()))
    }

    /// Records a revocation made by this node (already in the store).
    pub fn insert(&self, jti: &str, expires_at: i64) {
        self.mirror().revoked.insert(jti.to_owned(), expires_at);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::SqlStore;

    #[tokio::test]
    async fn reloads_add_what_other_nodes_revoked_and_forget_the_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqlStore::open_file(&dir.path().join("t.db")).await.unwrap();
        let list = Denylist::new(Duration::ZERO);
        store.revoke_jti("a", "c", 100, 10).await.unwrap();
        assert!(list.contains(&store, "a", 10).await.unwrap());
        assert!(!list.contains(&store, "b", 10).await.unwrap());
        // Revoked elsewhere later: seen on the next question (zero: always
        // reloads), through the overlap window.
        store.revoke_jti("b", "c", 200, 20).await.unwrap();
        assert!(list.contains(&store, "b", 21).await.unwrap());
        // Local revocations are there at once, whatever the store says.
        list.insert("local", 300);
        assert!(list.contains(&store, "local", 22).await.unwrap());
        // Expired ones are forgotten.
        assert!(!list.contains(&store, "a", 101).await.unwrap());
        assert!(list.contains(&store, "b", 101).await.unwrap());
        // A reload reads only the overlap window, not the whole table.
        assert_eq!(store.revoked_jtis(20 - OVERLAP, 21).await.unwrap().len(), 2);
        assert_eq!(store.revoked_jtis(80, 21).await.unwrap().len(), 0);
    }
}
