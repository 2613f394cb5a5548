//! DPoP (RFC 9449) at the service: proofs at `/oauth2/token` and
//! `POST /v1/sessions`, every refusal as its own case, server nonces,
//! bound tokens (`cnf.jkt`, `token_type: DPoP`) in every format, and the
//! mobile app of the seeds — a public client refreshing, with its key, a
//! session its backend minted for it.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use base64::Engine as _;
use serde_json::{json, Value};
use tessera_jose::b64;
use tessera_jose::jwa::{EcCurve, JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwe::Decrypter;
use tessera_jose::jwk::{Jwk, JwkSet, KeyUse};
use tessera_jose::jws::{JwsHeader, Signer, Verifier};
use tessera_jose::jwt::{self, Clock, SystemClock, Validation};
use tessera_server::clients;
use tessera_server::config::Config;
use tessera_server::store::Registration;
use tessera_server::Server;
use tessera_verify::dpop::{self, NewProof};

mod common;
use common::{request, send, Reply};

const ISSUER: &str = "https://auth.example.com";
const TOKEN_URL: &str = "https://auth.example.com/oauth2/token";
const SESSIONS_URL: &str = "https://auth.example.com/v1/sessions";
const API: &str = "https://api.example.com";
const BOUND_API: &str = "https://bound.example.com";
const RECORDS: &str = "https://records.example.com";

struct Running {
    server: Server,
    /// The backend: sessions, client_credentials, token exchange.
    backend: (String, String),
    /// The mobile app: a public client.
    app: String,
    /// The resource server key of `RECORDS` (private).
    records: Jwk,
    _dir: tempfile::TempDir,
}

async fn running(extra: &str) -> Running {
    running_on(extra, None).await
}

async fn running_on(extra: &str, database_url: Option<&str>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let records = Jwk::generate_ec(EcCurve::P256)
        .unwrap()
        .with_kid("records-enc-1")
        .with_use(KeyUse::Encryption)
        .unwrap();
    let records_file = dir.path().join("records.jwk");
    std::fs::write(&records_file, records.to_public().unwrap().to_json()).unwrap();
    let path = dir.path().join("tessera.toml");
    let db = database_url
        .map(|u| format!("database_url = {u:?}\n"))
        .unwrap_or_default();
    std::fs::write(
        &path,
        format!(
            r#"issuer = "{ISSUER}"
data_dir = {data:?}
{db}
[signing]
alg = "ES256"
[[resources]]
audience = "{API}"
[[resources]]
audience = "{BOUND_API}"
dpop = "required"
[[resources]]
audience = "{RECORDS}"
format = "jwe"
encryption_key = {records_file:?}
alg = "ECDH-ES+A256KW"
{extra}
"#,
            data = dir.path().join("data").display().to_string(),
            records_file = records_file.display().to_string(),
        ),
    )
    .unwrap();
    let config = Config::load(Some(&path), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config, Some(&"42".repeat(32))).await.unwrap();
    let everything = vec![API.to_owned(), BOUND_API.to_owned(), RECORDS.to_owned()];
    let grants: Vec<String> = ["sessions", "client_credentials", "token_exchange"]
        .map(str::to_owned)
        .to_vec();
    let backend = clients::create_with(
        server.store(),
        "backend",
        &grants,
        None,
        Registration {
            audiences: Some(everything.clone()),
            introspect: everything,
            ..Default::default()
        },
        0,
    )
    .await
    .unwrap();
    let app = clients::create_public(
        server.store(),
        "app",
        &["refresh_token".to_owned()],
        Registration {
            audiences: Some(vec![API.to_owned()]),
            // The backend mints the sessions the app holds.
            may_act: vec![backend.record.id.clone()],
            ..Default::default()
        },
        0,
    )
    .await
    .unwrap();
    Running {
        server,
        backend: (backend.record.id.clone(), backend.secret.to_string()),
        app: app.record.id.clone(),
        records,
        _dir: dir,
    }
}

fn basic(id: &str, secret: &str) -> (&'static str, String) {
    (
        "Authorization",
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        ),
    )
}

fn form_type() -> (&'static str, String) {
    (
        "Content-Type",
        "application/x-www-form-urlencoded".to_owned(),
    )
}

fn json_type() -> (&'static str, String) {
    ("Content-Type", "application/json".to_owned())
}

fn now() -> i64 {
    SystemClock.now()
}

fn es256() -> Jwk {
    Jwk::generate_for(JwsAlgorithm::ES256).unwrap()
}

