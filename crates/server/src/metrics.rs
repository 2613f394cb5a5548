//! Counters exported at `GET /metrics` in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug)]
pub struct Counter {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Counter {
    const fn new(name: &'static str, help: &'static str) -> Self {
        Counter {
            name,
            help,
            value: AtomicU64::new(0),
        }
    }
    /// Adds one.
    pub fn inc(&self) {
        self.value.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

/// Sessions created.
pub static SESSIONS_CREATED: Counter =
    Counter::new("tessera_sessions_created_total", "Sessions created.");
/// Access tokens issued (all grants).
pub static ACCESS_TOKENS: Counter = Counter::new(
    "tessera_access_tokens_issued_total",
    "Access tokens issued.",
);
/// Refresh tokens presented again after use (each revoked a family).
pub static REFRESH_REUSE: Counter = Counter::new(
    "tessera_refresh_token_reuse_total",
    "Refresh tokens presented after use; each revoked its family and session.",
);
/// Failed client authentications.
pub static CLIENT_AUTH_FAILURES: Counter = Counter::new(
    "tessera_client_auth_failures_total",
    "Client authentications that failed.",
);
/// Argon2id checks of client secrets computed (a remembered success costs none).
pub static SECRET_HASHES: Counter = Counter::new(
    "tessera_client_secret_hashes_total",
    "Argon2id checks of client secrets computed; a success remembered from the last minute costs none.",
);
/// Requests refused because too many secret checks were queued (503).
pub static SECRET_HASH_REFUSED: Counter = Counter::new(
    "tessera_client_secret_checks_refused_total",
    "Client authentications answered 503 because too many Argon2id checks were queued.",
);
/// Token requests refused by the client's registration.
pub static ACCESS_REFUSED: Counter = Counter::new(
    "tessera_token_requests_refused_total",
    "Token requests for an audience or scope outside the client's registration (invalid_target, invalid_scope).",
);

/// Step-up assertions issued.
pub static STEP_UPS: Counter = Counter::new(
    "tessera_step_up_assertions_issued_total",
    "Step-up assertions issued (sealed JWE).",
);
/// Token exchanges (RFC 8693) answered.
pub static TOKEN_EXCHANGES: Counter = Counter::new(
    "tessera_token_exchanges_total",
    "Token exchanges answered (step-up assertions and federation tokens).",
);
/// Failed fetches of a sealed resource's JWKS (the last good key stays).
pub static SEALING_KEY_REFRESH_FAILURES: Counter = Counter::new(
    "tessera_sealing_key_refresh_failures_total",
    "Failed refreshes of a sealed resource's JWKS; the last good key stays in use.",
);
/// Tokens issued bound to a DPoP key (`cnf.jkt`).
pub static DPOP_BOUND: Counter = Counter::new(
    "tessera_dpop_bound_tokens_total",
    "Tokens issued bound to a DPoP key (cnf.jkt).",
);
/// Transactions committed by the group commit.
pub static STORE_GROUP_COMMITS: Counter = Counter::new(
    "tessera_store_group_commits_total",
    "Transactions committed by the store's group commit (SQLite: one fsync each; PostgreSQL: one commit per batch of a node).",
);
/// Writes committed by the group commit.
pub static STORE_GROUP_WRITES: Counter = Counter::new(
    "tessera_store_group_writes_total",
    "Writes (sessions, refresh rotations, sealed-token records) committed by the group commit; divided by tessera_store_group_commits_total, the mean batch.",
);
/// Writes tried again one at a time after their PostgreSQL batch failed.
pub static STORE_GROUP_RETRIED_ALONE: Counter = Counter::new(
    "tessera_store_group_retried_alone_total",
    "Writes tried again one at a time because the database refused their batch (a constraint, a deadlock): each then fails or succeeds on its own. A batch whose connection broke midway is tried once more as a whole instead, and one that got no connection fails together.",
);

/// Counters by label values (a few routes and statuses, a few dozen audit
/// actions: the label sets are small and fixed by the code).
#[derive(Debug)]
pub struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    values: std::sync::Mutex<std::collections::BTreeMap<Vec<String>, u64>>,
}

impl Family {
    const fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Family {
            name,
            help,
            labels,
            values: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        }
    }
    /// Adds one to the counter of these label values (one per label).
    pub fn inc(&self, values: &[&str]) {
        if let Ok(mut map) = self.values.lock() {
            let key = values.iter().map(|v| (*v).to_owned()).collect();
            *map.entry(key).or_insert(0) += 1;
        }
    }
    /// The counter of these label values.
    pub fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        self.values
            .lock()
            .ok()
            .and_then(|map| map.get(&key).copied())
            .unwrap_or(0)
    }
    fn render(&self, out: &mut String) {
        out.push_str(&format!(
            "# HELP {n} {h}\n# TYPE {n} counter\n",
            n = self.name,
            h = self.help
        ));
        let Ok(map) = self.values.lock() else { return };
        for (values, count) in map.iter() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .zip(values)
                .map(|(l, v)| format!("{l}=\"{}\"", escape_label(v)))
                .collect();
            out.push_str(&format!("{}{{{}}} {count}\n", self.name, labels.join(",")));
        }
    }
}

