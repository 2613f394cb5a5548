//! DPoP at the resource (RFC 9449 §7): a bound token is accepted only as
//! `Authorization: DPoP` with a proof for this request by its key; never
//! downgraded to `Bearer`.

use super::*;
use tessera_verify::dpop::{self, NewProof};

const EXTERNAL: &str = "https://api.example.com";

fn proof(key: &Jwk, method: &str, url: &str, token: Option<&str>, iat: i64) -> String {
    proof_with_nonce(key, method, url, token, iat, None)
}

/// A proof with a server nonce.
fn proof_with_nonce(
    key: &Jwk,
    method: &str,
    url: &str,
    token: Option<&str>,
    iat: i64,
    nonce: Option<&str>,
) -> String {
    let jti = tessera_server::crypto::random_token(12)
        .unwrap()
        .to_string();
    dpop::sign(
        key,
        JwsAlgorithm::ES256,
        &NewProof {
            method,
            url,
            jti: &jti,
            iat,
            access_token: token,
            nonce,
        },
    )
    .unwrap()
}

/// A session's access token bound to `key`.
async fn bound_token(i: &Issuer, key: &Jwk) -> String {
    let session = i
        .session_with(API, json!({"dpop_jkt": key.thumbprint()}))
        .await;
    session["access_token"].as_str().unwrap().to_owned()
}