fn fresh_jti() -> String {
    tessera_server::crypto::random_token(12)
        .unwrap()
        .to_string()
}

/// A proof as a client makes one: `POST url`, a fresh jti, iat now.
fn proof(key: &Jwk, url: &str) -> String {
    proof_with(key, "POST", url, now(), None)
}

fn proof_with(key: &Jwk, method: &str, url: &str, iat: i64, nonce: Option<&str>) -> String {
    dpop::sign(
        key,
        JwsAlgorithm::ES256,
        &NewProof {
            method,
            url,
            jti: &fresh_jti(),
            iat,
            access_token: None,
            nonce,
        },
    )
    .unwrap()
}

fn public_jwk(key: &Jwk) -> Value {
    let mut v: Value = serde_json::from_str(&key.to_public().unwrap().to_json()).unwrap();
    if let Value::Object(m) = &mut v {
        for k in ["kid", "use", "key_ops", "alg"] {
            m.remove(k);
        }
    }
    v
}

fn claims_now() -> Value {
    json!({"jti": fresh_jti(), "htm": "POST", "htu": TOKEN_URL, "iat": now()})
}

/// A proof with this header (but `alg`) and claims, signed by `key`.
fn craft(key: &Jwk, header: Value, claims: Value) -> String {
    let mut h = JwsHeader::new();
    for (name, value) in header.as_object().unwrap() {
        if name != "alg" {
            h = h.param(name, value.clone()).unwrap();
        }
    }
    Signer::new(key, JwsAlgorithm::ES256)
        .unwrap()
        .sign_compact(&h, &serde_json::to_vec(&claims).unwrap())
        .unwrap()
}

/// A proof with exactly this header and a signature that signs nothing.
fn unsigned(header: Value, claims: Value) -> String {
    format!(
        "{}.{}.{}",
        b64::encode(serde_json::to_vec(&header).unwrap()),
        b64::encode(serde_json::to_vec(&claims).unwrap()),
        b64::encode([7u8; 64])
    )
}

impl Running {
    fn addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// `client_credentials` for `audience` by the backend, with these DPoP
    /// headers (name, value).
    async fn client_token(&self, audience: &str, dpop: &[(&'static str, String)]) -> Reply {
        let mut headers = vec![basic(&self.backend.0, &self.backend.1), form_type()];
        headers.extend(dpop.iter().cloned());
        send(
            self.addr(),
            "POST",
            "/oauth2/token",
            &headers,
            &format!("grant_type=client_credentials&audience={audience}"),
        )
        .await
    }

    /// A session minted by the backend: `extra` JSON members added.
    async fn session(&self, extra: Value, dpop: Option<String>) -> Reply {
        let mut body = json!({"sub": "user-1", "org": "acme", "audience": API});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let mut headers = vec![basic(&self.backend.0, &self.backend.1), json_type()];
        if let Some(p) = dpop {
            headers.push(("DPoP", p));
        }
        send(
            self.addr(),
            "POST",
            "/v1/sessions",
            &headers,
            &body.to_string(),
        )
        .await
    }

    /// The app refreshes `token` with a proof by `key` (none: no proof).
    async fn app_refresh(&self, token: &str, key: Option<&Jwk>) -> Reply {
        let mut headers = vec![form_type()];
        if let Some(k) = key {
            headers.push(("DPoP", proof(k, TOKEN_URL)));
        }
        send(
            self.addr(),
            "POST",
            "/oauth2/token",
            &headers,
            &format!(
                "grant_type=refresh_token&client_id={}&refresh_token={token}",
                self.app
            ),
        )
        .await
    }

    async fn introspect(&self, token: &str) -> Value {
        send(
            self.addr(),
            "POST",
            "/oauth2/introspect",
            &[basic(&self.backend.0, &self.backend.1), form_type()],
            &format!("token={token}"),
        )
        .await
        .json()
    }

    async fn verifier(&self) -> Verifier {
        let jwks = request(self.addr(), "GET", "/.well-known/jwks.json").await;
        let set = JwkSet::from_json(jwks.body.as_bytes()).unwrap();
        Verifier::builder()
            .jwk_set(&set, &[JwsAlgorithm::ES256])
            .unwrap()
            .build()
            .unwrap()
    }

    /// The claims of one of our JWS access tokens for `audience`.
    async fn claims(&self, token: &str, audience: &str) -> Value {
        let v = self.verifier().await;
        let validation = Validation::new()
            .issuer(ISSUER)
            .audience(audience)
            .typ("at+jwt");
        let verified = jwt::verify::<Value>(token, &v, &validation, &SystemClock).unwrap();
        verified.claims().custom.clone()
    }
}

fn error_of(r: &Reply) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn client_credentials_with_a_proof_are_bound_and_say_dpop() {
    let r = running("").await;
    let key = es256();
    let reply = r
        .client_token(API, &[("DPoP", proof(&key, TOKEN_URL))])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let b = reply.json();
    assert_eq!(b["token_type"], "DPoP");
    let at = b["access_token"].as_str().unwrap();
    let claims = r.claims(at, API).await;
    assert_eq!(claims["cnf"], json!({"jkt": key.thumbprint()}));
    let i = r.introspect(at).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "DPoP");
    assert_eq!(i["cnf"]["jkt"], key.thumbprint());
    assert!(
        !reply.headers.contains("dpop-nonce"),
        "no nonce without [dpop] require_nonce"
    );

    // Without a proof: a Bearer token, as before.
    let plain = r.client_token(API, &[]).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.json()["token_type"], "Bearer");
    let claims = r
        .claims(plain.json()["access_token"].as_str().unwrap(), API)
        .await;
    assert!(claims.get("cnf").is_none());

