//! `/admin/v1/sessions` and `/admin/v1/revocations`: search sessions,
//! revoke one, revoke many (by user, by client, by time — never "all").

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{answer, body, no_content, now};
use crate::http::{ApiError, AppState};
use crate::store::{Revocation, SessionQuery, SessionRecord, Store};

/// The default page size of a session search, and the largest.
pub const PAGE: u32 = 100;
/// How far in the future `issued_before` may be (clocks differ a little).
pub const FUTURE_SKEW: i64 = 60;

/// The largest page a search may ask for.
pub const MAX_PAGE: u32 = 1000;

/// A session as the admin API shows it: who, for what, until when — not
/// its custom claims.
pub fn session_json(s: &SessionRecord, now: i64) -> Value {
    json!({
        "id": s.id,
        "client_id": s.client_id,
        "sub": s.sub,
        "org": s.org,
        "audience": s.audience,
        "scope": s.scope.join(" "),
        "amr": s.amr,
        "acr": s.acr,
        "created_at": s.created_at,
        "expires_at": s.expires_at,
        "revoked_at": s.revoked_at,
        "active": s.revoked_at.is_none() && s.expires_at > now,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    sub: Option<String>,
    client_id: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// `GET /admin/v1/sessions?sub=&client_id=&limit=&after=` → `{"sessions":
/// [...], "next": <the id to pass as after, or null on the last page>}`.
pub async fn search<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let form = crate::http::request::parse_form(query.unwrap_or_default().as_bytes())?;
    let params: SearchParams = serde_json::from_value(Value::Object(form))
        .map_err(|e| ApiError::invalid_request(format!("query: {e}")))?;
    let limit = match params.limit.as_deref() {
        None => PAGE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_request(format!("limit must be a number from 1 to {MAX_PAGE}"))
            })?,
    };
    let query = SessionQuery {
        sub: params.sub,
        client_id: params.client_id,
        after: params.after,
        limit,
    };
    let page = state
        .store
        .search_sessions(&query)
        .await
        .map_err(ApiError::server)?;
    let now = now();
    let next = (page.len() == limit as usize)
        .then(|| page.last().map(|s| s.id.clone()))
        .flatten();
    Ok(answer(
        StatusCode::OK,
        json!({
            "sessions": page.iter().map(|s| session_json(s, now)).collect::<Vec<_>>(),
            "next": next,
        }),
    ))
}

/// `DELETE /admin/v1/sessions/{id}` → 204 (also if it had already ended);
/// 404 if there is no such session.
pub async fn revoke<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if state
        .store
        .session(&id)
        .await
        .map_err(ApiError::server)?
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such session",
        ));
    }
    state
        .store
        .revoke_sessions(&Revocation::Session(id.clone()), now())
        .await
        .map_err(ApiError::server)?;
    tracing::info!(sid = %id, "session revoked through the admin API");
    Ok(no_content())
}

/// The body of `POST /admin/v1/revocations`: exactly one member.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationRequest {
    /// Every session of this user.
    #[serde(default)]
    pub sub: Option<String>,
    /// Every session this client minted.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Every session created before this Unix time.
    #[serde(default)]
    pub issued_before: Option<i64>,
}

impl RevocationRequest {
    /// What it names, if it names exactly one non-empty thing.
    pub fn revocation(self) -> Result<Revocation, String> {
        let nonempty = |v: Option<String>, what: &str| match v {
            Some(s) if s.is_empty() => Err(format!("{what} must not be empty")),
            other => Ok(other),
        };
        let sub = nonempty(self.sub, "sub")?;
        let client = nonempty(self.client_id, "client_id")?;
        match (sub, client, self.issued_before) {
            (Some(sub), None, None) => Ok(Revocation::Subject(sub)),
            (None, Some(client), None) => Ok(Revocation::Client(client)),
            (None, None, Some(t)) => Ok(Revocation::IssuedBefore(t)),
            (None, None, None) => Err(
                "name what to revoke: exactly one of sub, client_id or issued_before \
                 (there is no \"revoke all\")"
                    .into(),
            ),
            _ => Err("give exactly one of sub, client_id or issued_before".into()),
        }
    }
}

/// `POST /admin/v1/revocations` → `{"sessions_revoked": N}`.
pub async fn mass_revoke<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: RevocationRequest = body(&headers, raw)?;
    let which = request.revocation().map_err(ApiError::invalid_request)?;
    let now = now();
    if let Revocation::IssuedBefore(t) = which {
        // A time to come would name every session, and sessions not even
        // created yet: "revoke all" in disguise (or milliseconds for seconds).
        if t > now.saturating_add(FUTURE_SKEW) {
            return Err(ApiError::invalid_request(format!(
                "issued_before {t} is in the future (now is {now}, in Unix seconds): it would \
                 revoke every session; give the time of the incident, at most now"
            )));
        }
    }
    let n = state
        .store
        .revoke_sessions(&which, now)
        .await
        .map_err(ApiError::server)?;
    tracing::info!(which = ?which, sessions_revoked = n, "sessions revoked through the admin API");
    Ok(answer(StatusCode::OK, json!({ "sessions_revoked": n })))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_names_exactly_one_thing() {
        let r = |v: Value| {
            serde_json::from_value::<RevocationRequest>(v)
                .map_err(|e| e.to_string())
                .and_then(RevocationRequest::revocation)
        };
        assert_eq!(
            r(json!({"sub": "u1"})).unwrap(),
            Revocation::Subject("u1".into())
        );
        assert_eq!(
            r(json!({"client_id": "cli_a"})).unwrap(),
            Revocation::Client("cli_a".into())
        );
        assert_eq!(
            r(json!({"issued_before": 5})).unwrap(),
            Revocation::IssuedBefore(5)
        );
        for bad in [
            json!({}),
            json!({"sub": ""}),
            json!({"sub": "u", "client_id": "c"}),
            json!({"sub": "u", "issued_before": 1}),
            json!({"all": true}),
            json!({"sub": null}),
        ] {
            assert!(r(bad.clone()).is_err(), "{bad}");
        }
    }
}
