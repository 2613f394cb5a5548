//! Sessions: a trusted backend mints one for a user it authenticated,
//! ends it, or reports a fresh strong authentication (step-up).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use tessera_jose::jwt::{Clock, SystemClock};

use tessera_verify::dpop::{DpopError, Proof};

use super::request::{authenticate, json_request};
use super::{dpop, issue, live_session, no_store, ApiError, AppState};
use crate::config::{Resource, TokenFormat};
use crate::store::{ClientRecord, SessionRecord, Store, StoreError};
use crate::{policy, tokens};

/// `POST /v1/sessions`: a trusted client mints a session for a user it has
/// authenticated. Body `{"sub", "org", "roles", "amr", "audience", "claims"}`;
/// answer `{"session_id", "access_token", "session_token", "refresh_token",
/// "token_type": "Bearer", "expires_in"}`.
#[utoipa::path(post, path = "/v1/sessions", request_body(content = crate::api::SessionRequest, content_type = "application/json"), security(("client_secret_basic" = [])), responses((status = 200, body = crate::api::SessionResponse), (status = 400, body = crate::api::ErrorResponse), (status = 401, body = crate::api::ErrorResponse), (status = 413, body = crate::api::ErrorResponse), (status = 415, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn create_session<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let now = SystemClock.now();
    let answer = new_session(&state, &headers, body, now).await;
    dpop::answer(&state, answer, now)
}

async fn new_session<S: Store>(
    state: &AppState<S>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    now: i64,
) -> Result<Response, ApiError> {
    let (request, client): (crate::api::SessionRequest, _) =
        json_request(state, headers, body).await?;
    let proof = dpop::checked(state, headers, "/v1/sessions", now)?;
    let crate::api::SessionRequest {
        sub,
        org,
        roles,
        amr,
        audience,
        claims,
        scope,
        acr,
        dpop_jkt,
        holder,
    } = request;
    for (name, value) in [("sub", &sub), ("org", &org), ("audience", &audience)] {
        if value.is_empty() || value.len() > 1024 {
            return Err(ApiError::invalid_request(format!(
                "{name} must be a non-empty string of at most 1024 bytes"
            )));
        }
    }
    for (name, list) in [("roles", &roles), ("amr", &amr)] {
        if list.iter().any(|v| v.is_empty() || v.len() > 256) || list.len() > 64 {
            return Err(ApiError::invalid_request(format!(
                "{name} must be at most 64 non-empty strings of at most 256 bytes"
            )));
        }
    }
    if acr.as_ref().is_some_and(|a| a.is_empty() || a.len() > 256) {
        return Err(ApiError::invalid_request(
            "acr must be a non-empty string of at most 256 bytes",
        ));
    }
    // Who may ask for this: the audience and scopes registered with the client.
    policy::check_audience(&state.config, &client, &audience).map_err(ApiError::access)?;
    let scope = policy::grant_scope(&client.registration.scopes, scope.as_deref())
        .map_err(ApiError::access)?;
    let resource = state.config.resource(&audience);
    let jkt = session_binding(state, &client, &resource, dpop_jkt, proof.as_ref(), now)?;
    let holder = match holder {
        None => None,
        Some(id) => {
            Some(session_holder(state, &client.id, &id, jkt.as_deref(), &audience, &scope).await?)
        }
    };
    let sub_value = Value::from(sub.as_str());
    let org_value = Value::from(org.as_str());
    let roles_value = Value::from(roles.clone());
    policy::check(
        &resource,
        &claims,
        &[
            ("sub", &sub_value),
            ("org", &org_value),
            ("roles", &roles_value),
        ],
    )
    .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    // Last, once everything else was accepted: the proof is used up.
    if let Some(p) = &proof {
        dpop::record(state, p, now).await?;
    }
    // Accepted: its session is written once its tokens are signed. Announced,
    // so that the store's writer may wait for it to share an fsync.
    let ahead = state.store.write_ahead();

    let session = SessionRecord {
        id: new_session_id().map_err(ApiError::server)?,
        client_id: client.id.clone(),
        sub,
        org,
        roles,
        amr,
        audience,
        claims,
        scope,
        acr,
        created_at: now,
        expires_at: now.saturating_add(crate::config::seconds(state.config.tokens.session_ttl)),
        revoked_at: None,
        dpop_jkt: jkt,
        holder,
    };
    let (refresh, record) = tokens::new_refresh(&state.config, now).map_err(ApiError::server)?;
    let keys = state.keys.snapshot();
    let access = tokens::access_token(
        &keys,
        &state.config,
        &state.sealing,
        &session,
        session.dpop_jkt.as_deref(),
        now,
    )
    .map_err(ApiError::server)?;
    let session_token =
        tokens::session_token(&keys, &state.config, &session, now).map_err(ApiError::server)?;
    // One family per session: the family is named after it.
    ahead
        .until_queued(state.store.create_session(
            &session,
            // A held session's refresh tokens are its holder's.
            &record.record(
                &session.id,
                &session.id,
                session.holder.as_ref().unwrap_or(&client.id),
            ),
        ))
        .await
        .map_err(|e| match e {
            // Deleted since its record was read: as if it had never been.
            StoreError::ClientGone => {
                crate::metrics::CLIENT_AUTH_FAILURES.inc();
                ApiError::invalid_client()
            }
            e => ApiError::server(e),
        })?;
    let (access, expires_in) = issue(state, access, now, None).await?;
    crate::metrics::SESSIONS_CREATED.inc();
    crate::metrics::ACCESS_TOKENS.inc();
    tracing::info!(sid = %session.id, client = %client.id, "session created");
    Ok(no_store(json!(crate::api::SessionResponse {
        session_id: session.id,
        access_token: access,
        session_token,
        refresh_token: refresh.to_string(),
        token_type: if session.dpop_jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        },
        expires_in,
    })))
}

