//! `GET /admin/v1/audit?after=SEQ&limit=N`: the audit trail in order, as a
//! JSON page or, with `Accept: application/x-ndjson`, one event per line.

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
    let page = state
        .store
        .audit_events(after, limit)
        .await
        .map_err(ApiError::server)?;
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
    let next = (page.len() as i64 == limit)
        .then(|| page.last().map(|e| e.seq))
        .flatten();
    Ok(answer(
        StatusCode::OK,
        json!({
            "events": page.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
            "next": next,
        }),
    ))
}
