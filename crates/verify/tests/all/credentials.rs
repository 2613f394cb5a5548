//! Issue 23: a request with more than one credential is refused, never
//! answered by picking one (a proxy in front and the extractor could pick
//! different ones).

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwt::{Clock, SystemClock};
use tessera_verify::{AccessClaims, Claims, Verifier};

use super::support::{access_token, ec_key, jwks, Mock, API};

#[tokio::test]
async fn more_than_one_authorization_value_is_refused_not_picked_from() {
    let mock = Mock::start().await;
    let key = ec_key("k1");
    mock.serve("/jwks", 200, jwks(&[&key]));
    let verifier = Verifier::builder()
        .issuer(&mock.base)
        .audience(API)
        .algorithms([JwsAlgorithm::ES256])
        .jwks_uri(&format!("{}/jwks", mock.base))
        .build()
        .await
        .unwrap();
    let good = format!(
        "Bearer {}",
        access_token(&key, &mock.base, SystemClock.now())
    );
    let other = format!(
        "Bearer {}",
        access_token(&ec_key("k1"), &mock.base, SystemClock.now())
    );
    let by_extractor = Router::new()
        .route(
            "/me",
            get(|Claims(v): Claims<AccessClaims>| async move { v.claims.sub.unwrap_or_default() }),
        )
        .with_state(verifier.clone());
    let by_layer = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(tessera_verify::layer(verifier.clone()));
    // The valid token alone passes both.
    for app in [&by_extractor, &by_layer] {
        let (status, _, _) = super::call(app, "/me", &[("authorization", &good)]).await;
        assert_eq!(status, StatusCode::OK);
    }
    let combined = [
        format!("{good}, {other}"),
        format!("{other}, {good}"),
        format!("{good},{good}"),
        format!("Basic dXNlcjpwYXNz, {good}"),
        format!("{good}, Basic dXNlcjpwYXNz"),
        format!("{good}, Negotiate"),
        format!("Bearer abc,{}", &good["Bearer ".len()..]),
    ];
    let mut cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("authorization", &good), ("authorization", &other)],
        vec![("authorization", &other), ("authorization", &good)],
        vec![("authorization", &good), ("authorization", &good)],
        vec![
            ("authorization", "Basic dXNlcjpwYXNz"),
            ("authorization", &good),
        ],
        vec![
            ("authorization", &good),
            ("authorization", "Basic dXNlcjpwYXNz"),
        ],
    ];
    cases.extend(combined.iter().map(|v| vec![("authorization", v.as_str())]));
    for headers in &cases {
        for app in [&by_extractor, &by_layer] {
            let (status, challenge, body) = super::call(app, "/me", headers).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{headers:?}: {body}");
            assert!(
                challenge.contains("error=\"invalid_request\""),
                "{headers:?}: {challenge}"
            );
            assert!(body.contains("more than one"), "{headers:?}: {body}");
        }
    }
}
