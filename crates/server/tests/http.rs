//! The service over real HTTP: started on a free port with a temporary
//! data directory, spoken to with plain HTTP/1.1 requests.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::type_complexity
)]

use std::net::SocketAddr;
use std::path::Path;

use base64::Engine as _;
use serde_json::{json, Value};
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::JwkSet;
use tessera_jose::jws::Verifier;
use tessera_jose::jwt::{self, Clock, SystemClock, Validation};
use tessera_server::clients;
use tessera_server::config::Config;
use tessera_server::{Server, StartError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{request, send, Reply};

fn config(data_dir: &Path) -> Config {
    let env = vec![
        (
            "TESSERA_DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        ),
        ("TESSERA_SIGNING_ALG".to_owned(), "ES256".to_owned()),
    ];
    Config::load(None, env, Some("127.0.0.1:0")).unwrap()
}

#[tokio::test]
async fn newcomer_start_serves_health_and_jwks_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tessera-data");
    let server = Server::start(config(&data), None).await.unwrap();
    let addr = server.local_addr();

    let health = request(addr, "GET", "/healthz").await;
    assert_eq!(health.status, 200);
    assert!(health.body.contains("\"ok\""));

    let jwks = request(addr, "GET", "/.well-known/jwks.json").await;
    assert_eq!(jwks.status, 200);
    assert!(
        jwks.headers.contains("cache-control: public, max-age=3600"),
        "{}",
        jwks.headers
    );
    assert!(jwks
        .headers
        .contains("content-type: application/jwk-set+json"));
    let set = JwkSet::from_json(jwks.body.as_bytes()).unwrap();
    assert_eq!(set.keys().len(), 2, "current and next");
    assert!(set
        .keys()
        .iter()
        .all(|k| !k.is_private() && k.alg() == Some("ES256")));
    assert!(!jwks.body.contains("\"d\""));

    // The data directory holds the database and a generated master key.
    assert!(data.join("tessera.db").exists());
    assert!(data.join("master.key").exists());
    server.shutdown().await;

    // Restart: the same keys come back.
    let server = Server::start(config(&data), None).await.unwrap();
    let again = request(server.local_addr(), "GET", "/.well-known/jwks.json").await;
    assert_eq!(again.body, jwks.body);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_rfc6749_shaped_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir.path().join("d")), None)
        .await
        .unwrap();
    let addr = server.local_addr();
    let missing = request(addr, "GET", "/nope").await;
    assert_eq!(missing.status, 404);
    let body: serde_json::Value = serde_json::from_str(&missing.body).unwrap();
    assert_eq!(body["error"], "not_found");
    let wrong = request(addr, "POST", "/.well-known/jwks.json").await;
    assert_eq!(wrong.status, 405);
    let body: serde_json::Value = serde_json::from_str(&wrong.body).unwrap();
    assert_eq!(body["error"], "invalid_request");
    server.shutdown().await;
}

#[tokio::test]
async fn a_different_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let key_a = "aa".repeat(32);
    let key_b = "bb".repeat(32);
    Server::start(config(&data), Some(&key_a))
        .await
        .unwrap()
        .shutdown()
        .await;
    let err = Server::start(config(&data), Some(&key_b))
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Keys(_)), "{err}");
    assert!(
        err.to_string()
            .contains("does not open with this master key"),
        "{err}"
    );
    // No key file was written: the key came from the environment.
    assert!(!data.join("master.key").exists());
}

fn basic(id: &str, secret: &str) -> (&'static str, String) {
    let raw = format!("{id}:{secret}");
    (
        "Authorization",
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ),
    )
}

fn json_type() -> (&'static str, String) {
    ("Content-Type", "application/json".to_owned())
}

fn form_type() -> (&'static str, String) {
    (
        "Content-Type",
        "application/x-www-form-urlencoded".to_owned(),
    )
}