    // Metadata names the algorithms.
    let meta = request(r.addr(), "GET", "/.well-known/oauth-authorization-server").await;
    assert_eq!(
        meta.json()["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA", "PS256", "RS256"])
    );
    r.server.shutdown().await;
}

#[tokio::test]
async fn every_refused_proof_is_its_own_case() {
    let r = running("").await;
    let key = es256();
    let jwk = public_jwk(&key);
    let header = || json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(&key)});
    let t = now();
    let mut private = serde_json::from_str::<Value>(&key.to_private_json()).unwrap();
    private.as_object_mut().unwrap().remove("kid");
    let good = proof(&key, TOKEN_URL);
    let (h, p, s) = {
        let mut parts = good.split('.');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let mut sig = b64::decode(&s, "sig").unwrap();
    sig[0] ^= 1;
    let cases: Vec<(&str, Vec<(&'static str, String)>)> = vec![
        (
            "wrong htm",
            vec![("DPoP", proof_with(&key, "GET", TOKEN_URL, t, None))],
        ),
        (
            "htu: another path",
            vec![(
                "DPoP",
                proof(&key, "https://auth.example.com/oauth2/introspect"),
            )],
        ),
        (
            "htu: another host",
            vec![("DPoP", proof(&key, "https://evil.example.com/oauth2/token"))],
        ),
        (
            "htu: the address the request went to (Host), not the issuer",
            vec![(
                "DPoP",
                proof(&key, &format!("http://{}/oauth2/token", r.addr())),
            )],
        ),
        (
            "iat an hour ago",
            vec![("DPoP", proof_with(&key, "POST", TOKEN_URL, t - 3600, None))],
        ),
        (
            "iat past max_age",
            vec![("DPoP", proof_with(&key, "POST", TOKEN_URL, t - 61, None))],
        ),
        (
            "iat an hour ahead",
            vec![("DPoP", proof_with(&key, "POST", TOKEN_URL, t + 3600, None))],
        ),
        (
            "iat 11 s ahead",
            vec![("DPoP", proof_with(&key, "POST", TOKEN_URL, t + 11, None))],
        ),
        (
            "alg none",
            vec![(
                "DPoP",
                unsigned(
                    json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}),
                    claims_now(),
                ),
            )],
        ),
        (
            "HS256",
            vec![(
                "DPoP",
                unsigned(
                    json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}),
                    claims_now(),
                ),
            )],
        ),
        (
            "typ missing",
            vec![(
                "DPoP",
                craft(&key, json!({"jwk": public_jwk(&key)}), claims_now()),
            )],
        ),
        (
            "typ JWT",
            vec![(
                "DPoP",
                craft(
                    &key,
                    json!({"typ": "JWT", "jwk": public_jwk(&key)}),
                    claims_now(),
                ),
            )],
        ),
        (
            "jwk missing",
            vec![(
                "DPoP",
                craft(&key, json!({"typ": "dpop+jwt"}), claims_now()),
            )],
        ),
        (
            "private key in jwk",
            vec![(
                "DPoP",
                craft(
                    &key,
                    json!({"typ": "dpop+jwt", "jwk": private}),
                    claims_now(),
                ),
            )],
        ),
        (
            "signed by another key",
            vec![("DPoP", craft(&es256(), header(), claims_now()))],
        ),
        (
            "altered signature",
            vec![("DPoP", format!("{h}.{p}.{}", b64::encode(&sig)))],
        ),
        (
            "jti missing",
            vec![(
                "DPoP",
                craft(
                    &key,
                    header(),
                    json!({"htm": "POST", "htu": TOKEN_URL, "iat": t}),
                ),
            )],
        ),
        (
            "htm missing",
            vec![(
                "DPoP",
                craft(
                    &key,
                    header(),
                    json!({"jti": fresh_jti(), "htu": TOKEN_URL, "iat": t}),
                ),
            )],
        ),
        (
            "htu missing",
            vec![(
                "DPoP",
                craft(
                    &key,
                    header(),
                    json!({"jti": fresh_jti(), "htm": "POST", "iat": t}),
                ),
            )],
        ),
        (
            "iat missing",
            vec![(
                "DPoP",
                craft(
                    &key,
                    header(),
                    json!({"jti": fresh_jti(), "htm": "POST", "htu": TOKEN_URL}),
                ),
            )],
        ),
        (
            "two DPoP headers",
            vec![
                ("DPoP", proof(&key, TOKEN_URL)),
                ("DPoP", proof(&key, TOKEN_URL)),
            ],
        ),
        (
            "oversized",
            vec![("DPoP", "a".repeat(dpop::MAX_PROOF_BYTES + 1))],
        ),
        ("not a JWS", vec![("DPoP", "not-a-proof".to_owned())]),
    ];
    for (name, headers) in &cases {
        let reply = r.client_token(API, headers).await;
        assert_eq!(reply.status, 400, "{name}: {}", reply.body);
        assert_eq!(
            error_of(&reply),
            "invalid_dpop_proof",
            "{name}: {}",
            reply.body
        );
        assert!(
            reply.json()["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{name}"
        );
    }

    // Replayed: the same proof twice.
    let once = proof(&key, TOKEN_URL);
    let first = r.client_token(API, &[("DPoP", once.clone())]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = r.client_token(API, &[("DPoP", once)]).await;
    assert_eq!(
        (again.status, error_of(&again)),
        (400, "invalid_dpop_proof".into())
    );
    assert!(again.body.contains("already used"), "{}", again.body);

    // A proof refused for another reason is not used up: a request that
    // fails on its own (an audience not registered) leaves it good.
    let kept = proof(&key, TOKEN_URL);
    let refused = r
        .client_token(
            "https://unregistered.example.com",
            &[("DPoP", kept.clone())],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(r.client_token(API, &[("DPoP", kept)]).await.status, 200);

    // Accepted: the header name in any case, htu with a query or fragment
    // or an upper-case scheme and host, extra claims, iat 10 s ahead.
    let accepted: Vec<(&str, (&'static str, String))> = vec![
        ("lower-case header name", ("dpop", proof(&key, TOKEN_URL))),
        ("upper-case header name", ("DPOP", proof(&key, TOKEN_URL))),
        (
            "htu with a query",
            ("DPoP", proof(&key, &format!("{TOKEN_URL}?a=b"))),
        ),
        (
            "htu with a fragment",
            ("DPoP", proof(&key, &format!("{TOKEN_URL}#x"))),
        ),
        (
            "upper-case scheme and host",
            ("DPoP", proof(&key, "HTTPS://AUTH.EXAMPLE.COM/oauth2/token")),
        ),
        (
            "default port",
            (
                "DPoP",
                proof(&key, "https://auth.example.com:443/oauth2/token"),
            ),
        ),
        (
            "extra claims",
            (
                "DPoP",
                craft(
                    &key,
                    header(),
                    json!({"jti": fresh_jti(), "htm": "POST", "htu": TOKEN_URL, "iat": now(),
                           "extra": {"x": 1}}),
                ),
            ),
        ),
        (
            "iat 10 s ahead",
            ("DPoP", proof_with(&key, "POST", TOKEN_URL, now() + 9, None)),
        ),
    ];
    for (name, header) in accepted {
        let reply = r.client_token(API, &[header]).await;
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        assert_eq!(reply.json()["token_type"], "DPoP", "{name}");
    }
    r.server.shutdown().await;
}

#[tokio::test]
async fn the_mobile_app_refreshes_with_its_key_and_a_dumped_token_gets_nothing() {
    let r = running("").await;
    let device = es256();
    let jkt = device.thumbprint();

    // The holder must be a public client, and needs a key to bind to.
    let no_key = r.session(json!({"holder": r.app}), None).await;
    assert_eq!(
        (no_key.status, error_of(&no_key)),
        (400, "invalid_request".into())
    );
    let not_public = r
        .session(json!({"holder": r.backend.0, "dpop_jkt": jkt}), None)
        .await;
    assert_eq!(not_public.status, 400, "{}", not_public.body);
    let bad_jkt = r.session(json!({"dpop_jkt": "short"}), None).await;
    assert_eq!(bad_jkt.status, 400);
    // A backend the app did not name (its may_act) cannot mint for it.
    let other = clients::create_with(
        r.server.store(),
        "other backend",
        &["sessions".to_owned()],
        None,
        Registration {
            audiences: Some(vec![API.to_owned()]),
            ..Default::default()
        },
        0,
    )
    .await
    .unwrap();
    let foreign = send(
        r.addr(),
        "POST",
        "/v1/sessions",
        &[basic(&other.record.id, &other.secret), json_type()],
        &json!({"sub": "user-1", "org": "acme", "audience": API, "holder": r.app,
                "dpop_jkt": jkt})
        .to_string(),
    )
    .await;
    assert_eq!(
        (foreign.status, error_of(&foreign)),
        (400, "invalid_request".into())
    );
    // An audience the app is not registered for is refused too.
    let wider = r
        .session(
            json!({"holder": r.app, "dpop_jkt": jkt, "audience": RECORDS}),
            None,
        )
        .await;
    assert_eq!(
        (wider.status, error_of(&wider)),
        (400, "invalid_target".into())
    );

    // The backend mints the session for the app, bound to the device's key.
    let minted = r
        .session(json!({"holder": r.app, "dpop_jkt": jkt}), None)
        .await;
    assert_eq!(minted.status, 200, "{}", minted.body);
    let m = minted.json();
    assert_eq!(m["token_type"], "DPoP");
    let claims = r.claims(m["access_token"].as_str().unwrap(), API).await;
    assert_eq!(claims["cnf"]["jkt"], jkt);
    assert_eq!(
        claims["client_id"], r.app,
        "issued to the app that holds it"
    );
    let rt = m["refresh_token"].as_str().unwrap().to_owned();

    // The backend cannot refresh what the app holds.
    let by_backend = send(
        r.addr(),
        "POST",
        "/oauth2/token",
        &[basic(&r.backend.0, &r.backend.1), form_type()],
        &format!("grant_type=refresh_token&refresh_token={rt}"),
    )
    .await;
    assert_eq!(
        error_of(&by_backend),
        "invalid_grant",
        "{}",
        by_backend.body
    );

    // A dumped token: without a proof, or with the thief's key, nothing —
    // and the token stays good for the device.
    let bare = r.app_refresh(&rt, None).await;
    assert_eq!(
        (bare.status, error_of(&bare)),
        (400, "invalid_grant".into()),
        "{}",
        bare.body
    );
    let thief = r.app_refresh(&rt, Some(&es256())).await;
    assert_eq!(
        (thief.status, error_of(&thief)),
        (400, "invalid_grant".into()),
        "{}",
        thief.body
    );

    // The operator hears of it: one audit event per refused attempt, naming
    // the token only by its HMAC, and the keys by their thumbprints.
    use tessera_server::store::Store as _;
    let events = r.server.store().audit_events(0, 1000).await.unwrap();
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.action == "refresh.dpop_refused")
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "{:?}",
        events.iter().map(|e| &e.action).collect::<Vec<_>>()
    );
    assert_eq!(refused[0].target, m["session_id"].as_str().unwrap());
    assert!(refused[1].details.contains(&jkt), "{}", refused[1].details);
    assert!(!refused[1].details.contains(&rt), "never the token itself");

    // The device refreshes with its key: bound again, rotated.
    let refreshed = r.app_refresh(&rt, Some(&device)).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let f = refreshed.json();
    assert_eq!(f["token_type"], "DPoP");
    let claims = r.claims(f["access_token"].as_str().unwrap(), API).await;
    assert_eq!(claims["cnf"]["jkt"], jkt);
    let rt2 = f["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt2, rt);
    // The rotated token keeps the binding.
    let thief = r.app_refresh(&rt2, Some(&es256())).await;
    assert_eq!(error_of(&thief), "invalid_grant");

    // A public client may do nothing else.
    let cc = send(
        r.addr(),
        "POST",
        "/oauth2/token",
        &[form_type(), ("DPoP", proof(&device, TOKEN_URL))],
        &format!("grant_type=client_credentials&client_id={}", r.app),
    )
    .await;
    assert_eq!(error_of(&cc), "unauthorized_client", "{}", cc.body);
    let intro = send(
        r.addr(),
        "POST",
        "/oauth2/introspect",
        &[form_type()],
        &format!("client_id={}&token={rt2}", r.app),
    )
    .await;
    assert_eq!(intro.status, 401, "{}", intro.body);

    // The app ends what it holds (RFC 7009, client_id only): a session of
    // its own, minted for the purpose, ends with its refresh token.
    let other_session = r
        .session(json!({"holder": r.app, "dpop_jkt": jkt}), None)
        .await;
    let other_rt = other_session.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another backend presenting it: RFC 7009's silent 200, nothing ends.
    let foreign = send(
        r.addr(),
        "POST",
        "/oauth2/revoke",
        &[basic(&other.record.id, &other.secret), form_type()],
        &format!("token={other_rt}"),
    )
    .await;
    assert_eq!(foreign.status, 200, "{}", foreign.body);
    let still = r.app_refresh(&other_rt, Some(&device)).await;
    assert_eq!(
        still.status, 200,
        "a stranger's revocation ended nothing: {}",
        still.body
    );
    let other_rt = still.json()["refresh_token"].as_str().unwrap().to_owned();
    let revoked = send(
        r.addr(),
        "POST",
        "/oauth2/revoke",
        &[form_type()],
        &format!("client_id={}&token={other_rt}", r.app),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let after_revoke = r.app_refresh(&other_rt, Some(&device)).await;
    assert_eq!(error_of(&after_revoke), "invalid_grant");

    // Reuse detection still revokes the family: the old token, even with
    // the right key, ends it, and the current one with it.
    let reused = r.app_refresh(&rt, Some(&device)).await;
    assert_eq!(error_of(&reused), "invalid_grant");
    let after = r.app_refresh(&rt2, Some(&device)).await;
    assert_eq!(error_of(&after), "invalid_grant", "{}", after.body);
    r.server.shutdown().await;
}

#[tokio::test]
async fn a_session_proof_binds_the_session_and_must_match_dpop_jkt() {
    let r = running("").await;
    let key = es256();
    // A proof of the backend's own key binds the session to it.
    let bound = r.session(json!({}), Some(proof(&key, SESSIONS_URL))).await;
    assert_eq!(bound.status, 200, "{}", bound.body);
    assert_eq!(bound.json()["token_type"], "DPoP");
    let claims = r
        .claims(bound.json()["access_token"].as_str().unwrap(), API)
        .await;
    assert_eq!(claims["cnf"]["jkt"], key.thumbprint());
    // A proof for the token endpoint is not one for the sessions endpoint.
    let wrong = r.session(json!({}), Some(proof(&key, TOKEN_URL))).await;
    assert_eq!(error_of(&wrong), "invalid_dpop_proof");
    // A proof by another key than dpop_jkt names.
    let other = es256();
    let mismatch = r
        .session(
            json!({"dpop_jkt": other.thumbprint()}),
            Some(proof(&key, SESSIONS_URL)),
        )
        .await;
    assert_eq!(
        (mismatch.status, error_of(&mismatch)),
        (400, "invalid_dpop_proof".into())
    );

    // The backend refreshes its bound session only with that key.
    let rt = bound.json()["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |k: Option<Jwk>, token: String| {
        let r = &r;
        async move {
            let mut headers = vec![basic(&r.backend.0, &r.backend.1), form_type()];
            if let Some(k) = k {
                headers.push(("DPoP", proof(&k, TOKEN_URL)));
            }
            send(
                r.addr(),
                "POST",
                "/oauth2/token",
                &headers,
                &format!("grant_type=refresh_token&refresh_token={token}"),
            )
            .await
        }
    };
    assert_eq!(error_of(&refresh(None, rt.clone()).await), "invalid_grant");
    assert_eq!(
        error_of(&refresh(Some(other), rt.clone()).await),
        "invalid_grant"
    );
    let ok = refresh(Some(key.clone()), rt).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["token_type"], "DPoP");

    // An unbound session of a confidential client: a refresh with a proof
    // gets a bound access token, one without a Bearer token (RFC 9449 §5).
    let plain = r.session(json!({}), None).await;
    assert_eq!(plain.json()["token_type"], "Bearer");
    let rt = plain.json()["refresh_token"].as_str().unwrap().to_owned();
    let with = refresh(Some(key.clone()), rt).await;
    assert_eq!(with.json()["token_type"], "DPoP", "{}", with.body);
    let rt = with.json()["refresh_token"].as_str().unwrap().to_owned();
    let without = refresh(None, rt).await;
    assert_eq!(without.json()["token_type"], "Bearer", "{}", without.body);
    r.server.shutdown().await;
}

#[tokio::test]
async fn required_by_the_resource_or_the_client() {
    let r = running("").await;
    let key = es256();
    let bare = r.client_token(BOUND_API, &[]).await;
    assert_eq!(
        (bare.status, error_of(&bare)),
        (400, "invalid_dpop_proof".into())
    );
    let bound = r
        .client_token(BOUND_API, &[("DPoP", proof(&key, TOKEN_URL))])
        .await;
    assert_eq!(bound.json()["token_type"], "DPoP", "{}", bound.body);
    let session = r.session(json!({"audience": BOUND_API}), None).await;
    assert_eq!(error_of(&session), "invalid_dpop_proof", "{}", session.body);

    // A client registered --dpop required gets no unbound token anywhere.
    let strict = clients::create_with(
        r.server.store(),
        "strict",
        &["client_credentials".to_owned()],
        None,
        Registration {
            audiences: Some(vec![API.to_owned()]),
            dpop_required: true,
            ..Default::default()
        },
        0,
    )
    .await
    .unwrap();
    let ask = |dpop: Option<String>| {
        let mut headers = vec![basic(&strict.record.id, &strict.secret), form_type()];
        if let Some(p) = dpop {
            headers.push(("DPoP", p));
        }
        let addr = r.addr();
        async move {
            send(
                addr,
                "POST",
                "/oauth2/token",
                &headers,
                "grant_type=client_credentials",
            )
            .await
        }
    };
    assert_eq!(error_of(&ask(None).await), "invalid_dpop_proof");
    assert_eq!(
        ask(Some(proof(&key, TOKEN_URL))).await.json()["token_type"],
        "DPoP"
    );
    r.server.shutdown().await;
}

#[tokio::test]
async fn sealed_tokens_carry_cnf_inside_and_introspection_reports_it() {
    let r = running("").await;
    let key = es256();
    let reply = r
        .client_token(RECORDS, &[("DPoP", proof(&key, TOKEN_URL))])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["token_type"], "DPoP");
    let token = reply.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 5, "a JWE");
    let decrypter = Decrypter::builder()
        .key(
            &r.records,
            &[(JweAlgorithm::ECDH_ES_A256KW, JweEncryption::A256GCM)],
        )
        .unwrap()
        .build()
        .unwrap();
    let validation = Validation::new()
        .issuer(ISSUER)
        .audience(RECORDS)
        .typ("at+jwt");
    let opened = jwt::decrypt_and_verify::<Value>(
        &token,
        &decrypter,
        &r.verifier().await,
        &validation,
        &SystemClock,
    )
    .unwrap();
    assert_eq!(opened.jwt().claims().custom["cnf"]["jkt"], key.thumbprint());
    let i = r.introspect(&token).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["token_type"], "DPoP");
    assert_eq!(i["cnf"]["jkt"], key.thumbprint());

    // Token exchange: a bound subject token is exchanged only with a proof
    // by its key; the sealed result is bound to it.
    let session = r.session(json!({}), Some(proof(&key, SESSIONS_URL))).await;
    let subject = session.json()["access_token"].as_str().unwrap().to_owned();
    let exchange = |dpop: Option<String>| {
        let mut headers = vec![basic(&r.backend.0, &r.backend.1), form_type()];
        if let Some(p) = dpop {
            headers.push(("DPoP", p));
        }
        let addr = r.addr();
        let body = format!(
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token={subject}\
             &subject_token_type=urn:ietf:params:oauth:token-type:access_token&audience={RECORDS}"
        );
        async move { send(addr, "POST", "/oauth2/token", &headers, &body).await }
    };
    assert_eq!(error_of(&exchange(None).await), "invalid_dpop_proof");
    assert_eq!(
        error_of(&exchange(Some(proof(&es256(), TOKEN_URL))).await),
        "invalid_dpop_proof"
    );
    let ok = exchange(Some(proof(&key, TOKEN_URL))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["token_type"], "DPoP");
    let assertion = ok.json()["access_token"].as_str().unwrap().to_owned();
    let i = r.introspect(&assertion).await;
    assert_eq!(i["cnf"]["jkt"], key.thumbprint(), "{i}");
    r.server.shutdown().await;
}

