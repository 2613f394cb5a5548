//! Discovery: the JWKS, RFC 8414 metadata, the OpenAPI document, health
//! and metrics. Public, unauthenticated, read-only.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::token::TOKEN_EXCHANGE;
use super::AppState;
use crate::store::Store;

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = crate::api::Health)))]
pub(crate) async fn healthz() -> Response {
    Json(crate::api::Health { status: "ok" }).into_response()
}

/// The published keys (next, current, retiring). Verifiers may cache this
/// for `jwks_max_age`: a next key is served by every node (within
/// `reload_every`) that long before it signs anything (see [`crate::keys`]).
#[utoipa::path(get, path = "/.well-known/jwks.json", responses((status = 200, description = "The JWK Set: next, current and retiring keys", content_type = "application/jwk-set+json", body = Object)))]
pub(crate) async fn jwks<S: Store>(State(state): State<Arc<AppState<S>>>) -> Response {
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

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response()
}

/// RFC 8414 authorization server metadata (also served as the OpenID
/// discovery document, for clients that only look there).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", responses((status = 200, description = "RFC 8414 metadata", body = Object)))]
pub(crate) async fn metadata<S: Store>(State(state): State<Arc<AppState<S>>>) -> Response {
    let issuer = &state.config.issuer;
    let auth_methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt"
    ]);
    // Public clients (`none`) only at the token endpoint: they refresh,
    // with a DPoP proof, and neither introspect nor need to revoke.
    let token_auth_methods = json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none"
    ]);
    let dpop_algs: Vec<&str> = state
        .config
        .dpop
        .rules
        .algorithms()
        .iter()
        .map(|a| a.name())
        .collect();
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "grant_types_supported": ["client_credentials", "refresh_token", TOKEN_EXCHANGE],
        "response_types_supported": [],
        "subject_types_supported": ["public"],
        "token_endpoint_auth_methods_supported": token_auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "id_token_signing_alg_values_supported": [state.config.signing.alg.name()],
        "token_endpoint_auth_signing_alg_values_supported": [state.config.signing.alg.name()],
        "dpop_signing_alg_values_supported": dpop_algs,
    }))
    .into_response()
}

/// The same metadata, where OpenID clients look for it.
#[utoipa::path(get, path = "/.well-known/openid-configuration", responses((status = 200, description = "RFC 8414 metadata, as OpenID discovery", body = Object)))]
pub(crate) async fn openid_configuration<S: Store>(state: State<Arc<AppState<S>>>) -> Response {
    metadata(state).await
}

/// The OpenAPI 3.1 document of every endpoint, generated from the code.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
pub(crate) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::api::openapi_json(),
    )
        .into_response()
}
