//! The HTTP surface. Every answer is JSON; errors use the RFC 6749 §5.2
//! shape (`{"error": …, "error_description": …}`) with a 4xx status.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::keys::KeyRing;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// The signing keys.
    pub keys: KeyRing,
}

/// An RFC 6749 §5.2-shaped error response.
pub fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

/// The routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/.well-known/jwks.json", get(jwks))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// The published keys (next, current, retiring). Verifiers may cache this
/// for exactly the period by which a next key precedes its first signature.
async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let snap = state.keys.snapshot();
    let max_age = state.keys.rules().jwks_max_age;
    let mut response = (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        snap.jwks.clone(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
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