#[tokio::test]
async fn server_nonces_one_retry_succeeds_and_every_answer_carries_a_fresh_one() {
    let r = running("[dpop]\nrequire_nonce = true\n").await;
    let key = es256();
    let first = r
        .client_token(API, &[("DPoP", proof(&key, TOKEN_URL))])
        .await;
    assert_eq!(
        (first.status, error_of(&first)),
        (400, "use_dpop_nonce".into())
    );
    let nonces: Vec<&str> = first
        .headers
        .lines()
        .filter_map(|l| l.strip_prefix("dpop-nonce: "))
        .collect();
    assert_eq!(nonces.len(), 1, "exactly one DPoP-Nonce: {}", first.headers);
    // The head is lowercased by the test client: take the nonce as sent.
    let nonce = nonce_of(&first);
    let retry = r
        .client_token(
            API,
            &[(
                "DPoP",
                proof_with(&key, "POST", TOKEN_URL, now(), Some(&nonce)),
            )],
        )
        .await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.json()["token_type"], "DPoP");
    assert_eq!(retry.headers.matches("dpop-nonce:").count(), 1);
    // An unknown nonce, and (with nonces on) a stale iat: use_dpop_nonce.
    let forged = r
        .client_token(
            API,
            &[(
                "DPoP",
                proof_with(&key, "POST", TOKEN_URL, now(), Some("bm9wZQ")),
            )],
        )
        .await;
    assert_eq!(error_of(&forged), "use_dpop_nonce");
    let stale = r
        .client_token(
            API,
            &[(
                "DPoP",
                proof_with(&key, "POST", TOKEN_URL, now() - 3600, Some(&nonce)),
            )],
        )
        .await;
    assert_eq!(error_of(&stale), "use_dpop_nonce", "{}", stale.body);
    // Sessions too.
    let session = r.session(json!({}), Some(proof(&key, SESSIONS_URL))).await;
    assert_eq!(error_of(&session), "use_dpop_nonce");
    let nonce = nonce_of(&session);
    let session = r
        .session(
            json!({}),
            Some(proof_with(&key, "POST", SESSIONS_URL, now(), Some(&nonce))),
        )
        .await;
    assert_eq!(session.status, 200, "{}", session.body);
    r.server.shutdown().await;
}

