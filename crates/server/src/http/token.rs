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

use tessera_verify::dpop::{DpopError, Proof};

use super::request::{form_request, required_param};
use super::{
    dpop, issue, live_session, looks_sealed, no_store, verified_access_token, ApiError, AppState,
};
use crate::config::TokenFormat;
use crate::store::{ClientRecord, RefreshOutcome, Store, WriteAhead};
use crate::{policy, tokens};

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
) -> Response {
    let now = SystemClock.now();
    let answer = grant(&state, &headers, body, now).await;
    dpop::answer(&state, answer, now)
}

async fn grant<S: Store>(
    state: &AppState<S>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    now: i64,
) -> Result<Response, ApiError> {
    let (form, client) = form_request(state, headers, body).await?;
    let grant = required_param(&form, "grant_type")?;
    // RFC 9449 §4.3: checked for every grant; recorded (used up) only once
    // the request was otherwise accepted.
    let proof = dpop::checked(state, headers, "/oauth2/token", now)?;
    if client.public && grant != "refresh_token" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "a public client may only refresh the sessions it holds (grant_type=refresh_token)",
        ));
    }
    // (A refresh decides this with its session, below: a token bound to a
    // key is refused without a proof by it as `invalid_grant`.)
    if (client.public || client.registration.dpop_required) && grant != "refresh_token" {
        dpop::require(
            state,
            proof.as_ref(),
            "this client's tokens are always bound to its key",
            now,
        )?;
    }
    match grant {
        "client_credentials" => {
            if !client.grants.iter().any(|g| g == "client_credentials") {
                return Err(ApiError::unauthorized_client("client_credentials"));
            }
            // RFC 8707 §2: without a resource, the default one: the client's
            // only registered audience, else this issuer — which the
            // registration must allow like any other.
            let named = target(&form)?;
            let audience = match (named, client.registration.audiences.as_deref()) {
                (Some(a), _) => a.to_owned(),
                (None, Some([only])) => only.clone(),
                (None, _) => state.config.issuer.clone(),
            };
            policy::check_audience(&state.config, &client, &audience).map_err(|e| {
                if named.is_some() {
                    ApiError::access(e)
                } else {
                    crate::metrics::ACCESS_REFUSED.inc();
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "invalid_target",
                        "name the audience (or resource) the token is for: one this client \
                         is registered for",
                    )
                }
            })?;
            let scope = policy::grant_scope(
                &client.registration.scopes,
                form.get("scope").and_then(Value::as_str),
            )
            .map_err(ApiError::access)?;
            if state.config.resource(&audience).dpop_required {
                dpop::require(state, proof.as_ref(), RESOURCE_REQUIRES, now)?;
            }
            if let Some(p) = &proof {
                dpop::record(state, p, now).await?;
            }
            let ahead = announce_sealed(state, &audience);
            let jkt = proof.as_ref().map(|p| p.jkt.as_str());
            crate::metrics::ACCESS_TOKENS.inc();
            let keys = state.keys.snapshot();
            let minted = tokens::client_token(
                &keys,
                &state.config,
                &state.sealing,
                &client,
                &audience,
                &scope,
                jkt,
                now,
            )
            .map_err(ApiError::server)?;
            let (access, expires_in) = ahead.until_queued(issue(state, minted, now, None)).await?;
            Ok(no_store(json!(crate::api::TokenResponse {
                access_token: access,
                issued_token_type: None,
                token_type: token_type(jkt),
                expires_in,
                refresh_token: None,
                scope: scope_answer(&scope),
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
            if target(&form)?.is_some() {
                return Err(ApiError::invalid_request(
                    "a refresh keeps its session's audience: omit audience and resource",
                ));
            }
            // Checked before the token is used up: a refused request loses nothing.
            let requested_scope = form.get("scope").and_then(Value::as_str);
            policy::grant_scope(&client.registration.scopes, requested_scope)
                .map_err(ApiError::access)?;
            // The registration may have changed since the session began, and
            // bounds what its tokens say (RFC 6749 §6: never more than the
            // session was granted). Decided inside the store's transaction:
            // a refused refresh leaves the token unused.
            let allowed = |session: &crate::store::SessionRecord| {
                policy::check_audience(&state.config, &client, &session.audience)
                    .and_then(|()| session_scope(&client, session, requested_scope))
            };
            // RFC 9449 §5: a session bound to a key is refreshed only with a
            // proof by that key (a copied refresh token is worthless without
            // it); a resource that takes bound tokens only, only with a proof.
            let proven = |session: &crate::store::SessionRecord| {
                let must = client.public
                    || client.registration.dpop_required
                    || state.config.resource(&session.audience).dpop_required;
                proof_fits(session, proof.as_ref()) && (proof.is_some() || !must)
            };
            let mut recorded = false;
            if let Some(p) = &proof {
                // Recorded only for a refresh that would pass (read first,
                // decided again under the lock, where a proof that was not
                // recorded is refused): a made-up or foreign token with a
                // self-made proof writes nothing.
                let status = state
                    .store
                    .refresh_status(&tokens::refresh_hash(presented), now)
                    .await
                    .map_err(ApiError::server)?;
                let passes = status.is_some_and(|s| {
                    s.active
                        && s.client_id == client.id
                        && proven(&s.session)
                        && allowed(&s.session).is_ok()
                });
                if passes {
                    dpop::record(state, p, now).await?;
                    recorded = true;
                }
            }
            let (next, stored) =
                tokens::new_refresh(&state.config, now).map_err(ApiError::server)?;
            let outcome = state
                .store
                .rotate_refresh(
                    &tokens::refresh_hash(presented),
                    &client.id,
                    &stored,
                    &|s| (proof.is_none() || recorded) && proven(s) && allowed(s).is_ok(),
                    now,
                )
                .await
                .map_err(ApiError::server)?;
            match outcome {
                RefreshOutcome::Rotated(mut session) => {
                    session.scope = allowed(&session).map_err(ApiError::access)?;
                    // The session's key, else (a confidential client, RFC
                    // 9449 §5) this request's.
                    let jkt = session
                        .dpop_jkt
                        .clone()
                        .or_else(|| proof.as_ref().map(|p| p.jkt.clone()));
                    crate::metrics::ACCESS_TOKENS.inc();
                    // Before signing (RS256: ~0.4 ms on this thread): the
                    // task the store just woke — its next writer, waiting
                    // for the write this one finished — runs first. Tokio
                    // keeps a task woken here for this thread, and without
                    // this the writer stood idle while this one signed
                    // (refresh rotation on SQLite ran at half the rate).
                    tokio::task::yield_now().await;
                    let ahead = announce_sealed(state, &session.audience);
                    let keys = state.keys.snapshot();
                    let minted = tokens::access_token(
                        &keys,
                        &state.config,
                        &state.sealing,
                        &session,
                        jkt.as_deref(),
                        now,
                    )
                    .map_err(ApiError::server)?;
                    let (access, expires_in) =
                        ahead.until_queued(issue(state, minted, now, None)).await?;
                    Ok(no_store(json!(crate::api::TokenResponse {
                        access_token: access,
                        issued_token_type: None,
                        token_type: token_type(jkt.as_deref()),
                        expires_in,
                        refresh_token: Some(next.to_string()),
                        scope: scope_answer(&session.scope),
                    })))
                }
                RefreshOutcome::Refused(session) => Err(if !proof_fits(&session, proof.as_ref()) {
                    tracing::warn!(sid = %session.id, client = %client.id,
                        "refresh refused: no DPoP proof by the key the session is bound to");
                    // A bound refresh token presented without its key: a
                    // copied token, most likely. The operator hears of it.
                    let event = crate::audit::Event {
                        action: "refresh.dpop_refused".into(),
                        target: session.id.clone(),
                        outcome: "refused".into(),
                        details: json!({
                            "client_id": client.id,
                            "bound_jkt": session.dpop_jkt,
                            "proof_jkt": proof.as_ref().map(|p| p.jkt.as_str()),
                            "refresh_token": state.store.secret_ref(&tokens::refresh_hash(presented)),
                        }),
                    };
                    if let Err(e) = state
                        .store
                        .append_audit(&[event], crate::audit::Actor::client(&client.id))
                        .await
                    {
                        tracing::warn!(error = %e, "could not audit a refused DPoP refresh");
                    }
                    ApiError::invalid_grant(
                        "this refresh token is bound to a DPoP key: present a proof by that key",
                    )
                } else if !proven(&session) {
                    dpop::missing(
                        state,
                        "this client's or audience's tokens are always bound",
                        now,
                    )
                } else {
                    match allowed(&session) {
                        Err(e) => ApiError::access(e),
                        Ok(_) => ApiError::invalid_grant("refresh token expired or revoked"),
                    }
                }),
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
        TOKEN_EXCHANGE => token_exchange(state, &form, &client, proof.as_ref(), now).await,
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials, refresh_token or \
             urn:ietf:params:oauth:grant-type:token-exchange",
        )),
    }
}

/// A token for `audience` is recorded once minted if it is sealed (`jwe`,
/// `nested`): announced, so that the store's writer may wait for that
/// record to share an fsync ([`Store::write_ahead`]).
fn announce_sealed<S: Store>(state: &AppState<S>, audience: &str) -> WriteAhead {
    if state.config.resource(audience).format == TokenFormat::Jws {
        WriteAhead::none()
    } else {
        state.store.write_ahead()
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
    proof: Option<&Proof>,
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
    // What the session says of the user comes from the session, never from
    // the exchanger (RFC 8693 has no such parameters; a fresh
    // authentication is reported by the session's own client through
    // POST /v1/sessions/{id}/step-up).
    for name in ["amr", "acr", "claims", "auth_time"] {
        if form.contains_key(name) {
            return Err(ApiError::invalid_request(format!(
                "token exchange takes {name} from the session, not from the request; \
                 a fresh authentication is reported through POST /v1/sessions/{{id}}/step-up"
            )));
        }
    }
    let target = target(form)?
        .ok_or_else(|| ApiError::invalid_request("audience (or resource) names the target"))?;
    policy::check_audience(&state.config, client, target).map_err(ApiError::access)?;
    let requested_scope = form.get("scope").and_then(Value::as_str);
    policy::grant_scope(&client.registration.scopes, requested_scope).map_err(ApiError::access)?;
    let resource = state.config.resource(target);
    if resource.format == TokenFormat::Jws {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            format!(
                "{target:?} is a jws resource: token exchange issues sealed tokens \
                 (jwe step-up assertions, nested federation tokens)"
            ),
        ));
    }
    // A token the exchanger may not use reads exactly like a dead one.
    let not_live =
        || ApiError::invalid_grant("subject_token is not a live access token of this issuer");
    // A JWS access token is verified; a sealed one (tessera cannot read it)
    // is found by its hash among those it issued.
    let (sid, subject_jkt) = if looks_sealed(subject) {
        let t = state
            .store
            .sealed(&tokens::refresh_hash(subject))
            .await
            .map_err(ApiError::server)?
            .filter(|t| t.kind == "access_token" && t.expires_at > now && t.revoked_at.is_none())
            .ok_or_else(not_live)?;
        (t.session_id, t.jkt)
    } else {
        let claims = verified_access_token(state, subject, now).ok_or_else(not_live)?;
        let jkt = claims
            .get("cnf")
            .and_then(|c| c.get("jkt"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        (
            claims.get("sid").and_then(Value::as_str).map(str::to_owned),
            jkt,
        )
    };
    let sid = sid.ok_or_else(|| {
        ApiError::invalid_grant(
            "subject_token belongs to no session (a client's own token cannot be exchanged)",
        )
    })?;
    let mut session = live_session(state, &sid, None, now)
        .await
        .map_err(|_| not_live())?;
    // Delegation, not impersonation: the session is the exchanger's own, or
    // its client named the exchanger as an actor it trusts.
    if session.client_id != client.id {
        let owner = state
            .store
            .client(&session.client_id)
            .await
            .map_err(ApiError::server)?;
        if !owner.is_some_and(|o| o.registration.may_act.contains(&client.id)) {
            tracing::warn!(sid = %session.id, client = %client.id,
                "token exchange refused: the session is another client's, which does not trust this one");
            return Err(not_live());
        }
    }
    session.scope = session_scope(client, &session, requested_scope).map_err(ApiError::access)?;
    // A bound subject token is exchanged only by whoever holds its key: a
    // copy of it must not become an unbound token for another audience.
    for bound in [subject_jkt.as_deref(), session.dpop_jkt.as_deref()]
        .into_iter()
        .flatten()
    {
        let p = dpop::require(
            state,
            proof,
            "the subject_token is bound to a DPoP key",
            now,
        )?;
        if p.jkt != bound {
            return Err(dpop::refused(state, DpopError::KeyMismatch, now));
        }
    }
    if resource.dpop_required {
        dpop::require(state, proof, RESOURCE_REQUIRES, now)?;
    }
    if let Some(p) = proof {
        dpop::record(state, p, now).await?;
    }
    let jkt = proof.map(|p| p.jkt.as_str());
    // Its record is written once it is minted.
    let ahead = state.store.write_ahead();
    let keys = state.keys.snapshot();
    let minted = match resource.format {
        TokenFormat::Nested => tokens::federation_token(
            &keys,
            &state.config,
            &state.sealing,
            &session,
            &resource,
            &client.id,
            jkt,
            now,
        )
        .map_err(ApiError::server)?,
        _ => {
            // The session's own authentication, as its client reported it:
            // its methods, level and time, and the claims it carries that
            // this resource declared.
            let mut claims = session.claims.clone();
            claims.retain(|name, _| resource.claims.contains(name));
            let step = tokens::StepUp {
                amr: session.amr.clone(),
                acr: session.acr.clone(),
                auth_time: session.created_at,
                claims,
            };
            tokens::step_up_assertion(
                &keys,
                &state.config,
                &state.sealing,
                &session,
                &resource,
                step,
                Some(&client.id),
                jkt,
                now,
            )
            .map_err(ApiError::server)?
        }
    };
    let event = crate::audit::Event::success(
        "token.exchanged",
        &session.id,
        json!({
            "client_id": client.id, "session_client_id": session.client_id,
            "audience": resource.audience, "format": resource.format.to_string(),
        }),
    );
    let (token, expires_in) = ahead
        .until_queued(issue(state, minted, now, Some(&event)))
        .await?;
    crate::metrics::TOKEN_EXCHANGES.inc();
    tracing::info!(sid = %session.id, client = %client.id, audience = %resource.audience, format = %resource.format, "token exchanged");
    Ok(no_store(json!(crate::api::TokenResponse {
        access_token: token,
        issued_token_type: Some(JWT_TOKEN_TYPE),
        token_type: if jkt.is_some() { "DPoP" } else { "N_A" },
        expires_in,
        refresh_token: None,
        // A federation token carries the session's (narrowed) scope; a
        // step-up assertion none.
        scope: match resource.format {
            TokenFormat::Nested => scope_answer(&session.scope),
            _ => None,
        },
    })))
}

/// Why a proof is missing where a resource requires one.
const RESOURCE_REQUIRES: &str = "this audience takes DPoP-bound tokens only";

/// `DPoP` for a token bound to a key, else `Bearer`.
fn token_type(jkt: Option<&str>) -> &'static str {
    if jkt.is_some() {
        "DPoP"
    } else {
        "Bearer"
    }
}

/// Whether `proof` may refresh `session`: any (or none) for a session not
/// bound to a key; for a bound one, a proof by that key.
fn proof_fits(session: &crate::store::SessionRecord, proof: Option<&Proof>) -> bool {
    match &session.dpop_jkt {
        None => true,
        Some(jkt) => proof.is_some_and(|p| &p.jkt == jkt),
    }
}

/// `audience` or `resource` (RFC 8707; RFC 8693 names both), at most one.
fn target(form: &Map<String, Value>) -> Result<Option<&str>, ApiError> {
    match (
        form.get("audience").and_then(Value::as_str),
        form.get("resource").and_then(Value::as_str),
    ) {
        (Some(a), Some(r)) if a != r => Err(ApiError::invalid_request(
            "audience and resource name different targets: give one",
        )),
        (a, r) => Ok(a.or(r)),
    }
}

/// The scope a token of `session` may carry for `client`: what the session
/// was granted and the client is still registered for; a request may
/// narrow it (RFC 6749 §6), and naming anything beyond it is `invalid_scope`.
fn session_scope(
    client: &ClientRecord,
    session: &crate::store::SessionRecord,
    requested: Option<&str>,
) -> Result<Vec<String>, policy::AccessError> {
    let allowed: Vec<String> = session
        .scope
        .iter()
        .filter(|s| client.registration.scopes.contains(s))
        .cloned()
        .collect();
    policy::grant_scope(&allowed, requested)
}

/// The `scope` member of a token answer: what was granted, if anything.
fn scope_answer(scope: &[String]) -> Option<String> {
    (!scope.is_empty()).then(|| scope.join(" "))
}
