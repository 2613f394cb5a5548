//! The HTTP surface. Every answer is JSON; errors use the RFC 6749 §5.2
//! shape (`{"error": …, "error_description": …}`) with a 4xx status (5xx
//! only for the service's own failures, never for bad input). Request
//! bodies are bounded; tokens and secrets are never logged.
//!
//! One file per endpoint family: [`token`] (grants), [`sessions`],
//! [`introspection`] (introspection and revocation), [`discovery`] (JWKS,
//! metadata, OpenAPI, health, metrics). Every family calls the shared
//! plumbing once: [`request`] (body, form and JSON parsing, client
//! authentication), [`dpop`](mod@dpop) (DPoP proofs and nonces) and
//! [`error`](mod@error) (RFC 6749 error bodies).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::keys::KeyRing;
use crate::sealing::SealingKeys;
use crate::store::{SessionRecord, Store};
use crate::tokens;
use crate::tokens::Minted;

pub mod discovery;
pub mod dpop;
pub mod error;
pub mod introspection;
pub mod request;
pub mod sessions;
pub mod token;

pub use error::{error, ApiError};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState<S> {
    /// The signing keys.
    pub keys: KeyRing,
    /// The store.
    pub store: S,
    /// Revoked session-less tokens, mirrored from the store.
    pub revoked: crate::denylist::Denylist,
    /// The configuration.
    pub config: Config,
    /// The public keys of sealed (`jwe`, `nested`) resources.
    pub sealing: SealingKeys,
    /// The client for JWKS fetches (sealed resources' keys).
    pub http: reqwest::Client,
    /// DPoP server nonces.
    pub nonces: dpop::Nonces,
    /// This node, as it reports itself in the store (`nodes`).
    pub node: crate::store::NodeRecord,
}

/// Hands out a minted token, recording it first if it is sealed (tessera
/// cannot read a sealed token back; introspection finds it by hash), with
/// its audit `event` if it has one (step-up assertions, token exchanges).
pub(crate) async fn issue<S: Store>(
    state: &AppState<S>,
    minted: Minted,
    now: i64,
    event: Option<&crate::audit::Event>,
) -> Result<(String, i64), ApiError> {
    if minted.sealed.is_none() {
        if let Some(e) = event {
            // Step-up assertions and exchanged tokens are always sealed
            // (recorded, and audited with their record); should one not be,
            // its event must not vanish silently.
            tracing::error!(action = %e.action, "an audited token was not sealed: no event written");
            return Err(ApiError::server(crate::tokens::MintError::new(
                "an audited token must be sealed",
            )));
        }
    }
    if let Some(record) = &minted.sealed {
        state
            .store
            .record_sealed(record, now, event)
            .await
            .map_err(ApiError::server)?;
    }
    Ok((minted.token, minted.expires_in))
}

/// The routes.
pub fn router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router {
    Router::new()
        .route("/healthz", get(discovery::healthz))
        .route("/.well-known/jwks.json", get(discovery::jwks::<S>))
        .route("/v1/sessions", post(sessions::create_session::<S>))
        .route("/v1/sessions/{id}", delete(sessions::delete_session::<S>))
        .route("/v1/sessions/{id}/step-up", post(sessions::step_up::<S>))
        .route("/oauth2/token", post(token::token::<S>))
        .route("/metrics", get(discovery::metrics))
        .route("/oauth2/introspect", post(introspection::introspect::<S>))
        .route("/oauth2/revoke", post(introspection::revoke::<S>))
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata::<S>),
        )
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration::<S>),
        )
        .route("/openapi.json", get(discovery::openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(audit_context))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// What the audit trail records of a public request besides the client
/// (which the store names): a request id (also answered as `X-Request-Id`)
/// and the peer's address.
async fn audit_context(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let request_id = Some(crate::audit::request_id());
    let source_ip = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let ctx = crate::audit::Context {
        actor: None,
        request_id: request_id.clone(),
        source_ip,
    };
    let mut response = crate::audit::with_context(ctx, next.run(request)).await;
    if let Some(v) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        "method not allowed on this endpoint",
    )
}

pub(crate) fn no_store(value: Value) -> Response {
    let mut response = Json(value).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An access token of ours that verifies now: its claims.
pub(crate) fn verified_access_token<S: Store>(
    state: &AppState<S>,
    token: &str,
    now: i64,
) -> Option<Map<String, Value>> {
    let snap = state.keys.snapshot();
    let verified = snap.verifier.verify_compact(token).ok()?;
    if verified.header().typ() != Some(tokens::ACCESS_TYP) {
        return None;
    }
    let limits = tessera_jose::json::Limits::default();
    let claims = tessera_jose::json::parse_object(verified.payload(), &limits, "claims").ok()?;
    let issuer_ok = claims.get("iss").and_then(Value::as_str) == Some(state.config.issuer.as_str());
    let live = claims
        .get("exp")
        .and_then(Value::as_i64)
        .is_some_and(|exp| exp > now);
    (issuer_ok && live).then_some(claims)
}

/// Whether `token` has the shape of a JWE (five compact segments, or JSON):
/// a sealed token, which tessera looks up rather than reads.
pub(crate) fn looks_sealed(token: &str) -> bool {
    token.starts_with('{') || token.bytes().filter(|&b| b == b'.').count() == 4
}

/// A session that is alive now and, if `client` is given, that client's.
pub(crate) async fn live_session<S: Store>(
    state: &AppState<S>,
    id: &str,
    client: Option<&str>,
    now: i64,
) -> Result<SessionRecord, ApiError> {
    let session = state.store.session(id).await.map_err(ApiError::server)?;
    let session = session
        .filter(|s| client.is_none_or(|c| s.client_id == c))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request",
                "no such session for this client",
            )
        })?;
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(ApiError::invalid_grant("the session has ended"));
    }
    Ok(session)
}
