//! tessera-verify against a real tessera service started in the test (on a
//! free loopback port): what it accepts, what it refuses, and a key
//! rotation on the issuer with not one request failing.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tessera_jose::jwa::{EcCurve, JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwk::{Jwk, KeyUse};
use tessera_jose::jws::{JwsHeader, Signer};
use tessera_jose::jwt::{self, Claims as JwtClaims, Clock, SystemClock};
use tessera_server::config::Config;
use tessera_server::keys::{KeyRing, Lifecycle};
use tessera_server::{clients, Server};
use tessera_verify::{AccessClaims, AuthError, Claims, RefreshBounds, Verifier};
use tower::ServiceExt;

mod credentials;
mod dpop;
mod issuers;
mod key_set_age;
mod support;

const API: &str = "https://api.example.com";
const RECORDS: &str = "https://records.example.com";
const MASTER: &str = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";

struct Issuer {
    server: Server,
    config: Config,
    issuer: String,
    client: (String, String),
    records_key: Jwk,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn issuer(rotate_every: &str) -> Issuer {
    let dir = tempfile::tempdir().unwrap();
    let records_key = Jwk::generate_rsa(2048)
        .unwrap()
        .with_kid("records-1")
        .with_use(KeyUse::Encryption)
        .unwrap();
    let key_file = dir.path().join("records.pub.jwk");
    std::fs::write(&key_file, records_key.to_public().unwrap().to_json()).unwrap();
    let toml = dir.path().join("tessera.toml");
    std::fs::write(
        &toml,
        format!(
            "data_dir = {:?}\n[signing]\nalg = \"ES256\"\nrotate_every = \"{rotate_every}\"\nreload_every = \"1s\"\n\
             [[resources]]\naudience = \"{RECORDS}\"\nformat = \"jwe\"\nencryption_key = {:?}\nclaims = [\"record_id\"]\n",
            dir.path().join("data").display().to_string(),
            key_file.display().to_string()
        ),
    )
    .unwrap();
    let config = Config::load(Some(&toml), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config.clone(), Some(MASTER)).await.unwrap();
    let issuer = format!("http://{}", server.local_addr());
    let grants = vec!["sessions".to_owned()];
    // The client's registration names its audiences: a `jwe` one is never
    // granted by default.
    let registration = tessera_server::store::Registration {
        audiences: Some(vec![API.to_owned(), RECORDS.to_owned()]),
        ..Default::default()
    };
    let new = clients::create_with(server.store(), "backend", &grants, None, registration, 0)
        .await
        .unwrap();
    Issuer {
        server,
        config,
        issuer,
        client: (new.record.id.clone(), new.secret.to_string()),
        records_key,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Issuer {
    async fn session(&self, audience: &str, claims: Value) -> Value {
        self.session_with(audience, json!({"claims": claims})).await
    }

    /// A session for `audience` with these members besides the usual ones.
    async fn session_with(&self, audience: &str, extra: Value) -> Value {
        let mut body = json!({"sub":"user-1","org":"acme","roles":["reader"],"audience":audience});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let reply = self
            .http
            .post(format!("{}/v1/sessions", self.issuer))
            .basic_auth(&self.client.0, Some(&self.client.1))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
        serde_json::from_str(&reply.text().await.unwrap()).unwrap()
    }

    /// The issuer's own current signing key, through its store and master
    /// key: to make tokens the service would never issue (expired, …).
    async fn signer(&self) -> std::sync::Arc<tessera_server::keys::Snapshot> {
        let master = tessera_server::master_key(&self.config, Some(MASTER)).unwrap();
        let ring = KeyRing::open(
            self.server.store(),
            master,
            Lifecycle::from_config(&self.config),
            SystemClock.now(),
        )
        .await
        .unwrap();
        ring.snapshot()
    }

    async fn verifier(&self) -> Verifier {
        Verifier::builder()
            .issuer(&self.issuer)
            .audience(API)
            .algorithms([JwsAlgorithm::ES256])
            .build()
            .await
            .unwrap()
    }
}

fn app(verifier: Verifier) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Claims(v): Claims<AccessClaims>| async move {
                format!(
                    "{} {:?}",
                    v.claims.sub.unwrap_or_default(),
                    v.claims.custom.roles
                )
            }),
        )
        .route(
            "/admin",
            get(|Claims(v): Claims<AccessClaims>| async move {
                tessera_verify::require_roles(&v.claims.custom, &["admin"]).map(|()| "ok")
            }),
        )
        .with_state(verifier)
}