/// The `DPoP-Nonce` of an answer (base64url: the test client's lowercased
/// head would change it, so it is read from the raw answer again).
fn nonce_of(reply: &Reply) -> String {
    reply.raw_header("dpop-nonce").unwrap()
}

#[tokio::test]
async fn a_proof_replayed_on_another_node_is_refused() {
    let url = common::fresh_pg_database().await;
    let a = running_on("", Some(&url)).await;
    let b = running_on("", Some(&url)).await;
    // Node b knows the backend of node a (one database).
    let key = es256();
    let once = proof(&key, TOKEN_URL);
    let first = a.client_token(API, &[("DPoP", once.clone())]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let on_b = send(
        b.addr(),
        "POST",
        "/oauth2/token",
        &[
            basic(&a.backend.0, &a.backend.1),
            form_type(),
            ("DPoP", once),
        ],
        &format!("grant_type=client_credentials&audience={API}"),
    )
    .await;
    assert_eq!(
        (on_b.status, error_of(&on_b)),
        (400, "invalid_dpop_proof".into()),
        "{}",
        on_b.body
    );
    a.server.shutdown().await;
    b.server.shutdown().await;
}

#[tokio::test]
async fn a_replay_cache_that_cannot_answer_fails_closed() {
    // The client stays known from memory while the store is gone.
    let r = running("[clients]\ncache_for = \"60s\"\n").await;
    let key = es256();
    let first = r
        .client_token(API, &[("DPoP", proof(&key, TOKEN_URL))])
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    r.server.store().close().await;
    let reply = r
        .client_token(API, &[("DPoP", proof(&key, TOKEN_URL))])
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(error_of(&reply), "temporarily_unavailable");
    assert!(reply.headers.contains("retry-after"), "{}", reply.headers);
    // Without a proof nothing needs the store: the refusal was the proof's,
    // never an acceptance of a proof that could not be checked.
    let plain = r.client_token(API, &[]).await;
    assert_eq!(plain.status, 200, "{}", plain.body);
    r.server.shutdown().await;
}
