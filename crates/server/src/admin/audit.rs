//! `GET /admin/v1/audit?after=SEQ&limit=N`: the audit trail in order, as a
//! JSON page or, with `Accept: application/x-ndjson`, one event per line,
//! optionally only the events of an `action`, an `actor` (its id or its
//! type) or a time range (`since`, `until`, Unix seconds). And
//! `GET /admin/v1/audit/verify`: the chain checked from its start.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::answer;
use crate::http::{ApiError, AppState};
use crate::store::Store;

/// The default page of events.
pub const PAGE: i64 = 100;
/// The largest page one request may ask for.
pub const MAX_PAGE: i64 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    after: Option<String>,
    limit: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// How many events one filtered request reads at most before it answers
/// (with `next` where it stopped): a filter that matches nothing costs a
/// bounded amount, and the caller pages on.
pub const MAX_SCAN: i64 = 10_000;

/// What a filtered page keeps.
struct Filter {
    action: Option<String>,
    actor: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.action.is_none()
            && self.actor.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    fn keeps(&self, e: &crate::audit::AuditRecord) -> bool {
        self.action.as_deref().is_none_or(|a| e.action == a)
            && self
                .actor
                .as_deref()
                .is_none_or(|a| e.actor_id.as_deref() == Some(a) || e.actor_type == a)
            && self.since.is_none_or(|t| e.time >= t)
            && self.until.is_none_or(|t| e.time <= t)
    }
}

fn text_param(value: Option<String>, name: &str) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.len() > 200 => Err(ApiError::invalid_request(format!(
            "{name} is over 200 characters"
        ))),
        Some(v) => Ok(Some(v)),
    }
}

fn number(
    text: Option<&str>,
    name: &str,
    default: i64,
    range: (i64, i64),
) -> Result<i64, ApiError> {
    match text {
        None => Ok(default),
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| (range.0..=range.1).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "{name} must be a number from {} to {}",
                    range.0, range.1
                ))
            }),
    }
}

/// Whether the caller asked for NDJSON.
fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| {
            m.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-ndjson"))
        })
}

/// `GET /admin/v1/audit` → `{"events": [...], "next": <the seq to pass as
/// after, or null on the last page>}`, or NDJSON lines.
pub async fn events<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let form = crate::http::request::parse_form(query.unwrap_or_default().as_bytes())?;
    let params: Params = serde_json::from_value(Value::Object(form))
        .map_err(|e| ApiError::invalid_request(format!("query: {e}")))?;
    let after = number(params.after.as_deref(), "after", 0, (0, i64::MAX))?;
    let limit = number(params.limit.as_deref(), "limit", PAGE, (1, MAX_PAGE))?;
    let filter = Filter {
        action: text_param(params.action, "action")?,
        actor: text_param(params.actor, "actor")?,
        since: params
            .since
            .as_deref()
            .map(|t| number(Some(t), "since", 0, (0, i64::MAX)))
            .transpose()?,
        until: params
            .until
            .as_deref()
            .map(|t| number(Some(t), "until", 0, (0, i64::MAX)))
            .transpose()?,
    };
    // `next` is where reading stopped: the seq to pass as `after`.
    let (page, next) = if filter.is_empty() {
        let page = state
            .store
            .audit_events(after, limit)
            .await
            .map_err(ApiError::server)?;
        let next = (page.len() as i64 == limit)
            .then(|| page.last().map(|e| e.seq))
            .flatten();
        (page, next)
    } else {
        let mut kept = Vec::new();
        let mut cursor = after;
        let mut scanned = 0;
        let next = loop {
            let batch = state
                .store
                .audit_events(cursor, MAX_PAGE)
                .await
                .map_err(ApiError::server)?;
            let Some(last) = batch.last().map(|e| e.seq) else {
                break None;
            };
            let full = batch.len() as i64 == MAX_PAGE;
            for e in batch {
                scanned += 1;
                cursor = e.seq;
                if filter.keeps(&e) {
                    kept.push(e);
                    if kept.len() as i64 == limit {
                        break;
                    }
                }
            }
            if kept.len() as i64 == limit || scanned >= MAX_SCAN {
                break Some(cursor);
            }
            if !full {
                break None;
            }
            cursor = last;
        };
        (kept, next)
    };
    if wants_ndjson(&headers) {
        let mut body = String::new();
        for e in &page {
            body.push_str(&e.to_json().to_string());
            body.push('\n');
        }
        return Ok((
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            body,
        )
            .into_response());
    }
    Ok(answer(
        StatusCode::OK,
        json!({
            "events": page.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
            "next": next,
        }),
    ))
}

/// `GET /admin/v1/audit/verify` → `{"verified_through", "events",
/// "broken_at": null, "reason": null}`, or, when an event does not verify,
/// `{"verified_through": null, "events": null, "broken_at": SEQ, "reason"}`
/// — the same check as `tessera audit verify`, over the whole trail. One
/// verification runs at a time in this process (others wait their turn):
/// however often it is asked for, it costs at most one walk at a time. A
/// break is checked twice before it is reported: the pruning that runs
/// meanwhile can make the first walk miss the start of the trail.
pub async fn verify<S: Store>(State(state): State<Arc<AppState<S>>>) -> Result<Response, ApiError> {
    use crate::audit::{verify_store, VerifyError};
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut result = verify_store(&state.store, state.store.audit_keys()).await;
    if matches!(result, Err(VerifyError::Broken(_))) {
        result = verify_store(&state.store, state.store.audit_keys()).await;
    }
    let body = match result {
        Ok(v) => json!({
            "verified_through": v.through,
            "events": v.events,
            "broken_at": null,
            "reason": null,
        }),
        Err(VerifyError::Broken(b)) => json!({
            "verified_through": null,
            "events": null,
            "broken_at": b.seq,
            "reason": b.reason,
        }),
        Err(VerifyError::Store(e)) => return Err(ApiError::server(e)),
    };
    Ok(answer(StatusCode::OK, body))
}
