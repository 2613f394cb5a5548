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

/// The bearer token of a request: from `Authorization: Bearer` only. A token
/// offered in the query string (`access_token=`) or a form body is refused
/// outright (and never logged): URLs end up in logs and histories. So is a
/// request with more than one credential — two `Authorization` headers, or
/// one holding several (`Bearer a, Bearer b`: RFC 9110 §5.3 merging by a
/// proxy): a proxy in front may have judged another one than we would
/// pick, so none is picked.
fn bearer(parts: &Parts) -> Result<&str, AuthError> {
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
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme is not ours to judge (its parameters may hold
        // commas), unless a bearer credential was merged in after it.
        return Err(if value.split(',').skip(1).any(starts_bearer) {
            several
        } else {
            AuthError::Missing
        });
    }
    let token = token.trim_start_matches(' ');
    // A bearer token has no comma (RFC 6750 §2.1 b64token): one here is
    // a second credential.
    if token.contains(',') {
        return Err(several);
    }
    if !is_b64token(token) {
        return Err(AuthError::InvalidRequest("malformed Authorization header"));
    }
    Ok(token)
}

/// Whether a comma-separated part of an `Authorization` value starts a
/// Bearer credential (`Bearer` then a space, or alone).
fn starts_bearer(part: &str) -> bool {
    let part = part.trim_start_matches([' ', '\t']);
    part.get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("bearer"))
        && matches!(part.as_bytes().get(6), None | Some(b' '))
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
        let token = bearer(parts)?;
        let verifier = Verifier::from_ref(state);
        verifier.verify::<T>(token).map(Claims)
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
        let verified = match bearer(&parts).and_then(|t| verifier.verify::<AccessClaims>(t)) {
            Ok(v) => v,
            Err(e) => return e.into_response(),
        };
        parts.extensions.insert(Claims(verified));
        next.run(Request::from_parts(parts, body)).await
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
