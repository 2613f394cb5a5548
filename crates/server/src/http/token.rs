//! `POST /oauth2/token`: `client_credentials`, `refresh_token` (rotated on
//! every use, reuse revokes the family) and RFC 8693 token exchange.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};
use tessera_jose::jwt::{Clock, SystemClock};

use super::request::{form_request, required_param};
use super::sessions::step_up_input;
use super::{
    issue, live_session, looks_sealed, no_store, verified_access_token, ApiError, AppState,
};
use crate::config::TokenFormat;
use crate::store::{ClientRecord, RefreshOutcome, Store};
use crate::tokens;

/// RFC 8693 token exchange.
pub(crate) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: an OAuth access token.
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3: a JWT.
pub(crate) const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// `POST /oauth2/token` (RFC 6749 §4.4 `client_credentials`, §6
/// `refresh_token` with rotation and reuse detection).
#[utoipa::path(post, path = "/oauth2/token", request_body(content = crate::api::TokenRequest, content_type = "application/x-www-form-urlencoded"), responses((status = 200, body = crate::api::TokenResponse), (status = 400, body = crate::api::ErrorResponse), (status = 401, body = crate::api::ErrorResponse), (status = 413, body = crate::api::ErrorResponse), (status = 415, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn token<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (form, client) = form_request(&state, &headers, body).await?;
    let grant = required_param(&form, "grant_type")?;
    let now = SystemClock.now();
    match grant {
        "client_credentials" => {
            if !client.grants.iter().any(|g| g == "client_credentials") {
                return Err(ApiError::unauthorized_client("client_credentials"));
            }
            let audience = form
                .get("audience")
                .or_else(|| form.get("resource"))
                .and_then(Value::as_str)
                .unwrap_or(&state.config.issuer)
                .to_owned();
            let scope = form.get("scope").and_then(Value::as_str);
            crate::metrics::ACCESS_TOKENS.inc();
            let keys = state.keys.snapshot();
            let minted = tokens::client_token(
                &keys,
                &state.config,
                &state.sealing,
                &client,
                &audience,
                scope,
                now,
            )
            .map_err(ApiError::server)?;
            let (access, expires_in) = issue(&state, minted, now).await?;
            Ok(no_store(json!(crate::api::TokenResponse {
                access_token: access,
                issued_token_type: None,
                token_type: "Bearer",
                expires_in,
                refresh_token: None,
            })))
        }
        "refresh_token" => {
            // Refresh tokens come from sessions; a client refreshes its own.
            if !client
                .grants
                .iter()
                .any(|g| g == "sessions" || g == "refresh_token")
            {
                return Err(ApiError::unauthorized_client("refresh_token"));
            }
            let presented = required_param(&form, "refresh_token")?;
            let (next, stored) =
                tokens::new_refresh(&state.config, now).map_err(ApiError::server)?;
            let outcome = state
                .store
                .rotate_refresh(&tokens::refresh_hash(presented), &client.id, &stored, now)
                .await
                .map_err(ApiError::server)?;
            match outcome {
                RefreshOutcome::Rotated(session) => {
                    crate::metrics::ACCESS_TOKENS.inc();
                    let keys = state.keys.snapshot();
                    let minted =
                        tokens::access_token(&keys, &state.config, &state.sealing, &session, now)
                            .map_err(ApiError::server)?;
                    let (access, expires_in) = issue(&state, minted, now).await?;
                    Ok(no_store(json!(crate::api::TokenResponse {
                        access_token: access,
                        issued_token_type: None,
                        token_type: "Bearer",
                        expires_in,
                        refresh_token: Some(next.to_string()),
                    })))
                }
                RefreshOutcome::Reused {
                    family_id,
                    session_id,
                } => {
                    tracing::warn!(
                        family = %family_id, sid = %session_id, client = %client.id,
                        "refresh token reused: family and session revoked"
                    );
                    crate::metrics::REFRESH_REUSE.inc();
                    Err(ApiError::invalid_grant("refresh token already used"))
                }
                RefreshOutcome::Expired => {
                    Err(ApiError::invalid_grant("refresh token expired or revoked"))
                }
                RefreshOutcome::Unknown => Err(ApiError::invalid_grant("unknown refresh token")),
            }
        }
        TOKEN_EXCHANGE => token_exchange(&state, &form, &client, now).await,
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials, refresh_token or \
             urn:ietf:params:oauth:grant-type:token-exchange",
        )),
    }
}

