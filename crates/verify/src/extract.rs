//! The axum side: the [`Claims`] extractor, a layer for whole routers, and
//! role/scope checks.

use axum::extract::{FromRef, FromRequestParts, Request, State};
use axum::http::{header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::{AuthError, Verifier};

/// The claims of a verified tessera access token, typed as `T`
/// (default: [`AccessClaims`]). Registered claims are in `.0.claims`.
#[derive(Debug, Clone)]
pub struct Claims<T = AccessClaims>(pub crate::Verified<T>);

/// The custom claims tessera access tokens carry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AccessClaims {
    /// The user's organisation.
    #[serde(default)]
    pub org: Option<String>,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Authentication methods (RFC 8176).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The client that minted the session or token.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The session.
    #[serde(default)]
    pub sid: Option<String>,
    /// `client_credentials` tokens: the granted scope, space-separated.
    #[serde(default)]
    pub scope: Option<String>,
}

/// A DPoP-bound token whose proof the [`layer`] checked for this request.
#[derive(Clone)]
struct Proven(String);

/// How a token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `Authorization: Bearer` (RFC 6750).
    Bearer,
    /// `Authorization: DPoP`, with a `DPoP` proof (RFC 9449 §7.1).
    Dpop,
}

/// The access token of a request: from `Authorization: Bearer` or
/// `Authorization: DPoP` only (the scheme in any case). A token
/// offered in the query string (`access_token=`) or a form body is refused
/// outright (and never logged): URLs end up in logs and histories. So is a
/// request with more than one credential — two `Authorization` headers, or
/// one holding several (`Bearer a, Bearer b`: RFC 9110 §5.3 merging by a
/// proxy): a proxy in front may have judged another one than we would
/// pick, so none is picked.
fn credential(parts: &Parts) -> Result<(Scheme, &str), AuthError> {
    let query_token = parts.uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("access_token"))
    });
    if query_token {
        return Err(AuthError::InvalidRequest(
            "tokens in the URL are refused: send Authorization: Bearer",
        ));
    }
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        let form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        return Err(if form {
            AuthError::InvalidRequest(
                "tokens in a form body are refused: send Authorization: Bearer",
            )
        } else {
            AuthError::Missing
        });
    };
    if values.next().is_some() {
        return Err(AuthError::AmbiguousCredentials(
            "more than one Authorization header: send exactly one",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidRequest("malformed Authorization header"))?;
    let several = AuthError::AmbiguousCredentials(
        "more than one credential in the Authorization header: send exactly one",
    );
    let Some((scheme, token)) = value.split_once(' ') else {
        // A bare scheme (`Bearer`) or a merged pair without a space
        // after the scheme (`Bearer,Bearer x`).
        return Err(if value.contains(',') {
            several
        } else {
            AuthError::InvalidRequest("malformed Authorization header")
        });
    };
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        // Another scheme is not ours to judge (its parameters may hold
        // commas), unless a credential of ours was merged in after it.
        return Err(if value.split(',').skip(1).any(starts_bearer) {
            several
        } else {
            AuthError::Missing
        });
    };
    let token = token.trim_start_matches(' ');
    // A bearer token has no comma (RFC 6750 §2.1 b64token): one here is
    // a second credential.
    if token.contains(',') {
        return Err(several);
    }
    if !is_b64token(token) {
        return Err(AuthError::InvalidRequest("malformed Authorization header"));
    }
    Ok((scheme, token))
}

/// The token of `Authorization: Bearer` ([`credential`]'s, whatever the
/// scheme: for the unit tests of the parsing).
#[cfg(test)]
fn bearer(parts: &Parts) -> Result<&str, AuthError> {
    credential(parts).map(|(_, t)| t)
}

/// Whether a comma-separated part of an `Authorization` value starts a
/// credential of ours (`Bearer` or `DPoP`, then a space, or alone).
fn starts_bearer(part: &str) -> bool {
    let part = part.trim_start_matches([' ', '\t']);
    let starts = |name: &str| {
        part.get(..name.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(name))
            && matches!(part.as_bytes().get(name.len()), None | Some(b' '))
    };
    starts("bearer") || starts("dpop")
}

