//! The admin API over real HTTP (issue 25): only on the admin listener;
//! who may call each route; clients, secrets, sessions, mass revocation and
//! the compromised-key procedure, on SQLite and on PostgreSQL (one node and
//! two).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use common::{fresh_pg_database, request, send, Reply};
use serde_json::{json, Value};
use tessera_jose::jwa::JwsAlgorithm;
use tessera_server::admin::ROUTES;
use tessera_server::config::Config;
use tessera_server::store::{KeyState, SealedRecord, Store};
use tessera_server::Server;

const ISSUER: &str = "https://auth.example.com";
const API: &str = "https://api.example.com";
const MASTER: &str = "4242424242424242424242424242424242424242424242424242424242424242";

struct Node {
    server: Server,
    _dir: tempfile::TempDir,
}

impl Node {
    fn public(&self) -> SocketAddr {
        self.server.local_addr()
    }
    fn admin(&self) -> SocketAddr {
        self.server.admin_addr().expect("the admin listener is on")
    }
    async fn token(&self, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let new = tessera_server::admins::create(self.server.store(), "ops", &scopes, 0)
            .await
            .unwrap();
        new.token.to_string()
    }
}

/// A node; `database_url` for PostgreSQL (several nodes share it).
async fn node(database_url: Option<&str>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    let db = database_url
        .map(|u| format!("database_url = {u:?}\n"))
        .unwrap_or_default();
    std::fs::write(
        &path,
        format!(
            "issuer = {ISSUER:?}\ndata_dir = {:?}\n{db}[signing]\nalg = \"ES256\"\n\
             reload_every = \"1h\"\n[[resources]]\naudience = {API:?}\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let config = Config::load(Some(&path), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config, Some(MASTER)).await.unwrap();
    Node { server, _dir: dir }
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let mut headers = Vec::new();
    if let Some(t) = token {
        headers.push(("Authorization", format!("Bearer {t}")));
    }
    let text = body.map(Value::to_string).unwrap_or_default();
    if body.is_some() {
        headers.push(("Content-Type", "application/json".to_owned()));
    }
    send(addr, method, path, &headers, &text).await
}

fn basic(id: &str, secret: &str) -> (&'static str, String) {
    let raw = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    ("Authorization", format!("Basic {raw}"))
}

/// `client_credentials` with this secret: the status.
async fn client_credentials(addr: SocketAddr, id: &str, secret: &str) -> u16 {
    let form = format!("grant_type=client_credentials&audience={API}");
    send(
        addr,
        "POST",
        "/oauth2/token",
        &[
            basic(id, secret),
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ],
        &form,
    )
    .await
    .status
}

async fn new_session(addr: SocketAddr, id: &str, secret: &str, sub: &str) -> Value {
    let body = json!({"sub": sub, "org": "acme", "audience": API}).to_string();
    let r = send(
        addr,
        "POST",
        "/v1/sessions",
        &[
            basic(id, secret),
            ("Content-Type", "application/json".to_owned()),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

async fn introspect(addr: SocketAddr, id: &str, secret: &str, token: &str) -> Value {
    let r = send(
        addr,
        "POST",
        "/oauth2/introspect",
        &[
            basic(id, secret),
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ],
        &format!("token={token}"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

async fn refresh(addr: SocketAddr, id: &str, secret: &str, token: &str) -> u16 {
    send(
        addr,
        "POST",
        "/oauth2/token",
        &[
            basic(id, secret),
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ],
        &format!("grant_type=refresh_token&refresh_token={token}"),
    )
    .await
    .status
}

/// A client registered through the admin API: (id, secret).
async fn api_client(n: &Node, token: &str, name: &str) -> (String, String) {
    let body = json!({
        "name": name,
        "grants": ["sessions", "client_credentials", "refresh_token"],
        "audiences": [API],
        "scopes": ["orders:read"],
    });
    let r = call(
        n.admin(),
        "POST",
        "/admin/v1/clients",
        Some(token),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.headers.contains("cache-control: no-store"));
    let v = r.json();
    (
        v["client_id"].as_str().unwrap().to_owned(),
        v["client_secret"].as_str().unwrap().to_owned(),
    )
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "nope").replace("{kid}", "nope")
}

#[tokio::test]
async fn admin_routes_exist_only_on_the_admin_listener() {
    let n = node(None).await;
    let token = n.token(&["*"]).await;
    assert_ne!(n.admin(), n.public());
    for r in ROUTES {
        let path = concrete(r.path);
        let public = call(n.public(), r.method, &path, Some(&token), None).await;
        assert_eq!(
            public.status, 404,
            "{} {path} on the public listener",
            r.method
        );
        assert_eq!(public.json()["error"], "not_found");
    }
    assert_eq!(
        request(n.public(), "GET", "/admin/openapi.json")
            .await
            .status,
        404
    );
    // And the public routes are not on the admin listener.
    for path in [
        "/.well-known/jwks.json",
        "/oauth2/token",
        "/openapi.json",
        "/metrics",
    ] {
        assert_eq!(request(n.admin(), "GET", path).await.status, 404, "{path}");
    }
    // The OpenAPI document lists exactly the routes, each with its scope.
    let doc = request(n.admin(), "GET", "/admin/openapi.json")
        .await
        .json();
    let paths = doc["paths"].as_object().unwrap();
    let listed: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(listed, ROUTES.len());
    for r in ROUTES {
        let op = &doc["paths"][r.path][r.method.to_ascii_lowercase()];
        if r.scope == tessera_server::admin::ANY_ADMIN {
            assert_eq!(op["x-required-scope"], Value::Null, "{}", r.path);
            assert_eq!(op["security"], json!([{"adminToken": []}]), "{}", r.path);
        } else {
            assert_eq!(op["x-required-scope"], r.scope, "{} {}", r.method, r.path);
        }
    }
    n.server.shutdown().await;
}

#[tokio::test]
async fn every_route_refuses_without_a_token_and_without_its_scope() {
    let n = node(None).await;
    let all = n.token(&["*"]).await;
    let unknown = format!("tessera_admin_{}", "A".repeat(43));
    for r in ROUTES {
        let path = concrete(r.path);
        let what = format!("{} {path}", r.method);
        // Who is asking? Nobody, a stranger, a malformed or a Basic credential: 401.
        let none = call(n.admin(), r.method, &path, None, None).await;
        assert_eq!(none.status, 401, "{what}: {}", none.body);
        assert!(none.headers.contains("www-authenticate: bearer"), "{what}");
        for bad in [unknown.as_str(), "garbage", ""] {
            let r = call(n.admin(), r.method, &path, Some(bad), None).await;
            assert_eq!(r.status, 401, "{what} with {bad:?}");
        }
        let basic = send(n.admin(), r.method, &path, &[basic("adm", "x")], "").await;
        assert_eq!(basic.status, 401, "{what} with Basic");
        let twice = send(
            n.admin(),
            r.method,
            &path,
            &[
                ("Authorization", format!("Bearer {all}")),
                ("Authorization", format!("Bearer {all}")),
            ],
            "",
        )
        .await;
        assert_eq!(twice.status, 401, "{what} with two Authorization headers");
        if r.scope == tessera_server::admin::ANY_ADMIN {
            // Any admin may ask: a token with one unrelated scope reaches it.
            let one = n.token(&["audit:read"]).await;
            let reached = call(n.admin(), r.method, &path, Some(&one), None).await;
            assert_eq!(reached.status, 200, "{what}: {}", reached.body);
            continue;
        }
        // Allowed to ask for this? Every other scope together is not enough.
        let others: Vec<&str> = tessera_server::admins::SCOPES
            .iter()
            .copied()
            .filter(|s| *s != r.scope)
            .collect();
        let without = n.token(&others).await;
        let refused = call(n.admin(), r.method, &path, Some(&without), None).await;
        assert_eq!(refused.status, 403, "{what}: {}", refused.body);
        assert_eq!(refused.json()["error"], "insufficient_scope", "{what}");
        assert!(
            refused.headers.contains("error=\"insufficient_scope\""),
            "{what}"
        );
        // With its scope alone, the request reaches the handler.
        let only = n.token(&[r.scope]).await;
        let reached = call(n.admin(), r.method, &path, Some(&only), None).await;
        assert!(
            ![401, 403].contains(&reached.status),
            "{what}: {} {}",
            reached.status,
            reached.body
        );
    }
    // A deleted admin's token stops at once.
    let gone = n.token(&["*"]).await;
    let hash = tessera_server::crypto::sha256(gone.as_bytes());
    let admin = n
        .server
        .store()
        .admin_by_token_hash(&hash)
        .await
        .unwrap()
        .unwrap();
    assert!(n.server.store().delete_admin(&admin.id).await.unwrap());
    let r = call(n.admin(), "GET", "/admin/v1/clients", Some(&gone), None).await;
    assert_eq!(r.status, 401);
    // Counted by route template and status, on the public /metrics.
    let metrics = request(n.public(), "GET", "/metrics").await.body;
    assert!(
        metrics.contains(
            "tessera_admin_requests_total{route=\"/admin/v1/clients/{id}\",status=\"403\"}"
        ),
        "{metrics}"
    );
    n.server.shutdown().await;
}

async fn clients_and_secret_roll(n: &Node) {
    let token = n.token(&["clients:read", "clients:write"]).await;
    let (id, secret) = api_client(n, &token, "orders-backend").await;
    assert_eq!(client_credentials(n.public(), &id, &secret).await, 200);
    // Read back: the registration, never the secret.
    let one = call(
        n.admin(),
        "GET",
        &format!("/admin/v1/clients/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(one.status, 200);
    let v = one.json();
    assert_eq!(v["name"], "orders-backend");
    assert_eq!(v["audiences"], json!([API]));
    assert_eq!(v["scopes"], json!(["orders:read"]));
    assert!(!one.body.contains(&secret));
    let list = call(n.admin(), "GET", "/admin/v1/clients", Some(&token), None).await;
    assert!(list.json()["clients"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["client_id"] == id.as_str()));
    assert!(!list.body.contains("argon2"));
    // Bad registrations are 400s that say why.
    for bad in [
        json!({"name": "x", "grants": ["password"]}),
        json!({"name": "", "grants": ["sessions"]}),
        json!({"name": "x", "grants": ["sessions"], "unknown": 1}),
        json!({"name": "x", "grants": ["sessions"], "jwks": 5}),
    ] {
        let r = call(
            n.admin(),
            "POST",
            "/admin/v1/clients",
            Some(&token),
            Some(&bad),
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_request");
    }

    // A roll with a grace period: both secrets work, then only the new one.
    let path = format!("/admin/v1/clients/{id}/secret");
    let rolled = call(
        n.admin(),
        "POST",
        &path,
        Some(&token),
        Some(&json!({"grace_seconds": 2})),
    )
    .await;
    assert_eq!(rolled.status, 200, "{}", rolled.body);
    let rolled = rolled.json();
    let second = rolled["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(second, secret);
    assert!(rolled["previous_secret_valid_until"].as_i64().is_some());
    assert_eq!(client_credentials(n.public(), &id, &second).await, 200);
    assert_eq!(
        client_credentials(n.public(), &id, &secret).await,
        200,
        "within the grace"
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(client_credentials(n.public(), &id, &second).await, 200);
    assert_eq!(
        client_credentials(n.public(), &id, &secret).await,
        401,
        "after the grace"
    );
    // Without a grace period the old secret stops at once.
    let rolled = call(n.admin(), "POST", &path, Some(&token), None).await;
    assert_eq!(rolled.status, 200, "{}", rolled.body);
    let third = rolled.json()["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(client_credentials(n.public(), &id, &second).await, 401);
    assert_eq!(client_credentials(n.public(), &id, &third).await, 200);
    let r = call(
        n.admin(),
        "POST",
        &path,
        Some(&token),
        Some(&json!({"grace_seconds": -1})),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = call(
        n.admin(),
        "POST",
        "/admin/v1/clients/cli_nope/secret",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.status, 404);

    // Delete: gone from the API and from the token endpoint.
    let gone = call(
        n.admin(),
        "DELETE",
        &format!("/admin/v1/clients/{id}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(gone.status, 204);
    assert_eq!(
        call(
            n.admin(),
            "GET",
            &format!("/admin/v1/clients/{id}"),
            Some(&token),
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(
        call(
            n.admin(),
            "DELETE",
            &format!("/admin/v1/clients/{id}"),
            Some(&token),
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(client_credentials(n.public(), &id, &third).await, 401);
}

#[tokio::test]
async fn clients_and_secret_roll_on_sqlite() {
    let n = node(None).await;
    clients_and_secret_roll(&n).await;
    n.server.shutdown().await;
}

#[tokio::test]
async fn clients_and_secret_roll_on_postgres() {
    let n = node(Some(&fresh_pg_database().await)).await;
    clients_and_secret_roll(&n).await;
    n.server.shutdown().await;
}

async fn sessions_and_revocations(n: &Node) {
    let token = n
        .token(&["clients:write", "sessions:read", "sessions:write"])
        .await;
    let (a, a_secret) = api_client(n, &token, "a").await;
    let (b, b_secret) = api_client(n, &token, "b").await;
    let mut minted = Vec::new();
    for (client, secret, sub) in [
        (&a, &a_secret, "alice"),
        (&a, &a_secret, "alice"),
        (&a, &a_secret, "bob"),
        (&b, &b_secret, "alice"),
        (&b, &b_secret, "carol"),
        (&b, &b_secret, "dave"),
    ] {
        minted.push((
            client.clone(),
            secret.clone(),
            sub,
            new_session(n.public(), client, secret, sub).await,
        ));
    }
    // Search: by sub, by client, paged.
    let page = |q: &str| {
        let q = q.to_owned();
        let token = token.clone();
        async move {
            let r = call(
                n.admin(),
                "GET",
                &format!("/admin/v1/sessions{q}"),
                Some(&token),
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{q}: {}", r.body);
            r.json()
        }
    };
    assert_eq!(
        page("?sub=alice").await["sessions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        page(&format!("?client_id={b}")).await["sessions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        page(&format!("?client_id={a}&sub=alice")).await["sessions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let q = if after.is_empty() {
            "?limit=4".to_owned()
        } else {
            format!("?limit=4&after={after}")
        };
        let p = page(&q).await;
        for s in p["sessions"].as_array().unwrap() {
            assert!(
                !s.to_string().contains("refresh"),
                "no token in a session view"
            );
            seen.push(s["id"].as_str().unwrap().to_owned());
        }
        match p["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "every session once, in pages of 4");
    for bad in [
        "?limit=0",
        "?limit=1001",
        "?limit=x",
        "?sort=id",
        "?sub=a&sub=b",
    ] {
        let r = call(
            n.admin(),
            "GET",
            &format!("/admin/v1/sessions{bad}"),
            Some(&token),
            None,
        )
        .await;
        assert_eq!(r.status, 400, "{bad}");
    }

    // Mass revocation needs exactly one selector: never "all".
    for bad in [
        json!({}),
        json!({"sub": "alice", "client_id": a}),
        json!({"sub": ""}),
        json!({"everything": true}),
    ] {
        let r = call(
            n.admin(),
            "POST",
            "/admin/v1/revocations",
            Some(&token),
            Some(&bad),
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    let r = call(
        n.admin(),
        "POST",
        "/admin/v1/revocations",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.status, 400, "an empty body");
    // A time to come is "revoke all" in disguise (or milliseconds for seconds).
    let future = tessera_jose::jwt::Clock::now(&tessera_jose::jwt::SystemClock) + 3600;
    for t in [future, future * 1000] {
        let r = call(
            n.admin(),
            "POST",
            "/admin/v1/revocations",
            Some(&token),
            Some(&json!({ "issued_before": t })),
        )
        .await;
        assert_eq!(r.status, 400, "{t}: {}", r.body);
        assert!(r.body.contains("future"), "{}", r.body);
    }
    let live = |i: usize| {
        let (client, secret, _, s) = &minted[i];
        let (client, secret) = (client.clone(), secret.clone());
        let access = s["access_token"].as_str().unwrap().to_owned();
        async move { introspect(n.public(), &client, &secret, &access).await["active"] == true }
    };
    for i in 0..6 {
        assert!(live(i).await, "session {i} live at first");
    }
    // By subject: alice's three sessions, across both clients.
    let r = call(
        n.admin(),
        "POST",
        "/admin/v1/revocations",
        Some(&token),
        Some(&json!({"sub": "alice"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["sessions_revoked"], 3);
    for (i, expect) in [
        (0, false),
        (1, false),
        (2, true),
        (3, false),
        (4, true),
        (5, true),
    ] {
        assert_eq!(live(i).await, expect, "session {i} after revoking alice");
    }
    // Their refresh tokens died with them.
    let (client, secret, _, s) = &minted[0];
    assert_eq!(
        refresh(
            n.public(),
            client,
            secret,
            s["refresh_token"].as_str().unwrap()
        )
        .await,
        400
    );
    let (client, secret, _, s) = &minted[2];
    assert_eq!(
        refresh(
            n.public(),
            client,
            secret,
            s["refresh_token"].as_str().unwrap()
        )
        .await,
        200
    );
    // By client: b's remaining two.
    let r = call(
        n.admin(),
        "POST",
        "/admin/v1/revocations",
        Some(&token),
        Some(&json!({"client_id": b})),
    )
    .await;
    assert_eq!(r.json()["sessions_revoked"], 2);
    assert!(!live(4).await && !live(5).await);
    assert!(live(2).await);
    // One session.
    let sid = minted[2].3["session_id"].as_str().unwrap().to_owned();
    let r = call(
        n.admin(),
        "DELETE",
        &format!("/admin/v1/sessions/{sid}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(!live(2).await);
    let r = call(
        n.admin(),
        "DELETE",
        "/admin/v1/sessions/ses_nope",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    // By time: a fresh session after the cut survives, older ones go.
    let t0 = tessera_jose::jwt::Clock::now(&tessera_jose::jwt::SystemClock);
    let old = new_session(n.public(), &a, &a_secret, "erin").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let young = new_session(n.public(), &a, &a_secret, "frank").await;
    let r = call(
        n.admin(),
        "POST",
        "/admin/v1/revocations",
        Some(&token),
        Some(&json!({"issued_before": t0 + 2})),
    )
    .await;
    assert_eq!(r.json()["sessions_revoked"], 1, "{}", r.body);
    let active = |s: &Value| {
        let access = s["access_token"].as_str().unwrap().to_owned();
        let (a, a_secret) = (a.clone(), a_secret.clone());
        async move { introspect(n.public(), &a, &a_secret, &access).await["active"] == true }
    };
    assert!(!active(&old).await);
    assert!(active(&young).await);
}

/// A mass revocation of more sessions than one statement names (500): all
/// of them, their refresh tokens too.
async fn a_large_revocation(n: &Node) {
    use tessera_server::store::SessionRecord;
    let token = n.token(&["clients:write", "sessions:write"]).await;
    let (id, _) = api_client(n, &token, "many").await;
    let now = tessera_jose::jwt::Clock::now(&tessera_jose::jwt::SystemClock);
    let store = n.server.store();
    let mut hashes = Vec::new();
    for i in 0..1_100u32 {
        let sid = format!("ses_many_{i:05}");
        let session = SessionRecord {
            id: sid.clone(),
            client_id: id.clone(),
            sub: format!("user-{i}"),
            org: "acme".into(),
            roles: Vec::new(),
            amr: Vec::new(),
            audience: API.into(),
            claims: serde_json::Map::new(),
            scope: Vec::new(),
            acr: None,
            created_at: now,
            expires_at: now + 3600,
            revoked_at: None,
            dpop_jkt: None,
            holder: None,
        };
        let hash = tessera_server::crypto::sha256(sid.as_bytes());
        let refresh = tessera_server::store::NewRefresh {
            hash: hash.clone(),
            created_at: now,
            expires_at: now + 3600,
        };
        store
            .create_session(&session, &refresh.record(&sid, &sid, &id))
            .await
            .unwrap();
        hashes.push(hash);
    }
    let r = call(
        n.admin(),
        "POST",
        "/admin/v1/revocations",
        Some(&token),
        Some(&json!({ "client_id": id })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["sessions_revoked"], 1_100);
    for hash in [&hashes[0], &hashes[499], &hashes[500], &hashes[1_099]] {
        let status = store.refresh_status(hash, now).await.unwrap().unwrap();
        assert!(!status.active, "a refresh token of a revoked session");
    }
}

#[tokio::test]
async fn a_large_revocation_on_sqlite() {
    let n = node(None).await;
    a_large_revocation(&n).await;
    n.server.shutdown().await;
}

#[tokio::test]
async fn a_large_revocation_on_postgres() {
    let n = node(Some(&fresh_pg_database().await)).await;
    a_large_revocation(&n).await;
    n.server.shutdown().await;
}

#[tokio::test]
async fn sessions_and_revocations_on_sqlite() {
    let n = node(None).await;
    sessions_and_revocations(&n).await;
    n.server.shutdown().await;
}

#[tokio::test]
async fn sessions_and_revocations_on_postgres() {
    let n = node(Some(&fresh_pg_database().await)).await;
    sessions_and_revocations(&n).await;
    n.server.shutdown().await;
}

fn kid_of(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    serde_json::from_slice::<Value>(&header).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn jwks_kids(addr: SocketAddr) -> Vec<String> {
    request(addr, "GET", "/.well-known/jwks.json").await.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn verifier_of(addr: SocketAddr) -> tessera_verify::Verifier {
    tessera_verify::Verifier::builder()
        .issuer(ISSUER)
        .audience(API)
        .algorithms([JwsAlgorithm::ES256])
        .jwks_uri(&format!("http://{addr}/.well-known/jwks.json"))
        .build()
        .await
        .unwrap()
}

/// Marks the current key compromised on `a`; `b` (the same node, or another
/// sharing the database) must follow.
async fn compromise(a: &Node, b: &Node) {
    let token = a.token(&["clients:write", "keys:read", "keys:write"]).await;
    let (id, secret) = api_client(a, &token, "app").await;
    let on_b = new_session(b.public(), &id, &secret, "alice").await;
    let access = on_b["access_token"].as_str().unwrap().to_owned();
    let leaked = kid_of(&access);
    let verifier = verifier_of(b.public()).await;
    verifier.verify::<Value>(&access).unwrap();
    // A sealed token it signed (recorded as tessera records jwe/nested ones).
    let sealed_token = "eyJh.sealed.token.for.test";
    a.server
        .store()
        .record_sealed(
            &SealedRecord {
                hash: tessera_server::tokens::refresh_hash(sealed_token),
                jti: "j1".into(),
                kind: "access_token".into(),
                format: "jwe".into(),
                client_id: id.clone(),
                session_id: None,
                session_ref: None,
                sub: "alice".into(),
                audience: API.into(),
                issued_at: 0,
                expires_at: i64::MAX / 2,
                revoked_at: None,
                kid: Some(leaked.clone()),
                jkt: None,
            },
            0,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        introspect(b.public(), &id, &secret, sealed_token).await["active"],
        true
    );

    let keys = call(a.admin(), "GET", "/admin/v1/keys", Some(&token), None)
        .await
        .json();
    let current = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "current")
        .unwrap()
        .clone();
    assert_eq!(current["kid"], leaked.as_str());
    assert_eq!(current["in_jwks"], true);
    let max_age = keys["jwks_max_age"].as_i64().unwrap();

    let before = tessera_jose::jwt::Clock::now(&tessera_jose::jwt::SystemClock);
    let r = call(
        a.admin(),
        "POST",
        &format!("/admin/v1/keys/{leaked}/compromised"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let done = r.json();
    assert_eq!(done["kid"], leaked.as_str());
    let new_kid = done["new_kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, leaked);
    let until = done["verifiers_may_accept_until"].as_i64().unwrap();
    assert!(
        until >= before + max_age && until <= before + max_age + 5,
        "{until} vs {before} + {max_age}"
    );

    // On the node that did it: at once.
    assert!(!jwks_kids(a.public()).await.contains(&leaked));
    assert!(jwks_kids(a.public()).await.contains(&new_kid));
    assert_eq!(
        introspect(a.public(), &id, &secret, &access).await["active"],
        false
    );
    assert_eq!(
        introspect(a.public(), &id, &secret, sealed_token).await["active"],
        false
    );
    let fresh = new_session(a.public(), &id, &secret, "bob").await;
    assert_eq!(
        kid_of(fresh["access_token"].as_str().unwrap()),
        new_kid,
        "a fresh key signs now"
    );
    // On the other node: within 5 s, without waiting for reload_every (1 h).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let kids = jwks_kids(b.public()).await;
        let signed = new_session(b.public(), &id, &secret, "carol").await;
        if !kids.contains(&leaked) && kid_of(signed["access_token"].as_str().unwrap()) == new_kid {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node b still uses {leaked}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        introspect(b.public(), &id, &secret, &access).await["active"],
        false
    );
    assert_eq!(
        introspect(b.public(), &id, &secret, sealed_token).await["active"],
        false
    );
    // A verifier that cached the old JWKS accepts it until it refreshes.
    verifier.refresh().await.unwrap();
    assert!(
        verifier.verify::<Value>(&access).is_err(),
        "refused after the JWKS refresh"
    );

    // The leaked key: compromised, its private part destroyed, never back.
    let stored = a.server.store().signing_keys().await.unwrap();
    let k = stored.iter().find(|k| k.kid == leaked).unwrap();
    assert_eq!(k.state, KeyState::Compromised);
    assert!(k.sealed_private.is_none());
    a.server.maintain_keys(before + 400 * 86_400).await.unwrap();
    assert!(!jwks_kids(a.public()).await.contains(&leaked));
    let listed = call(a.admin(), "GET", "/admin/v1/keys", Some(&token), None)
        .await
        .json();
    let k = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == leaked.as_str())
        .unwrap()
        .clone();
    assert_eq!(k["state"], "compromised");
    assert_eq!(k["in_jwks"], false);
    // Twice: a 409; an unknown kid: a 404.
    let again = call(
        a.admin(),
        "POST",
        &format!("/admin/v1/keys/{leaked}/compromised"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(again.status, 409, "{}", again.body);
    let unknown = call(
        a.admin(),
        "POST",
        "/admin/v1/keys/nope/compromised",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn a_compromised_key_leaves_at_once_on_sqlite() {
    let n = node(None).await;
    compromise(&n, &n).await;
    n.server.shutdown().await;
}

#[tokio::test]
async fn a_compromised_key_leaves_every_postgres_node_within_5_seconds() {
    let url = fresh_pg_database().await;
    let a = node(Some(&url)).await;
    let b = node(Some(&url)).await;
    // The overview of either node sees both, and knows which it is.
    let token = a.token(&["audit:read"]).await;
    let seen = call(b.admin(), "GET", "/admin/v1/overview", Some(&token), None)
        .await
        .json();
    assert_eq!(seen["store"], "postgresql");
    let nodes = seen["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{seen}");
    assert_eq!(nodes.iter().filter(|n| n["this"] == true).count(), 1);
    assert_eq!(seen["counts"]["clients"], Value::Null, "no clients:read");
    compromise(&a, &b).await;
    a.server.shutdown().await;
    b.server.shutdown().await;
}

#[tokio::test]
async fn rotation_through_the_admin_api() {
    let n = node(None).await;
    let token = n.token(&["keys:read", "keys:write"]).await;
    let before = call(n.admin(), "GET", "/admin/v1/keys", Some(&token), None)
        .await
        .json();
    let next = before["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "next")
        .unwrap()
        .clone();
    let r = call(
        n.admin(),
        "POST",
        "/admin/v1/keys/rotate",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    // Just published: it waits until every verifier can have it.
    assert_eq!(v["kid"], next["kid"]);
    assert!(v["signs_from"].as_i64().unwrap() > next["created_at"].as_i64().unwrap());
    n.server.shutdown().await;
}

#[tokio::test]
async fn the_admin_listener_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "TESSERA_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("TESSERA_ADMIN_LISTEN".to_owned(), "off".to_owned()),
    ];
    let config = Config::load(None, env, Some("127.0.0.1:0")).unwrap();
    assert_eq!(config.admin.listen, None);
    let server = Server::start(config, Some(MASTER)).await.unwrap();
    assert!(server.admin_addr().is_none());
    assert_eq!(
        request(server.local_addr(), "GET", "/admin/v1/clients")
            .await
            .status,
        404
    );
    server.shutdown().await;
}

/// Every change through the admin API and the public API appends one event,
/// naming who asked (the admin, with the request id it was answered with,
/// and its address; the client; the service itself), in a chain that
/// verifies; no token or secret appears in it, a refresh token only as its
/// HMAC (`tessera audit hash`).
async fn audited(n: &Node) {
    let ops = n.token(&["*"]).await;
    let reader = n.token(&["audit:read"]).await;
    // The admin API: a client, a roll, a mass revocation, a rotation.
    let (id, secret) = api_client(n, &ops, "audited").await;
    let roll = call(
        n.admin(),
        "POST",
        &format!("/admin/v1/clients/{id}/secret"),
        Some(&ops),
        Some(&json!({"grace_seconds": 60})),
    )
    .await;
    assert_eq!(roll.status, 200);
    let request_id = roll
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap()
        .trim()
        .to_owned();
    let second = roll.json()["client_secret"].as_str().unwrap().to_owned();
    // The public API: a session, its refresh token used twice (reuse).
    let s = new_session(n.public(), &id, &second, "alice").await;
    let refresh_token = s["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(n.public(), &id, &second, &refresh_token).await, 200);
    assert_eq!(refresh(n.public(), &id, &second, &refresh_token).await, 400);
    let r = call(
        n.admin(),
        "POST",
        "/admin/v1/revocations",
        Some(&ops),
        Some(&json!({"client_id": id})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        call(n.admin(), "POST", "/admin/v1/keys/rotate", Some(&ops), None)
            .await
            .status,
        200
    );
    let gone = call(
        n.admin(),
        "DELETE",
        &format!("/admin/v1/clients/{id}"),
        Some(&ops),
        None,
    )
    .await;
    assert_eq!(gone.status, 204);

    // Read it back, in pages.
    let mut events: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let page = call(
            n.admin(),
            "GET",
            &format!("/admin/v1/audit?after={after}&limit=3"),
            Some(&reader),
            None,
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "in order, no gap"
    );
    let find = |action: &str| -> Value {
        events
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {events:#?}"))
            .clone()
    };
    // At start-up the service generated its keys: the service itself.
    assert_eq!(find("key.generated")["actor"]["type"], "system");
    let admin_id = |token: &str| tessera_server::crypto::sha256(token.as_bytes());
    let ops_admin = n
        .server
        .store()
        .admin_by_token_hash(&admin_id(&ops))
        .await
        .unwrap()
        .unwrap();
    let created = find("client.created");
    assert_eq!(created["target"], id.as_str());
    assert_eq!(
        created["actor"],
        json!({"type": "admin", "id": ops_admin.id})
    );
    assert_eq!(created["source_ip"], "127.0.0.1");
    assert_eq!(created["details"]["scopes"], json!(["orders:read"]));
    let rolled = find("client.secret_rotated");
    // (The test's reply keeps the head lowercased.)
    assert_eq!(
        rolled["request_id"].as_str().unwrap().to_ascii_lowercase(),
        request_id,
        "the answer's X-Request-Id"
    );
    let session = find("session.created");
    assert_eq!(session["actor"], json!({"type": "client", "id": id}));
    assert_eq!(session["target"], s["session_id"]);
    let keys = tessera_server::audit::AuditKeys::from_master(
        &tessera_server::crypto::MasterKey::from_bytes(&[0x42; 32]).unwrap(),
    )
    .unwrap();
    let reuse = find("refresh.reuse_detected");
    assert_eq!(reuse["outcome"], "family_revoked");
    assert_eq!(
        reuse["details"]["refresh_token"],
        tessera_server::audit::secret_ref_of(&keys, refresh_token.as_bytes()).as_str(),
        "named by the HMAC tessera audit hash prints"
    );
    let mass = find("sessions.mass_revoked");
    assert_eq!(mass["details"]["by"], "client_id");
    assert_eq!(find("keys.rotation_requested")["actor"]["type"], "admin");
    assert_eq!(find("client.deleted")["target"], id.as_str());
    // No secret in any event.
    let text = serde_json::to_string(&events).unwrap();
    for secret in [
        secret.as_str(),
        second.as_str(),
        ops.as_str(),
        reader.as_str(),
        refresh_token.as_str(),
        s["access_token"].as_str().unwrap(),
        s["session_token"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "a secret in the audit trail");
    }
    // NDJSON when asked for.
    let ndjson = send(
        n.admin(),
        "GET",
        "/admin/v1/audit?limit=1000",
        &[
            ("Authorization", format!("Bearer {reader}")),
            ("Accept", "application/x-ndjson".to_owned()),
        ],
        "",
    )
    .await;
    assert_eq!(ndjson.status, 200);
    assert!(ndjson
        .headers
        .contains("content-type: application/x-ndjson"));
    let lines: Vec<Value> = ndjson
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= events.len());
    assert_eq!(lines[0]["seq"], 1);
    for bad in [
        "?after=-1",
        "?limit=0",
        "?limit=1001",
        "?after=x",
        "?since=x",
        "?until=-1",
        "?bogus=1",
    ] {
        let r = call(
            n.admin(),
            "GET",
            &format!("/admin/v1/audit{bad}"),
            Some(&reader),
            None,
        )
        .await;
        assert_eq!(r.status, 400, "{bad}");
    }
    // The chain verifies; the events are counted by action.
    let verified = tessera_server::audit::verify_store(n.server.store(), &keys)
        .await
        .unwrap();
    assert!(verified.events >= events.len() as i64, "{verified:?}");
    let metrics = request(n.public(), "GET", "/metrics").await.body;
    assert!(
        metrics.contains("tessera_audit_events_total{action=\"refresh.reuse_detected\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn every_change_is_audited_on_sqlite() {
    let n = node(None).await;
    audited(&n).await;
    n.server.shutdown().await;
}

#[tokio::test]
async fn every_change_is_audited_on_postgres() {
    let n = node(Some(&fresh_pg_database().await)).await;
    audited(&n).await;
    n.server.shutdown().await;
}

/// `[admin.tls]`: the admin listener speaks HTTPS (the public one stays as
/// configured); a key that cannot be loaded stops the start, naming the key.
#[tokio::test]
async fn the_admin_listener_speaks_tls_when_configured() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let env = |key: &std::path::Path| {
        vec![
            (
                "TESSERA_DATA_DIR".to_owned(),
                dir.path().join("d").display().to_string(),
            ),
            (
                "TESSERA_ADMIN_TLS_CERT".to_owned(),
                cert_path.display().to_string(),
            ),
            (
                "TESSERA_ADMIN_TLS_KEY".to_owned(),
                key.display().to_string(),
            ),
        ]
    };
    let config = Config::load(None, env(&key_path), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config, Some(MASTER)).await.unwrap();
    let admin = server.admin_addr().unwrap();

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
    let tcp = tokio::net::TcpStream::connect(admin).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(
        b"GET /admin/openapi.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    // Plain HTTP to the admin port gets no answer; the public port is plain.
    let plain = tokio::time::timeout(Duration::from_secs(5), async {
        let mut s = tokio::net::TcpStream::connect(admin).await.ok()?;
        s.write_all(b"GET /admin/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        Some(String::from_utf8_lossy(&out).into_owned())
    })
    .await;
    assert!(!matches!(plain, Ok(Some(ref s)) if s.starts_with("HTTP/1.1")));
    assert_eq!(
        request(server.local_addr(), "GET", "/healthz").await.status,
        200
    );
    server.shutdown().await;

    let config =
        Config::load(None, env(&dir.path().join("nope.pem")), Some("127.0.0.1:0")).unwrap();
    let err = Server::start(config, Some(MASTER)).await.unwrap_err();
    assert!(
        matches!(err, tessera_server::StartError::Tls(ref m) if m.contains("admin.tls")),
        "{err}"
    );
}

/// Admin bodies are bounded (64 KiB) and must be JSON objects.
#[tokio::test]
async fn admin_bodies_are_bounded_and_strict() {
    let n = node(None).await;
    let token = n.token(&["clients:write", "sessions:write"]).await;
    let big = format!(
        "{{\"name\":\"{}\",\"grants\":[\"sessions\"]}}",
        "x".repeat(100 * 1024)
    );
    let r = send(
        n.admin(),
        "POST",
        "/admin/v1/clients",
        &[
            ("Authorization", format!("Bearer {token}")),
            ("Content-Type", "application/json".to_owned()),
        ],
        &big,
    )
    .await;
    assert_eq!(r.status, 413, "{}", r.body);
    for (ctype, body, status) in [
        ("application/json", "[1,2]", 400),
        ("application/json", "{\"sub\":\"a\",\"sub\":\"b\"}", 400),
        ("application/json", "{", 400),
        ("text/plain", "{\"sub\":\"a\"}", 415),
    ] {
        let r = send(
            n.admin(),
            "POST",
            "/admin/v1/revocations",
            &[
                ("Authorization", format!("Bearer {token}")),
                ("Content-Type", ctype.to_owned()),
            ],
            body,
        )
        .await;
        assert_eq!(r.status, status, "{ctype} {body}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_request");
    }
    n.server.shutdown().await;
}
