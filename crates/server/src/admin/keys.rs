//! `/admin/v1/keys`: the signing keys, a rotation, and the procedure for a
//! leaked key.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::{answer, now};
use crate::http::{ApiError, AppState};
use crate::keys::KeyError;
use crate::store::{KeyRecord, KeyState, Store};

/// One key as the admin API shows it (its public part is in the JWKS).
pub fn key_json(k: &KeyRecord) -> Value {
    let in_jwks = matches!(
        k.state,
        KeyState::Next | KeyState::Current | KeyState::Retiring
    );
    json!({
        "kid": k.kid,
        "alg": k.alg,
        "state": k.state.as_str(),
        "created_at": k.created_at,
        "signs_from": k.activates_at,
        "leaves_jwks_at": k.retires_at,
        "in_jwks": in_jwks,
    })
}

fn failed(e: KeyError) -> ApiError {
    match e {
        KeyError::UnknownKey(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such signing key")
        }
        KeyError::AlreadyCompromised(kid) => ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request",
            format!("signing key {kid} is already marked compromised"),
        ),
        KeyError::Store(e) => ApiError::server(e),
        other => ApiError::server(other),
    }
}

/// `GET /admin/v1/keys` → `{"keys": [...], "jwks_max_age", "rotate_every"}`.
pub async fn list<S: Store>(State(state): State<Arc<AppState<S>>>) -> Result<Response, ApiError> {
    let keys = state.store.signing_keys().await.map_err(ApiError::server)?;
    let rules = state.keys.rules();
    Ok(answer(
        StatusCode::OK,
        json!({
            "keys": keys.iter().map(key_json).collect::<Vec<_>>(),
            "jwks_max_age": rules.jwks_max_age,
            "rotate_every": rules.rotate_every,
        }),
    ))
}

/// `POST /admin/v1/keys/rotate` → `{"kid", "signs_from"}`: the next key,
/// and when it signs (at once if it has been published long enough).
pub async fn rotate<S: Store>(State(state): State<Arc<AppState<S>>>) -> Result<Response, ApiError> {
    let now = now();
    let at = state.keys.rotate(&state.store, now).await.map_err(failed)?;
    let keys = state.store.signing_keys().await.map_err(ApiError::server)?;
    let wanted = if at <= now {
        KeyState::Current
    } else {
        KeyState::Next
    };
    let kid = keys
        .iter()
        .find(|k| k.state == wanted)
        .map(|k| k.kid.clone());
    tracing::info!(kid = ?kid, signs_from = at, "key rotation requested through the admin API");
    Ok(answer(
        StatusCode::OK,
        json!({ "kid": kid, "signs_from": at }),
    ))
}

/// `POST /admin/v1/keys/{kid}/compromised` → `{"kid", "new_kid",
/// "verifiers_may_accept_until"}`.
pub async fn compromised<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(kid): Path<String>,
) -> Result<Response, ApiError> {
    let done = state
        .keys
        .compromise(&state.store, &kid, now())
        .await
        .map_err(failed)?;
    tracing::warn!(kid = %done.kid, new_kid = %done.new_kid,
        until = done.verifiers_may_accept_until, "signing key marked compromised through the admin API");
    Ok(answer(
        StatusCode::OK,
        json!({
            "kid": done.kid,
            "new_kid": done.new_kid,
            "verifiers_may_accept_until": done.verifiers_may_accept_until,
        }),
    ))
}
