//! The extractor's cost on top of the signature check: the raw
//! `tessera_jose::jwt::verify` of a tessera access token (the peer, in the
//! same run) against the `Claims<AccessClaims>` extractor on a request
//! carrying the same token (header parsing, the query/form checks, the
//! verifier's key set lookup, validation, typed claims).
//!
//! `cargo bench -p tessera-verify --bench extractor`; results in
//! `crates/verify/BENCHMARKS.md`. Target: under 5 µs per request beyond the
//! raw verify.
//!
//! The `dpop/…` groups: a DPoP-bound token with its proof (RFC 9449 §7)
//! against the two signature checks alone (the token's, and the proof's
//! with its key already parsed). Target: under 10 µs per request beyond them.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::future::Future;
use std::hint::black_box;
use std::time::Duration;

use axum::extract::FromRequestParts;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{JwsHeader, Signer, Verifier as JwsVerifier};
use tessera_jose::jwt::{self, Claims as JwtClaims, Clock, SystemClock, Validation};
use tessera_verify::{AccessClaims, Claims, Verifier};

const AUD: &str = "https://api.example.com";

/// Serves a JWKS and metadata on loopback, for the verifier to fetch once.
async fn issuer(public_jwks: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let metadata = json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}).to_string();
    let app = axum::Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            axum::routing::get(move || async move { metadata }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || async move { public_jwks }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// The `Claims` extractor on a request. It never waits (no I/O: the replay
/// cache is in memory), so one poll completes it.
fn extract(parts: &mut axum::http::request::Parts, verifier: &Verifier) -> Claims<AccessClaims> {
    let future = Claims::<AccessClaims>::from_request_parts(parts, verifier);
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(claims) => claims.unwrap(),
        std::task::Poll::Pending => unreachable!("the extractor does no I/O"),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // HS256 first: its check takes about a microsecond, so the extractor's
    // own cost stands out of the noise; the asymmetric rows are what an
    // issuer really uses.
    for alg in [
        JwsAlgorithm::HS256,
        JwsAlgorithm::ES256,
        JwsAlgorithm::RS256,
        JwsAlgorithm::EdDSA,
    ] {
        let key = Jwk::generate_for(alg).unwrap();
        let published = if alg.is_symmetric() {
            key.to_private_json().to_string()
        } else {
            key.to_public().unwrap().to_json()
        };
        let jwks = format!(r#"{{"keys":[{published}]}}"#);
        let base = rt.block_on(issuer(jwks));
        let verifier = rt.block_on(async {
            Verifier::builder()
                .issuer(&base)
                .audience(AUD)
                .algorithms([alg])
                .build()
                .await
                .unwrap()
        });
        let claims = JwtClaims::new(json!({
            "org": "org-acme", "roles": ["admin", "billing"], "amr": ["pwd"],
            "client_id": "cli_backend", "sid": "ses_1"
        }))
        .issuer(&base)
        .subject("user-1")
        .audience(AUD)
        .issued_at(SystemClock.now())
        .expires_at(SystemClock.now() + 3600)
        .jwt_id("j1");
        let token = jwt::sign(
            &Signer::new(&key, alg).unwrap(),
            &JwsHeader::new().typ("at+jwt"),
            &claims,
        )
        .unwrap();
        let raw = JwsVerifier::builder()
            .key(&key, &[alg])
            .unwrap()
            .build()
            .unwrap();
        let validation = Validation::new().issuer(&base).audience(AUD).typ("at+jwt");
        let authorization = format!("Bearer {token}");
        let mut group = c.benchmark_group(format!("extractor/{}", alg.name()));
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(5));
        group.bench_function("raw jwt::verify", |b| {
            b.iter(|| {
                black_box(
                    jwt::verify::<AccessClaims>(black_box(&token), &raw, &validation, &SystemClock)
                        .unwrap(),
                )
            })
        });
        // The request as the server hands it over; the extractor only reads it.
        let (mut parts, ()) = axum::http::Request::builder()
            .uri("/orders?page=2")
            .header("authorization", authorization.as_str())
            .body(())
            .unwrap()
            .into_parts();
        group.bench_function("Claims extractor", |b| {
            b.iter(|| {
                black_box(extract(&mut parts, &verifier));
            })
        });
        group.finish();
    }
}

fn bench_dpop(c: &mut Criterion) {
    use tessera_verify::dpop;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let issuer_key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let jwks = format!(
        r#"{{"keys":[{}]}}"#,
        issuer_key.to_public().unwrap().to_json()
    );
    let base = rt.block_on(issuer(jwks));
    for proof_alg in [
        JwsAlgorithm::ES256,
        JwsAlgorithm::EdDSA,
        JwsAlgorithm::RS256,
    ] {
        let holder = Jwk::generate_for(proof_alg).unwrap();
        let verifier = rt.block_on(async {
            Verifier::builder()
                .issuer(&base)
                .audience(AUD)
                .algorithms([JwsAlgorithm::ES256])
                .external_url(AUD)
                // Criterion runs far more iterations than a minute's worth of
                // proofs at a real resource; each is new, so none is refused.
                .dpop_replay_capacity(50_000_000)
                .build()
                .await
                .unwrap()
        });
        let claims = JwtClaims::new(json!({
            "org": "org-acme", "roles": ["admin", "billing"], "amr": ["pwd"],
            "client_id": "cli_backend", "sid": "ses_1", "cnf": {"jkt": holder.thumbprint()}
        }))
        .issuer(&base)
        .subject("user-1")
        .audience(AUD)
        .issued_at(SystemClock.now())
        .expires_at(SystemClock.now() + 3600)
        .jwt_id("j1");
        let token = jwt::sign(
            &Signer::new(&issuer_key, JwsAlgorithm::ES256).unwrap(),
            &JwsHeader::new().typ("at+jwt"),
            &claims,
        )
        .unwrap();
        let url = format!("{AUD}/orders");
        let counter = std::cell::Cell::new(0u64);
        let proof = || {
            counter.set(counter.get() + 1);
            dpop::sign(
                &holder,
                proof_alg,
                &dpop::NewProof {
                    method: "GET",
                    url: &url,
                    jti: &format!("jti-{}", counter.get()),
                    iat: SystemClock.now(),
                    access_token: Some(&token),
                    nonce: None,
                },
            )
            .unwrap()
        };
        let token_raw = JwsVerifier::builder()
            .key(&issuer_key, &[JwsAlgorithm::ES256])
            .unwrap()
            .build()
            .unwrap();
        let proof_raw = JwsVerifier::builder()
            .key(&holder.to_public().unwrap(), &[proof_alg])
            .unwrap()
            .build()
            .unwrap();
        let validation = Validation::new().issuer(&base).audience(AUD).typ("at+jwt");
        let one = proof();
        let mut group = c.benchmark_group(format!("dpop/token ES256, proof {}", proof_alg.name()));
        group
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(5));
        // The two signature checks alone: the token's, and the proof's with
        // its key already parsed.
        let raw_checks = |proof: &str| {
            black_box(
                jwt::verify::<AccessClaims>(
                    black_box(&token),
                    &token_raw,
                    &validation,
                    &SystemClock,
                )
                .unwrap(),
            );
            black_box(proof_raw.verify_compact(black_box(proof)).unwrap());
        };
        group.bench_function("two raw signature checks", |b| b.iter(|| raw_checks(&one)));
        group.bench_function("dpop::check alone", |b| {
            let request = dpop::Request {
                method: "GET",
                url: &url,
                access_token: Some(&token),
                nonce: dpop::Nonce::NotRequired,
            };
            let rules = dpop::ProofRules::default();
            b.iter(|| {
                black_box(
                    dpop::check(black_box(&one), &rules, &request, SystemClock.now()).unwrap(),
                )
            })
        });
        let authorization = format!("DPoP {token}");
        group.bench_function("Claims extractor with DPoP", |b| {
            b.iter_batched(
                || {
                    axum::http::Request::builder()
                        .uri("/orders")
                        .header("authorization", authorization.as_str())
                        .header("dpop", proof())
                        .body(())
                        .unwrap()
                        .into_parts()
                        .0
                },
                |mut parts| black_box(extract(&mut parts, &verifier)),
                criterion::BatchSize::SmallInput,
            )
        });
        // The figure the target is about, measured so that this machine's
        // drifting clock speed cancels out: each iteration times the
        // extractor with a fresh proof and the two raw checks of the same
        // token and proof (an ECDSA check's time varies a little with the
        // signature), back to back, in turn first; the row is the
        // difference.
        group.bench_function("extra beyond the two checks (paired)", |b| {
            b.iter_custom(|iters| {
                let mut extractor = 0i128;
                let mut raw = 0i128;
                // Made before the timed loop: signing between two timed
                // checks would cool the caches for whichever runs next.
                let proofs: Vec<String> = (0..iters).map(|_| proof()).collect();
                for (i, fresh) in proofs.iter().enumerate() {
                    let (mut parts, ()) = axum::http::Request::builder()
                        .uri("/orders")
                        .header("authorization", authorization.as_str())
                        .header("dpop", fresh.as_str())
                        .body(())
                        .unwrap()
                        .into_parts();
                    // And the two go first in turn.
                    let mut time_extractor = || {
                        let t = std::time::Instant::now();
                        black_box(extract(&mut parts, &verifier));
                        t.elapsed().as_nanos() as i128
                    };
                    let time_raw = || {
                        let t = std::time::Instant::now();
                        raw_checks(fresh);
                        t.elapsed().as_nanos() as i128
                    };
                    if i % 2 == 0 {
                        extractor += time_extractor();
                        raw += time_raw();
                    } else {
                        raw += time_raw();
                        extractor += time_extractor();
                    }
                }
                // A sample of a few iterations can come out at or below zero
                // (the two are that close); criterion refuses a zero, and
                // its estimate leans on the long samples anyway.
                Duration::from_nanos(u64::try_from((extractor - raw).max(1)).unwrap_or(1))
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench, bench_dpop);
criterion_main!(benches);
