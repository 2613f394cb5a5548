//! Revoked tokens that have no session (`client_credentials`): their `jti`s,
//! kept in the store until the tokens expire and mirrored in memory, so that
//! introspection answers without a store round trip per request.
//!
//! A revocation made through this node is in memory at once; one made on
//! another node is read within `clients.cache_for` (the same bound as a
//! client's deletion). Revocations are never undone, so a reload only adds:
//! nothing revoked here can be forgotten by a reload racing it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::{Store, StoreError};

/// The in-memory mirror of the store's revoked `jti`s.
#[derive(Debug)]
pub struct Denylist {
    reload_every: Duration,
    state: Mutex<Mirror>,
    /// One reload at a time; the others use what is there.
    reloading: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Mirror {
    /// `jti` → when the token expires (Unix seconds).
    revoked: HashMap<String, i64>,
    loaded: Option<Instant>,
}

impl Denylist {
    /// A mirror read from the store again once it is `reload_every` old.
    pub fn new(reload_every: Duration) -> Self {
        Denylist {
            reload_every,
            state: Mutex::new(Mirror::default()),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    fn fresh(&self) -> bool {
        self.state.lock().is_ok_and(|m| {
            m.loaded
                .is_some_and(|at| at.elapsed() < self.reload_every && !self.reload_every.is_zero())
        })
    }

    /// Whether the token `jti` was revoked (as of `now`).
    pub async fn contains<S: Store>(
        &self,
        store: &S,
        jti: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        if !self.fresh() {
            let _one = self.reloading.lock().await;
            if !self.fresh() {
                let started = Instant::now();
                let rows = store.revoked_jtis(now).await?;
                if let Ok(mut m) = self.state.lock() {
                    m.revoked.retain(|_, exp| *exp >= now);
                    m.revoked.extend(rows);
                    m.loaded = Some(started);
                }
            }
        }
        Ok(self
            .state
            .lock()
            .is_ok_and(|m| m.revoked.get(jti).is_some_and(|exp| *exp >= now)))
    }

    /// Records a revocation made by this node (already in the store).
    pub fn insert(&self, jti: &str, expires_at: i64) {
        if let Ok(mut m) = self.state.lock() {
            m.revoked.insert(jti.to_owned(), expires_at);
        }
    }
}
