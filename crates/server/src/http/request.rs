//! Shared request plumbing: bounded bodies, forms (RFC 6749 §3.1/§3.2),
//! strict JSON, and client authentication (`client_secret_basic`,
//! `client_secret_post`, `private_key_jwt`, and `none` for public clients). Every endpoint family calls it.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine as _;
use serde_json::{Map, Value};
use tessera_jose::jwt::{Clock, SystemClock};

use super::{ApiError, AppState, MAX_BODY};
use crate::clients;
use std::sync::Arc;

use crate::store::{ClientRecord, Store};

/// RFC 6749 §2.3.1 `%`-decoding of a Basic credential part.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    Some(bytes)
}

/// `Authorization: Basic` credentials, if present and well-formed.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::invalid_client())?;
    let Some(encoded) = value
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("basic "))
        .and_then(|_| value.get(6..))
    else {
        return Err(ApiError::invalid_client());
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| ApiError::invalid_client())?;
    let text = String::from_utf8(decoded).map_err(|_| ApiError::invalid_client())?;
    let (id, secret) = text.split_once(':').ok_or_else(ApiError::invalid_client)?;
    Ok(Some((
        percent_decode(id).ok_or_else(ApiError::invalid_client)?,
        percent_decode(secret).ok_or_else(ApiError::invalid_client)?,
    )))
}

/// Authenticates the client (`client_secret_basic`, or `client_secret_post`
/// when `form` carries `client_id` and `client_secret`); one method only.
pub(crate) async fn authenticate<S: Store>(
    state: &AppState<S>,
    headers: &HeaderMap,
    form: Option<&Map<String, Value>>,
) -> Result<Arc<ClientRecord>, ApiError> {
    let basic = basic_credentials(headers)?;
    if let Some(kind) = form.and_then(|f| f.get("client_assertion_type")) {
        if basic.is_some() || form.is_some_and(|f| f.contains_key("client_secret")) {
            return Err(ApiError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        if kind.as_str() != Some(JWT_BEARER) {
            return Err(ApiError::invalid_client());
        }
        return authenticate_assertion(state, form.unwrap_or(&Map::new())).await;
    }
    let posted = form.and_then(|f| {
        let id = f.get("client_id")?.as_str()?;
        let secret = f.get("client_secret")?.as_str()?;
        Some((id.to_owned(), secret.to_owned()))
    });
    let (id, secret) = match (basic, posted) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                "use one client authentication method, not two",
            ))
        }
        (Some(c), None) | (None, Some(c)) => c,
        (None, None) => return public_client(state, form).await,
    };
    let secret = zeroize::Zeroizing::new(secret);
    let client = clients::authenticate(&state.store, &id, &secret)
        .await
        .map_err(|e| match e {
            clients::AuthenticateError::Store(e) => ApiError::server(e),
            clients::AuthenticateError::Busy => ApiError::busy(),
        })?;
    client.ok_or_else(|| {
        crate::metrics::CLIENT_AUTH_FAILURES.inc();
        ApiError::invalid_client()
    })
}

/// A public client (RFC 6749 §2.1, `token_endpoint_auth_method` `none`):
/// it only names itself with `client_id` in the form. Only a client
/// registered as public is accepted so; what it may then do — refresh the
/// sessions it holds, each time with a DPoP proof — each endpoint decides.
async fn public_client<S: Store>(
    state: &AppState<S>,
    form: Option<&Map<String, Value>>,
) -> Result<Arc<ClientRecord>, ApiError> {
    let fail = || {
        crate::metrics::CLIENT_AUTH_FAILURES.inc();
        ApiError::invalid_client()
    };
    let id = form
        .and_then(|f| f.get("client_id"))
        .and_then(Value::as_str)
        .ok_or_else(fail)?;
    let client = state.store.client(id).await.map_err(ApiError::server)?;
    client.filter(|c| c.public).ok_or_else(fail)
}

/// RFC 7523 §2.2: the client assertion type of `private_key_jwt`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest accepted assertion lifetime.
const MAX_ASSERTION_LIFETIME: i64 = 600;
/// Clock skew allowed past an assertion's `exp`. Its `jti` is remembered
/// until `exp` plus this leeway: as long as the assertion is accepted at all
/// (a shorter memory let it be replayed in the leeway).
const ASSERTION_LEEWAY: u32 = 60;