async fn call(app: &Router, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, String, String) {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, challenge, String::from_utf8(body.to_vec()).unwrap())
}

fn claims(iss: &str, aud: &str, exp: i64) -> JwtClaims<Value> {
    JwtClaims::new(json!({"roles": ["reader"]}))
        .issuer(iss)
        .subject("user-1")
        .audience(aud)
        .issued_at(SystemClock.now())
        .expires_at(exp)
}

#[tokio::test]
async fn accepts_valid_tokens_and_refuses_everything_else() {
    let i = issuer("30d").await;
    let verifier = i.verifier().await;
    assert_eq!(
        verifier.jwks_uri(),
        format!("{}/.well-known/jwks.json", i.issuer),
        "from the RFC 8414 metadata"
    );
    let app = app(verifier.clone());
    let session = i.session(API, json!({})).await;
    let access = session["access_token"].as_str().unwrap();

    // Valid: accepted, typed claims.
    let ok = verifier.verify::<AccessClaims>(access).unwrap();
    assert_eq!(ok.claims.sub.as_deref(), Some("user-1"));
    assert_eq!(ok.claims.custom.roles, ["reader"]);
    let auth = format!("Bearer {access}");
    let (status, _, body) = call(&app, "/me", &[("authorization", &auth)]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "user-1 [\"reader\"]")
    );
    // A role it lacks: 403 insufficient_scope.
    let (status, challenge, _) = call(&app, "/admin", &[("authorization", &auth)]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );

    // Refused, each with an RFC 6750 challenge.
    let snapshot = i.signer().await;
    let signer = &snapshot.signer;
    let now = SystemClock.now();
    let at = JwsHeader::new().typ("at+jwt");
    let expired = jwt::sign(signer, &at, &claims(&i.issuer, API, now - 3600)).unwrap();
    let other_aud = jwt::sign(signer, &at, &claims(&i.issuer, "https://other", now + 600)).unwrap();
    let other_iss = jwt::sign(signer, &at, &claims("https://evil", API, now + 600)).unwrap();
    let not_access = jwt::sign(
        signer,
        &JwsHeader::new(),
        &claims(&i.issuer, API, now + 600),
    )
    .unwrap();
    // `alg` switched to HS256 with the issuer's public key as the secret.
    let public = tessera_jose::danger::decode_unverified(access).unwrap();
    let kid = public.header["kid"].as_str().unwrap().to_owned();
    let jwks = i
        .http
        .get(verifier.jwks_uri())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let hs_key = Jwk::from_secret(jwks.as_bytes()).unwrap();
    let switched = jwt::sign(
        &Signer::new(&hs_key, JwsAlgorithm::HS256).unwrap(),
        &JwsHeader::new().typ("at+jwt").kid(&kid),
        &claims(&i.issuer, API, now + 600),
    )
    .unwrap();
    // A key the issuer never published.
    let stranger = Jwk::generate_ec(EcCurve::P256)
        .unwrap()
        .with_kid("not-published");
    let unknown_kid = jwt::sign(
        &Signer::new(&stranger, JwsAlgorithm::ES256).unwrap(),
        &at,
        &claims(&i.issuer, API, now + 600),
    )
    .unwrap();
    let fetches = verifier.fetches();
    for (what, token) in [
        ("expired", &expired),
        ("wrong audience", &other_aud),
        ("wrong issuer", &other_iss),
        ("not an access token (typ)", &not_access),
        ("alg switched to HS256", &switched),
        ("unknown kid", &unknown_kid),
    ] {
        let e = verifier.verify::<AccessClaims>(token).unwrap_err();
        assert!(matches!(e, AuthError::InvalidToken(_)), "{what}: {e:?}");
        let auth = format!("Bearer {token}");
        let (status, challenge, _) = call(&app, "/me", &[("authorization", &auth)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            challenge.starts_with("Bearer realm=\"tessera\", error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }
    assert_eq!(
        verifier.fetches(),
        fetches,
        "an unknown kid never makes the verifier fetch"
    );

    // Tokens anywhere but the Authorization header: refused, 401.
    let (status, challenge, _) = call(&app, &format!("/me?access_token={access}"), &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    let (status, challenge, _) = call(
        &app,
        "/me",
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.contains("error=\"invalid_request\""),
        "{challenge}"
    );
    // No token: a bare challenge (RFC 6750 §3.1).
    let (status, challenge, _) = call(&app, "/me", &[]).await;
    assert_eq!(
        (status, challenge.as_str()),
        (StatusCode::UNAUTHORIZED, "Bearer realm=\"tessera\"")
    );

    // The layer guards a whole router the same way.
    let guarded = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .layer(tessera_verify::layer(verifier.clone()));
    assert_eq!(
        call(&guarded, "/orders", &[("authorization", &auth)])
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        call(&guarded, "/orders", &[]).await.0,
        StatusCode::UNAUTHORIZED
    );
    let bad = format!("Bearer {expired}");
    assert_eq!(
        call(&guarded, "/orders", &[("authorization", &bad)])
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    i.server.shutdown().await;
}

#[tokio::test]
async fn sealed_tokens_and_step_up_assertions_with_the_decryption_key() {
    let i = issuer("30d").await;
    let verifier = Verifier::builder()
        .issuer(&i.issuer)
        .audience(RECORDS)
        .algorithms([JwsAlgorithm::ES256])
        .decryption_key(
            i.records_key.clone(),
            &[(JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM)],
        )
        .build()
        .await
        .unwrap();
    let session = i.session(RECORDS, json!({"record_id": "MRN-7"})).await;
    let access = session["access_token"].as_str().unwrap();
    let v = verifier.verify::<Value>(access).unwrap();
    assert!(v.sealed);
    assert_eq!(v.claims.custom["record_id"], "MRN-7");
    // A step-up assertion: accepted as one, never as an access token.
    let sid = session["session_id"].as_str().unwrap();
    let reply = i
        .http
        .post(format!("{}/v1/sessions/{sid}/step-up", i.issuer))
        .basic_auth(&i.client.0, Some(&i.client.1))
        .header("content-type", "application/json")
        .body(json!({"audience": RECORDS, "amr": ["hwk"], "acr": "aal3"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let step: Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
    let assertion = step["assertion"].as_str().unwrap();
    let s = verifier.verify_step_up::<Value>(assertion).unwrap();
    assert_eq!(s.claims.custom["acr"], "aal3");
    assert!(
        verifier.verify::<Value>(assertion).is_err(),
        "not an access token"
    );
    assert!(
        verifier.verify_step_up::<Value>(access).is_err(),
        "not a step-up assertion"
    );
    // Without the key a sealed token is refused.
    let plain = Verifier::builder()
        .issuer(&i.issuer)
        .audience(RECORDS)
        .algorithms([JwsAlgorithm::ES256])
        .build()
        .await
        .unwrap();
    assert!(plain.verify::<Value>(access).is_err());
    i.server.shutdown().await;
}

/// The issuer rotates its key while requests keep coming: not one fails,
/// because the next key was in the JWKS before it signed anything, and the
/// verifier's scheduled refresh picks up the new next key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_on_the_issuer_fails_no_request() {
    let i = issuer("60s").await;
    let verifier = Verifier::builder()
        .issuer(&i.issuer)
        .audience(API)
        .algorithms([JwsAlgorithm::ES256])
        .refresh_bounds(RefreshBounds {
            min: Duration::from_secs(1),
            max: Duration::from_secs(2),
            default: Duration::from_secs(1),
        })
        .build()
        .await
        .unwrap();
    let refresher = verifier.spawn_refresh();
    let first = i.session(API, json!({})).await;
    let old_kid = tessera_jose::danger::decode_unverified(first["access_token"].as_str().unwrap())
        .unwrap()
        .header["kid"]
        .clone();
    let mut verified = 0;
    let mut rotated = false;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(45) {
        let s = i.session(API, json!({})).await;
        let token = s["access_token"].as_str().unwrap();
        verifier
            .verify::<AccessClaims>(token)
            .unwrap_or_else(|e| panic!("request {verified} failed: {e}"));
        verified += 1;
        let kid = tessera_jose::danger::decode_unverified(token)
            .unwrap()
            .header["kid"]
            .clone();
        if kid != old_kid {
            rotated = true;
            // A few more after the switch, then stop.
            if verified > 5 {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(31) && !rotated {
            // reload_every (1 s) + jwks_max_age (30 s) have passed: rotate now, as an operator would.
            let master = tessera_server::master_key(&i.config, Some(MASTER)).unwrap();
            tessera_server::keys::rotate_now(
                i.server.store(),
                &master,
                &Lifecycle::from_config(&i.config),
                SystemClock.now(),
            )
            .await
            .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(rotated, "the issuer rotated its key");
    assert_eq!(verifier.refresh_failures(), 0);
    refresher.abort();
    i.server.shutdown().await;
}

#[tokio::test]
async fn unreachable_issuer_or_wrong_metadata_fails_at_build() {
    let e = Verifier::builder()
        .issuer("http://127.0.0.1:9")
        .audience(API)
        .algorithms([JwsAlgorithm::ES256])
        .build()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("issuer metadata"), "{e}");
    let e = Verifier::builder().audience(API).build().await.unwrap_err();
    assert!(e.to_string().contains("issuer is required"), "{e}");
}

/// A failed refresh (server error, a set with no usable key) keeps the last
/// good key set, and is counted; a good one replaces it.
#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_key_set() {
    use std::sync::{Arc, Mutex};
    let first = Jwk::generate_ec(EcCurve::P256).unwrap().with_kid("k1");
    let second = Jwk::generate_ec(EcCurve::P256).unwrap().with_kid("k2");
    let set = |k: &Jwk| format!(r#"{{"keys":[{}]}}"#, k.to_public().unwrap().to_json());
    let served: Arc<Mutex<(u16, String)>> = Arc::new(Mutex::new((200, set(&first))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = {
        let served = served.clone();
        Router::new().route(
            "/jwks",
            get(move || {
                let served = served.clone();
                async move {
                    let (status, body) = served.lock().unwrap().clone();
                    (StatusCode::from_u16(status).unwrap(), body)
                }
            }),
        )
    };
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let verifier = Verifier::builder()
        .issuer(&base)
        .audience(API)
        .algorithms([JwsAlgorithm::ES256])
        .jwks_uri(&format!("{base}/jwks"))
        .build()
        .await
        .unwrap();
    let token = |k: &Jwk| {
        jwt::sign(
            &Signer::new(k, JwsAlgorithm::ES256).unwrap(),
            &JwsHeader::new().typ("at+jwt"),
            &claims(&base, API, SystemClock.now() + 600),
        )
        .unwrap()
    };
    assert!(verifier.verify::<Value>(&token(&first)).is_ok());
    for (status, body) in [
        (500, set(&second)),
        (200, r#"{"keys":[]}"#.to_owned()),
        (200, "{".to_owned()),
    ] {
        *served.lock().unwrap() = (status, body);
        assert!(verifier.refresh().await.is_err());
        assert!(
            verifier.verify::<Value>(&token(&first)).is_ok(),
            "last good set kept"
        );
    }
    assert_eq!(verifier.refresh_failures(), 3);
    *served.lock().unwrap() = (200, set(&second));
    verifier.refresh().await.unwrap();
    assert!(verifier.verify::<Value>(&token(&second)).is_ok());
    assert!(
        verifier.verify::<Value>(&token(&first)).is_err(),
        "k1 left the set"
    );

    // Leeway: 60 s by default; zero when asked for zero.
    let just_expired = jwt::sign(
        &Signer::new(&second, JwsAlgorithm::ES256).unwrap(),
        &JwsHeader::new().typ("at+jwt"),
        &claims(&base, API, SystemClock.now() - 30),
    )
    .unwrap();
    assert!(
        verifier.verify::<Value>(&just_expired).is_ok(),
        "within 60 s leeway"
    );
    let strict = Verifier::builder()
        .issuer(&base)
        .audience(API)
        .algorithms([JwsAlgorithm::ES256])
        .jwks_uri(&format!("{base}/jwks"))
        .leeway(Duration::ZERO)
        .build()
        .await
        .unwrap();
    assert_eq!(
        strict.verify::<Value>(&just_expired).unwrap_err(),
        AuthError::InvalidToken("the token expired")
    );
}