impl Verifier {
    /// Verifies the access token of a request — what [`Claims`] and
    /// [`layer`] do: `Authorization: Bearer`, or `Authorization: DPoP`
    /// with a `DPoP` proof (RFC 9449 §7.1) when the verifier has an
    /// [`external_url`](crate::VerifierBuilder::external_url). A token
    /// bound to a key (`cnf.jkt`) is accepted only as `DPoP`, with a proof
    /// for this request (method, this resource's URL and path, `ath` the
    /// token's hash, fresh, not seen before) signed by that key; one sent
    /// as `Bearer` is refused (no downgrade), as is an unbound token sent
    /// as `DPoP`.
    pub async fn verify_request<T: DeserializeOwned>(
        &self,
        parts: &Parts,
    ) -> Result<crate::Verified<T>, AuthError> {
        let (scheme, token) = credential(parts)?;
        let verified = self.verify_any::<T>(token)?;
        // Proven already, for this very token, by the layer in front of
        // this extractor: the proof is not checked (nor recorded) twice.
        if scheme == Scheme::Dpop
            && parts
                .extensions
                .get::<Proven>()
                .is_some_and(|p| p.0 == token)
        {
            return Ok(verified);
        }
        let side = self.inner.dpop.as_ref();
        let now = self.now();
        let refuse = |error: &'static str, description: String| AuthError::Dpop {
            // With nonces on, every DPoP refusal hands out a fresh one.
            nonce: side.and_then(|d| d.nonces.as_ref()).map(|n| n.issue(now)),
            error,
            description,
            algs: side.map_or_else(String::new, |d| {
                d.rules
                    .algorithms()
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(" ")
            }),
        };
        let jkt = match (scheme, &verified.dpop_jkt) {
            (Scheme::Bearer, None) => return Ok(verified),
            (Scheme::Bearer, Some(_)) => {
                return Err(refuse(
                    "invalid_token",
                    "the token is bound to a DPoP key: send it as Authorization: DPoP, \
                     with a proof"
                        .into(),
                ))
            }
            (Scheme::Dpop, None) => {
                return Err(refuse(
                    "invalid_token",
                    "the token is not bound to a key: send it as Authorization: Bearer".into(),
                ))
            }
            (Scheme::Dpop, Some(jkt)) => jkt,
        };
        let side = side.ok_or_else(|| {
            refuse(
                "invalid_token",
                "this resource does not accept DPoP-bound tokens (no external URL configured)"
                    .into(),
            )
        })?;
        let failed = |e: crate::dpop::DpopError| refuse(e.code(), e.to_string());
        let proof = crate::dpop::header(&parts.headers)
            .map_err(failed)?
            .ok_or_else(|| failed(crate::dpop::DpopError::Missing))?;
        // The path as the client sent it: a nested router strips its prefix
        // from `uri`, not from the original.
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.path(), |o| o.0.path());
        let url = format!("{}{}", side.base, path);
        let accepts = |n: &str| side.nonces.as_ref().is_some_and(|k| k.accepts(n, now));
        let request = crate::dpop::Request {
            method: parts.method.as_str(),
            url: &url,
            access_token: Some(token),
            nonce: if side.nonces.is_some() {
                crate::dpop::Nonce::Required(&accepts)
            } else {
                crate::dpop::Nonce::NotRequired
            },
        };
        let checked = crate::dpop::check(proof, &side.rules, &request, now).map_err(failed)?;
        if &checked.jkt != jkt {
            return Err(failed(crate::dpop::DpopError::KeyMismatch));
        }
        // Last: only a proof that passed everything is remembered.
        checked
            .record(&side.seen, &side.rules, now)
            .await
            .map_err(failed)?;
        Ok(verified)
    }
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
/// "+" / "/" ) *"="` — what a JWS or JWE in compact form is made of.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

impl<S, T> FromRequestParts<S> for Claims<T>
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    T: DeserializeOwned + Send + 'static,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        verifier.verify_request::<T>(parts).await.map(Claims)
    }
}

/// A layer for a whole router: every request needs a valid access token
/// ([`AccessClaims`] are then in the request's extensions).
///
/// ```no_run
/// # async fn demo(verifier: tessera_verify::Verifier) {
/// use axum::{routing::get, Router};
/// let app: Router = Router::new()
///     .route("/orders", get(|| async { "orders" }))
///     .layer(tessera_verify::layer(verifier));
/// # }
/// ```
pub fn layer(verifier: Verifier) -> Layer {
    axum::middleware::from_fn_with_state(verifier, guard)
}

/// The future of the [`layer`]'s guard.
type Guarded = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// What [`layer`] returns: a tower layer.
pub type Layer = axum::middleware::FromFnLayer<
    fn(State<Verifier>, Request, Next) -> Guarded,
    Verifier,
    (State<Verifier>, Request),
>;

fn guard(State(verifier): State<Verifier>, request: Request, next: Next) -> Guarded {
    Box::pin(async move {
        let (mut parts, body) = request.into_parts();
        let verified = match verifier.verify_request::<AccessClaims>(&parts).await {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        };
        let bound = verified.dpop_jkt.is_some();
        if bound {
            if let Ok((_, token)) = credential(&parts) {
                let proven = Proven(token.to_owned());
                parts.extensions.insert(proven);
            }
        }
        parts.extensions.insert(Claims(verified));
        let mut response = next.run(Request::from_parts(parts, body)).await;
        // With nonces on, the answer to a DPoP request brings the next
        // nonce (RFC 9449 §9), so the client's next proof needs no retry.
        if let Some(nonces) = verifier.dpop_nonces().filter(|_| bound) {
            if let Ok(v) = axum::http::HeaderValue::from_str(&nonces.issue(verifier.now())) {
                response.headers_mut().insert(crate::DPOP_NONCE, v);
            }
        }
        response
    })
}

