//! `/admin/v1/overview` and `/admin/v1/resources`: the service as it runs
//! and as it is configured — what the console's overview and resources
//! pages show, and what an operator's script can ask without reading the
//! configuration file.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Value};

use super::{answer, now, Caller};
use crate::admins;
use crate::config::{Resource, TokenFormat};
use crate::http::{ApiError, AppState};
use crate::store::Store;

/// `GET /admin/v1/overview` (any admin) → `{"issuer", "version", "store",
/// "signing_alg", "rotate_every", "jwks_max_age", "now", "counts":
/// {"clients", "live_sessions"}, "nodes": [{"id", "version", "started_at",
/// "seen_at", "this"}]}` (the nodes seen alive within three key-maintenance
/// periods, at least three minutes; `this` is the one answering). A count is `null` when the caller's
/// token may not read what it counts (`clients:read`, `sessions:read`).
pub async fn overview<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    let now = now();
    let scopes = &caller.admin.scopes;
    let clients = if admins::allows(scopes, "clients:read") {
        let n = state.store.clients().await.map_err(ApiError::server)?.len();
        Some(n)
    } else {
        None
    };
    let live_sessions = if admins::allows(scopes, "sessions:read") {
        Some(
            state
                .store
                .count_live_sessions(now)
                .await
                .map_err(ApiError::server)?,
        )
    } else {
        None
    };
    let rules = state.keys.rules();
    // Seen within three maintenance periods (at least three minutes).
    let period = i64::try_from(state.config.signing.reload_every.as_secs()).unwrap_or(3600);
    let since = now.saturating_sub(period.saturating_mul(3).max(180));
    let nodes = state
        .store
        .nodes_seen(since)
        .await
        .map_err(ApiError::server)?;
    Ok(answer(
        StatusCode::OK,
        json!({
            "issuer": state.config.issuer,
            "version": env!("CARGO_PKG_VERSION"),
            "store": state.store.kind(),
            "signing_alg": state.config.signing.alg.name(),
            "rotate_every": rules.rotate_every,
            "jwks_max_age": rules.jwks_max_age,
            "now": now,
            "counts": {"clients": clients, "live_sessions": live_sessions},
            "nodes": nodes
                .iter()
                .map(|n| json!({
                    "id": n.id,
                    "version": n.version,
                    "started_at": n.started_at,
                    "seen_at": n.seen_at,
                    "this": n.id == state.node.id,
                }))
                .collect::<Vec<_>>(),
        }),
    ))
}

/// Who can read the claims of a resource's tokens, in words.
pub fn readable_by(format: TokenFormat) -> &'static str {
    match format {
        TokenFormat::Jws => {
            "Anyone who holds one of its tokens reads every claim: they are signed, not encrypted."
        }
        TokenFormat::Jwe => {
            "Only the resource: its tokens are sealed to its public key (a signed token inside)."
        }
        TokenFormat::Nested => {
            "Only the partner: its tokens are signed by this service, then sealed to the \
             partner's key, with only the attributes released to it."
        }
    }
}

fn format_name(format: TokenFormat) -> &'static str {
    match format {
        TokenFormat::Jws => "jws",
        TokenFormat::Jwe => "jwe",
        TokenFormat::Nested => "nested",
    }
}

/// One `[[resources]]` entry as the admin API shows it.
pub fn resource_json(r: &Resource, signing: &str) -> Value {
    let mut algorithms = vec![signing.to_owned()];
    if let Some(s) = &r.sealing {
        algorithms.push(s.alg.name().to_owned());
        algorithms.push(s.enc.name().to_owned());
    }
    json!({
        "audience": r.audience,
        "format": format_name(r.format),
        "algorithms": algorithms,
        "claims": r.claims,
        "release": r.release,
        "dpop": if r.dpop_required { "required" } else { "optional" },
        "readable_by": readable_by(r.format),
    })
}

/// `GET /admin/v1/resources` → `{"resources": [...]}`: each `[[resources]]`
/// entry — audience, format, algorithms (signing, then sealing `alg` and
/// `enc`), declared claims, released attributes, DPoP, and who can read
/// its tokens.
pub async fn resources<S: Store>(
    State(state): State<Arc<AppState<S>>>,
) -> Result<Response, ApiError> {
    let signing = state.config.signing.alg.name();
    Ok(answer(
        StatusCode::OK,
        json!({
            "resources": state
                .config
                .resources
                .iter()
                .map(|r| resource_json(r, signing))
                .collect::<Vec<_>>(),
        }),
    ))
}