fn body(r: &Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

struct Running {
    server: Server,
    id: String,
    secret: String,
    _dir: tempfile::TempDir,
}

async fn running(toml_resources: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(
        &path,
        format!(
            "issuer = \"https://auth.example.com\"\ndata_dir = {:?}\n[signing]\nalg = \"ES256\"\n{toml_resources}",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let config = Config::load(Some(&path), Vec::new(), Some("127.0.0.1:0")).unwrap();
    // Registered for every configured resource (a sealed one needs it), and
    // a resource server for them all.
    let audiences: Vec<String> = config
        .resources
        .iter()
        .map(|r| r.audience.clone())
        .collect();
    let registration = tessera_server::store::Registration {
        audiences: (!audiences.is_empty()).then(|| audiences.clone()),
        introspect: audiences,
        ..Default::default()
    };
    let server = Server::start(config, Some(&"42".repeat(32))).await.unwrap();
    let grants = vec!["sessions".to_owned(), "client_credentials".to_owned()];
    let new = clients::create_with(server.store(), "backend", &grants, None, registration, 0)
        .await
        .unwrap();
    Running {
        server,
        id: new.record.id.clone(),
        secret: new.secret.to_string(),
        _dir: dir,
    }
}

async fn verifier(addr: SocketAddr) -> Verifier {
    let jwks = request(addr, "GET", "/.well-known/jwks.json").await;
    let set = JwkSet::from_json(jwks.body.as_bytes()).unwrap();
    Verifier::builder()
        .jwk_set(&set, &[JwsAlgorithm::ES256])
        .unwrap()
        .build()
        .unwrap()
}

const SESSION: &str = r#"{"sub":"user-1","org":"org-acme","roles":["admin"],"amr":["pwd","otp"],"audience":"https://api.example.com","claims":{"tenant_tier":"gold"}}"#;
const RESOURCES: &str =
    "[[resources]]\naudience = \"https://api.example.com\"\nclaims = [\"tenant_tier\"]\n";

#[tokio::test]
async fn sessions_mint_minimal_verifiable_tokens() {
    let r = running(RESOURCES).await;
    let addr = r.server.local_addr();
    let reply = send(
        addr,
        "POST",
        "/v1/sessions",
        &[basic(&r.id, &r.secret), json_type()],
        SESSION,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.headers.contains("cache-control: no-store"));
    let b = body(&reply);
    for field in [
        "session_id",
        "access_token",
        "session_token",
        "refresh_token",
        "token_type",
        "expires_in",
    ] {
        assert!(b.get(field).is_some(), "{field} missing: {b}");
    }
    assert_eq!(b["token_type"], "Bearer");
    assert_eq!(b["expires_in"], 900);
    let v = verifier(addr).await;
    let validation = Validation::new()
        .issuer("https://auth.example.com")
        .audience("https://api.example.com")
        .typ("at+jwt");
    let at = jwt::verify::<Value>(
        b["access_token"].as_str().unwrap(),
        &v,
        &validation,
        &SystemClock,
    )
    .unwrap();
    let claims = at.claims();
    assert_eq!(claims.sub.as_deref(), Some("user-1"));
    let mut names: Vec<&str> = claims
        .custom
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["amr", "client_id", "org", "roles", "sid", "tenant_tier"]
    );
    assert_eq!(claims.custom["sid"], b["session_id"]);
    let st = jwt::verify::<Value>(
        b["session_token"].as_str().unwrap(),
        &v,
        &Validation::new()
            .issuer("https://auth.example.com")
            .audience("https://auth.example.com")
            .typ("session+jwt"),
        &SystemClock,
    )
    .unwrap();
    assert_eq!(st.claims().custom["sid"], b["session_id"]);
    assert_eq!(b["refresh_token"].as_str().unwrap().len(), 43, "256 bits");
    r.server.shutdown().await;
}

/// Mints a session for [`SESSION`] and returns the answer.
async fn new_session(r: &Running) -> Value {
    let reply = send(
        r.server.local_addr(),
        "POST",
        "/v1/sessions",
        &[basic(&r.id, &r.secret), json_type()],
        SESSION,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    body(&reply)
}

async fn refresh(addr: SocketAddr, r: &Running, token: &str) -> Reply {
    send(
        addr,
        "POST",
        "/oauth2/token",
        &[basic(&r.id, &r.secret), form_type()],
        &format!("grant_type=refresh_token&refresh_token={token}"),
    )
    .await
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let r = running(RESOURCES).await;
    let addr = r.server.local_addr();
    let s = new_session(&r).await;
    let first = s["refresh_token"].as_str().unwrap().to_owned();
    let reply = refresh(addr, &r, &first).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let second = body(&reply)["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(body(&reply)["access_token"].is_string());
    // The first token again: reuse. The family and the session are revoked.
    let reuse_count = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("tessera_refresh_token_reuse_total "))
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = reuse_count(&request(addr, "GET", "/metrics").await.body);
    let reused = refresh(addr, &r, &first).await;
    assert_eq!(reused.status, 400);
    assert_eq!(body(&reused)["error"], "invalid_grant");
    let after = refresh(addr, &r, &second).await;
    assert_eq!(after.status, 400, "the newer token died with its family");
    // Counted (other tests in this binary may count too, hence "more than").
    let after_count = reuse_count(&request(addr, "GET", "/metrics").await.body);
    assert!(after_count > before, "{before} -> {after_count}");
    r.server.shutdown().await;
}

#[tokio::test]
async fn two_concurrent_refreshes_exactly_one_succeeds() {
    let r = running(RESOURCES).await;
    let addr = r.server.local_addr();
    let s = new_session(&r).await;
    let token = s["refresh_token"].as_str().unwrap().to_owned();
    let (a, b) = tokio::join!(refresh(addr, &r, &token), refresh(addr, &r, &token));
    let ok = [a.status, b.status].iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 1, "{} {} / {} {}", a.status, a.body, b.status, b.body);
    r.server.shutdown().await;
}

#[tokio::test]
async fn deleting_a_session_kills_its_refresh_tokens() {
    let r = running(RESOURCES).await;
    let addr = r.server.local_addr();
    let s = new_session(&r).await;
    let path = format!("/v1/sessions/{}", s["session_id"].as_str().unwrap());
    let gone = send(addr, "DELETE", &path, &[basic(&r.id, &r.secret)], "").await;
    assert_eq!(gone.status, 204);
    let again = send(
        addr,
        "DELETE",
        "/v1/sessions/ses_nope",
        &[basic(&r.id, &r.secret)],
        "",
    )
    .await;
    assert_eq!(again.status, 404);
    let reply = refresh(addr, &r, s["refresh_token"].as_str().unwrap()).await;
    assert_eq!(body(&reply)["error"], "invalid_grant");
    r.server.shutdown().await;
}

#[tokio::test]
async fn client_credentials_with_client_secret_post() {
    let r = running("").await;
    let addr = r.server.local_addr();
    let reply = send(
        addr,
        "POST",
        "/oauth2/token",
        &[form_type()],
        &format!("grant_type=client_credentials&client_id={}&client_secret={}&audience=https%3A%2F%2Fapi.example.com", r.id, r.secret),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = verifier(addr).await;
    let validation = Validation::new()
        .audience("https://api.example.com")
        .typ("at+jwt");
    let at = jwt::verify::<Value>(
        body(&reply)["access_token"].as_str().unwrap(),
        &v,
        &validation,
        &SystemClock,
    )
    .unwrap();
    assert_eq!(at.claims().sub.as_deref(), Some(r.id.as_str()));
    r.server.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_4xx_in_the_rfc6749_shape() {
    let r = running(RESOURCES).await;
    let addr = r.server.local_addr();
    let auth = basic(&r.id, &r.secret);
    let big = "x".repeat(100 * 1024);
    let with_claim = |claims: Value| {
        json!({"sub":"u","org":"o","audience":"https://api.example.com","claims":claims})
            .to_string()
    };
    let cases: Vec<(&str, &str, Vec<(&str, String)>, String, u16, &str)> = vec![
        (
            "POST",
            "/v1/sessions",
            vec![json_type()],
            SESSION.into(),
            401,
            "invalid_client",
        ),
        (
            "POST",
            "/v1/sessions",
            vec![basic(&r.id, "wrong"), json_type()],
            SESSION.into(),
            401,
            "invalid_client",
        ),
        (
            "POST",
            "/v1/sessions",
            vec![basic("cli_nobody", &r.secret), json_type()],
            SESSION.into(),
            401,
            "invalid_client",
        ),
        (
            "POST",
            "/v1/sessions",
            vec![("Authorization", "Bearer abc".into()), json_type()],
            SESSION.into(),
            401,
            "invalid_client",
        ),
        (
            "POST",
            "/v1/sessions",
            vec![auth.clone()],
            SESSION.into(),
            415,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/sessions",
            vec![auth.clone(), json_type()],
            "{not json".into(),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/sessions",
            vec![auth.clone(), json_type()],
            r#"{"sub":"a","sub":"b"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/sessions",
            vec![auth.clone(), json_type()],
            r#"{"org":"o","audience":"a"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/sessions",
            vec![auth.clone(), json_type()],
            r#"{"sub":"u","org":"o","audience":"a","admin":true}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/sessions",
            vec![auth.clone(), json_type()],
            with_claim(json!({"plan":"x"})),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/sessions",
            vec![auth.clone(), json_type()],
            with_claim(json!({"tenant_tier":"bob@example.com"})),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/sessions",
            vec![auth.clone(), json_type()],
            big.clone(),
            413,
            "invalid_request",
        ),
        (
            "POST",
            "/oauth2/token",
            vec![auth.clone()],
            "grant_type=client_credentials".into(),
            415,
            "invalid_request",
        ),
        (
            "POST",
            "/oauth2/token",
            vec![auth.clone(), form_type()],
            "grant_type=password".into(),
            400,
            "unsupported_grant_type",
        ),
        (
            "POST",
            "/oauth2/token",
            vec![auth.clone(), form_type()],
            "grant_type=a&grant_type=b".into(),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/oauth2/token",
            vec![auth.clone(), form_type()],
            "scope=x".into(),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/oauth2/token",
            vec![auth.clone(), form_type()],
            "grant_type=refresh_token&refresh_token=nope".into(),
            400,
            "invalid_grant",
        ),
        (
            "POST",
            "/oauth2/token",
            vec![auth.clone(), form_type()],
            format!(
                "grant_type=client_credentials&client_id={}&client_secret={}",
                r.id, r.secret
            ),
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/oauth2/token",
            vec![form_type()],
            "grant_type=client_credentials".into(),
            401,
            "invalid_client",
        ),
        (
            "GET",
            "/oauth2/token",
            vec![],
            String::new(),
            405,
            "invalid_request",
        ),
    ];
    for (method, path, headers, payload, status, code) in cases {
        let reply = send(addr, method, path, &headers, &payload).await;
        assert_eq!(
            reply.status,
            status,
            "{method} {path} {}: {}",
            &payload[..payload.len().min(60)],
            reply.body
        );
        let b = body(&reply);
        assert_eq!(b["error"], code, "{method} {path}: {b}");
        assert!(b["error_description"].is_string());
        if status == 401 {
            assert!(
                reply.headers.contains("www-authenticate: basic"),
                "{}",
                reply.headers
            );
        }
    }
    // The personal-data refusal says what to do instead.
    let reply = send(
        addr,
        "POST",
        "/v1/sessions",
        &[auth.clone(), json_type()],
        &with_claim(json!({"tenant_tier":"+44 20 7946 0958"})),
    )
    .await;
    assert!(body(&reply)["error_description"]
        .as_str()
        .unwrap()
        .contains("jwe"));
    // A client without the sessions grant.
    let only_cc = clients::create(
        r.server.store(),
        "machine",
        &["client_credentials".to_owned()],
        None,
        0,
    )
    .await
    .unwrap();
    let reply = send(
        addr,
        "POST",
        "/v1/sessions",
        &[basic(&only_cc.record.id, &only_cc.secret), json_type()],
        SESSION,
    )
    .await;
    assert_eq!(
        (reply.status, body(&reply)["error"].clone()),
        (400, json!("unauthorized_client"))
    );
    r.server.shutdown().await;
}

async fn form_post(addr: SocketAddr, r: &Running, path: &str, form: &str) -> Reply {
    send(
        addr,
        "POST",
        path,
        &[basic(&r.id, &r.secret), form_type()],
        form,
    )
    .await
}

#[tokio::test]
async fn metadata_introspection_and_revocation() {
    let r = running(RESOURCES).await;
    let addr = r.server.local_addr();
    let meta = body(&request(addr, "GET", "/.well-known/oauth-authorization-server").await);
    assert_eq!(meta["issuer"], "https://auth.example.com");
    assert_eq!(
        meta["jwks_uri"],
        "https://auth.example.com/.well-known/jwks.json"
    );
    assert_eq!(
        meta["token_endpoint"],
        "https://auth.example.com/oauth2/token"
    );
    let oidc = body(&request(addr, "GET", "/.well-known/openid-configuration").await);
    assert_eq!(oidc["issuer"], meta["issuer"]);

    let s = new_session(&r).await;
    let access = s["access_token"].as_str().unwrap();
    let refresh_token = s["refresh_token"].as_str().unwrap();
    let at = body(&form_post(addr, &r, "/oauth2/introspect", &format!("token={access}")).await);
    assert_eq!(at["active"], true);
    assert_eq!(at["sub"], "user-1");
    assert_eq!(at["sid"], s["session_id"]);
    let rt = body(
        &form_post(
            addr,
            &r,
            "/oauth2/introspect",
            &format!("token={refresh_token}&token_type_hint=refresh_token"),
        )
        .await,
    );
    assert_eq!(rt["active"], true);
    assert_eq!(rt["token_type"], "refresh_token");
    let junk = body(&form_post(addr, &r, "/oauth2/introspect", "token=not-a-token").await);
    assert_eq!(junk, json!({"active": false}));
    // Another client cannot learn about this client's refresh token.
    let other = clients::create(
        r.server.store(),
        "other",
        &["client_credentials".to_owned()],
        None,
        0,
    )
    .await
    .unwrap();
    let seen = send(
        addr,
        "POST",
        "/oauth2/introspect",
        &[basic(&other.record.id, &other.secret), form_type()],
        &format!("token={refresh_token}"),
    )
    .await;
    assert_eq!(body(&seen), json!({"active": false}));
    // Revoking the refresh token ends the session: both tokens go inactive.
    let revoked = form_post(
        addr,
        &r,
        "/oauth2/revoke",
        &format!("token={refresh_token}"),
    )
    .await;
    assert_eq!(revoked.status, 200);
    for token in [access, refresh_token] {
        let after =
            body(&form_post(addr, &r, "/oauth2/introspect", &format!("token={token}")).await);
        assert_eq!(after, json!({"active": false}));
    }
    // Unknown tokens revoke "successfully" (RFC 7009 §2.2); no token is a 400.
    assert_eq!(
        form_post(addr, &r, "/oauth2/revoke", "token=unknown")
            .await
            .status,
        200
    );
    assert_eq!(form_post(addr, &r, "/oauth2/revoke", "").await.status, 400);
    r.server.shutdown().await;
}

#[tokio::test]
async fn rotation_while_tokens_are_verified_fails_none() {
    let r = running("").await;
    let addr = r.server.local_addr();
    // A verifier that fetched the JWKS once, before the rotation, and caches it.
    let cached = verifier(addr).await;
    let jwks: Value =
        serde_json::from_str(&request(addr, "GET", "/.well-known/jwks.json").await.body).unwrap();
    let next_kid = jwks["keys"][1]["kid"].as_str().unwrap().to_owned();
    let validation = Validation::new()
        .audience("https://auth.example.com")
        .typ("at+jwt");
    let mint = || async {
        let reply = send(
            addr,
            "POST",
            "/oauth2/token",
            &[basic(&r.id, &r.secret), form_type()],
            "grant_type=client_credentials",
        )
        .await;
        body(&reply)["access_token"].as_str().unwrap().to_owned()
    };
    let before = mint().await;
    let rotated = std::sync::atomic::AtomicBool::new(false);
    // Tokens are minted and verified before, during and after the rotation:
    // until it is done, then 20 more (whatever the speed of minting).
    let verify_loop = async {
        let mut kids = std::collections::BTreeSet::new();
        let mut after = 0;
        while after < 20 {
            if rotated.load(std::sync::atomic::Ordering::SeqCst) {
                after += 1;
            }
            let token = mint().await;
            let ok = jwt::verify::<Value>(&token, &cached, &validation, &SystemClock)
                .unwrap_or_else(|e| panic!("verification failed during rotation: {e}"));
            kids.insert(ok.header().kid().unwrap().to_owned());
            tokio::task::yield_now().await;
        }
        kids
    };
    let rotate = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // A month later, as far as the key lifecycle is concerned.
        r.server
            .maintain_keys(SystemClock.now() + 31 * 86_400)
            .await
            .unwrap();
        rotated.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let (kids, ()) = tokio::join!(verify_loop, rotate);
    assert!(
        kids.contains(&next_kid),
        "tokens after the rotation are signed by the pre-published key"
    );
    // Tokens signed before the rotation still verify (the old key is retiring).
    assert!(jwt::verify::<Value>(&before, &cached, &validation, &SystemClock).is_ok());
    r.server.shutdown().await;
}

#[tokio::test]
async fn sessions_refresh_families_and_keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(
        &path,
        format!(
            "issuer = \"https://auth.example.com\"\ndata_dir = {:?}\n{RESOURCES}",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let config = || Config::load(Some(&path), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config(), None).await.unwrap();
    let new = clients::create(server.store(), "backend", &["sessions".to_owned()], None, 0)
        .await
        .unwrap();
    let r = Running {
        server,
        id: new.record.id.clone(),
        secret: new.secret.to_string(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let addr = r.server.local_addr();
    let s = new_session(&r).await;
    let jwks = request(addr, "GET", "/.well-known/jwks.json").await.body;
    let Running {
        server,
        id,
        secret,
        _dir,
    } = r;
    server.shutdown().await;

    let server = Server::start(config(), None).await.unwrap();
    let r = Running {
        server,
        id,
        secret,
        _dir,
    };
    let addr = r.server.local_addr();
    assert_eq!(
        request(addr, "GET", "/.well-known/jwks.json").await.body,
        jwks
    );
    let reply = refresh(addr, &r, s["refresh_token"].as_str().unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The access token minted before the restart still introspects as active.
    let at = body(
        &form_post(
            addr,
            &r,
            "/oauth2/introspect",
            &format!("token={}", s["access_token"].as_str().unwrap()),
        )
        .await,
    );
    assert_eq!(at["active"], true);
    r.server.shutdown().await;
}

#[tokio::test]
async fn private_key_jwt_assertions_are_single_use() {
    use tessera_jose::jwk::Jwk;
    use tessera_jose::jws::{JwsHeader, Signer};
    use tessera_jose::jwt::Claims;
    let r = running("").await;
    let addr = r.server.local_addr();
    let key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let jwks = JwkSet::new(vec![key.to_public().unwrap()]).to_public_json();
    let client = clients::create(
        r.server.store(),
        "signer",
        &["client_credentials".to_owned()],
        Some(&jwks),
        0,
    )
    .await
    .unwrap();
    assert!(client.secret.is_empty());
    let id = client.record.id.clone();
    let now = SystemClock.now();
    let assertion = |signer_key: &Jwk, jti: &str, exp: i64| {
        let claims = Claims::new(json!({}))
            .issuer(&id)
            .subject(&id)
            .audience("https://auth.example.com/oauth2/token")
            .issued_at(now)
            .expires_at(exp)
            .jwt_id(jti);
        let signer = Signer::new(signer_key, JwsAlgorithm::ES256).unwrap();
        jwt::sign(&signer, &JwsHeader::new(), &claims).unwrap()
    };
    let post = |a: String, with_id: bool| {
        let id = id.clone();
        async move {
            let mut form = format!(
                "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={a}"
            );
            if with_id {
                form.push_str(&format!("&client_id={id}"));
            }
            send(addr, "POST", "/oauth2/token", &[form_type()], &form).await
        }
    };
    let good = assertion(&key, "a-1", now + 60);
    let ok = post(good.clone(), true).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // Replayed: refused.
    let replay = post(good, true).await;
    assert_eq!(
        (replay.status, body(&replay)["error"].clone()),
        (401, json!("invalid_client"))
    );
    // Signed by a key not in the client's JWKS; too long-lived; no client_id.
    let stranger = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    assert_eq!(
        post(assertion(&stranger, "a-2", now + 60), true)
            .await
            .status,
        401
    );
    assert_eq!(
        post(assertion(&key, "a-3", now + 3600), true).await.status,
        401
    );
    assert_eq!(
        post(assertion(&key, "a-4", now + 60), false).await.status,
        400
    );
    // A secret does not authenticate this client.
    let by_secret = send(
        addr,
        "POST",
        "/oauth2/token",
        &[basic(&id, ""), form_type()],
        "grant_type=client_credentials",
    )
    .await;
    assert_eq!(by_secret.status, 401);
    r.server.shutdown().await;
}

#[tokio::test]
async fn tls_when_a_certificate_is_configured() {
    use std::sync::Arc;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let env = vec![
        (
            "TESSERA_DATA_DIR".to_owned(),
            dir.path().join("d").display().to_string(),
        ),
        (
            "TESSERA_TLS_CERT".to_owned(),
            cert_path.display().to_string(),
        ),
        ("TESSERA_TLS_KEY".to_owned(), key_path.display().to_string()),
    ];
    let config = Config::load(None, env, Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config, Some(&"77".repeat(32))).await.unwrap();

    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(cert.cert.der().to_vec()))
        .unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // Plain HTTP to the TLS port gets no answer.
    let plain = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        request_raw(server.local_addr()),
    )
    .await;
    assert!(!matches!(plain, Ok(Some(ref s)) if s.starts_with("HTTP/1.1 200")));
    server.shutdown().await;

    // A missing key file stops the start with a clear error.
    let env = vec![
        (
            "TESSERA_DATA_DIR".to_owned(),
            dir.path().join("d").display().to_string(),
        ),
        (
            "TESSERA_TLS_CERT".to_owned(),
            cert_path.display().to_string(),
        ),
        (
            "TESSERA_TLS_KEY".to_owned(),
            dir.path().join("nope.pem").display().to_string(),
        ),
    ];
    let config = Config::load(None, env, Some("127.0.0.1:0")).unwrap();
    let err = Server::start(config, Some(&"77".repeat(32)))
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Tls(_)), "{err}");
}

/// A plain-HTTP GET that tolerates the peer closing without an answer.
async fn request_raw(addr: SocketAddr) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.ok()?;
    Some(String::from_utf8_lossy(&raw).into_owned())
}

#[tokio::test]
async fn openapi_documents_every_endpoint_and_only_real_ones() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir.path().join("d")), None)
        .await
        .unwrap();
    let addr = server.local_addr();
    let doc = body(&request(addr, "GET", "/openapi.json").await);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/healthz", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/.well-known/oauth-authorization-server", "get"),
        ("/.well-known/openid-configuration", "get"),
        ("/v1/sessions", "post"),
        ("/v1/sessions/{id}", "delete"),
        ("/v1/sessions/{id}/step-up", "post"),
        ("/oauth2/token", "post"),
        ("/oauth2/introspect", "post"),
        ("/oauth2/revoke", "post"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths[path].get(method).is_some(),
            "{method} {path} undocumented"
        );
    }
    assert_eq!(paths.len(), expected.len());
    // Every documented operation is routed (the fallback never answers it).
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let reply = request(addr, &method.to_uppercase(), &path.replace("{id}", "x")).await;
            assert_ne!(reply.status, 404, "{method} {path}");
            assert_ne!(reply.status, 405, "{method} {path}");
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas["SessionRequest"]["properties"]["audience"].is_object());
    assert!(schemas["ErrorResponse"]["properties"]["error"].is_object());
    server.shutdown().await;
}