async fn dpop_verifier(i: &Issuer) -> Verifier {
    Verifier::builder()
        .issuer(&i.issuer)
        .audience(API)
        .algorithms([JwsAlgorithm::ES256])
        .external_url(EXTERNAL)
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn bound_tokens_need_a_proof_by_their_key_and_are_never_downgraded() {
    let i = issuer("30d").await;
    let key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let session = i
        .session_with(API, json!({"dpop_jkt": key.thumbprint()}))
        .await;
    assert_eq!(session["token_type"], "DPoP");
    let token = session["access_token"].as_str().unwrap().to_owned();
    let app = app(dpop_verifier(&i).await);
    let url = format!("{EXTERNAL}/me");
    let now = SystemClock.now();
    let auth = format!("DPoP {token}");

    // The proof of this request: accepted, once.
    let good = proof(&key, "GET", &url, Some(&token), now);
    let (status, _, body) = call(&app, "/me", &[("authorization", &auth), ("dpop", &good)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.starts_with("user-1"), "{body}");
    let (status, challenge, _) =
        call(&app, "/me", &[("authorization", &auth), ("dpop", &good)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "replayed");
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");

    // The scheme in any case.
    let lower = format!("dpop {token}");
    let p = proof(&key, "GET", &url, Some(&token), now);
    let (status, _, body) = call(&app, "/me", &[("authorization", &lower), ("DPoP", &p)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Refused, each for its own reason, with a DPoP challenge naming algs.
    let bearer = format!("Bearer {token}");
    let other = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "downgraded to Bearer, with a proof",
            vec![
                ("authorization", bearer.clone()),
                ("dpop", proof(&key, "GET", &url, Some(&token), now)),
            ],
            "invalid_token",
        ),
        (
            "downgraded to Bearer",
            vec![("authorization", bearer.clone())],
            "invalid_token",
        ),
        (
            "no proof",
            vec![("authorization", auth.clone())],
            "invalid_dpop_proof",
        ),
        (
            "ath of another token",
            vec![
                ("authorization", auth.clone()),
                (
                    "dpop",
                    proof(&key, "GET", &url, Some("another.token.value"), now),
                ),
            ],
            "invalid_dpop_proof",
        ),
        (
            "no ath",
            vec![
                ("authorization", auth.clone()),
                ("dpop", proof(&key, "GET", &url, None, now)),
            ],
            "invalid_dpop_proof",
        ),
        (
            "another key",
            vec![
                ("authorization", auth.clone()),
                ("dpop", proof(&other, "GET", &url, Some(&token), now)),
            ],
            "invalid_dpop_proof",
        ),
        (
            "wrong htm",
            vec![
                ("authorization", auth.clone()),
                ("dpop", proof(&key, "POST", &url, Some(&token), now)),
            ],
            "invalid_dpop_proof",
        ),
        (
            "htu of another path",
            vec![
                ("authorization", auth.clone()),
                (
                    "dpop",
                    proof(&key, "GET", &format!("{EXTERNAL}/admin"), Some(&token), now),
                ),
            ],
            "invalid_dpop_proof",
        ),
        (
            "htu of the Host the request named, not the configured URL",
            vec![
                ("authorization", auth.clone()),
                ("host", "evil.example.com".into()),
                (
                    "dpop",
                    proof(
                        &key,
                        "GET",
                        "https://evil.example.com/me",
                        Some(&token),
                        now,
                    ),
                ),
            ],
            "invalid_dpop_proof",
        ),
        (
            "stale",
            vec![
                ("authorization", auth.clone()),
                ("dpop", proof(&key, "GET", &url, Some(&token), now - 3600)),
            ],
            "invalid_dpop_proof",
        ),
        (
            "two proofs",
            vec![
                ("authorization", auth.clone()),
                ("dpop", proof(&key, "GET", &url, Some(&token), now)),
                ("dpop", proof(&key, "GET", &url, Some(&token), now)),
            ],
            "invalid_dpop_proof",
        ),
    ];
    for (name, headers, code) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, challenge, body) = call(&app, "/me", &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
        assert!(challenge.starts_with("DPoP "), "{name}: {challenge}");
        assert!(
            challenge.contains(&format!("error=\"{code}\"")),
            "{name}: {challenge}"
        );
        assert!(
            challenge.contains("algs=\"ES256 EdDSA PS256 RS256\""),
            "{name}: {challenge}"
        );
    }

    // An unbound token is a Bearer token: as DPoP it is refused.
    let plain = i.session(API, json!({})).await;
    let plain = plain["access_token"].as_str().unwrap();
    let (status, challenge, _) = call(
        &app,
        "/me",
        &[
            ("authorization", &format!("DPoP {plain}")),
            ("dpop", &proof(&key, "GET", &url, Some(plain), now)),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let (status, _, _) = call(
        &app,
        "/me",
        &[("authorization", &format!("Bearer {plain}"))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A verifier without an external URL cannot check proofs: bound
    // tokens are refused there, whatever they come with.
    let no_dpop = app_without_dpop(&i).await;
    let p = proof(&key, "GET", &url, Some(&token), now);
    let (status, _, _) = call(&no_dpop, "/me", &[("authorization", &auth), ("dpop", &p)]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    i.server.shutdown().await;
}

async fn app_without_dpop(i: &Issuer) -> Router {
    app(i.verifier().await)
}

/// The direct API refuses a bound token (no proof can be checked there);
/// a layer in front of the extractor checks the proof once; a nested
/// router's handler sees its full path in the proof's htu.
#[tokio::test]
async fn no_bypass_through_the_direct_api_and_the_layer_checks_once() {
    let i = issuer("30d").await;
    let key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let token = bound_token(&i, &key).await;
    let verifier = dpop_verifier(&i).await;
    assert!(matches!(
        verifier.verify::<AccessClaims>(&token),
        Err(AuthError::InvalidToken(_))
    ));

    // layer + Claims, under a nested router: /api/me is what the client asked for.
    let inner = Router::new()
        .route(
            "/me",
            get(|Claims(v): Claims<AccessClaims>| async move { v.claims.sub.unwrap_or_default() }),
        )
        .with_state(verifier.clone());
    let app = Router::new()
        .nest("/api", inner)
        .layer(tessera_verify::layer(verifier.clone()));
    let auth = format!("DPoP {token}");
    let now = SystemClock.now();
    let good = proof(
        &key,
        "GET",
        &format!("{EXTERNAL}/api/me"),
        Some(&token),
        now,
    );
    let (status, _, body) = call(
        &app,
        "/api/me",
        &[("authorization", &auth), ("dpop", &good)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "user-1");
    let (status, _, _) = call(
        &app,
        "/api/me",
        &[("authorization", &auth), ("dpop", &good)],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "still once only");
    let stripped = proof(&key, "GET", &format!("{EXTERNAL}/me"), Some(&token), now);
    let (status, _, _) = call(
        &app,
        "/api/me",
        &[("authorization", &auth), ("dpop", &stripped)],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the nested prefix is part of htu"
    );
    i.server.shutdown().await;
}

#[tokio::test]
async fn resource_nonces_when_required() {
    let i = issuer("30d").await;
    let key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let token = bound_token(&i, &key).await;
    let nonce_key = [7u8; 32];
    let build = |k: &[u8]| {
        Verifier::builder()
            .issuer(&i.issuer)
            .audience(API)
            .algorithms([JwsAlgorithm::ES256])
            .external_url(EXTERNAL)
            .dpop_nonce_key(k)
            .build()
    };
    assert!(matches!(
        build(&[1u8; 16]).await,
        Err(tessera_verify::BuildError::DpopNonce(_))
    ));
    let verifier = build(&nonce_key).await.unwrap();
    let layered = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(tessera_verify::layer(verifier.clone()));
    let extractor = app(verifier.clone());
    let url = format!("{EXTERNAL}/me");
    let auth = format!("DPoP {token}");
    let signed = |nonce: Option<&str>, iat: i64| {
        proof_with_nonce(&key, "GET", &url, Some(&token), iat, nonce)
    };
    let send = |app: Router, proof: String| {
        let auth = auth.clone();
        async move {
            let response = app
                .oneshot(
                    Request::builder()
                        .uri("/me")
                        .header("authorization", auth)
                        .header("dpop", proof)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let header = |n: &str| {
                response
                    .headers()
                    .get(n)
                    .map(|v| v.to_str().unwrap().to_owned())
            };
            (
                response.status(),
                header("www-authenticate").unwrap_or_default(),
                header("dpop-nonce"),
            )
        }
    };
    let now = SystemClock.now();
    for app in [&layered, &extractor] {
        // No nonce: 401 use_dpop_nonce, and a nonce to use.
        let (status, challenge, nonce) = send(app.clone(), signed(None, now)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(challenge.starts_with("DPoP "), "{challenge}");
        assert!(
            challenge.contains("error=\"use_dpop_nonce\""),
            "{challenge}"
        );
        let nonce = nonce.expect("a DPoP-Nonce with use_dpop_nonce");
        // One retry with it succeeds.
        let (status, challenge, _) = send(app.clone(), signed(Some(&nonce), now)).await;
        assert_eq!(status, StatusCode::OK, "{challenge}");
        // A nonce of another key, one that has lived too long, garbage.
        let foreign = dpop::Nonces::new(&[8u8; 32]).unwrap().issue(now);
        let old = dpop::Nonces::new(&nonce_key).unwrap().issue(now - 240);
        for bad in [foreign.as_str(), old.as_str(), "bm9uY2U"] {
            let (status, challenge, fresh) = send(app.clone(), signed(Some(bad), now)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
            assert!(challenge.contains("use_dpop_nonce"), "{bad}: {challenge}");
            assert!(fresh.is_some(), "{bad}");
        }
        // With nonces on, a stale iat is healed by a nonce too.
        let (_, challenge, _) = send(app.clone(), signed(Some(&nonce), now - 3600)).await;
        assert!(challenge.contains("use_dpop_nonce"), "{challenge}");
    }
    // The layer's answers to a DPoP request bring the next nonce.
    let (status, _, next) = send(
        layered.clone(),
        signed(Some(&verifier.dpop_nonces().unwrap().issue(now)), now),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(next.is_some_and(|n| verifier.dpop_nonces().unwrap().accepts(&n, now)));
    i.server.shutdown().await;
}
