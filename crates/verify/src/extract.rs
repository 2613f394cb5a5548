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
/// outright (and never logged): URLs end up in logs and histories.
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
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
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
    let value = value
        .to_str()
        .map_err(|_| AuthError::InvalidRequest("malformed Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(AuthError::InvalidRequest("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Missing);
    }
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(AuthError::InvalidRequest("malformed Authorization header"));
    }
    Ok(token)
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
