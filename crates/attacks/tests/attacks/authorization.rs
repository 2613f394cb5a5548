//! Attacks of one client on another, at the running service: every client
//! is authenticated, and each may touch only what it was registered for and
//! what it owns. Each test reproduces a finding of the authorization review
//! as described, asserts the refusal, and then that nothing changed (the
//! owner's tokens still refresh, introspect and verify). The store is
//! involved in all of them: each runs on SQLite and on PostgreSQL (the
//! throw-away server of `scripts/with-postgres`, or `TESSERA_TEST_PG_URL`).

use std::net::SocketAddr;

use serde_json::{json, Value};
use tessera_jose::jwa::{EcCurve, JweAlgorithm, JwsAlgorithm};
use tessera_jose::jwe::Decrypter;
use tessera_jose::jwk::{Jwk, JwkSet, KeyUse};
use tessera_jose::jws::{JwsHeader, Signer};
use tessera_jose::jwt::{self, Claims, Clock, SystemClock, Validation};
use tessera_server::config::Config;
use tessera_server::store::{Registration, Store};
use tessera_server::{clients, Server};

use crate::service::{basic, form, hygiene, send, send_method, Reply};

const API: &str = "https://api.example.com";
const BILLING: &str = "https://billing.example.com";
const RECORDS: &str = "https://records.example.com";
const PARTNER: &str = "https://partner.example.org";
const MASTER: &str = "7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Where the service keeps its state.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// A fresh, empty PostgreSQL database on the server `TESSERA_TEST_PG_URL`
/// names: its URL.
async fn fresh_pg_database() -> String {
    let base = std::env::var("TESSERA_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "TESSERA_TEST_PG_URL is not set: run the tests through scripts/test (or \
             scripts/with-postgres cargo test -p tessera-attacks)"
        )
    });
    tessera_server::testing::fresh_pg_database(&base)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A client as the tests hold it: its id and secret.
#[derive(Clone)]
struct Client {
    id: String,
    secret: String,
}

/// A service with two plain resources (API, BILLING), a sealed one
/// (RECORDS, `jwe`) and a partner (PARTNER, `nested`, released: `org` only).
struct Service {
    server: Server,
    issuer: String,
    records_key: Jwk,
    partner_key: Jwk,
    _dir: tempfile::TempDir,
}

async fn service(backend: Backend) -> Service {
    hygiene::capture();
    hygiene::remember(MASTER);
    let dir = tempfile::tempdir().unwrap();
    let records_key = Jwk::generate_rsa(2048)
        .unwrap()
        .with_kid("records-1")
        .with_use(KeyUse::Encryption)
        .unwrap();
    let partner_key = Jwk::generate_ec(EcCurve::P256)
        .unwrap()
        .with_kid("partner-1")
        .with_use(KeyUse::Encryption)
        .unwrap();
    let records_file = dir.path().join("records.jwk");
    let partner_file = dir.path().join("partner.jwk");
    std::fs::write(&records_file, records_key.to_public().unwrap().to_json()).unwrap();
    std::fs::write(&partner_file, partner_key.to_public().unwrap().to_json()).unwrap();
    let store = match backend {
        Backend::Sqlite => format!(
            "data_dir = {:?}\n",
            dir.path().join("data").display().to_string()
        ),
        Backend::Postgres => format!(
            "data_dir = {:?}\ndatabase_url = {:?}\n",
            dir.path().join("data").display().to_string(),
            fresh_pg_database().await
        ),
    };
    let toml = dir.path().join("tessera.toml");
    std::fs::write(
        &toml,
        format!(
            "{store}[signing]\nalg = \"ES256\"\n\
             [[resources]]\naudience = \"{API}\"\n\
             [[resources]]\naudience = \"{BILLING}\"\n\
             [[resources]]\naudience = \"{RECORDS}\"\nformat = \"jwe\"\nencryption_key = {:?}\n\
             claims = [\"record_id\"]\n\
             [[resources]]\naudience = \"{PARTNER}\"\nformat = \"nested\"\nencryption_key = {:?}\n\
             alg = \"ECDH-ES+A256KW\"\nrelease = [\"org\"]\n",
            records_file.display().to_string(),
            partner_file.display().to_string(),
        ),
    )
    .unwrap();
    let config = Config::load(Some(&toml), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config, Some(MASTER)).await.unwrap();
    let issuer = format!("http://{}", server.local_addr());
    Service {
        server,
        issuer,
        records_key,
        partner_key,
        _dir: dir,
    }
}

