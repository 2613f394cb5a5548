//! DPoP (RFC 9449) at this service's endpoints (`/oauth2/token`,
//! `POST /v1/sessions`): a request's proof is checked by
//! [`tessera_verify::dpop::check`] against this endpoint's URL as the
//! **configured issuer** names it (never `Host` or `X-Forwarded-*`), then
//! recorded in the store — the replay cache every node shares — as the
//! last step, failing closed (503) when the store cannot say.
//!
//! Server nonces (`[dpop] require_nonce`) are stateless: the MAC of a
//! one-minute time bucket under a key derived from the master key, so
//! every node accepts every node's nonce, for two to three minutes.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_verify::dpop::{self, DpopError, Nonce, Proof};

use super::{ApiError, AppState};
use crate::crypto::{MasterKey, OpenFailed};
use crate::store::Store;

/// The response header carrying a server nonce (RFC 9449 §8).
pub const NONCE_HEADER: &str = "dpop-nonce";

/// The master-key derivation label of the nonce key.
const NONCE_LABEL: &str = "tessera dpop nonce v1";

/// Stateless server nonces: [`dpop::Nonces`] (a one-minute bucket and its
/// HMAC) under a key derived from the master key, so every node makes and
/// accepts the same ones.
#[derive(Debug)]
pub struct Nonces(dpop::Nonces);

impl Nonces {
    /// The nonces of this master key (the same on every node).
    pub fn from_master(master: &MasterKey) -> Result<Self, OpenFailed> {
        let key = master.derive_secret(NONCE_LABEL)?;
        dpop::Nonces::new(key.as_slice())
            .map(Nonces)
            .map_err(|_| OpenFailed)
    }

    /// A fresh nonce.
    pub fn issue(&self, now: i64) -> String {
        self.0.issue(now)
    }

    /// Whether `nonce` is one of ours and still good at `now`.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        self.0.accepts(nonce, now)
    }
}

/// The DPoP proof of a request to this service's `path`, checked against
/// everything but replay ([`record`] does that, last). `None` when the
/// request has no `DPoP` header.
pub(crate) fn checked<S>(
    state: &AppState<S>,
    headers: &HeaderMap,
    path: &str,
    now: i64,
) -> Result<Option<Proof>, ApiError> {
    let Some(proof) = dpop::header(headers).map_err(|e| refused(state, e, now))? else {
        return Ok(None);
    };
    let url = format!("{}{path}", state.config.issuer.trim_end_matches('/'));
    let nonces = &state.nonces;
    let accepts = |n: &str| nonces.accepts(n, now);
    let nonce = if state.config.dpop.require_nonce {
        Nonce::Required(&accepts)
    } else {
        Nonce::NotRequired
    };
    let request = dpop::Request {
        method: "POST",
        url: &url,
        access_token: None,
        nonce,
    };
    dpop::check(proof, &state.config.dpop.rules, &request, now)
        .map(Some)
        .map_err(|e| refused(state, e, now))
}

/// The proof `required` says must be there: [`DpopError::Missing`] if not.
pub(crate) fn require<'p, S>(
    state: &AppState<S>,
    proof: Option<&'p Proof>,
    why: &str,
    now: i64,
) -> Result<&'p Proof, ApiError> {
    proof.ok_or_else(|| missing(state, why, now))
}

/// The answer when a proof is required and there is none (`why` says
/// which rule requires it).
pub(crate) fn missing<S>(state: &AppState<S>, why: &str, now: i64) -> ApiError {
    let mut e = refused(state, DpopError::Missing, now);
    e.describe(format!("a DPoP proof is required: {why}"));
    e
}