/// Requires at least one of `any_of` among the token's roles; else an RFC
/// 6750 `insufficient_scope` (403).
pub fn require_roles(claims: &AccessClaims, any_of: &[&str]) -> Result<(), AuthError> {
    if claims.roles.iter().any(|r| any_of.contains(&r.as_str())) {
        Ok(())
    } else {
        Err(AuthError::InsufficientScope(format!(
            "one of the roles {any_of:?} is required"
        )))
    }
}

/// Requires `scope` among the token's space-separated scopes; else an RFC
/// 6750 `insufficient_scope` (403).
pub fn require_scope(claims: &AccessClaims, scope: &str) -> Result<(), AuthError> {
    let granted = claims.scope.as_deref().unwrap_or_default();
    if granted.split_whitespace().any(|s| s == scope) {
        Ok(())
    } else {
        Err(AuthError::InsufficientScope(format!(
            "the scope {scope:?} is required"
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = axum::http::Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_only() {
        assert_eq!(
            bearer(&parts("/x", &[("authorization", "Bearer abc.def.ghi")])),
            Ok("abc.def.ghi")
        );
        assert_eq!(
            bearer(&parts("/x", &[("authorization", "bearer abc")])),
            Ok("abc")
        );
        assert_eq!(bearer(&parts("/x", &[])), Err(AuthError::Missing));
        assert_eq!(
            bearer(&parts("/x", &[("authorization", "Basic dXNlcg==")])),
            Err(AuthError::Missing)
        );
        assert!(matches!(
            bearer(&parts(
                "/x?access_token=abc",
                &[("authorization", "Bearer abc")]
            )),
            Err(AuthError::InvalidRequest(_))
        ));
        assert!(matches!(
            bearer(&parts(
                "/x",
                &[("content-type", "application/x-www-form-urlencoded")]
            )),
            Err(AuthError::InvalidRequest(_))
        ));
        assert!(matches!(
            bearer(&parts("/x", &[("authorization", "Bearer a b")])),
            Err(AuthError::InvalidRequest(_))
        ));
    }

    /// Issue 23: never pick one of several credentials.
    #[test]
    fn several_credentials_are_refused_never_picked_from() {
        let several = |headers: &[(&str, &str)]| {
            matches!(
                bearer(&parts("/x", headers)),
                Err(AuthError::AmbiguousCredentials(_))
            )
        };
        for headers in [
            &[
                ("authorization", "Bearer a.b.c"),
                ("authorization", "Bearer d.e.f"),
            ][..],
            &[
                ("authorization", "Bearer a.b.c"),
                ("authorization", "Bearer a.b.c"),
            ],
            &[
                ("authorization", "Basic dXNlcg=="),
                ("authorization", "Bearer a.b.c"),
            ],
            &[("authorization", "Bearer a.b.c"), ("authorization", "")],
            &[("authorization", "Bearer a.b.c, Bearer d.e.f")],
            &[("authorization", "Bearer a.b.c,Bearer d.e.f")],
            &[("authorization", "Bearer a.b.c,d.e.f")],
            &[("authorization", "Bearer a.b.c, Basic dXNlcg==")],
            &[("authorization", "Basic dXNlcg==, Bearer a.b.c")],
            &[("authorization", "Basic dXNlcg==,bearer a.b.c")],
            &[("authorization", "Negotiate abc, Bearer")],
            &[("authorization", "Bearer,Bearer a.b.c")],
        ] {
            assert!(several(headers), "{headers:?}");
        }
        // One credential of another scheme, commas and all: not ours.
        assert_eq!(
            bearer(&parts(
                "/x",
                &[("authorization", r#"Digest username="u", realm="r""#)]
            )),
            Err(AuthError::Missing)
        );
        // Not a b64token: malformed, as before.
        for bad in [
            "Bearer a\tb",
            "Bearer a\"b",
            "Bearer =",
            "Bearer ",
            "Bearer",
        ] {
            assert!(
                matches!(
                    bearer(&parts("/x", &[("authorization", bad)])),
                    Err(AuthError::InvalidRequest(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            bearer(&parts("/x", &[("authorization", "Bearer  ab+/~c==")])),
            Ok("ab+/~c==")
        );
    }

    #[test]
    fn roles_and_scopes() {
        let c = AccessClaims {
            roles: vec!["reader".into()],
            scope: Some("orders:read orders:write".into()),
            ..AccessClaims::default()
        };
        assert!(require_roles(&c, &["admin", "reader"]).is_ok());
        assert!(matches!(
            require_roles(&c, &["admin"]),
            Err(AuthError::InsufficientScope(_))
        ));
        assert!(require_scope(&c, "orders:write").is_ok());
        assert!(require_scope(&c, "orders").is_err());
    }
}