/// A label value in the exposition format: backslash, quote and newline escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Admin API requests, by route template and status.
pub static ADMIN_REQUESTS: Family = Family::new(
    "tessera_admin_requests_total",
    "Admin API requests, by route and status.",
    &["route", "status"],
);
/// Audit events written, by action.
pub static AUDIT_EVENTS: Family = Family::new(
    "tessera_audit_events_total",
    "Audit events appended to the trail, by action.",
    &["action"],
);

/// DPoP proofs refused, by error code (`invalid_dpop_proof`,
/// `use_dpop_nonce`, `temporarily_unavailable`).
pub static DPOP_REFUSED: Family = Family::new(
    "tessera_dpop_refused_total",
    "DPoP proofs refused (or missing where required), by error code.",
    &["error"],
);

const FAMILIES: &[&Family] = &[&ADMIN_REQUESTS, &AUDIT_EVENTS, &DPOP_REFUSED];

const ALL: &[&Counter] = &[
    &SESSIONS_CREATED,
    &ACCESS_TOKENS,
    &REFRESH_REUSE,
    &CLIENT_AUTH_FAILURES,
    &SECRET_HASHES,
    &SECRET_HASH_REFUSED,
    &ACCESS_REFUSED,
    &STEP_UPS,
    &TOKEN_EXCHANGES,
    &SEALING_KEY_REFRESH_FAILURES,
    &DPOP_BOUND,
    &STORE_GROUP_COMMITS,
    &STORE_GROUP_WRITES,
    &STORE_GROUP_RETRIED_ALONE,
];

/// Every counter, in the Prometheus text exposition format.
pub fn render() -> String {
    let mut out = String::new();
    for c in ALL {
        out.push_str(&format!(
            "# HELP {n} {h}\n# TYPE {n} counter\n{n} {v}\n",
            n = c.name,
            h = c.help,
            v = c.get()
        ));
    }
    for f in FAMILIES {
        f.render(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_escaped_labels() {
        static F: Family = Family::new("t_total", "Test.", &["route", "status"]);
        F.inc(&["/a/{id}", "200"]);
        F.inc(&["/a/{id}", "200"]);
        F.inc(&["x\"y\\z\n", "403"]);
        assert_eq!(F.get(&["/a/{id}", "200"]), 2);
        let mut out = String::new();
        F.render(&mut out);
        assert!(
            out.contains("t_total{route=\"/a/{id}\",status=\"200\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("t_total{route=\"x\\\"y\\\\z\\n\",status=\"403\"} 1\n"),
            "{out}"
        );
    }
}