/// Item 8 by brute force: a few hundred malformed requests (random bodies,
/// content types, credentials and paths, from a fixed seed) never get a
/// 5xx, and every error is RFC 6749-shaped JSON.
#[tokio::test]
async fn random_bad_requests_never_get_a_5xx() {
    let r = running(RESOURCES).await;
    let addr = r.server.local_addr();
    let mut seed: u64 = 0x7e55_e2a0_5eed_0001;
    let mut next = move || {
        // xorshift64*: deterministic, so a failure reproduces.
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let targets = [
        ("POST", "/v1/sessions"),
        ("DELETE", "/v1/sessions/ses_x"),
        ("POST", "/v1/sessions/ses_x/step-up"),
        ("POST", "/oauth2/token"),
        ("POST", "/oauth2/introspect"),
        ("POST", "/oauth2/revoke"),
        ("GET", "/.well-known/jwks.json"),
    ];
    let bodies = [
        String::new(),
        "{".into(),
        "[]".into(),
        "null".into(),
        SESSION.into(),
        r#"{"sub":1,"org":[],"audience":{}}"#.into(),
        r#"{"sub":"u","org":"o","audience":"a","claims":{"tenant_tier":{"a":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}}}"#.into(),
        "grant_type=refresh_token&refresh_token=%FF%FE".into(),
        "grant_type=client_credentials&scope=%00".into(),
        "token=&token_type_hint=x".into(),
        "token=a.b.c.d.e".into(),
        r#"{"audience":"https://api.example.com","amr":["hwk"],"acr":"aal3","claims":{"x":1}}"#.into(),
        r#"{"audience":7,"amr":"hwk"}"#.into(),
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=a.b.c.d.e&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=x".into(),
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=%7B%7D".into(),
        "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c&client_id=x".into(),
        "\u{0}\u{1}\u{2}".into(),
        "a=%".into(),
    ];
    let content_types = [
        None,
        Some("application/json"),
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        Some("application/json; charset=utf-8"),
        Some("multipart/form-data; boundary=x"),
    ];
    let auths = [
        None,
        Some(basic(&r.id, &r.secret).1),
        Some(basic(&r.id, "nope").1),
        Some("Basic !!!".to_owned()),
        Some("Basic ".to_owned()),
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(":")
        )),
        Some("Bearer x".to_owned()),
    ];
    for _ in 0..300 {
        let (method, path) = targets[(next() % targets.len() as u64) as usize];
        let payload = &bodies[(next() % bodies.len() as u64) as usize];
        let mut headers = Vec::new();
        if let Some(ct) = content_types[(next() % content_types.len() as u64) as usize] {
            headers.push(("Content-Type", ct.to_owned()));
        }
        if let Some(a) = &auths[(next() % auths.len() as u64) as usize] {
            headers.push(("Authorization", a.clone()));
        }
        let reply = send(addr, method, path, &headers, payload).await;
        assert!(
            reply.status < 500,
            "{method} {path} {headers:?} {payload:?}: {} {}",
            reply.status,
            reply.body
        );
        if reply.status >= 400 {
            let b = body(&reply);
            assert!(b["error"].is_string(), "{method} {path}: {}", reply.body);
        }
    }
    r.server.shutdown().await;
}

// ---- Per-resource formats: jws, jwe (sealed to the resource), nested (partners) ----

mod formats {
    use super::*;
    use tessera_jose::jwa::{EcCurve, JweAlgorithm, JweEncryption};
    use tessera_jose::jwe::{Decrypter, Encrypter, JweHeader};
    use tessera_jose::jwk::{Jwk, KeyUse};
    use tessera_jose::jws::{JwsHeader, Signer};
    use tessera_jose::jwt::Claims;

    const API: &str = "https://api.example.com";
    const RECORDS: &str = "https://records.example.com";
    const PARTNER: &str = "https://partner.example.org";
    const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

