//! Attacks on the running service, over real HTTP on loopback: a token for
//! one resource used at another, refresh-token replay, client-assertion
//! replay, and forged tokens (`none`, public key as HMAC secret, hostile
//! `kid`, embedded keys) at introspection and at tessera-verify.

use std::net::SocketAddr;

use base64::Engine as _;
use serde_json::{json, Value};
use tessera_jose::b64;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::{Jwk, JwkSet, KeyFormat};
use tessera_jose::jws::{JwsHeader, ProtectedHeader, Signer};
use tessera_jose::jwt::{self, Claims, Clock, SystemClock};
use tessera_server::config::Config;
use tessera_server::{clients, Server};
use tessera_verify::{AuthError, Verifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::confusion::hostile_kids;

const API: &str = "https://api.example.com";
const BILLING: &str = "https://billing.example.com";
const MASTER: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
    /// The status line and headers, as received.
    pub(crate) head: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 POST with `Connection: close`.
pub(crate) async fn send(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Reply {
    send_method(addr, "POST", path, headers, body).await
}

/// One HTTP/1.1 request with `Connection: close`.
pub(crate) async fn send_method(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    Reply {
        status: head.split(' ').nth(1).unwrap().parse().unwrap(),
        body: body.to_owned(),
        head: head.to_owned(),
    }
}

pub(crate) fn basic(id: &str, secret: &str) -> (&'static str, String) {
    let raw = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    ("Authorization", format!("Basic {raw}"))
}

pub(crate) fn form() -> (&'static str, String) {
    ("Content-Type", "application/x-www-form-urlencoded".into())
}

struct Running {
    server: Server,
    issuer: String,
    id: String,
    secret: String,
    _dir: tempfile::TempDir,
}

/// A service signing ES256, with two resources that take plain JWS tokens.
async fn running() -> Running {
    hygiene::capture();
    hygiene::remember(MASTER);
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("tessera.toml");
    std::fs::write(
        &toml,
        format!(
            "data_dir = {:?}\n[signing]\nalg = \"ES256\"\n\
             [[resources]]\naudience = \"{API}\"\n[[resources]]\naudience = \"{BILLING}\"\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let config = Config::load(Some(&toml), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config, Some(MASTER)).await.unwrap();
    let issuer = format!("http://{}", server.local_addr());
    let grants = vec!["sessions".to_owned(), "client_credentials".to_owned()];
    let new = clients::create(server.store(), "backend", &grants, None, 0)
        .await
        .unwrap();
    hygiene::remember(&new.secret);
    Running {
        server,
        issuer,
        id: new.record.id.clone(),
        secret: new.secret.to_string(),
        _dir: dir,
    }
}

impl Running {
    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    async fn session(&self, audience: &str) -> Value {
        let body =
            json!({"sub": "user-1", "org": "acme", "roles": ["reader"], "audience": audience});
        let reply = send(
            self.addr(),
            "/v1/sessions",
            &[
                basic(&self.id, &self.secret),
                ("Content-Type", "application/json".into()),
            ],
            &body.to_string(),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        hygiene::remember_answer(&body);
        body
    }

    async fn verifier(&self, audience: &str) -> Verifier {
        Verifier::builder()
            .issuer(&self.issuer)
            .audience(audience)
            .algorithms([JwsAlgorithm::ES256])
            .build()
            .await
            .unwrap()
    }

    async fn introspect(&self, token: &str) -> Value {
        let reply = send(
            self.addr(),
            "/oauth2/introspect",
            &[basic(&self.id, &self.secret), form()],
            &format!("token={token}"),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    async fn refresh(&self, token: &str) -> Reply {
        let reply = send(
            self.addr(),
            "/oauth2/token",
            &[basic(&self.id, &self.secret), form()],
            &format!("grant_type=refresh_token&refresh_token={token}"),
        )
        .await;
        if reply.status == 200 {
            hygiene::remember_answer(&reply.json());
        }
        reply
    }
}

fn invalid_token(e: AuthError) -> &'static str {
    match e {
        AuthError::InvalidToken(why) => why,
        other => panic!("expected an invalid token, got {other:?}"),
    }
}

/// A token minted for the API, taken to the billing service (same issuer,
/// same keys): refused there as another audience's. So is the session
/// token (audience: the issuer) at either, and a token from another tessera
/// deployment that names the same audience.
#[tokio::test]
async fn cross_service_token_substitution_is_refused() {
    let r = running().await;
    let api = r.verifier(API).await;
    let billing = r.verifier(BILLING).await;
    let s = r.session(API).await;
    let access = s["access_token"].as_str().unwrap();
    assert!(api.verify::<Value>(access).is_ok());
    assert_eq!(
        invalid_token(billing.verify::<Value>(access).unwrap_err()),
        "the token is for another audience"
    );
    let session_token = s["session_token"].as_str().unwrap();
    for v in [&api, &billing] {
        assert!(v.verify::<Value>(session_token).is_err());
    }
    // Another deployment (its own keys, its own issuer), same audience name.
    let other = running().await;
    let foreign = other.session(API).await;
    assert_eq!(
        invalid_token(
            api.verify::<Value>(foreign["access_token"].as_str().unwrap())
                .unwrap_err()
        ),
        "the token names no key of the issuer"
    );
    other.server.shutdown().await;
    r.server.shutdown().await;
    hygiene::assert_clean();
}

/// A refresh token is single-use: presenting a used one is refused and
/// ends its whole family, so the thief's copy and the victim's newer token
/// both stop working, and the session's access tokens read as inactive.
#[tokio::test]
async fn refresh_token_replay_revokes_the_whole_family() {
    let r = running().await;
    let s = r.session(API).await;
    let first = s["refresh_token"].as_str().unwrap().to_owned();
    let rotated = r.refresh(&first).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let second = rotated.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    // The attacker replays the first token.
    let replay = r.refresh(&first).await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.json()["error"], "invalid_grant");
    // The family is gone: the newest token no longer works either.
    let after = r.refresh(&second).await;
    assert_eq!(after.status, 400);
    assert_eq!(after.json()["error"], "invalid_grant");
    assert_eq!(
        r.introspect(s["access_token"].as_str().unwrap()).await["active"],
        false
    );
    // A made-up refresh token, and one with a byte changed, are refused alike.
    let mut altered = second.clone().into_bytes();
    altered[0] = if altered[0] == b'A' { b'B' } else { b'A' };
    for bogus in [String::from_utf8(altered).unwrap(), "A".repeat(43)] {
        let reply = r.refresh(&bogus).await;
        assert_eq!(
            (reply.status, reply.json()["error"].clone()),
            (400, json!("invalid_grant"))
        );
    }
    r.server.shutdown().await;
    hygiene::assert_clean();
}

/// A `private_key_jwt` client assertion (RFC 7523) is accepted once: the
/// same assertion again, or a new assertion reusing its `jti`, is refused.
#[tokio::test]
async fn client_assertion_jti_replay_is_refused() {
    let r = running().await;
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
    let id = client.record.id.clone();
    let now = SystemClock.now();
    let token_endpoint = format!("{}/oauth2/token", r.issuer);
    let assertion = |jti: &str, exp: i64| {
        let claims = Claims::new(json!({}))
            .issuer(&id)
            .subject(&id)
            .audience(&token_endpoint)
            .issued_at(now)
            .expires_at(exp)
            .jwt_id(jti);
        jwt::sign(
            &Signer::new(&key, JwsAlgorithm::ES256).unwrap(),
            &JwsHeader::new(),
            &claims,
        )
        .unwrap()
    };
    let post = |a: String| {
        let body = format!(
            "grant_type=client_credentials&audience={API}&client_id={id}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={a}"
        );
        let addr = r.addr();
        async move { send(addr, "/oauth2/token", &[form()], &body).await }
    };
    let first = assertion("jti-1", now + 60);
    let ok = post(first.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    hygiene::remember(&first);
    hygiene::remember_answer(&ok.json());
    let replay = post(first).await;
    assert_eq!(
        (replay.status, replay.json()["error"].clone()),
        (401, json!("invalid_client"))
    );
    // Re-signed with a new expiry, the same jti: still a replay.
    let resigned = post(assertion("jti-1", now + 90)).await;
    assert_eq!(resigned.status, 401);
    // A fresh jti is fine.
    assert_eq!(post(assertion("jti-2", now + 60)).await.status, 200);
    r.server.shutdown().await;
    hygiene::assert_clean();
}

/// Forged access tokens, each built the way a known attack builds it, are
/// inactive at introspection (a 200 with `active: false`, never a 5xx) and
/// refused by tessera-verify: `alg: none`, HS256 keyed with the service's
/// own public key (JWK, PEM, DER), a hostile `kid`, and the attacker's key
/// embedded in `jwk` or pointed to by `jku`/`x5u`.
#[tokio::test]
async fn forged_tokens_are_inactive_at_introspection_and_refused_by_verify() {
    let r = running().await;
    let api = r.verifier(API).await;
    let s = r.session(API).await;
    let real = s["access_token"].as_str().unwrap();
    let (_, payload_and_sig) = real.split_once('.').unwrap();
    let (payload, _) = payload_and_sig.split_once('.').unwrap();
    let claims = String::from_utf8(b64::decode(payload, "p").unwrap()).unwrap();
    let set = api_jwks(&r).await;
    let public = set.keys().first().unwrap().clone();
    let kid = public.kid().unwrap().to_owned();

    let mut forged: Vec<(String, String)> = Vec::new();
    for alg in ["none", "None", "NONE"] {
        let header = b64::encode(json!({"alg": alg, "typ": "at+jwt", "kid": kid}).to_string());
        forged.push((format!("alg {alg}"), format!("{header}.{payload}.")));
    }
    let secrets = [
        ("JWK", public.to_json().into_bytes()),
        (
            "PEM",
            public.to_pem(KeyFormat::Spki).unwrap().as_bytes().to_vec(),
        ),
        ("DER", public.to_der(KeyFormat::Spki).unwrap().to_vec()),
    ];
    for (form_name, secret) in &secrets {
        let key = Jwk::from_secret(secret).unwrap();
        let protected = ProtectedHeader::from_json(
            json!({"alg": "HS256", "typ": "at+jwt", "kid": kid})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let token = Signer::new(&key, JwsAlgorithm::HS256)
            .unwrap()
            .sign_compact_with(&protected, claims.as_bytes())
            .unwrap();
        forged.push((format!("HS256 keyed with the {form_name}"), token));
    }
    let attacker = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
    let signer = Signer::new(&attacker, JwsAlgorithm::ES256).unwrap();
    for hostile in hostile_kids() {
        let token = signer
            .sign_compact(
                &JwsHeader::new().typ("at+jwt").kid(&hostile),
                claims.as_bytes(),
            )
            .unwrap();
        forged.push((format!("kid {hostile:.40?}"), token));
    }
    let attacker_public: Value =
        serde_json::from_str(&attacker.to_public().unwrap().to_json()).unwrap();
    for (name, value) in [
        ("jwk", attacker_public),
        ("jku", json!("http://127.0.0.1:9/jwks.json")),
        ("x5u", json!("http://127.0.0.1:9/cert.pem")),
    ] {
        let header = JwsHeader::new()
            .typ("at+jwt")
            .kid(&kid)
            .param(name, value)
            .unwrap();
        forged.push((
            format!("embedded {name}"),
            signer.sign_compact(&header, claims.as_bytes()).unwrap(),
        ));
    }
    assert!(forged.len() > 25);
    for (what, token) in &forged {
        assert_eq!(
            r.introspect(token).await,
            json!({"active": false}),
            "{what}"
        );
        assert!(api.verify::<Value>(token).is_err(), "{what}");
    }
    // And the real token, for contrast, is active and accepted.
    assert_eq!(r.introspect(real).await["active"], true);
    assert!(api.verify::<Value>(real).is_ok());
    r.server.shutdown().await;
    hygiene::assert_clean();
}

/// The service's published key set, fetched with a GET.
async fn api_jwks(r: &Running) -> JwkSet {
    let mut stream = tokio::net::TcpStream::connect(r.addr()).await.unwrap();
    let req = format!(
        "GET /.well-known/jwks.json HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        r.addr()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    JwkSet::from_json(body.as_bytes()).unwrap()
}

/// Secrets hygiene: every log line the services of these tests write (all
/// levels, every crate) is captured, and every secret the tests see (client
/// secrets, access and session tokens, refresh tokens, the master key) is
/// remembered; each test ends by searching the whole log for all of them.
pub(crate) mod hygiene {
    use std::sync::{Arc, Mutex, OnceLock};

    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Installs the capturing subscriber (once per test binary).
    pub fn capture() {
        LOG.get_or_init(|| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let writer = buf.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || Capture(writer.clone()))
                .try_init()
                .expect("the only subscriber of this test binary");
            buf
        });
    }

    pub fn remember(secret: &str) {
        assert!(secret.len() >= 16, "not a secret: {secret:?}");
        SECRETS.lock().unwrap().push(secret.to_owned());
    }

    /// Remembers every token-like member of an answer.
    pub fn remember_answer(body: &serde_json::Value) {
        for name in [
            "access_token",
            "session_token",
            "refresh_token",
            "assertion",
        ] {
            if let Some(t) = body[name].as_str() {
                remember(t);
            }
        }
    }

    /// Searches everything logged so far for every secret seen so far.
    pub fn assert_clean() {
        let log = LOG.get().expect("capture() first").lock().unwrap().clone();
        let log = String::from_utf8_lossy(&log);
        assert!(log.contains("tessera is listening"), "the log was captured");
        for secret in SECRETS.lock().unwrap().iter() {
            assert!(
                !log.contains(secret.as_str()),
                "a secret is in the log: {}…",
                &secret[..8]
            );
        }
        let secrets = SECRETS.lock().unwrap().len();
        eprintln!(
            "hygiene: {} log lines, {secrets} secrets: none found",
            log.lines().count()
        );
        for marker in ["PRIVATE KEY", "\"d\":\"", "\"k\":\""] {
            assert!(!log.contains(marker), "{marker} in the log");
        }
    }
}