/// `private_key_jwt` (RFC 7523 §3): the assertion in `client_assertion`,
/// signed by a key of the client's registered JWKS with that key's
/// algorithm; `iss` and `sub` the client (named by `client_id`, which
/// must accompany it), `aud` the issuer or the endpoint, `exp` within ten
/// minutes, and a `jti` never seen before.
async fn authenticate_assertion<S: Store>(
    state: &AppState<S>,
    form: &Map<String, Value>,
) -> Result<Arc<ClientRecord>, ApiError> {
    let fail = || {
        crate::metrics::CLIENT_AUTH_FAILURES.inc();
        ApiError::invalid_client()
    };
    let assertion = form
        .get("client_assertion")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_request("client_assertion is required"))?;
    let id = form
        .get("client_id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_request("client_id must accompany client_assertion"))?;
    let client = state
        .store
        .client(id)
        .await
        .map_err(ApiError::server)?
        .ok_or_else(fail)?;
    let jwks = client.jwks.as_deref().ok_or_else(fail)?;
    let set = clients::check_client_jwks(jwks).map_err(|_| fail())?;
    let all: Vec<tessera_jose::jwa::JwsAlgorithm> =
        tessera_jose::jwa::JwsAlgorithm::all().collect();
    let verifier = tessera_jose::jws::Verifier::builder()
        .jwk_set(&set, &all)
        .and_then(|b| b.build())
        .map_err(|_| fail())?;
    let issuer = &state.config.issuer;
    let validation = tessera_jose::jwt::Validation::new()
        .leeway(ASSERTION_LEEWAY)
        .issuer(id)
        .audience(issuer)
        .audience(&format!("{issuer}/oauth2/token"))
        .audience(&format!("{issuer}/oauth2/introspect"))
        .audience(&format!("{issuer}/oauth2/revoke"));
    let now = SystemClock.now();
    let verified =
        tessera_jose::jwt::verify::<Value>(assertion, &verifier, &validation, &SystemClock)
            .map_err(|_| fail())?;
    let claims = verified.claims();
    let exp = claims.exp.ok_or_else(fail)?;
    let jti = claims
        .jti
        .as_deref()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(fail)?;
    if claims.sub.as_deref() != Some(id) || exp - now > MAX_ASSERTION_LIFETIME {
        return Err(fail());
    }
    let fresh = state
        .store
        .use_assertion(
            id,
            jti,
            exp.saturating_add(i64::from(ASSERTION_LEEWAY)),
            now,
        )
        .await
        .map_err(ApiError::server)?;
    if !fresh {
        tracing::warn!(client = %id, "client assertion replayed");
        return Err(fail());
    }
    Ok(client)
}

fn require_content_type(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            format!("the body must be {expected}"),
        ))
    }
}

/// The body, or an RFC 6749-shaped error (413 when over [`MAX_BODY`]).
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "invalid_request",
                format!("the body is larger than {MAX_BODY} bytes"),
            )
        } else {
            ApiError::invalid_request("the body could not be read")
        }
    })
}

/// The common start of the form-encoded OAuth endpoints: a bounded
/// `application/x-www-form-urlencoded` body with each parameter once, and
/// an authenticated client.
pub(crate) async fn form_request<S: Store>(
    state: &AppState<S>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Map<String, Value>, Arc<ClientRecord>), ApiError> {
    let body = body_bytes(body)?;
    require_content_type(headers, "application/x-www-form-urlencoded")?;
    let form = parse_form(&body)?;
    let client = authenticate(state, headers, Some(&form)).await?;
    Ok((form, client))
}

pub(crate) fn required_param<'a>(
    form: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, ApiError> {
    form.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid_request(format!("{name} is required")))
}

/// An `application/x-www-form-urlencoded` body, each parameter at most once
/// (RFC 6749 §3.2); a parameter without a value is treated as omitted
/// (§3.1), so `client_id=` is no client id.
pub(crate) fn parse_form(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for (k, v) in form_urlencoded::parse(body) {
        if v.is_empty() {
            continue;
        }
        if out
            .insert(k.clone().into_owned(), Value::String(v.into_owned()))
            .is_some()
        {
            return Err(ApiError::invalid_request(format!(
                "parameter {k:?} is given more than once"
            )));
        }
    }
    Ok(out)
}

/// A JSON request of a client with the `sessions` grant: authenticated
/// first, then the body (bounded, strict JSON, no duplicate members) as `T`.
pub(crate) async fn json_request<S: Store, T: serde::de::DeserializeOwned>(
    state: &AppState<S>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(T, Arc<ClientRecord>), ApiError> {
    let body = body_bytes(body)?;
    let client = authenticate(state, headers, None).await?;
    if !client.grants.iter().any(|g| g == "sessions") {
        return Err(ApiError::unauthorized_client("sessions"));
    }
    Ok((json_body(headers, &body)?, client))
}

/// A JSON body (`Content-Type: application/json`; strict JSON, bounded, no
/// duplicate members) as `T`. Unknown members are refused where `T` says
/// `deny_unknown_fields`.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    require_content_type(headers, "application/json")?;
    let limits = tessera_jose::json::Limits::default();
    let body = tessera_jose::json::parse_object(body, &limits, "request body")
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::invalid_request(format!("request body: {e}")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn forms_treat_empty_parameters_as_omitted_and_refuse_repeats() {
        let form = parse_form(b"grant_type=client_credentials&client_id=&scope=").unwrap();
        assert_eq!(form.len(), 1);
        assert_eq!(form["grant_type"], "client_credentials");
        // An empty value and a real one: the real one stands.
        let form = parse_form(b"token=&token=abc").unwrap();
        assert_eq!(form["token"], "abc");
        assert!(parse_form(b"token=a&token=b").is_err());
        assert!(parse_form(b"").unwrap().is_empty());
    }
}