impl Service {
    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    async fn client(&self, name: &str, grants: &[&str], registration: Registration) -> Client {
        let grants: Vec<String> = grants.iter().map(|g| g.to_string()).collect();
        let new = clients::create_with(self.server.store(), name, &grants, None, registration, 0)
            .await
            .unwrap();
        hygiene::remember(&new.secret);
        Client {
            id: new.record.id.clone(),
            secret: new.secret.to_string(),
        }
    }

    async fn post_form(&self, who: &Client, path: &str, body: &str) -> Reply {
        let reply = send(
            self.addr(),
            path,
            &[basic(&who.id, &who.secret), form()],
            body,
        )
        .await;
        if reply.status == 200 {
            hygiene::remember_answer(&reply.json());
        }
        reply
    }

    async fn session(&self, owner: &Client, audience: &str) -> Value {
        let body = json!({"sub": "user-1", "org": "acme", "amr": ["pwd"], "acr": "aal1",
            "audience": audience, "claims": {}});
        let reply = self.new_session(owner, &body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    /// `POST /v1/sessions` with `body`, as `who`.
    async fn new_session(&self, who: &Client, body: &Value) -> Reply {
        let reply = send(
            self.addr(),
            "/v1/sessions",
            &[
                basic(&who.id, &who.secret),
                ("Content-Type", "application/json".into()),
            ],
            &body.to_string(),
        )
        .await;
        if reply.status == 200 {
            hygiene::remember_answer(&reply.json());
        }
        reply
    }

    async fn introspect(&self, who: &Client, token: &str) -> Value {
        let reply = self
            .post_form(who, "/oauth2/introspect", &format!("token={token}"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    async fn refresh(&self, who: &Client, token: &str) -> Reply {
        self.post_form(
            who,
            "/oauth2/token",
            &format!("grant_type=refresh_token&refresh_token={token}"),
        )
        .await
    }

    async fn exchange(&self, who: &Client, subject: &str, extra: &str) -> Reply {
        self.post_form(
            who,
            "/oauth2/token",
            &format!(
                "grant_type={TOKEN_EXCHANGE}&subject_token={subject}\
                 &subject_token_type={ACCESS_TOKEN_TYPE}{extra}"
            ),
        )
        .await
    }

    /// What the RECORDS resource opens its tokens with.
    fn records_decrypter(&self) -> Decrypter {
        decrypter(&self.records_key, JweAlgorithm::RSA_OAEP_256)
    }

    /// What the PARTNER opens its tokens with.
    fn partner_decrypter(&self) -> Decrypter {
        decrypter(&self.partner_key, JweAlgorithm::ECDH_ES_A256KW)
    }

    /// A verifier of the service's published keys.
    async fn our_keys(&self) -> tessera_jose::jws::Verifier {
        let reply = send_method(self.addr(), "GET", "/.well-known/jwks.json", &[], "").await;
        let set = JwkSet::from_json(reply.body.as_bytes()).unwrap();
        tessera_jose::jws::Verifier::builder()
            .jwk_set(&set, &[JwsAlgorithm::ES256])
            .unwrap()
            .build()
            .unwrap()
    }

    async fn done(self) {
        self.server.shutdown().await;
        hygiene::assert_clean();
    }
}

fn decrypter(key: &Jwk, alg: JweAlgorithm) -> Decrypter {
    Decrypter::builder()
        .key(key, &[(alg, tessera_jose::jwa::JweEncryption::A256GCM)])
        .unwrap()
        .build()
        .unwrap()
}

fn registered(audiences: &[&str], scopes: &[&str]) -> Registration {
    Registration {
        audiences: Some(audiences.iter().map(|a| a.to_string()).collect()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..Registration::default()
    }
}

fn error(reply: &Reply) -> (u16, String) {
    (
        reply.status,
        reply.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Finding 1. A client holding only `token_exchange` takes a session access
/// token minted by another client and asks for a step-up assertion for a
/// `jwe` resource with `amr=hwk mfa`, `acr=aal3` and a record id of its
/// choosing. Refused: an exchanger never supplies `amr`, `acr` or claims,
/// and it may exchange only tokens of its own sessions or of a client that
/// named it in `may_act`. Once trusted, what it gets attests the session's
/// own authentication, names it in `act`, and is recorded as issued to it.
/// Nothing it tried changed the owner's session.
#[tokio::test]
async fn token_exchange_cannot_forge_a_step_up_from_another_clients_session() {
    for backend in BACKENDS {
        let s = service(backend).await;
        let owner = s
            .client("backend", &["sessions"], registered(&[API], &[]))
            .await;
        let gateway = s
            .client(
                "gateway",
                &["token_exchange"],
                registered(&[RECORDS, PARTNER], &[]),
            )
            .await;
        let session = s.session(&owner, API).await;
        let access = session["access_token"].as_str().unwrap().to_owned();

        // The forgery as the review made it.
        let forged = s
            .exchange(
                &gateway,
                &access,
                &format!(
                    "&audience={RECORDS}&amr=hwk%20mfa&acr=aal3\
                     &claims=%7B%22record_id%22%3A%22MRN-ANY-OTHER%22%7D"
                ),
            )
            .await;
        assert_eq!(
            error(&forged),
            (400, "invalid_request".into()),
            "{backend:?}"
        );
        // Without the forged parameters: the session is not the gateway's,
        // and its owner trusts no one — it reads like a dead token.
        for target in [RECORDS, PARTNER] {
            let plain = s
                .exchange(&gateway, &access, &format!("&audience={target}"))
                .await;
            assert_eq!(error(&plain), (400, "invalid_grant".into()), "{backend:?}");
        }
        // No side effect: the owner's session goes on.
        let refreshed = s
            .refresh(&owner, session["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.body);
        let access = refreshed.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();

        // The owner names the gateway as an actor it trusts: delegation.
        let mut trusting = registered(&[API], &[]);
        trusting.may_act = vec![gateway.id.clone()];
        assert!(s
            .server
            .store()
            .update_registration(&owner.id, &trusting)
            .await
            .unwrap());
        let reply = s
            .exchange(&gateway, &access, &format!("&audience={RECORDS}"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let assertion = reply.json()["access_token"].as_str().unwrap().to_owned();
        let ours = s.our_keys().await;
        let decrypter = s.records_decrypter();
        let opened = jwt::decrypt_and_verify::<Value>(
            &assertion,
            &decrypter,
            &ours,
            &Validation::new().audience(RECORDS).typ("step-up+jwt"),
            &SystemClock,
        )
        .unwrap();
        let c = &opened.jwt().claims().custom;
        assert_eq!(
            c["amr"],
            json!(["pwd"]),
            "the session's methods, not hwk/mfa"
        );
        assert_eq!(c["acr"], "aal1", "the session's level, not aal3");
        assert!(c.get("record_id").is_none(), "no claim the session lacks");
        assert_eq!(c["act"], json!({"sub": gateway.id}));
        // The record names the exchanger: it may introspect what it got.
        let seen = s.introspect(&gateway, &assertion).await;
        assert_eq!(seen["active"], true, "{seen}");
        assert_eq!(seen["client_id"], gateway.id.as_str());
        s.done().await;
    }
}

/// Finding 2. A client asks `client_credentials` for `scope=orders:write
/// admin` at an API it was never registered for, and for a partner's
/// audience. Refused: `invalid_scope` and `invalid_target` (RFC 8707). Its
/// registered audience and scope are granted, and an unregistered client
/// gets only the configured `jws` resources, no sealed or partner audience,
/// and no scope at all. Sessions obey the same rule.
#[tokio::test]
async fn client_credentials_and_sessions_get_only_the_registration() {
    for backend in BACKENDS {
        let s = service(backend).await;
        let reader = s
            .client(
                "reader",
                &["client_credentials", "sessions"],
                registered(&[BILLING], &["orders:read"]),
            )
            .await;
        let cc = |c: &Client, extra: &str| {
            let body = format!("grant_type=client_credentials{extra}");
            let c = c.clone();
            let s = &s;
            async move { s.post_form(&c, "/oauth2/token", &body).await }
        };
        for (extra, expected) in [
            (
                format!("&audience={API}&scope=orders:write%20admin"),
                "invalid_target",
            ),
            (format!("&audience={API}"), "invalid_target"),
            (
                format!("&audience={BILLING}&scope=orders:write"),
                "invalid_scope",
            ),
            (format!("&resource={PARTNER}"), "invalid_target"),
            (format!("&audience={RECORDS}"), "invalid_target"),
        ] {
            let reply = cc(&reader, &extra).await;
            assert_eq!(
                error(&reply),
                (400, expected.to_owned()),
                "{extra}: {}",
                reply.body
            );
        }
        // What it was registered for: its audience is the default, and no
        // scope requested means all of its scopes.
        let ok = cc(&reader, "").await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        let answer = ok.json();
        assert_eq!(answer["scope"], "orders:read");
        let claims = s
            .introspect(&reader, answer["access_token"].as_str().unwrap())
            .await;
        assert_eq!(
            (claims["aud"].clone(), claims["scope"].clone()),
            (json!(BILLING), json!("orders:read"))
        );

        // Unregistered: jws resources only, and no scope.
        let plain = s
            .client(
                "plain",
                &["client_credentials", "sessions"],
                Registration::default(),
            )
            .await;
        assert_eq!(cc(&plain, &format!("&audience={API}")).await.status, 200);
        for (extra, expected) in [
            (format!("&audience={RECORDS}"), "invalid_target"),
            (format!("&audience={PARTNER}"), "invalid_target"),
            (
                "&audience=https://unknown.example".to_owned(),
                "invalid_target",
            ),
            (format!("&audience={API}&scope=admin"), "invalid_scope"),
        ] {
            let reply = cc(&plain, &extra).await;
            assert_eq!(
                error(&reply),
                (400, expected.to_owned()),
                "{extra}: {}",
                reply.body
            );
        }
        // A session for an unregistered audience, or with a scope beyond
        // the registration, is refused the same way.
        for (body, expected) in [
            (
                json!({"sub": "u", "org": "o", "audience": API}),
                "invalid_target",
            ),
            (
                json!({"sub": "u", "org": "o", "audience": BILLING, "scope": "admin"}),
                "invalid_scope",
            ),
        ] {
            let reply = s.new_session(&reader, &body).await;
            assert_eq!(error(&reply), (400, expected.to_owned()), "{body}");
        }
        // A session's refresh cannot widen its scope: refused before the
        // token is used, which then still rotates.
        let wide = s
            .client(
                "wide",
                &["sessions"],
                registered(&[API], &["orders:read", "orders:write"]),
            )
            .await;
        let reply = s
            .new_session(
                &wide,
                &json!({"sub": "u", "org": "o", "audience": API, "scope": "orders:read"}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let session = reply.json();
        let refresh = session["refresh_token"].as_str().unwrap();
        let widened = s
            .post_form(
                &wide,
                "/oauth2/token",
                &format!("grant_type=refresh_token&refresh_token={refresh}&scope=orders:write"),
            )
            .await;
        assert_eq!(error(&widened), (400, "invalid_scope".into()));
        let rotated = s.refresh(&wide, refresh).await;
        assert_eq!(
            rotated.status, 200,
            "the token was not used: {}",
            rotated.body
        );
        assert_eq!(rotated.json()["scope"], "orders:read");
        // Without audience or resource, a client of several audiences names
        // one: no default it was not registered for (the issuer).
        let several = s
            .client(
                "several",
                &["client_credentials"],
                registered(&[API, BILLING], &[]),
            )
            .await;
        assert_eq!(
            error(&cc(&several, "").await),
            (400, "invalid_target".into())
        );
        s.done().await;
    }
}

/// Finding 3. Client B ends client A's session with `DELETE
/// /v1/sessions/{id}` (the id is in every access token), and tries
/// `/oauth2/revoke` with A's refresh and access tokens. B gets a 404 and
/// RFC 7009's silent 200 — and nothing happened: A's refresh token still
/// rotates and A's access token is still active.
#[tokio::test]
async fn a_client_cannot_end_another_clients_session() {
    for backend in BACKENDS {
        let s = service(backend).await;
        let a = s.client("a", &["sessions"], registered(&[API], &[])).await;
        let b = s.client("b", &["sessions"], registered(&[API], &[])).await;
        let session = s.session(&a, API).await;
        let sid = session["session_id"].as_str().unwrap();
        let access = session["access_token"].as_str().unwrap();
        let refresh = session["refresh_token"].as_str().unwrap();

        let deleted = send_method(
            s.addr(),
            "DELETE",
            &format!("/v1/sessions/{sid}"),
            &[basic(&b.id, &b.secret)],
            "",
        )
        .await;
        assert_eq!(deleted.status, 404, "{}", deleted.body);
        for token in [refresh, access] {
            let revoked = s
                .post_form(&b, "/oauth2/revoke", &format!("token={token}"))
                .await;
            assert_eq!((revoked.status, revoked.json()), (200, json!({})));
        }
        // Nor refresh it: A's refresh token is unknown to B, and stays unused.
        let stolen = s.refresh(&b, refresh).await;
        assert_eq!(stolen.status, 400, "{backend:?}: {}", stolen.body);
        assert_eq!(stolen.json()["error"], "invalid_grant");
        // Nothing changed: A's access token is active, its refresh rotates.
        assert_eq!(s.introspect(&a, access).await["active"], true);
        let rotated = s.refresh(&a, refresh).await;
        assert_eq!(rotated.status, 200, "{backend:?}: {}", rotated.body);
        // And A itself still can end it.
        let own = send_method(
            s.addr(),
            "DELETE",
            &format!("/v1/sessions/{sid}"),
            &[basic(&a.id, &a.secret)],
            "",
        )
        .await;
        assert_eq!(own.status, 204);
        assert_eq!(s.introspect(&a, access).await, json!({"active": false}));
        s.done().await;
    }
}

/// Finding 4. A `private_key_jwt` assertion is accepted for 60 s of leeway
/// past its `exp`; its `jti` used to be kept only until `exp`, so within the
/// leeway it replayed. One already past its `exp` (but inside the leeway)
/// is accepted once, and its replay refused.
#[tokio::test]
async fn client_assertion_replay_within_the_expiry_leeway_is_refused() {
    for backend in BACKENDS {
        let s = service(backend).await;
        let key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
        let jwks = JwkSet::new(vec![key.to_public().unwrap()]).to_public_json();
        let client = clients::create_with(
            s.server.store(),
            "signer",
            &["client_credentials".to_owned()],
            Some(&jwks),
            registered(&[API], &[]),
            0,
        )
        .await
        .unwrap();
        let id = client.record.id;
        let now = SystemClock.now();
        let claims = Claims::new(json!({}))
            .issuer(&id)
            .subject(&id)
            .audience(&format!("{}/oauth2/token", s.issuer))
            .issued_at(now - 30)
            .expires_at(now - 5)
            .jwt_id("late-1");
        let assertion = jwt::sign(
            &Signer::new(&key, JwsAlgorithm::ES256).unwrap(),
            &JwsHeader::new(),
            &claims,
        )
        .unwrap();
        hygiene::remember(&assertion);
        let body = format!(
            "grant_type=client_credentials&client_id={id}&client_assertion_type=\
             urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer\
             &client_assertion={assertion}"
        );
        let first = send(s.addr(), "/oauth2/token", &[form()], &body).await;
        assert_eq!(first.status, 200, "inside the leeway: {}", first.body);
        hygiene::remember_answer(&first.json());
        for _ in 0..5 {
            let replay = send(s.addr(), "/oauth2/token", &[form()], &body).await;
            assert_eq!(
                error(&replay),
                (401, "invalid_client".into()),
                "{backend:?}"
            );
        }
        s.done().await;
    }
}

/// Finding 5. Any client introspected any token, and a partner's sealed
/// token revealed `sub` and `sid` its release list withheld. Now a
/// stranger learns `{"active": false}` about another client's token; a
/// resource server registered to introspect an audience learns about that
/// audience's tokens only; and a partner token's record holds only what the
/// partner was sent.
#[tokio::test]
async fn introspection_answers_only_the_owner_and_the_tokens_resource_server() {
    for backend in BACKENDS {
        let s = service(backend).await;
        let a = s
            .client(
                "a",
                &["sessions", "client_credentials"],
                registered(&[API, BILLING], &[]),
            )
            .await;
        let stranger = s
            .client(
                "stranger",
                &["client_credentials", "token_exchange"],
                Registration::default(),
            )
            .await;
        let api_server = s
            .client(
                "api",
                &["client_credentials"],
                Registration {
                    introspect: vec![API.into()],
                    ..Registration::default()
                },
            )
            .await;
        let session = s.session(&a, API).await;
        let access = session["access_token"].as_str().unwrap();
        let refresh = session["refresh_token"].as_str().unwrap();
        let billing = s
            .post_form(
                &a,
                "/oauth2/token",
                &format!("grant_type=client_credentials&audience={BILLING}"),
            )
            .await
            .json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        for token in [access, refresh, billing.as_str()] {
            assert_eq!(
                s.introspect(&stranger, token).await,
                json!({"active": false})
            );
            assert_eq!(s.introspect(&a, token).await["active"], true);
        }
        assert_eq!(s.introspect(&api_server, access).await["sub"], "user-1");
        assert_eq!(
            s.introspect(&api_server, &billing).await,
            json!({"active": false}),
            "another audience's token"
        );
        assert_eq!(
            s.introspect(&api_server, refresh).await,
            json!({"active": false}),
            "refresh tokens: their client only"
        );

        // A partner token whose release list is `org` only.
        let mut trusting = registered(&[API, BILLING], &[]);
        trusting.may_act = vec![stranger.id.clone()];
        s.server
            .store()
            .update_registration(&a.id, &trusting)
            .await
            .unwrap();
        s.server
            .store()
            .update_registration(&stranger.id, &registered(&[PARTNER], &[]))
            .await
            .unwrap();
        let stranger = Client {
            id: stranger.id.clone(),
            secret: stranger.secret.clone(),
        };
        let exchanged = s
            .exchange(&stranger, access, &format!("&audience={PARTNER}"))
            .await;
        assert_eq!(exchanged.status, 200, "{}", exchanged.body);
        let federation = exchanged.json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let seen = s.introspect(&stranger, &federation).await;
        assert_eq!(seen["active"], true, "{seen}");
        assert!(
            seen.get("sub").is_none() && seen.get("sid").is_none(),
            "withheld by the release list: {seen}"
        );
        // The partner was sent exactly that.
        let ours = s.our_keys().await;
        let decrypter = s.partner_decrypter();
        let opened = jwt::decrypt_and_verify::<Value>(
            &federation,
            &decrypter,
            &ours,
            &Validation::new().audience(PARTNER),
            &SystemClock,
        )
        .unwrap();
        assert!(opened.jwt().claims().sub.is_none());
        assert!(opened.jwt().claims().custom.get("sid").is_none());
        // The owner cannot learn about it either (issued to the exchanger).
        assert_eq!(
            s.introspect(&a, &federation).await,
            json!({"active": false})
        );
        // Ending the session ends it, found without its session id.
        let own = send_method(
            s.addr(),
            "DELETE",
            &format!("/v1/sessions/{}", session["session_id"].as_str().unwrap()),
            &[basic(&a.id, &a.secret)],
            "",
        )
        .await;
        assert_eq!(own.status, 204);
        assert_eq!(
            s.introspect(&stranger, &federation).await,
            json!({"active": false})
        );
        s.done().await;
    }
}

/// Finding 9. A `client_credentials` token has no session: revoking it
/// answered 200 and changed nothing, and it stayed active even after its
/// client was deleted. Now its own client's revocation makes it inactive
/// (another client's changes nothing), and a deleted client's tokens are
/// inactive at once.
#[tokio::test]
async fn client_credentials_tokens_can_be_revoked_and_die_with_their_client() {
    for backend in BACKENDS {
        let s = service(backend).await;
        let a = s
            .client("a", &["client_credentials"], registered(&[API], &[]))
            .await;
        let b = s
            .client("b", &["client_credentials"], registered(&[API], &[]))
            .await;
        let api_server = s
            .client(
                "api",
                &["client_credentials"],
                Registration {
                    introspect: vec![API.into()],
                    ..Registration::default()
                },
            )
            .await;
        let mint = |c: Client| {
            let s = &s;
            async move {
                let reply = s
                    .post_form(&c, "/oauth2/token", "grant_type=client_credentials")
                    .await;
                assert_eq!(reply.status, 200, "{}", reply.body);
                reply.json()["access_token"].as_str().unwrap().to_owned()
            }
        };
        let first = mint(a.clone()).await;
        let second = mint(a.clone()).await;
        // Another client's revocation: the silent 200, nothing changes.
        let foreign = s
            .post_form(&b, "/oauth2/revoke", &format!("token={first}"))
            .await;
        assert_eq!((foreign.status, foreign.json()), (200, json!({})));
        assert_eq!(s.introspect(&api_server, &first).await["active"], true);
        // Its own client's: inactive from then on, for everyone; the other
        // token of the same client is untouched.
        let own = s
            .post_form(&a, "/oauth2/revoke", &format!("token={first}"))
            .await;
        assert_eq!(own.status, 200);
        for who in [&a, &api_server] {
            assert_eq!(s.introspect(who, &first).await, json!({"active": false}));
        }
        assert_eq!(s.introspect(&api_server, &second).await["active"], true);
        // A sealed client_credentials token: its resource holds the signed
        // token inside; revoking the sealed one denies that one too.
        s.server
            .store()
            .update_registration(&a.id, &registered(&[API, RECORDS], &[]))
            .await
            .unwrap();
        let sealed = s
            .post_form(
                &a,
                "/oauth2/token",
                &format!("grant_type=client_credentials&audience={RECORDS}"),
            )
            .await
            .json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let decrypter = s.records_decrypter();
        let inner = String::from_utf8(
            decrypter
                .decrypt_compact(&sealed)
                .unwrap()
                .plaintext()
                .to_vec(),
        )
        .unwrap();
        hygiene::remember(&inner);
        let records_server = s
            .client(
                "records",
                &["client_credentials"],
                Registration {
                    introspect: vec![RECORDS.into()],
                    ..Registration::default()
                },
            )
            .await;
        assert_eq!(s.introspect(&records_server, &inner).await["active"], true);
        assert_eq!(
            s.post_form(&a, "/oauth2/revoke", &format!("token={sealed}"))
                .await
                .status,
            200
        );
        for token in [&sealed, &inner] {
            assert_eq!(
                s.introspect(&records_server, token).await,
                json!({"active": false})
            );
        }
        // The client deleted: its tokens are inactive at once.
        assert!(s.server.store().delete_client(&a.id).await.unwrap());
        assert_eq!(
            s.introspect(&api_server, &second).await,
            json!({"active": false})
        );
        s.done().await;
    }
}