/// A new session's id: `ses_`, the time in milliseconds as 8 base62
/// digits, then 16 random bytes in base64url. The time comes first so that
/// ids sort by creation: the sessions a batch writes together sit side by
/// side in every index keyed by session id (SQLite writes a few pages per
/// batch instead of a few per session). Not secret either way (the id is in
/// every token of the session, as is the time it began), and not
/// guessable: the random part is 128 bits.
fn new_session_id() -> Result<String, crate::crypto::OpenFailed> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let random = crate::crypto::random_token(16)?;
    let mut id = String::with_capacity(4 + 8 + random.len());
    id.push_str("ses_");
    id.push_str(&base62_fixed(millis));
    id.push_str(&random);
    Ok(id)
}

/// `n` as 8 base62 digits (`0-9A-Za-z`, in ASCII order: the text sorts as
/// the number), modulo 62^8 (about 6,900 years of milliseconds).
fn base62_fixed(mut n: u128) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 8];
    for slot in out.iter_mut().rev() {
        let digit = usize::try_from(n % 62).unwrap_or(0);
        *slot = DIGITS.get(digit).copied().unwrap_or(b'0');
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// The DPoP key a new session is bound to: `dpop_jkt` (RFC 9449 §10), or
/// the key of the request's own proof; both must then name the same key.
/// A client or resource registered with `dpop = required` gets no unbound
/// session.
fn session_binding<S>(
    state: &AppState<S>,
    client: &ClientRecord,
    resource: &Resource,
    dpop_jkt: Option<String>,
    proof: Option<&Proof>,
    now: i64,
) -> Result<Option<String>, ApiError> {
    if let Some(j) = &dpop_jkt {
        if !dpop::is_thumbprint(j) {
            return Err(ApiError::invalid_request(
                "dpop_jkt must be an RFC 7638 SHA-256 JWK thumbprint (43 base64url characters)",
            ));
        }
    }
    let jkt = match (dpop_jkt, proof) {
        (Some(j), Some(p)) if p.jkt != j => {
            return Err(dpop::refused(state, DpopError::KeyMismatch, now))
        }
        (Some(j), _) => Some(j),
        (None, p) => p.map(|p| p.jkt.clone()),
    };
    if jkt.is_none() {
        if client.registration.dpop_required {
            return Err(dpop::missing(
                state,
                "this client's tokens are always bound",
                now,
            ));
        }
        if resource.dpop_required {
            return Err(dpop::missing(
                state,
                "this resource takes DPoP-bound tokens only",
                now,
            ));
        }
    }
    Ok(jkt)
}

/// The public client named as a session's `holder`: registered as public,
/// with the `refresh_token` grant, and registered for the session's
/// audience and scope itself; the session must be bound to a key.
async fn session_holder<S: Store>(
    state: &AppState<S>,
    minter: &str,
    id: &str,
    jkt: Option<&str>,
    audience: &str,
    scope: &[String],
) -> Result<String, ApiError> {
    if jkt.is_none() {
        return Err(ApiError::invalid_request(
            "holder requires dpop_jkt: a public client refreshes only with the key it proves",
        ));
    }
    let holder = state
        .store
        .client(id)
        .await
        .map_err(ApiError::server)?
        .filter(|c| c.public && c.grants.iter().any(|g| g == "refresh_token"))
        .ok_or_else(|| {
            ApiError::invalid_request(
                "holder must be a registered public client with the refresh_token grant",
            )
        })?;
    // The app names the backends that mint its sessions (its `may_act`):
    // no other client can issue tokens in its name.
    if !holder.registration.may_act.iter().any(|c| c == minter) {
        return Err(ApiError::invalid_request(
            "holder has not named this client among those that may mint its sessions \
             (tessera clients update HOLDER --may-act THIS_CLIENT)",
        ));
    }
    policy::check_audience(&state.config, &holder, audience).map_err(ApiError::access)?;
    if !scope.is_empty() {
        policy::grant_scope(&holder.registration.scopes, Some(&scope.join(" ")))
            .map_err(ApiError::access)?;
    }
    Ok(holder.id.clone())
}

/// `DELETE /v1/sessions/{id}`: the client that minted it ends a session;
/// its refresh tokens die with it.
#[utoipa::path(delete, path = "/v1/sessions/{id}", params(("id" = String, Path, description = "The session id")), security(("client_secret_basic" = [])), responses((status = 204, description = "Revoked"), (status = 401, body = crate::api::ErrorResponse), (status = 404, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn delete_session<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let client = authenticate(&state, &headers, None).await?;
    let found = state
        .store
        .revoke_session(&id, &client.id, SystemClock.now())
        .await
        .map_err(ApiError::server)?;
    if !found {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "no such session for this client",
        ));
    }
    tracing::info!(sid = %id, client = %client.id, "session revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A step-up assertion is sealed to a `jwe` resource (a partner gets
/// federation tokens instead).
pub(crate) fn check_step_up_target(resource: &Resource) -> Result<(), ApiError> {
    match resource.format {
        TokenFormat::Jwe => {}
        TokenFormat::Jws => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                format!(
                    "{:?} is a jws resource: step-up assertions are sealed, so the resource \
                     must be configured with format = \"jwe\"",
                    resource.audience
                ),
            ))
        }
        TokenFormat::Nested => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                format!(
                    "{:?} is a partner (nested): partners receive federation tokens through \
                     token exchange",
                    resource.audience
                ),
            ))
        }
    }
    Ok(())
}

