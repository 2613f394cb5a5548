//! Issue 23: the key set has a maximum age. An attacker who blocks the
//! issuer's JWKS endpoint must not keep a rotated-out key trusted forever:
//! once the last successful fetch is older than `jwks_max_staleness`, tokens
//! are refused (503) until a refresh succeeds, and the verifier says so.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwt::Clock;
use tessera_verify::{AccessClaims, AuthError, BuildError, Claims, RefreshBounds, Verifier};

use super::support::{access_token, ec_key, jwks, ManualClock, Mock, API};

fn bounds(min: u64, max: u64, default: u64) -> RefreshBounds {
    RefreshBounds {
        min: Duration::from_secs(min),
        max: Duration::from_secs(max),
        default: Duration::from_secs(default),
    }
}

#[tokio::test]
async fn a_key_set_older_than_its_max_staleness_is_no_longer_trusted() {
    let mock = Mock::start().await;
    let key = ec_key("k1");
    mock.serve("/jwks", 200, jwks(&[&key]));
    let clock = ManualClock::new();
    let verifier = Verifier::builder()
        .issuer(&mock.base)
        .audience(API)
        .algorithms([JwsAlgorithm::ES256])
        .jwks_uri(&format!("{}/jwks", mock.base))
        .refresh_bounds(bounds(60, 300, 60))
        .jwks_max_staleness(Duration::from_secs(600))
        .clock(clock.clone())
        .build()
        .await
        .unwrap();
    let app = Router::new()
        .route(
            "/me",
            get(|Claims(v): Claims<AccessClaims>| async move { v.claims.sub.unwrap_or_default() }),
        )
        .with_state(verifier.clone());
    let token = access_token(&key, &mock.base, clock.now());
    let auth = format!("Bearer {token}");
    assert!(verifier.verify::<AccessClaims>(&token).is_ok());
    assert_eq!(verifier.key_set_age(), Duration::ZERO);
    assert!(!verifier.key_set_stale());

    // The JWKS endpoint is blocked: within the maximum age the last good
    // set stays in use.
    mock.serve("/jwks", 503, "blocked");
    clock.advance(300);
    assert!(verifier.refresh().await.is_err());
    assert!(verifier.verify::<AccessClaims>(&token).is_ok());
    assert_eq!(verifier.key_set_age(), Duration::from_secs(300));
    assert!(!verifier.key_set_stale());
    assert_eq!(verifier.stale_refusals(), 0);

    // Past it: refused, visibly (503, counted), though the token is fine.
    clock.advance(301);
    assert!(verifier.refresh().await.is_err());
    assert_eq!(
        verifier.verify::<AccessClaims>(&token).unwrap_err(),
        AuthError::Unavailable
    );
    let (status, _, body) = super::call(&app, "/me", &[("authorization", &auth)]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(verifier.key_set_stale());
    assert_eq!(verifier.stale_refusals(), 2);
    assert_eq!(verifier.key_set_age(), Duration::from_secs(601));
    assert_eq!(verifier.refresh_failures(), 2);

    // A refresh that succeeds makes it trusted again.
    mock.serve("/jwks", 200, jwks(&[&key]));
    verifier.refresh().await.unwrap();
    assert!(!verifier.key_set_stale());
    assert_eq!(verifier.key_set_age(), Duration::ZERO);
    assert!(verifier.verify::<AccessClaims>(&token).is_ok());
    assert_eq!(verifier.stale_refusals(), 2);
}

/// The refresher's first wait was always `RefreshBounds::default` (5 min),
/// whatever the first fetch's `Cache-Control: max-age` said.
#[tokio::test]
async fn the_first_scheduled_refresh_honours_the_first_fetchs_max_age() {
    let mock = Mock::start().await;
    let key = ec_key("k1");
    mock.serve_cached("/jwks", 200, jwks(&[&key]), Some("max-age=1"));
    let verifier = Verifier::builder()
        .issuer(&mock.base)
        .audience(API)
        .algorithms([JwsAlgorithm::ES256])
        .jwks_uri(&format!("{}/jwks", mock.base))
        .refresh_bounds(bounds(1, 600, 300))
        .build()
        .await
        .unwrap();
    assert_eq!(mock.hits("/jwks"), 1);
    let refresher = verifier.spawn_refresh();
    let started = Instant::now();
    while mock.hits("/jwks") < 2 && started.elapsed() < Duration::from_secs(6) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    refresher.abort();
    assert!(
        mock.hits("/jwks") >= 2,
        "refreshed after the max-age of 1 s, not after the 300 s default"
    );
}

#[tokio::test]
async fn nonsense_refresh_schedules_are_refused_at_build() {
    let mock = Mock::start().await;
    mock.serve("/jwks", 200, jwks(&[&ec_key("k1")]));
    let build = |bounds: RefreshBounds, staleness: Option<Duration>| {
        let mut b = Verifier::builder()
            .issuer(&mock.base)
            .audience(API)
            .algorithms([JwsAlgorithm::ES256])
            .jwks_uri(&format!("{}/jwks", mock.base))
            .refresh_bounds(bounds);
        if let Some(s) = staleness {
            b = b.jwks_max_staleness(s);
        }
        b.build()
    };
    for (what, bounds, staleness) in [
        ("min above max", bounds(7200, 3600, 3600), None),
        ("zero min", bounds(0, 3600, 300), None),
        ("default below min", bounds(60, 3600, 10), None),
        ("default above max", bounds(60, 3600, 7200), None),
        (
            "max age below the longest refresh interval",
            bounds(60, 3600, 300),
            Some(Duration::from_secs(1800)),
        ),
        (
            "max age under twice the longest refresh interval",
            bounds(60, 3600, 300),
            Some(Duration::from_secs(3600)),
        ),
        (
            "default bounds and a 1 h max age",
            RefreshBounds::default(),
            Some(Duration::from_secs(3600)),
        ),
    ] {
        match build(bounds, staleness).await {
            Err(BuildError::RefreshSchedule(why)) => assert!(!why.is_empty(), "{what}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(mock.total_hits(), 0, "refused before any request");
    // The defaults, and a longer maximum age, are fine.
    assert!(build(RefreshBounds::default(), None).await.is_ok());
    assert!(build(
        RefreshBounds::default(),
        Some(Duration::from_secs(24 * 3600))
    )
    .await
    .is_ok());
}