/// RFC 8693 token exchange: the caller's access token (`subject_token`)
/// for a sealed token to `audience`/`resource`: a step-up assertion for a
/// `jwe` resource (`amr`, `acr`, `claims` parameters), a federation token
/// (JWS-in-JWE, only released attributes) for a `nested` partner.
pub(crate) async fn token_exchange<S: Store>(
    state: &AppState<S>,
    form: &Map<String, Value>,
    client: &ClientRecord,
    now: i64,
) -> Result<Response, ApiError> {
    if !client.grants.iter().any(|g| g == "token_exchange") {
        return Err(ApiError::unauthorized_client("token_exchange"));
    }
    let subject = required_param(form, "subject_token")?;
    if required_param(form, "subject_token_type")? != ACCESS_TOKEN_TYPE {
        return Err(ApiError::invalid_request(format!(
            "subject_token_type must be {ACCESS_TOKEN_TYPE}"
        )));
    }
    if let Some(t) = form.get("requested_token_type").and_then(Value::as_str) {
        if t != JWT_TOKEN_TYPE {
            return Err(ApiError::invalid_request(format!(
                "requested_token_type can only be {JWT_TOKEN_TYPE}"
            )));
        }
    }
    let target = form
        .get("audience")
        .or_else(|| form.get("resource"))
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_request("audience (or resource) names the target"))?;
    let not_live =
        || ApiError::invalid_grant("subject_token is not a live access token of this issuer");
    // A JWS access token is verified; a sealed one (tessera cannot read it)
    // is found by its hash among those it issued.
    let sid = if looks_sealed(subject) {
        state
            .store
            .sealed(&tokens::refresh_hash(subject))
            .await
            .map_err(ApiError::server)?
            .filter(|t| t.kind == "access_token" && t.expires_at > now && t.revoked_at.is_none())
            .ok_or_else(not_live)?
            .session_id
    } else {
        verified_access_token(state, subject, now)
            .ok_or_else(not_live)?
            .get("sid")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let sid = sid.ok_or_else(|| {
        ApiError::invalid_grant(
            "subject_token belongs to no session (a client's own token cannot be exchanged)",
        )
    })?;
    let session = live_session(state, &sid, None, now).await?;
    let resource = state.config.resource(target);
    let keys = state.keys.snapshot();
    let minted = match resource.format {
        TokenFormat::Nested => tokens::federation_token(
            &keys,
            &state.config,
            &state.sealing,
            &session,
            &resource,
            &client.id,
            now,
        )
        .map_err(ApiError::server)?,
        TokenFormat::Jwe => {
            let amr = form
                .get("amr")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let acr = form
                .get("acr")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let extra = match form.get("claims").and_then(Value::as_str) {
                None => Map::new(),
                Some(text) => tessera_jose::json::parse_object(
                    text.as_bytes(),
                    &tessera_jose::json::Limits::default(),
                    "claims",
                )
                .map_err(|e| ApiError::invalid_request(e.to_string()))?,
            };
            let step = step_up_input(&resource, amr, acr, extra)?;
            tokens::step_up_assertion(
                &keys,
                &state.config,
                &state.sealing,
                &session,
                &resource,
                step,
                now,
            )
            .map_err(ApiError::server)?
        }
        TokenFormat::Jws => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                format!(
                    "{target:?} is a jws resource: token exchange issues sealed tokens \
                     (jwe step-up assertions, nested federation tokens)"
                ),
            ))
        }
    };
    let (token, expires_in) = issue(state, minted, now).await?;
    crate::metrics::TOKEN_EXCHANGES.inc();
    tracing::info!(sid = %session.id, client = %client.id, audience = %resource.audience, format = %resource.format, "token exchanged");
    Ok(no_store(json!(crate::api::TokenResponse {
        access_token: token,
        issued_token_type: Some(JWT_TOKEN_TYPE),
        token_type: "N_A",
        expires_in,
        refresh_token: None,
    })))
}