/// Checks a step-up's input for `resource`: bounded `amr`/`acr`, and
/// claims the resource declared (personal data is allowed: the assertion is
/// sealed). The authentication it reports happened `now`.
fn step_up_input(
    resource: &Resource,
    amr: Vec<String>,
    acr: String,
    claims: Map<String, Value>,
    now: i64,
) -> Result<tokens::StepUp, ApiError> {
    if amr.is_empty() || amr.len() > 64 || amr.iter().any(|v| v.is_empty() || v.len() > 256) {
        return Err(ApiError::invalid_request(
            "amr must be 1 to 64 non-empty strings of at most 256 bytes",
        ));
    }
    if acr.is_empty() || acr.len() > 256 {
        return Err(ApiError::invalid_request(
            "acr must be a non-empty string of at most 256 bytes",
        ));
    }
    policy::check(resource, &claims, &[]).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    Ok(tokens::StepUp {
        amr,
        acr: Some(acr),
        auth_time: now,
        claims,
    })
}

/// `POST /v1/sessions/{id}/step-up`: the session's client reports a fresh
/// strong authentication; the answer is a short-lived assertion sealed to a
/// `jwe` resource, carrying `sub, sid, amr, acr, auth_time` and the claims.
#[utoipa::path(post, path = "/v1/sessions/{id}/step-up", params(("id" = String, Path, description = "The session id")), request_body(content = crate::api::StepUpRequest, content_type = "application/json"), security(("client_secret_basic" = [])), responses((status = 200, body = crate::api::StepUpResponse), (status = 400, body = crate::api::ErrorResponse), (status = 401, body = crate::api::ErrorResponse), (status = 404, body = crate::api::ErrorResponse), (status = 413, body = crate::api::ErrorResponse), (status = 415, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn step_up<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (request, client): (crate::api::StepUpRequest, _) =
        json_request(&state, &headers, body).await?;
    let now = SystemClock.now();
    let session = live_session(&state, &id, Some(&client.id), now).await?;
    policy::check_audience(&state.config, &client, &request.audience).map_err(ApiError::access)?;
    let resource = state.config.resource(&request.audience);
    check_step_up_target(&resource)?;
    if resource.dpop_required && session.dpop_jkt.is_none() {
        return Err(dpop::missing(
            &state,
            "this audience takes DPoP-bound tokens only, and the session is not bound to a key",
            now,
        ));
    }
    let step = step_up_input(&resource, request.amr, request.acr, request.claims, now)?;
    let event = crate::audit::Event::success(
        "step_up.issued",
        &session.id,
        json!({
            "client_id": client.id, "audience": resource.audience,
            "amr": step.amr, "acr": step.acr,
        }),
    );
    let ahead = state.store.write_ahead();
    let keys = state.keys.snapshot();
    let minted = tokens::step_up_assertion(
        &keys,
        &state.config,
        &state.sealing,
        &session,
        &resource,
        step,
        None,
        session.dpop_jkt.as_deref(),
        now,
    )
    .map_err(ApiError::server)?;
    let (assertion, expires_in) = ahead
        .until_queued(issue(&state, minted, now, Some(&event)))
        .await?;
    crate::metrics::STEP_UPS.inc();
    tracing::info!(sid = %session.id, client = %client.id, audience = %resource.audience, "step-up assertion issued");
    Ok(no_store(json!(crate::api::StepUpResponse {
        assertion,
        token_type: "N_A",
        expires_in,
    })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_sort_by_time_and_differ() {
        assert_eq!(base62_fixed(0), "00000000");
        assert_eq!(base62_fixed(61), "0000000z");
        assert_eq!(base62_fixed(62), "00000010");
        // Text order is number order, across digit classes too.
        let times = [
            9u128,
            10,
            35,
            36,
            61,
            62,
            1_800_000_000_000,
            1_800_000_000_001,
        ];
        for pair in times.windows(2) {
            if let [a, b] = pair {
                assert!(base62_fixed(*a) < base62_fixed(*b), "{a} < {b}");
            }
        }
        let (a, b) = (new_session_id().unwrap(), new_session_id().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("ses_") && a.len() == 4 + 8 + 22, "{a}");
        // Made one after the other: the time part never goes back.
        assert!(a.get(..12) <= b.get(..12), "{a} then {b}");
    }
}