    /// The resource servers' own keys (private, kept by them), and the
    /// configuration that gives tessera their public parts.
    struct Resources {
        records: Jwk,
        partner: Jwk,
        toml: String,
        _dir: tempfile::TempDir,
    }

    fn resources() -> Resources {
        let dir = tempfile::tempdir().unwrap();
        let records = Jwk::generate_rsa(2048)
            .unwrap()
            .with_kid("records-enc-1")
            .with_use(KeyUse::Encryption)
            .unwrap();
        let records_file = dir.path().join("records.jwk");
        std::fs::write(&records_file, records.to_public().unwrap().to_json()).unwrap();
        // The partner publishes a set with a signing key first: it must be skipped.
        let partner = Jwk::generate_ec(EcCurve::P256)
            .unwrap()
            .with_kid("partner-enc-1")
            .with_use(KeyUse::Encryption)
            .unwrap();
        let partner_sig = Jwk::generate_ec(EcCurve::P256)
            .unwrap()
            .with_kid("partner-sig-1")
            .with_use(KeyUse::Signature)
            .unwrap();
        let partner_file = dir.path().join("partner.jwks");
        std::fs::write(
            &partner_file,
            format!(
                r#"{{"keys":[{},{}]}}"#,
                partner_sig.to_public().unwrap().to_json(),
                partner.to_public().unwrap().to_json()
            ),
        )
        .unwrap();
        let toml = format!(
            r#"
[[resources]]
audience = "{API}"
claims = ["tenant_tier"]
[[resources]]
audience = "{RECORDS}"
format = "jwe"
encryption_key = {records:?}
claims = ["record_id", "email"]
[[resources]]
audience = "{PARTNER}"
format = "nested"
encryption_key = {partner:?}
alg = "ECDH-ES+A256KW"
claims = ["email"]
release = ["sub", "org", "email"]
"#,
            records = records_file.display().to_string(),
            partner = partner_file.display().to_string(),
        );
        Resources {
            records,
            partner,
            toml,
            _dir: dir,
        }
    }

    async fn post_json(r: &Running, path: &str, json: &str) -> Reply {
        send(
            r.server.local_addr(),
            "POST",
            path,
            &[basic(&r.id, &r.secret), json_type()],
            json,
        )
        .await
    }

    fn decrypter(key: &Jwk, alg: JweAlgorithm) -> Decrypter {
        Decrypter::builder()
            .key(key, &[(alg, JweEncryption::A256GCM)])
            .unwrap()
            .build()
            .unwrap()
    }

