//! `POST /oauth2/introspect` (RFC 7662) and `POST /oauth2/revoke` (RFC 7009).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};
use tessera_jose::jwt::{Clock, SystemClock};

use super::request::{form_request, required_param};
use super::{looks_sealed, no_store, verified_access_token, ApiError, AppState};
use crate::store::{ClientRecord, Store};
use crate::tokens;

/// Whether the session `sid` exists, is not revoked and has not expired.
async fn session_live<S: Store>(
    state: &AppState<S>,
    sid: &str,
    now: i64,
) -> Result<bool, ApiError> {
    let session = state.store.session(sid).await.map_err(ApiError::server)?;
    Ok(session.is_some_and(|s| s.revoked_at.is_none() && s.expires_at > now))
}

/// Whether an access token is still alive beyond its signature and expiry:
/// its session (`sid`) not ended, or — a session-less `client_credentials`
/// token — not revoked and its client not deleted.
async fn still_live<S: Store>(
    state: &AppState<S>,
    caller: &ClientRecord,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<bool, ApiError> {
    if let Some(sid) = claims.get("sid").and_then(Value::as_str) {
        return session_live(state, sid, now).await;
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if state
        .revoked
        .contains(&state.store, jti, now)
        .await
        .map_err(ApiError::server)?
    {
        return Ok(false);
    }
    let Some(owner) = claims.get("client_id").and_then(Value::as_str) else {
        return Ok(false);
    };
    if owner == caller.id {
        return Ok(true); // just authenticated: it exists
    }
    // Kept by the store for `clients.cache_for`: no round trip per request.
    Ok(state
        .store
        .client(owner)
        .await
        .map_err(ApiError::server)?
        .is_some())
}

/// RFC 7662 §4 leaves to the server which callers may learn about which
/// tokens: a client, about the tokens issued to it; a resource server
/// (registered with `--introspect AUDIENCE…`), about tokens for its
/// audiences. Anyone else learns nothing.
fn may_introspect(caller: &ClientRecord, issued_to: Option<&str>, audiences: &[&str]) -> bool {
    issued_to == Some(caller.id.as_str())
        || audiences
            .iter()
            .any(|a| caller.registration.introspect.iter().any(|i| i == a))
}

/// The `aud` of a token's claims: a string or an array of them.
fn audiences(claims: &Map<String, Value>) -> Vec<&str> {
    match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// `POST /oauth2/introspect` (RFC 7662): for an authenticated client, whether
/// an access or refresh token is active, and its claims. Unknown, expired,
/// revoked tokens, and tokens the caller may not learn about (see
/// [`may_introspect`]), are just `{"active": false}`.
#[utoipa::path(post, path = "/oauth2/introspect", request_body(content = crate::api::TokenParam, content_type = "application/x-www-form-urlencoded"), responses((status = 200, description = "RFC 7662 introspection response", body = Object), (status = 400, body = crate::api::ErrorResponse), (status = 401, body = crate::api::ErrorResponse), (status = 413, body = crate::api::ErrorResponse), (status = 415, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn introspect<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (form, client) = form_request(&state, &headers, body).await?;
    if client.public {
        // RFC 7662 §2.1: introspection is for authenticated callers; a
        // public client proves nothing but its name.
        crate::metrics::CLIENT_AUTH_FAILURES.inc();
        return Err(ApiError::invalid_client());
    }
    let token = required_param(&form, "token")?;
    let now = SystemClock.now();
    let inactive = || no_store(json!({ "active": false }));
    if let Some(mut claims) = verified_access_token(&state, token, now) {
        let issued_to = claims.get("client_id").and_then(Value::as_str);
        if !may_introspect(&client, issued_to, &audiences(&claims))
            || !still_live(&state, &client, &claims, now).await?
        {
            return Ok(inactive());
        }
        claims.insert("active".into(), true.into());
        // RFC 9449 §6.2: a bound token says so (its `cnf` is among the
        // claims already).
        let bound = claims.get("cnf").is_some_and(|c| c.get("jkt").is_some());
        claims.insert(
            "token_type".into(),
            if bound { "DPoP" } else { "Bearer" }.into(),
        );
        return Ok(no_store(Value::Object(claims)));
    }
    if looks_sealed(token) {
        let Some(t) = state
            .store
            .sealed(&tokens::refresh_hash(token))
            .await
            .map_err(ApiError::server)?
        else {
            return Ok(inactive());
        };
        if !may_introspect(&client, Some(&t.client_id), &[t.audience.as_str()]) {
            return Ok(inactive());
        }
        // Ending a session revokes its sealed tokens (through their
        // session reference); a session id the token carried is checked too.
        let session_ok = match &t.session_id {
            None => true,
            Some(sid) => session_live(&state, sid, now).await?,
        };
        // Signed by a key this node no longer publishes (compromised, on a
        // node that has not heard yet of the revocation that came with it).
        let key_ok = t
            .kid
            .as_deref()
            .is_none_or(|kid| state.keys.snapshot().published.iter().any(|p| p == kid));
        if t.expires_at <= now || t.revoked_at.is_some() || !session_ok || !key_ok {
            return Ok(inactive());
        }
        // What tessera kept of it — what the token itself carried, and never
        // the sealed claims.
        let mut answer = json!({
            "active": true,
            "token_type": match (&t.jkt, t.kind.as_str()) {
                (Some(_), _) => "DPoP",
                (None, "access_token") => "Bearer",
                _ => "N_A",
            },
            "iss": state.config.issuer,
            "aud": t.audience,
            "client_id": t.client_id,
            "iat": t.issued_at,
            "exp": t.expires_at,
            "jti": t.jti,
            "tessera_format": t.format,
            "tessera_kind": t.kind,
        });
        if let Value::Object(m) = &mut answer {
            if !t.sub.is_empty() {
                m.insert("sub".into(), t.sub.as_str().into());
            }
            // A partner token recorded before records kept only what the
            // token carried (no session reference) may hold a withheld sid.
            let carried = t.format != "nested" || t.session_ref.is_some();
            if let (Some(sid), true) = (&t.session_id, carried) {
                m.insert("sid".into(), sid.as_str().into());
            }
            if let Some(jkt) = &t.jkt {
                m.insert("cnf".into(), json!({ "jkt": jkt }));
            }
        }
        return Ok(no_store(answer));
    }
    let status = state
        .store
        .refresh_status(&tokens::refresh_hash(token), now)
        .await
        .map_err(ApiError::server)?;
    match status {
        // A client learns about its own refresh tokens only.
        Some(s) if s.active && s.client_id == client.id => Ok(no_store(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": s.client_id,
            "sub": s.session.sub,
            "sid": s.session.id,
            "iss": state.config.issuer,
            "iat": s.created_at,
            "exp": s.expires_at,
        }))),
        _ => Ok(inactive()),
    }
}

