//! Fetching the issuer's metadata and JWKS: the only network requests the
//! verifier makes, never on behalf of a token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::JwkSet;

use crate::{BuildError, RefreshBounds};

/// The largest metadata or JWKS document read.
pub const MAX_DOCUMENT: usize = 256 * 1024;

/// The HTTP client for key fetches: rustls on aws-lc-rs, a timeout, no
/// redirects (keys come from the configured URL only). `user_agent` names
/// the caller.
pub fn http_client(user_agent: &str) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A JSON document fetched by [`get_document`].
#[derive(Debug)]
pub struct Document {
    /// The body.
    pub body: Vec<u8>,
    /// `Cache-Control: max-age` (0 for `no-store`/`no-cache`), if given.
    pub max_age: Option<u64>,
}

/// GETs `uri`: a 200 with at most [`MAX_DOCUMENT`] bytes (a JWKS or
/// metadata document), read under that cap as it arrives. A URL that
/// [`crate::urls::check_fetchable`] refuses is never requested.
pub async fn get_document(http: &reqwest::Client, uri: &str) -> Result<Document, String> {
    match fetch(http, uri).await? {
        Fetched::Document(d) => Ok(d),
        Fetched::Status(status) => Err(format!("GET {uri}: HTTP {status}")),
    }
}

/// What a GET answered: a document (a 200), or another status.
enum Fetched {
    Document(Document),
    Status(reqwest::StatusCode),
}

async fn fetch(http: &reqwest::Client, uri: &str) -> Result<Fetched, String> {
    crate::urls::check_fetchable(uri).map_err(|e| format!("GET {}", e.describe(uri)))?;
    let mut response = http
        .get(uri)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {uri}: {e}"))?;
    if response.status() != reqwest::StatusCode::OK {
        return Ok(Fetched::Status(response.status()));
    }
    let max_age = response
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age);
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("GET {uri}: {e}"))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(format!("GET {uri}: over {MAX_DOCUMENT} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched::Document(Document { body, max_age }))
}

/// [`get_document`], counted.
async fn get(
    http: &reqwest::Client,
    uri: &str,
    fetches: &AtomicU64,
) -> Result<(Vec<u8>, Option<u64>), String> {
    fetches.fetch_add(1, Ordering::Relaxed);
    let d = get_document(http, uri).await?;
    Ok((d.body, d.max_age))
}

/// `max-age=N` of a `Cache-Control` value (`no-store`/`no-cache`: 0).
fn max_age(value: &str) -> Option<u64> {
    let mut found = None;
    for part in value.split(',').map(str::trim) {
        if part.eq_ignore_ascii_case("no-store") || part.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if let Some(n) = part.strip_prefix("max-age=") {
            found = n.trim_matches('"').parse().ok();
        }
    }
    found
}

/// The JWKS URL from the issuer's RFC 8414 metadata, read where §3.1 puts
/// it ([`crate::urls::metadata_url`]) or, if that is a 404, from its
/// OpenID Connect Discovery document
/// ([`crate::urls::openid_configuration_url`]). Either must name as
/// `issuer` the very string configured (RFC 8414 §3.3, OpenID Connect
/// Discovery §4.3: identical, no normalisation).
pub(crate) async fn discover(
    http: &reqwest::Client,
    issuer: &str,
    fetches: &AtomicU64,
) -> Result<String, BuildError> {
    let url_error = |reason| BuildError::Url {
        which: "issuer",
        reason,
    };
    let mut uri = crate::urls::metadata_url(issuer).map_err(url_error)?;
    fetches.fetch_add(1, Ordering::Relaxed);
    let mut fetched = fetch(http, &uri).await.map_err(BuildError::Metadata)?;
    if matches!(fetched, Fetched::Status(reqwest::StatusCode::NOT_FOUND)) {
        uri = crate::urls::openid_configuration_url(issuer).map_err(url_error)?;
        fetches.fetch_add(1, Ordering::Relaxed);
        fetched = fetch(http, &uri).await.map_err(BuildError::Metadata)?;
    }
    let body = match fetched {
        Fetched::Document(d) => d.body,
        Fetched::Status(status) => {
            return Err(BuildError::Metadata(format!("GET {uri}: HTTP {status}")))
        }
    };
    let doc =
        tessera_jose::json::parse_object(&body, &tessera_jose::json::Limits::default(), "metadata")
            .map_err(|e| BuildError::Metadata(format!("{uri}: {e}")))?;
    let named = doc.get("issuer").and_then(|v| v.as_str());
    if named != Some(issuer) {
        return Err(BuildError::Metadata(format!(
            "{uri} names issuer {named:?}, not {issuer:?} (RFC 8414 §3.3: identical, \
             so write the issuer exactly as its metadata and its tokens' `iss` do)"
        )));
    }
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .ok_or_else(|| BuildError::Metadata(format!("{uri} has no jwks_uri")))?;
    crate::urls::check_fetchable(jwks_uri).map_err(|reason| BuildError::Url {
        which: "jwks_uri of the issuer's metadata",
        reason,
    })?;
    Ok(jwks_uri.to_owned())
}

/// Fetches the JWKS: a verifier for `algs` over its keys, and how long to use
/// it. A set with no usable key is an error (the last good one stays).
pub(crate) async fn fetch_jwks(
    http: &reqwest::Client,
    uri: &str,
    algs: &[JwsAlgorithm],
    bounds: &RefreshBounds,
    fetches: &AtomicU64,
) -> Result<(tessera_jose::jws::Verifier, Duration), String> {
    let (body, max_age) = get(http, uri, fetches).await?;
    let set = JwkSet::from_json(&body).map_err(|e| format!("{uri}: {e}"))?;
    let verifier = tessera_jose::jws::Verifier::builder()
        .jwk_set(&set, algs)
        .and_then(|b| b.build())
        .map_err(|e| format!("{uri}: no key for the algorithms asked ({e})"))?;
    // `build` checked min <= max, so this cannot panic.
    let ttl = max_age
        .map(Duration::from_secs)
        .unwrap_or(bounds.default)
        .max(bounds.min)
        .min(bounds.max);
    Ok((verifier, ttl))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cache_control() {
        assert_eq!(super::max_age("public, max-age=3600"), Some(3600));
        assert_eq!(super::max_age("max-age=\"60\""), Some(60));
        assert_eq!(super::max_age("no-store"), Some(0));
        assert_eq!(super::max_age("public"), None);
        assert_eq!(super::max_age("max-age=x"), None);
    }
}
