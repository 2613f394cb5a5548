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
    out
}