/// Records `proof` in the store: refused if it was used before (on any
/// node), 503 if the store cannot say.
pub(crate) async fn record<S: Store>(
    state: &AppState<S>,
    proof: &Proof,
    now: i64,
) -> Result<(), ApiError> {
    let key = dpop::replay_key(&proof.jkt, &proof.jti);
    let until = proof.remember_until(&state.config.dpop.rules);
    match state.store.dpop_first_use(&key, until, now).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(refused(state, DpopError::Replayed, now)),
        Err(e) => {
            tracing::warn!(error = %e, "DPoP replay cache (the store) unavailable: proof refused");
            Err(refused(state, DpopError::ReplayUnavailable, now))
        }
    }
}

/// The answer to a refused proof: 400 `invalid_dpop_proof`, 400
/// `use_dpop_nonce` with a fresh nonce, or 503 when replay cannot be
/// checked.
pub(crate) fn refused<S>(state: &AppState<S>, e: DpopError, now: i64) -> ApiError {
    crate::metrics::DPOP_REFUSED.inc(&[e.code()]);
    if !matches!(e, DpopError::Missing) {
        tracing::info!(reason = %e, "DPoP proof refused");
    }
    let status = match e {
        DpopError::ReplayUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let error = ApiError::new(status, e.code(), e.to_string());
    match (e, HeaderValue::from_str(&state.nonces.issue(now))) {
        (DpopError::UseNonce, Ok(nonce)) => error.dpop_nonce(nonce),
        _ => error,
    }
}

/// Every answer of an endpoint that takes proofs carries exactly one fresh
/// `DPoP-Nonce` when nonces are required (RFC 9449 §8.2).
pub(crate) fn answer<S>(
    state: &AppState<S>,
    result: Result<Response, ApiError>,
    now: i64,
) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    if state.config.dpop.require_nonce {
        if let Ok(v) = HeaderValue::from_str(&state.nonces.issue(now)) {
            response.headers_mut().insert(NONCE_HEADER, v);
        }
    }
    response
}

/// Whether `jkt` looks like an RFC 7638 SHA-256 thumbprint: 43 base64url
/// characters that decode to 32 bytes.
pub(crate) fn is_thumbprint(jkt: &str) -> bool {
    jkt.len() == 43 && tessera_jose::b64::decode(jkt, "dpop_jkt").is_ok_and(|raw| raw.len() == 32)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn nonces(seed: u8) -> Nonces {
        Nonces::from_master(&MasterKey::from_bytes(&[seed; 32]).unwrap()).unwrap()
    }

    #[test]
    fn nonces_live_two_to_three_minutes_on_every_node_of_one_master_key() {
        let (a, b) = (nonces(7), nonces(7));
        let t = 1_800_000_000;
        let n = a.issue(t);
        assert_eq!(n, b.issue(t), "every node makes the same nonce");
        assert!(b.accepts(&n, t));
        let (period, behind) = (dpop::NONCE_PERIOD, dpop::NONCE_BUCKETS_BEHIND);
        let t = t - t % period;
        let n = a.issue(t);
        assert!(b.accepts(&n, t + period * behind));
        assert!(!b.accepts(&n, t + period * (behind + 1)));
        assert!(b.accepts(&n, t - period), "a node a little behind");
        assert!(!b.accepts(&n, t - period - 1));
        assert!(!nonces(8).accepts(&n, t), "another master key");
    }

    #[test]
    fn forged_or_malformed_nonces_are_refused() {
        let a = nonces(7);
        let t = 1_800_000_000;
        let mut raw = tessera_jose::b64::decode(a.issue(t), "nonce").unwrap();
        // Another bucket under the same tag.
        raw[7] ^= 1;
        assert!(!a.accepts(&tessera_jose::b64::encode(&raw), t));
        for bad in ["", "x", "!!!!", &tessera_jose::b64::encode([0u8; 8])] {
            assert!(!a.accepts(bad, t), "{bad:?}");
        }
    }

    #[test]
    fn thumbprints_are_43_base64url_characters_of_32_bytes() {
        assert!(is_thumbprint("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
        assert!(!is_thumbprint("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4"));
        assert!(!is_thumbprint(
            "0ZcOCORZNYy+DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        ));
        assert!(!is_thumbprint(""));
    }
}