    /// Every segment of a compact JWE, decoded: none may hold `needle`.
    fn holds_nowhere(token: &str, needle: &str) {
        assert!(!token.contains(needle));
        for segment in token.split('.') {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(segment)
                .unwrap();
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} readable in a segment"
            );
        }
    }

    /// A client that may exchange tokens, besides the one `running` made,
    /// registered for the same audiences; `running`'s client trusts it to
    /// act for its sessions (`may_act`).
    async fn exchanger(r: &Running) -> (String, String) {
        use tessera_server::store::Store as _;
        let store = r.server.store();
        let backend = store.client(&r.id).await.unwrap().unwrap();
        let registration = tessera_server::store::Registration {
            audiences: backend.registration.audiences.clone(),
            ..Default::default()
        };
        let grants = vec!["token_exchange".to_owned()];
        let new = clients::create_with(store, "gateway", &grants, None, registration, 0)
            .await
            .unwrap();
        let mut trusting = backend.registration.clone();
        trusting.may_act = vec![new.record.id.clone()];
        assert!(store.update_registration(&r.id, &trusting).await.unwrap());
        (new.record.id.clone(), new.secret.to_string())
    }

    async fn exchange(r: &Running, client: &(String, String), form: &str) -> Reply {
        send(
            r.server.local_addr(),
            "POST",
            "/oauth2/token",
            &[basic(&client.0, &client.1), form_type()],
            form,
        )
        .await
    }

    async fn introspect(r: &Running, token: &str) -> Value {
        body(
            &form_post(
                r.server.local_addr(),
                r,
                "/oauth2/introspect",
                &format!("token={token}"),
            )
            .await,
        )
    }

    async fn revoke_as(r: &Running, who: &(String, String), token: &str) -> Reply {
        send(
            r.server.local_addr(),
            "POST",
            "/oauth2/revoke",
            &[basic(&who.0, &who.1), form_type()],
            &format!("token={token}"),
        )
        .await
    }

    #[tokio::test]
    async fn each_format_end_to_end() {
        let res = resources();
        let r = running(&res.toml).await;
        let addr = r.server.local_addr();
        let ours = verifier(addr).await;

        // jws: a sensitive claim is refused for a plain JWS resource.
        let leak = post_json(
            &r,
            "/v1/sessions",
            &format!(
                r#"{{"sub":"user-1","org":"acme","audience":"{API}","claims":{{"tenant_tier":"alice@example.com"}}}}"#
            ),
        )
        .await;
        assert_eq!(leak.status, 400, "{}", leak.body);
        assert!(leak.body.contains("e-mail"), "{}", leak.body);

        // jwe: the same personal data is fine, sealed to the resource.
        let reply = post_json(
            &r,
            "/v1/sessions",
            &format!(
                r#"{{"sub":"user-1","org":"acme","roles":["clinician"],"amr":["pwd"],"audience":"{RECORDS}","claims":{{"email":"alice@example.com","record_id":"MRN-778812"}}}}"#
            ),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let session = body(&reply);
        let sid = session["session_id"].as_str().unwrap().to_owned();
        let access = session["access_token"].as_str().unwrap().to_owned();
        assert_eq!(access.split('.').count(), 5, "a compact JWE");
        for secret in ["alice@example.com", "MRN-778812", "user-1", "clinician"] {
            holds_nowhere(&access, secret);
        }
        let at = Validation::new()
            .issuer("https://auth.example.com")
            .audience(RECORDS)
            .typ("at+jwt");
        let opened = jwt::decrypt_and_verify::<Value>(
            &access,
            &decrypter(&res.records, JweAlgorithm::RSA_OAEP_256),
            &ours,
            &at,
            &SystemClock,
        )
        .unwrap();
        assert_eq!(opened.outer_header().kid(), Some("records-enc-1"));
        let claims = opened.jwt().claims();
        assert_eq!(claims.sub.as_deref(), Some("user-1"));
        assert_eq!(claims.custom["record_id"], "MRN-778812");
        assert_eq!(claims.custom["sid"], sid.as_str());
        // Without the resource's key it does not open.
        let stranger = Jwk::generate_rsa(2048).unwrap().with_kid("records-enc-1");
        let e = jwt::decrypt_and_verify::<Value>(
            &access,
            &decrypter(&stranger, JweAlgorithm::RSA_OAEP_256),
            &ours,
            &at,
            &SystemClock,
        )
        .unwrap_err();
        assert_eq!(e.code(), "ERR_JWE_DECRYPTION_FAILED");
        // A refresh yields another sealed access token.
        let refreshed = refresh(addr, &r, session["refresh_token"].as_str().unwrap()).await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.body);
        let again = body(&refreshed)["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        jwt::decrypt_and_verify::<Value>(
            &again,
            &decrypter(&res.records, JweAlgorithm::RSA_OAEP_256),
            &ours,
            &at,
            &SystemClock,
        )
        .unwrap();

        // Introspection knows the sealed token, and tells nothing sealed.
        let seen = form_post(addr, &r, "/oauth2/introspect", &format!("token={access}")).await;
        let seen = body(&seen);
        assert_eq!(seen["active"], true, "{seen}");
        assert_eq!(seen["sub"], "user-1");
        assert_eq!(seen["aud"], RECORDS);
        assert_eq!(seen["sid"], sid.as_str());
        assert_eq!(seen["tessera_format"], "jwe");
        assert!(seen.get("record_id").is_none() && seen.get("email").is_none());

        // Step-up: a sealed assertion with the fresh authentication.
        let step = post_json(
            &r,
            &format!("/v1/sessions/{sid}/step-up"),
            &format!(
                r#"{{"audience":"{RECORDS}","amr":["hwk","pin"],"acr":"aal3","claims":{{"record_id":"MRN-1"}}}}"#
            ),
        )
        .await;
        assert_eq!(step.status, 200, "{}", step.body);
        let step = body(&step);
        assert_eq!(step["token_type"], "N_A");
        assert_eq!(step["expires_in"], 300);
        let assertion = step["assertion"].as_str().unwrap();
        holds_nowhere(assertion, "MRN-1");
        let opened = jwt::decrypt_and_verify::<Value>(
            assertion,
            &decrypter(&res.records, JweAlgorithm::RSA_OAEP_256),
            &ours,
            &Validation::new().audience(RECORDS).typ("step-up+jwt"),
            &SystemClock,
        )
        .unwrap();
        let c = opened.jwt().claims();
        assert_eq!(c.sub.as_deref(), Some("user-1"));
        assert_eq!(c.custom["sid"], sid.as_str());
        assert_eq!(c.custom["amr"], json!(["hwk", "pin"]));
        assert_eq!(c.custom["acr"], "aal3");
        assert_eq!(c.custom["record_id"], "MRN-1");
        let auth_time = c.custom["auth_time"].as_i64().unwrap();
        assert!((SystemClock.now() - auth_time).abs() < 60);
        // An access-token verifier never takes a step-up assertion.
        let e = jwt::decrypt_and_verify::<Value>(
            assertion,
            &decrypter(&res.records, JweAlgorithm::RSA_OAEP_256),
            &ours,
            &at,
            &SystemClock,
        )
        .unwrap_err();
        assert_eq!(e.code(), "ERR_JWS_UNEXPECTED_TYP");
        // Step-up refusals: a jws resource, an undeclared claim, no amr,
        // someone else's session.
        for (path, json, status) in [
            (
                format!("/v1/sessions/{sid}/step-up"),
                format!(r#"{{"audience":"{API}","amr":["hwk"],"acr":"aal3"}}"#),
                400,
            ),
            (
                format!("/v1/sessions/{sid}/step-up"),
                format!(
                    r#"{{"audience":"{RECORDS}","amr":["hwk"],"acr":"aal3","claims":{{"ssn":"078-05-1120"}}}}"#
                ),
                400,
            ),
            (
                format!("/v1/sessions/{sid}/step-up"),
                format!(r#"{{"audience":"{RECORDS}","amr":[],"acr":"aal3"}}"#),
                400,
            ),
            (
                "/v1/sessions/ses_nope/step-up".to_owned(),
                format!(r#"{{"audience":"{RECORDS}","amr":["hwk"],"acr":"aal3"}}"#),
                404,
            ),
        ] {
            let reply = post_json(&r, &path, &json).await;
            assert_eq!(reply.status, status, "{json}: {}", reply.body);
            assert!(body(&reply)["error"].is_string());
        }

        // Token exchange through RFC 8693: an assertion of the session's own
        // authentication, for the client the session's owner trusts; an
        // exchanger never supplies amr, acr or claims itself.
        let gateway = exchanger(&r).await;
        let reply = exchange(
            &r,
            &gateway,
            &format!(
                "grant_type={TOKEN_EXCHANGE}&subject_token={access}&subject_token_type={ACCESS_TOKEN_TYPE}\
                 &audience={RECORDS}&amr=hwk&acr=aal2"
            ),
        )
        .await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(body(&reply)["error"], "invalid_request");
        let reply = exchange(
            &r,
            &gateway,
            &format!(
                "grant_type={TOKEN_EXCHANGE}&subject_token={access}&subject_token_type={ACCESS_TOKEN_TYPE}\
                 &audience={RECORDS}"
            ),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let b = body(&reply);
        assert_eq!(
            b["issued_token_type"],
            "urn:ietf:params:oauth:token-type:jwt"
        );
        assert_eq!(b["token_type"], "N_A");
        let opened = jwt::decrypt_and_verify::<Value>(
            b["access_token"].as_str().unwrap(),
            &decrypter(&res.records, JweAlgorithm::RSA_OAEP_256),
            &ours,
            &Validation::new().audience(RECORDS).typ("step-up+jwt"),
            &SystemClock,
        )
        .unwrap();
        let c = &opened.jwt().claims().custom;
        assert_eq!(c["amr"], json!(["pwd"]), "the session's own methods");
        assert!(c.get("acr").is_none(), "the session reported no acr");
        assert_eq!(c["act"], json!({"sub": gateway.0}));
        assert_eq!(c["record_id"], "MRN-778812", "the session's claims");
        assert_eq!(c["email"], "alice@example.com");

        // Federation: the partner gets exactly its released attributes.
        let reply = exchange(
            &r,
            &gateway,
            &format!(
                "grant_type={TOKEN_EXCHANGE}&subject_token={access}&subject_token_type={ACCESS_TOKEN_TYPE}\
                 &resource={PARTNER}"
            ),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let b = body(&reply);
        assert_eq!(
            b["issued_token_type"],
            "urn:ietf:params:oauth:token-type:jwt"
        );
        let federation = b["access_token"].as_str().unwrap();
        holds_nowhere(federation, "alice@example.com");
        let partner_decrypter = decrypter(&res.partner, JweAlgorithm::ECDH_ES_A256KW);
        // The partner verifies with our published JWKS after decrypting.
        let opened = jwt::decrypt_and_verify::<Value>(
            federation,
            &partner_decrypter,
            &ours,
            &Validation::new()
                .issuer("https://auth.example.com")
                .audience(PARTNER),
            &SystemClock,
        )
        .unwrap();
        assert_eq!(opened.outer_header().cty(), Some("JWT"));
        assert_eq!(opened.outer_header().kid(), Some("partner-enc-1"));
        let c = serde_json::to_value(opened.jwt().claims()).unwrap();
        let mut names: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["act", "aud", "email", "exp", "iat", "iss", "jti", "org", "sub"],
            "released attributes (sub, org, email) and the token's own claims (act: who \
             exchanged it), nothing else"
        );
        assert_eq!(c["email"], "alice@example.com");

        // A nested token whose inner signature is not ours is refused.
        let forger = Jwk::generate_ec(EcCurve::P256).unwrap();
        let forged = jwt::sign_and_encrypt(
            &Signer::new(&forger, JwsAlgorithm::ES256).unwrap(),
            &JwsHeader::new(),
            &Claims::new(json!({"org": "acme"}))
                .issuer("https://auth.example.com")
                .subject("admin")
                .audience(PARTNER)
                .expires_at(SystemClock.now() + 60),
            &Encrypter::new(
                &res.partner.to_public().unwrap(),
                JweAlgorithm::ECDH_ES_A256KW,
                JweEncryption::A256GCM,
            )
            .unwrap(),
            &JweHeader::new(),
        )
        .unwrap();
        let e = jwt::decrypt_and_verify::<Value>(
            &forged,
            &partner_decrypter,
            &ours,
            &Validation::new().audience(PARTNER),
            &SystemClock,
        )
        .unwrap_err();
        assert!(
            matches!(
                e.code(),
                "ERR_JWS_SIGNATURE_INVALID" | "ERR_JWS_UNKNOWN_KID"
            ),
            "{e}"
        );

        // Token exchange refusals: a client without the grant, a jws target,
        // a subject token that is not ours.
        let no_grant = form_post(
            addr,
            &r,
            "/oauth2/token",
            &format!(
                "grant_type={TOKEN_EXCHANGE}&subject_token={access}&subject_token_type={ACCESS_TOKEN_TYPE}&audience={PARTNER}"
            ),
        )
        .await;
        assert_eq!(no_grant.status, 400);
        assert_eq!(body(&no_grant)["error"], "unauthorized_client");
        for (form, error) in [
            (
                format!("grant_type={TOKEN_EXCHANGE}&subject_token={access}&subject_token_type={ACCESS_TOKEN_TYPE}&audience={API}"),
                "invalid_target",
            ),
            (
                format!("grant_type={TOKEN_EXCHANGE}&subject_token={forged}&subject_token_type={ACCESS_TOKEN_TYPE}&audience={PARTNER}"),
                "invalid_grant",
            ),
            (
                format!("grant_type={TOKEN_EXCHANGE}&subject_token={access}&subject_token_type=urn:x&audience={PARTNER}"),
                "invalid_request",
            ),
        ] {
            let reply = exchange(&r, &gateway, &form).await;
            assert_eq!(reply.status, 400, "{form}: {}", reply.body);
            assert_eq!(body(&reply)["error"], error, "{form}");
        }

        // client_credentials for a sealed audience: sealed too.
        let cc = form_post(
            addr,
            &r,
            "/oauth2/token",
            &format!("grant_type=client_credentials&audience={RECORDS}"),
        )
        .await;
        assert_eq!(cc.status, 200, "{}", cc.body);
        let token = body(&cc)["access_token"].as_str().unwrap().to_owned();
        jwt::decrypt_and_verify::<Value>(
            &token,
            &decrypter(&res.records, JweAlgorithm::RSA_OAEP_256),
            &ours,
            &Validation::new().audience(RECORDS).typ("at+jwt"),
            &SystemClock,
        )
        .unwrap();

        // The gateway revokes the federation token it was given: that token
        // stops being active; the user's session (not the gateway's) goes on.
        assert_eq!(introspect(&r, federation).await["active"], true);
        assert_eq!(revoke_as(&r, &gateway, federation).await.status, 200);
        assert_eq!(introspect(&r, federation).await, json!({"active": false}));
        assert_eq!(
            introspect(&r, &access).await["active"],
            true,
            "session lives on"
        );
        // Another client cannot revoke a token that is not its own.
        assert_eq!(revoke_as(&r, &gateway, assertion).await.status, 200);
        assert_eq!(introspect(&r, assertion).await["active"], true);

        // Revoking the sealed access token ends its session: introspection
        // of every token of it turns inactive.
        let revoked = form_post(addr, &r, "/oauth2/revoke", &format!("token={access}")).await;
        assert_eq!(revoked.status, 200);
        for token in [access.as_str(), assertion, federation] {
            let seen = form_post(addr, &r, "/oauth2/introspect", &format!("token={token}")).await;
            assert_eq!(body(&seen), json!({"active": false}));
        }
        r.server.shutdown().await;
    }

    /// A sealed resource's key is checked at start-up: a signing key, a weak
    /// RSA key, a key of the wrong type, or an unreadable file stops it with
    /// one error naming the configuration key.
    #[tokio::test]
    async fn bad_encryption_keys_stop_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let sig = Jwk::generate_rsa(2048)
            .unwrap()
            .with_use(KeyUse::Signature)
            .unwrap();
        // A 1024-bit modulus (a key of this size must not be accepted).
        let weak = format!(
            r#"{{"kty":"RSA","e":"AQAB","n":"{}"}}"#,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xd5u8; 128])
        );
        let ec = Jwk::generate_ec(EcCurve::P256).unwrap();
        for (name, key, alg, expect) in [
            (
                "sig.jwk",
                sig.to_public().unwrap().to_json(),
                "RSA-OAEP-256",
                "\"sig\"",
            ),
            ("weak.jwk", weak, "RSA-OAEP-256", "weak"),
            (
                "ec.jwk",
                ec.to_public().unwrap().to_json(),
                "RSA-OAEP-256",
                "EC",
            ),
            (
                "empty.jwks",
                r#"{"keys":[]}"#.to_owned(),
                "RSA-OAEP-256",
                "empty",
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, key).unwrap();
            let toml = dir.path().join("tessera.toml");
            std::fs::write(
                &toml,
                format!(
                    "data_dir = {:?}\n[[resources]]\naudience = \"x\"\nformat = \"jwe\"\nalg = \"{alg}\"\nencryption_key = {:?}\n",
                    dir.path().join("data").display().to_string(),
                    path.display().to_string()
                ),
            )
            .unwrap();
            let config = Config::load(Some(&toml), Vec::new(), Some("127.0.0.1:0")).unwrap();
            match Server::start(config, Some(&"42".repeat(32))).await {
                Err(StartError::Config(e)) => {
                    assert_eq!(e.key, "resources[0].encryption_key", "{name}: {e}");
                    assert!(e.message.contains(expect), "{name}: {e}");
                }
                Err(other) => panic!("{name}: {other}"),
                Ok(s) => {
                    s.shutdown().await;
                    panic!("{name}: started");
                }
            }
        }
    }

    /// `encryption_jwks_uri`: fetched at start-up and when refreshed; a
    /// failed refresh keeps the last good key.
    #[tokio::test]
    async fn jwks_uri_is_fetched_at_start_and_refreshed_keeping_the_last_good_key() {
        use std::sync::{Arc, Mutex};
        use tessera_server::sealing::SealingKeys;
        let first = Jwk::generate_rsa(2048).unwrap().with_kid("k1");
        let second = Jwk::generate_rsa(2048).unwrap().with_kid("k2");
        let served: Arc<Mutex<(u16, String)>> = Arc::new(Mutex::new((
            200,
            format!(r#"{{"keys":[{}]}}"#, first.to_public().unwrap().to_json()),
        )));
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = {
            let served = served.clone();
            let hits = hits.clone();
            axum::Router::new().route(
                "/jwks.json",
                axum::routing::get(move || {
                    let served = served.clone();
                    hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async move {
                        let (status, body) = served.lock().unwrap().clone();
                        (axum::http::StatusCode::from_u16(status).unwrap(), body)
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let jwks_addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let uri = format!("http://{jwks_addr}/jwks.json");
        let resources =
            format!("[[resources]]\naudience = \"{RECORDS}\"\nformat = \"jwe\"\nencryption_jwks_uri = \"{uri}\"\n");

        // The service starts with the fetched key and seals to it; no
        // request makes it fetch again.
        let r = running(&resources).await;
        let before = hits.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(before, 1, "fetched once, at start-up");
        let reply = post_json(
            &r,
            "/v1/sessions",
            &format!(r#"{{"sub":"u","org":"o","audience":"{RECORDS}"}}"#),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let token = body(&reply)["access_token"].as_str().unwrap().to_owned();
        let ours = verifier(r.server.local_addr()).await;
        let opened = jwt::decrypt_and_verify::<Value>(
            &token,
            &decrypter(&first, JweAlgorithm::RSA_OAEP_256),
            &ours,
            &Validation::new().audience(RECORDS),
            &SystemClock,
        )
        .unwrap();
        assert_eq!(opened.outer_header().kid(), Some("k1"));
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "no fetch per request"
        );
        r.server.shutdown().await;

        // Refresh: a new key is picked up; a failing endpoint keeps it.
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("tessera.toml");
        std::fs::write(&toml, &resources).unwrap();
        let config = Config::load(Some(&toml), Vec::new(), Some("127.0.0.1:0")).unwrap();
        let http = tessera_server::sealing::http_client().unwrap();
        let keys = SealingKeys::load(&config, &http).await.unwrap();
        assert_eq!(keys.get(RECORDS).unwrap().kid.as_deref(), Some("k1"));
        served.lock().unwrap().1 =
            format!(r#"{{"keys":[{}]}}"#, second.to_public().unwrap().to_json());
        keys.refresh(&config.resources[0], &http).await.unwrap();
        assert_eq!(keys.get(RECORDS).unwrap().kid.as_deref(), Some("k2"));
        served.lock().unwrap().0 = 503;
        assert!(keys.refresh(&config.resources[0], &http).await.is_err());
        assert_eq!(
            keys.get(RECORDS).unwrap().kid.as_deref(),
            Some("k2"),
            "last good key kept"
        );
        *served.lock().unwrap() = (200, "{\"keys\":[]}".to_owned());
        assert!(keys.refresh(&config.resources[0], &http).await.is_err());
        assert_eq!(
            keys.get(RECORDS).unwrap().kid.as_deref(),
            Some("k2"),
            "never an empty set"
        );
        // Unreachable at start-up: the service does not start.
        served.lock().unwrap().0 = 404;
        let e = SealingKeys::load(&config, &http).await.unwrap_err();
        assert_eq!(e.key, "resources[0].encryption_jwks_uri");
    }
}

// ---- The store, the same suite on SQLite and PostgreSQL ----

pub use common::fresh_pg_database;

mod store_suite {
    use tessera_server::store::{
        ClientRecord, KeyRecord, KeyState, KeyTransition, NewRefresh, RefreshOutcome, Registration,
        SealedRecord, SessionRecord, SqlStore, Store, StoreError,
    };

    const NOW: i64 = 1_800_000_000;

    /// Every store of one database must key its audit trail alike (as the
    /// service and the CLI do with the master key).
    fn keyed(store: SqlStore) -> SqlStore {
        let master = tessera_server::crypto::MasterKey::from_bytes(&[9; 32]).unwrap();
        store.with_audit_keys(tessera_server::audit::AuditKeys::from_master(&master).unwrap())
    }

    fn client(id: &str) -> ClientRecord {
        ClientRecord {
            id: id.into(),
            name: "backend".into(),
            secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            grants: vec!["sessions".into()],
            created_at: NOW,
            jwks: None,
            registration: Registration {
                audiences: Some(vec!["api".into()]),
                scopes: vec!["orders:read".into()],
                may_act: Vec::new(),
                introspect: vec!["api".into()],
                dpop_required: false,
            },
            legacy: false,
            previous_secret: None,
            public: false,
        }
    }

    fn session(id: &str, client: &str) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            client_id: client.into(),
            sub: "user-1".into(),
            org: "acme".into(),
            roles: vec!["admin".into()],
            amr: vec!["pwd".into()],
            audience: "api".into(),
            claims: serde_json::json!({"tier": "gold"})
                .as_object()
                .unwrap()
                .clone(),
            scope: vec!["orders:read".into()],
            acr: Some("aal2".into()),
            created_at: NOW,
            expires_at: NOW + 3600,
            revoked_at: None,
            // Stored and read back like every other column.
            dpop_jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
            holder: None,
        }
    }

    fn refresh(byte: u8) -> NewRefresh {
        NewRefresh {
            hash: vec![byte; 32],
            created_at: NOW,
            expires_at: NOW + 600,
        }
    }

    fn key(kid: &str, state: KeyState) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            alg: "ES256".into(),
            state,
            public_jwk: "{}".into(),
            sealed_private: Some(vec![1, 2, 3]),
            created_at: NOW,
            activates_at: NOW,
            retires_at: None,
        }
    }

    /// What every store must do, whatever the database.
    async fn suite(store: &SqlStore) {
        // Clients.
        store.create_client(&client("cli_a")).await.unwrap();
        store.create_client(&client("cli_b")).await.unwrap();
        assert!(
            store.create_client(&client("cli_a")).await.is_err(),
            "ids are unique"
        );
        assert_eq!(store.clients().await.unwrap().len(), 2);
        assert_eq!(
            store.client("cli_a").await.unwrap().unwrap(),
            client("cli_a").into()
        );
        assert!(store.client("cli_zz").await.unwrap().is_none());
        // What a client may ask for is replaced as a whole; a new client is
        // never legacy.
        let wider = Registration {
            audiences: None,
            scopes: vec!["a".into(), "b".into()],
            may_act: vec!["cli_a".into()],
            introspect: Vec::new(),
            dpop_required: true,
        };
        assert!(store.update_registration("cli_b", &wider).await.unwrap());
        assert!(!store.update_registration("cli_zz", &wider).await.unwrap());
        let b = store.client("cli_b").await.unwrap().unwrap();
        assert_eq!((b.registration.clone(), b.legacy), (wider, false));
        // Assertion ids are single-use, and forgotten once expired.
        assert!(store
            .use_assertion("cli_a", "j1", NOW + 60, NOW)
            .await
            .unwrap());
        assert!(!store
            .use_assertion("cli_a", "j1", NOW + 60, NOW)
            .await
            .unwrap());
        assert!(store
            .use_assertion("cli_b", "j1", NOW + 60, NOW)
            .await
            .unwrap());
        assert!(store
            .use_assertion("cli_a", "j1", NOW + 200, NOW + 61)
            .await
            .unwrap());

        // A session of an unknown client is refused (foreign keys enforced).
        let orphan = session("ses_0", "cli_missing");
        assert!(store
            .create_session(
                &orphan,
                &refresh(99).record("ses_0", "ses_0", "cli_missing")
            )
            .await
            .is_err());

        // Sessions and refresh rotation with reuse detection.
        let s = session("ses_1", "cli_a");
        store
            .create_session(&s, &refresh(1).record("ses_1", "ses_1", "cli_a"))
            .await
            .unwrap();
        assert_eq!(store.session("ses_1").await.unwrap().unwrap(), s);
        let status = store.refresh_status(&[1; 32], NOW).await.unwrap().unwrap();
        assert!(status.active);
        assert_eq!(status.session.id, "ses_1");
        // Another client cannot use it.
        assert!(matches!(
            store
                .rotate_refresh(&[1; 32], "cli_b", &refresh(2), &|_| true, NOW)
                .await
                .unwrap(),
            RefreshOutcome::Unknown
        ));
        // A session the client may not refresh now: refused, and the token
        // is still unused (nothing committed).
        match store
            .rotate_refresh(&[1; 32], "cli_a", &refresh(2), &|_| false, NOW)
            .await
            .unwrap()
        {
            RefreshOutcome::Refused(got) => assert_eq!(*got, s),
            other => panic!("{other:?}"),
        }
        assert!(
            store
                .refresh_status(&[1; 32], NOW)
                .await
                .unwrap()
                .unwrap()
                .active
        );
        match store
            .rotate_refresh(&[1; 32], "cli_a", &refresh(2), &|_| true, NOW)
            .await
            .unwrap()
        {
            RefreshOutcome::Rotated(got) => assert_eq!(*got, s),
            other => panic!("{other:?}"),
        }
        assert!(
            !store
                .refresh_status(&[1; 32], NOW)
                .await
                .unwrap()
                .unwrap()
                .active
        );
        assert!(
            store
                .refresh_status(&[2; 32], NOW)
                .await
                .unwrap()
                .unwrap()
                .active
        );
        assert!(matches!(
            store
                .rotate_refresh(&[9; 32], "cli_a", &refresh(3), &|_| true, NOW)
                .await
                .unwrap(),
            RefreshOutcome::Unknown
        ));
        // Reuse of the first: the family and the session are revoked.
        match store
            .rotate_refresh(&[1; 32], "cli_a", &refresh(3), &|_| true, NOW)
            .await
            .unwrap()
        {
            RefreshOutcome::Reused {
                family_id,
                session_id,
            } => {
                assert_eq!(
                    (family_id.as_str(), session_id.as_str()),
                    ("ses_1", "ses_1")
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store
                .rotate_refresh(&[2; 32], "cli_a", &refresh(3), &|_| true, NOW)
                .await
                .unwrap(),
            RefreshOutcome::Expired
        ));
        assert!(store
            .session("ses_1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some());

        // Expiry, and revocation by the owning client only.
        let s2 = session("ses_2", "cli_a");
        store
            .create_session(&s2, &refresh(4).record("ses_2", "ses_2", "cli_a"))
            .await
            .unwrap();
        assert!(matches!(
            store
                .rotate_refresh(&[4; 32], "cli_a", &refresh(5), &|_| true, NOW + 601)
                .await
                .unwrap(),
            RefreshOutcome::Expired
        ));
        assert!(!store.revoke_session("ses_2", "cli_b", NOW).await.unwrap());
        assert!(store.revoke_session("ses_2", "cli_a", NOW).await.unwrap());
        assert!(
            !store
                .refresh_status(&[4; 32], NOW)
                .await
                .unwrap()
                .unwrap()
                .active
        );

        // Another client's revocation changes nothing: the session and its
        // refresh token stay alive, and so does a sealed token of it.
        let s3 = session("ses_3", "cli_a");
        store
            .create_session(&s3, &refresh(9).record("ses_3", "ses_3", "cli_a"))
            .await
            .unwrap();
        let of_s3 = SealedRecord {
            hash: vec![10; 32],
            jti: "j3".into(),
            kind: "federation".into(),
            format: "nested".into(),
            client_id: "cli_b".into(),
            session_id: None,
            session_ref: Some(tessera_server::store::session_ref("ses_3")),
            sub: String::new(),
            audience: "partner".into(),
            issued_at: NOW,
            expires_at: NOW + 60,
            revoked_at: None,
            kid: Some("k1".into()),
            jkt: None,
        };
        store.record_sealed(&of_s3, NOW, None).await.unwrap();
        assert!(!store.revoke_session("ses_3", "cli_b", NOW).await.unwrap());
        assert!(
            store
                .refresh_status(&[9; 32], NOW)
                .await
                .unwrap()
                .unwrap()
                .active
        );
        assert!(store
            .session("ses_3")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none());
        assert!(store
            .sealed(&[10; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none());
        // The owner's revocation ends the session's sealed tokens too, found
        // by reference (the partner's token carried no session id).
        assert!(store.revoke_session("ses_3", "cli_a", NOW).await.unwrap());
        assert!(
            !store
                .refresh_status(&[9; 32], NOW)
                .await
                .unwrap()
                .unwrap()
                .active
        );
        assert_eq!(
            store.sealed(&[10; 32]).await.unwrap().unwrap().revoked_at,
            Some(NOW)
        );

        // Revoked session-less tokens, by jti, until they expire.
        store
            .revoke_jti("cc-1", "cli_a", NOW + 30, NOW)
            .await
            .unwrap();
        store
            .revoke_jti("cc-1", "cli_a", NOW + 30, NOW)
            .await
            .unwrap();
        store
            .revoke_jti("cc-2", "cli_a", NOW + 90, NOW)
            .await
            .unwrap();
        let mut live = store.revoked_jtis(0, NOW).await.unwrap();
        live.sort();
        assert_eq!(
            live,
            vec![("cc-1".into(), NOW + 30), ("cc-2".into(), NOW + 90)]
        );
        assert_eq!(
            store.revoked_jtis(0, NOW + 31).await.unwrap(),
            vec![("cc-2".to_owned(), NOW + 90)]
        );

        // Sealed tokens: recorded by hash, revocable by their client only,
        // expired ones forgotten on the next insert.
        let sealed = SealedRecord {
            hash: vec![7; 32],
            jti: "j".into(),
            kind: "access_token".into(),
            format: "jwe".into(),
            client_id: "cli_a".into(),
            session_id: Some("ses_2".into()),
            session_ref: Some(tessera_server::store::session_ref("ses_2")),
            sub: "user-1".into(),
            audience: "records".into(),
            issued_at: NOW,
            expires_at: NOW + 60,
            revoked_at: None,
            kid: Some("k1".into()),
            jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
        };
        store.record_sealed(&sealed, NOW, None).await.unwrap();
        assert_eq!(store.sealed(&[7; 32]).await.unwrap().unwrap(), sealed);
        assert!(!store.revoke_sealed(&[7; 32], "cli_b", NOW).await.unwrap());
        assert!(store
            .revoke_sealed(&[7; 32], "cli_a", NOW + 1)
            .await
            .unwrap());
        assert_eq!(
            store.sealed(&[7; 32]).await.unwrap().unwrap().revoked_at,
            Some(NOW + 1)
        );
        let later = SealedRecord {
            hash: vec![8; 32],
            ..sealed.clone()
        };
        store.record_sealed(&later, NOW + 61, None).await.unwrap();
        assert!(
            store.sealed(&[7; 32]).await.unwrap().is_none(),
            "expired one forgotten"
        );

        // Signing keys: conditional transitions, one next and one current.
        store
            .change_keys(
                &[],
                &[key("k1", KeyState::Current), key("k2", KeyState::Next)],
            )
            .await
            .unwrap();
        let e = store
            .change_keys(&[], &[key("k3", KeyState::Next)])
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");
        let promote = [
            KeyTransition {
                kid: "k1".into(),
                from: KeyState::Current,
                to: KeyState::Retiring,
                activates_at: None,
                retires_at: Some(NOW + 100),
            },
            KeyTransition {
                kid: "k2".into(),
                from: KeyState::Next,
                to: KeyState::Current,
                activates_at: Some(NOW + 5),
                retires_at: None,
            },
        ];
        store.change_keys(&promote, &[]).await.unwrap();
        let e = store.change_keys(&promote, &[]).await.unwrap_err();
        assert!(
            matches!(e, StoreError::Conflict(_)),
            "a stale plan is refused whole"
        );
        let keys = store.signing_keys().await.unwrap();
        let states: Vec<(&str, KeyState)> =
            keys.iter().map(|k| (k.kid.as_str(), k.state)).collect();
        assert_eq!(
            states,
            [("k1", KeyState::Retiring), ("k2", KeyState::Current)]
        );
        assert_eq!(keys[1].activates_at, NOW + 5);
        let retire = [KeyTransition {
            kid: "k1".into(),
            from: KeyState::Retiring,
            to: KeyState::Retired,
            activates_at: None,
            retires_at: None,
        }];
        store.change_keys(&retire, &[]).await.unwrap();
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(
            keys[0].sealed_private, None,
            "a retired key loses its private part"
        );

        // Deleting a client takes its sessions and tokens along.
        assert!(store.delete_client("cli_a").await.unwrap());
        assert!(!store.delete_client("cli_a").await.unwrap());
        assert!(store.session("ses_2").await.unwrap().is_none());
        assert!(store.refresh_status(&[4; 32], NOW).await.unwrap().is_none());
        assert!(store.sealed(&[8; 32]).await.unwrap().is_none());

        // Admins (issue 25): found by the hash of their token only; a
        // token hash is unique; deleting one ends its token at once.
        let made = tessera_server::admins::create(
            store,
            "alice",
            &["clients:write,clients:read".into()],
            NOW,
        )
        .await
        .unwrap();
        let other = tessera_server::admins::create(store, "bob", &["*".into()], NOW + 1)
            .await
            .unwrap();
        assert!(made.token.starts_with(tessera_server::admins::TOKEN_PREFIX));
        assert_eq!(made.record.scopes, ["clients:read", "clients:write"]);
        let listed = store.admins().await.unwrap();
        assert_eq!(listed, vec![made.record.clone(), other.record.clone()]);
        assert!(!format!("{listed:?}").contains(made.token.as_str()));
        let found = tessera_server::admins::authenticate(store, &made.token)
            .await
            .unwrap();
        assert_eq!(found, Some(made.record.clone()));
        // The last character changed (to one it is not).
        let last = if made.token.ends_with('A') { "B" } else { "A" };
        for wrong in [
            "",
            "tessera_admin_",
            &made.token[..made.token.len() - 1],
            &format!("{}{last}", &made.token[..made.token.len() - 1]),
            &made.record.id,
        ] {
            assert_eq!(
                tessera_server::admins::authenticate(store, wrong)
                    .await
                    .unwrap(),
                None,
                "{wrong}"
            );
        }
        let mut twin = other.record.clone();
        twin.id = "adm_twin".into();
        assert!(
            store.create_admin(&twin).await.is_err(),
            "token hashes are unique"
        );
        assert!(store.delete_admin(&made.record.id).await.unwrap());
        assert!(!store.delete_admin(&made.record.id).await.unwrap());
        assert_eq!(
            tessera_server::admins::authenticate(store, &made.token)
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.admins().await.unwrap(), vec![other.record]);
    }

    /// Many concurrent uses of one refresh token: exactly one rotates.
    async fn one_winner(store: &SqlStore, uses: usize) {
        store.create_client(&client("cli_c")).await.unwrap();
        let s = session("ses_c", "cli_c");
        store
            .create_session(&s, &refresh(10).record("ses_c", "ses_c", "cli_c"))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..uses {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let next = NewRefresh {
                    hash: format!("next-{i:04}-padding-to-32-bytes!").into_bytes(),
                    created_at: NOW,
                    expires_at: NOW + 600,
                };
                store
                    .rotate_refresh(&[10; 32], "cli_c", &next, &|_| true, NOW)
                    .await
                    .unwrap()
            }));
        }
        let mut rotated = 0;
        for t in tasks {
            if let RefreshOutcome::Rotated(_) = t.await.unwrap() {
                rotated += 1;
            }
        }
        assert_eq!(rotated, 1, "exactly one of {uses} concurrent uses wins");
    }

    /// A store that keeps client records (`cache_clients`), beside one that
    /// does not (another node, or the CLI) on the same database.
    async fn client_cache(cached: &SqlStore, other: &SqlStore) {
        cached.create_client(&client("cli_k")).await.unwrap();
        assert!(cached.client("cli_k").await.unwrap().is_some());
        // Deleted elsewhere: still known here, until the cache time is over.
        assert!(other.delete_client("cli_k").await.unwrap());
        assert!(other.client("cli_k").await.unwrap().is_none());
        assert_eq!(
            cached.client("cli_k").await.unwrap(),
            Some(client("cli_k").into()),
            "kept for the cache time"
        );
        // A session for it is refused by the database, typed, and the kept
        // record forgotten.
        let s = session("ses_k", "cli_k");
        let outcome = cached
            .create_session(&s, &refresh(40).record("ses_k", "ses_k", "cli_k"))
            .await;
        assert!(
            matches!(outcome, Err(StoreError::ClientGone)),
            "{outcome:?}"
        );
        assert!(cached.client("cli_k").await.unwrap().is_none());
        assert!(cached.session("ses_k").await.unwrap().is_none());
        // Deleted through this store: forgotten at once, row or no row.
        other.create_client(&client("cli_k")).await.unwrap();
        assert!(cached.client("cli_k").await.unwrap().is_some());
        assert!(cached.delete_client("cli_k").await.unwrap());
        assert!(cached.client("cli_k").await.unwrap().is_none());
        // An unknown id is not remembered as unknown.
        other.create_client(&client("cli_k")).await.unwrap();
        assert!(cached.client("cli_k").await.unwrap().is_some());
        assert!(other.delete_client("cli_k").await.unwrap());
        assert!(!cached.delete_client("cli_k").await.unwrap());
        assert!(cached.client("cli_k").await.unwrap().is_none());
    }

    /// A short cache time: a deletion elsewhere is seen once it is over.
    async fn client_cache_expires(short: &SqlStore, other: &SqlStore) {
        other.create_client(&client("cli_s")).await.unwrap();
        assert!(short.client("cli_s").await.unwrap().is_some());
        assert!(other.delete_client("cli_s").await.unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(short.client("cli_s").await.unwrap().is_none());
    }

    /// DPoP proofs (RFC 9449 §11.1): each is first used once across the
    /// stores of one database (the service's nodes), for as long as it
    /// lives; an expired record is taken over; expired ones are pruned.
    async fn dpop_replay(a: &SqlStore, b: &SqlStore) {
        use tessera_verify::dpop::replay_key;
        let key = replay_key("jkt", "jti-1");
        assert!(a.dpop_first_use(&key, NOW + 60, NOW).await.unwrap());
        assert!(!b.dpop_first_use(&key, NOW + 61, NOW + 1).await.unwrap());
        assert!(!a.dpop_first_use(&key, NOW + 120, NOW + 60).await.unwrap());
        assert!(b.dpop_first_use(&key, NOW + 121, NOW + 61).await.unwrap());
        // The same jti under another key is another proof.
        assert!(a
            .dpop_first_use(&replay_key("jkt-2", "jti-1"), NOW + 60, NOW)
            .await
            .unwrap());
        // Many uses at once on both stores: exactly one first.
        let key = replay_key("jkt", "jti-race");
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                let key = key.clone();
                tokio::spawn(async move { s.dpop_first_use(&key, NOW + 60, NOW).await.unwrap() })
            })
            .collect();
        let mut first = 0;
        for t in tasks {
            first += usize::from(t.await.unwrap());
        }
        assert_eq!(first, 1);
        // Pruned once expired: not at their last second, after it.
        assert_eq!(a.prune_dpop_proofs(NOW + 60).await.unwrap(), 0);
        assert_eq!(a.prune_dpop_proofs(NOW + 61).await.unwrap(), 2);
        assert_eq!(b.prune_dpop_proofs(NOW + 1_000).await.unwrap(), 1);
        assert_eq!(a.prune_dpop_proofs(NOW + 1_000).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        // The store as the service opens it: keeping client records (for
        // longer than the service may, so that no test is timing-bound).
        let store = keyed(SqlStore::open_file(&dir.path().join("t.db")).await.unwrap())
            .cache_clients(std::time::Duration::from_secs(3600));
        suite(&store).await;
        let other = keyed(SqlStore::open_file(&dir.path().join("t.db")).await.unwrap());
        client_cache(&store, &other).await;
        let short = other
            .clone()
            .cache_clients(std::time::Duration::from_millis(200));
        client_cache_expires(&short, &other).await;
        assert!(
            dir.path().join("t.db-wal").exists(),
            "write-ahead log in use"
        );
        one_winner(&store, 50).await;
        dpop_replay(&store, &other).await;
        // Two stores on one file appended in turn (each keeps the head it
        // wrote last, checked before use): one chain, which verifies.
        for i in 0..5 {
            let (a, b) = (format!("cli_alt_a{i}"), format!("cli_alt_b{i}"));
            store.create_client(&client(&a)).await.unwrap();
            other.create_client(&client(&b)).await.unwrap();
            // A session's event goes in the same call as the session on
            // the head this store wrote last: stale here, every time.
            let (sa, sb) = (format!("ses_alt_a{i}"), format!("ses_alt_b{i}"));
            let n = 200 + 2 * i;
            store
                .create_session(&session(&sa, &a), &refresh(n).record(&sa, &sa, &a))
                .await
                .unwrap();
            other
                .create_session(&session(&sb, &b), &refresh(n + 1).record(&sb, &sb, &b))
                .await
                .unwrap();
        }
        let master = tessera_server::crypto::MasterKey::from_bytes(&[9; 32]).unwrap();
        let keys = tessera_server::audit::AuditKeys::from_master(&master).unwrap();
        let verified = tessera_server::audit::verify_store(&store, &keys)
            .await
            .unwrap();
        assert!(verified.events >= 20, "{verified:?}");
        // Reopening applies no migration twice.
        store.close().await;
        SqlStore::open_file(&dir.path().join("t.db")).await.unwrap();
    }

    /// A database as the version before registrations left it (migrations
    /// 0001–0005), with a client that used one audience for sessions and
    /// another for a sealed token, and one that never used any; then opened
    /// by this version. The first keeps the default rule plus what it used;
    /// the second the default rule only; neither gets a scope.
    async fn legacy_clients_are_migrated(url: &str) {
        use sqlx::Executor;
        use tessera_server::config::Config;
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            "sqlite"
        } else {
            "postgres"
        };
        let old = tempfile::tempdir().unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if name.as_str() < "0006" {
                std::fs::copy(&path, old.path().join(&name)).unwrap();
            }
        }
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .unwrap();
        sqlx::migrate::Migrator::new(old.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        pool.execute(
            "INSERT INTO clients (id, name, secret_hash, grants, created_at) VALUES \
               ('cli_old', 'old', '', '[\"sessions\"]', 1), \
               ('cli_idle', 'idle', '', '[\"sessions\"]', 1); \
             INSERT INTO sessions (id, client_id, sub, org, roles, amr, audience, claims, \
               created_at, expires_at) VALUES \
               ('ses_1', 'cli_old', 'u', 'o', '[]', '[]', 'https://api.example.com', '{}', 1, 9), \
               ('ses_2', 'cli_old', 'u', 'o', '[]', '[]', 'https://api.example.com', '{}', 1, 9); \
             INSERT INTO sealed_tokens (hash, jti, kind, format, client_id, sub, audience, \
               issued_at, expires_at) VALUES \
               ('x', 'j', 'access_token', 'jwe', 'cli_old', 'u', 'https://records.example.com', 1, 9);",
        )
        .await
        .unwrap();
        pool.close().await;
        let store = keyed(SqlStore::open_url(url).await.unwrap());
        let old = store.client("cli_old").await.unwrap().unwrap();
        assert!(old.legacy);
        let mut used = old.registration.audiences.clone().unwrap();
        used.sort();
        assert_eq!(
            used,
            ["https://api.example.com", "https://records.example.com"]
        );
        assert!(old.registration.scopes.is_empty() && old.registration.may_act.is_empty());
        let idle = store.client("cli_idle").await.unwrap().unwrap();
        assert!(idle.legacy);
        assert!(idle
            .registration
            .audiences
            .clone()
            .unwrap_or_default()
            .is_empty());
        // The default rule still applies to them (for jws resources), and so
        // do the sealed audiences they had used.
        let config = Config::from_table(
            &r#"
[[resources]]
audience = "https://api.example.com"
[[resources]]
audience = "https://billing.example.com"
"#
            .parse()
            .unwrap(),
        )
        .unwrap();
        use tessera_server::policy::audience_allowed;
        assert!(audience_allowed(
            &config,
            &old,
            "https://billing.example.com"
        ));
        assert!(audience_allowed(
            &config,
            &old,
            "https://records.example.com"
        ));
        assert!(audience_allowed(
            &config,
            &idle,
            "https://billing.example.com"
        ));
        assert!(!audience_allowed(
            &config,
            &idle,
            "https://records.example.com"
        ));
        assert!(!audience_allowed(
            &config,
            &old,
            "https://elsewhere.example"
        ));
        // An explicit registration ends the legacy status.
        let explicit = Registration {
            audiences: Some(vec!["https://api.example.com".into()]),
            ..Registration::default()
        };
        assert!(store
            .update_registration("cli_old", &explicit)
            .await
            .unwrap());
        let old = store.client("cli_old").await.unwrap().unwrap();
        assert!(!old.legacy);
        assert!(!audience_allowed(
            &config,
            &old,
            "https://billing.example.com"
        ));
        store.close().await;
    }

    #[tokio::test]
    async fn legacy_clients_are_migrated_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        legacy_clients_are_migrated(&url).await;
    }

    #[tokio::test]
    async fn legacy_clients_are_migrated_on_postgres() {
        legacy_clients_are_migrated(&super::fresh_pg_database().await).await;
    }

    #[tokio::test]
    async fn postgres() {
        let url = super::fresh_pg_database().await;
        let store = keyed(SqlStore::open_url(&url).await.unwrap());
        suite(&store).await;
        one_winner(&store, 200).await;
        let cached = keyed(SqlStore::open_url(&url).await.unwrap())
            .cache_clients(std::time::Duration::from_secs(3600));
        dpop_replay(&store, &cached).await;
        client_cache(&cached, &store).await;
        let short = store
            .clone()
            .cache_clients(std::time::Duration::from_millis(200));
        client_cache_expires(&short, &store).await;
        store.close().await;
        SqlStore::open_url(&url).await.unwrap();
    }
}

/// Issue 24: a client that writes its whole request before reading the
/// answer (Python's `urllib`, many HTTP libraries) posts a 3 MB body. The
/// service answers 413 after 64 KiB; it must then keep reading (and
/// discarding) for a bounded while before closing, or the unread bytes make
/// the kernel reset the connection and the client sees `Broken pipe` or
/// `Connection reset` instead of the answer. Blocking sockets, as those
/// clients use; each endpoint that takes a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_large_body_sent_whole_before_reading_still_gets_the_413() {
    let r = running(RESOURCES).await;
    let addr = r.server.local_addr();
    let (auth_name, auth_value) = basic(&r.id, &r.secret);
    let cases = [
        ("/oauth2/token", "application/x-www-form-urlencoded", b'a'),
        ("/v1/sessions", "application/json", b' '),
        (
            "/oauth2/introspect",
            "application/x-www-form-urlencoded",
            b'a',
        ),
    ];
    for (path, content_type, filler) in cases {
        let auth = format!("{auth_name}: {auth_value}");
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(20)))
                .unwrap();
            stream
                .set_write_timeout(Some(std::time::Duration::from_secs(20)))
                .unwrap();
            let body = vec![filler; 3_000_000];
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
                 {auth}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let mut request = head.into_bytes();
            request.extend_from_slice(&body);
            // The whole request first, as urllib does …
            stream
                .write_all(&request)
                .map_err(|e| format!("{path}: writing the body: {e}"))?;
            // … then the answer.
            let mut raw = Vec::new();
            stream
                .read_to_end(&mut raw)
                .map_err(|e| format!("{path}: reading the answer: {e}"))?;
            Ok::<_, String>(String::from_utf8_lossy(&raw).into_owned())
        })
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        let (_, json) = answer.split_once("\r\n\r\n").unwrap();
        let json: Value = serde_json::from_str(json).unwrap();
        assert_eq!(json["error"], "invalid_request", "{path}");
        assert!(
            json["error_description"]
                .as_str()
                .unwrap()
                .contains("larger than"),
            "{path}: {json}"
        );
    }
    // The service is unharmed.
    assert_eq!(request(addr, "GET", "/healthz").await.status, 200);
}