/// `POST /oauth2/revoke` (RFC 7009): a refresh token ends its session and
/// family; an access token ends its session (so introspection and refresh
/// stop at once; the JWS itself lives until it expires), or — a
/// `client_credentials` token, which has no session — is denied by its
/// `jti` until it expires. Only the client a token was issued to revokes
/// it; for anyone else, and for unknown tokens, the same 200 and nothing
/// changes (RFC 7009 §2.2).
#[utoipa::path(post, path = "/oauth2/revoke", request_body(content = crate::api::TokenParam, content_type = "application/x-www-form-urlencoded"), responses((status = 200, description = "Revoked, or unknown (RFC 7009 §2.2)"), (status = 400, body = crate::api::ErrorResponse), (status = 401, body = crate::api::ErrorResponse), (status = 413, body = crate::api::ErrorResponse), (status = 415, body = crate::api::ErrorResponse), (status = 503, description = "The store is unavailable (retry after `Retry-After` seconds)", body = crate::api::ErrorResponse)))]
pub(crate) async fn revoke<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (form, client) = form_request(&state, &headers, body).await?;
    let token = required_param(&form, "token")?;
    let now = SystemClock.now();
    let sid = if let Some(claims) = verified_access_token(&state, token, now) {
        if claims.get("client_id").and_then(Value::as_str) != Some(client.id.as_str()) {
            None
        } else if let Some(sid) = claims.get("sid").and_then(Value::as_str) {
            Some(sid.to_owned())
        } else {
            let jti = claims
                .get("jti")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(now);
            deny(&state, jti, &client.id, exp, now).await?;
            None
        }
    } else if looks_sealed(token) {
        // The token itself stops being active; a session it was issued
        // into for this client ends too, as for a JWS access token.
        let hash = tokens::refresh_hash(token);
        let revoked = state
            .store
            .revoke_sealed(&hash, &client.id, now)
            .await
            .map_err(ApiError::server)?;
        let record = state
            .store
            .sealed(&hash)
            .await
            .map_err(ApiError::server)?
            .filter(|t| revoked && t.client_id == client.id);
        match record {
            // Session-less: the signed token inside (which its resource
            // holds, decrypted) is denied by its jti too.
            Some(t) if t.session_ref.is_none() && t.session_id.is_none() => {
                deny(&state, &t.jti, &client.id, t.expires_at, now).await?;
                None
            }
            Some(t) => t.session_id,
            None => None,
        }
    } else {
        state
            .store
            .refresh_status(&tokens::refresh_hash(token), now)
            .await
            .map_err(ApiError::server)?
            .filter(|s| s.client_id == client.id)
            .map(|s| s.session.id)
    };
    if let Some(sid) = sid {
        // Ends it only if it is the caller's: the client that minted it, or
        // the public client holding it (whose tokens these are); the
        // store's statement names the minting client.
        let owner = state
            .store
            .session(&sid)
            .await
            .map_err(ApiError::server)?
            .filter(|s| s.client_id == client.id || s.holder.as_deref() == Some(&client.id))
            .map(|s| s.client_id);
        let ended = match owner {
            Some(owner) => state
                .store
                .revoke_session(&sid, &owner, now)
                .await
                .map_err(ApiError::server)?,
            None => false,
        };
        if ended {
            tracing::info!(%sid, client = %client.id, "session revoked through /oauth2/revoke");
        }
    }
    Ok(no_store(json!({})))
}

/// Denies a session-less token of `client` by its `jti` until it expires:
/// in the store (for every node) and in this node's mirror at once.
async fn deny<S: Store>(
    state: &AppState<S>,
    jti: &str,
    client: &str,
    expires_at: i64,
    now: i64,
) -> Result<(), ApiError> {
    if jti.is_empty() {
        return Ok(());
    }
    state
        .store
        .revoke_jti(jti, client, expires_at, now)
        .await
        .map_err(ApiError::server)?;
    state.revoked.insert(jti, expires_at);
    tracing::info!(%client, "client_credentials token revoked");
    Ok(())
}
