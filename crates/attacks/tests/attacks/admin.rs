//! Attacks on the admin API (issue 25): who is asking, and may they ask for
//! this? Credentials of the public side (a client's secret, an access token
//! the service signed, a refresh token) are not admin tokens; an admin token
//! is not a client credential; an admin token without a scope changes
//! nothing and reveals nothing through the routes of that scope; an admin
//! route is never reachable on the public listener.

use std::net::SocketAddr;

use serde_json::{json, Value};
use tessera_server::config::Config;
use tessera_server::store::{Registration, Store};
use tessera_server::{admins, clients, Server};

use crate::service::{basic, form, send, send_method, Reply};

const API: &str = "https://api.example.com";
const MASTER: &str = "5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d";

struct Service {
    server: Server,
    client: (String, String),
    session: Value,
    _dir: tempfile::TempDir,
}

impl Service {
    fn public(&self) -> SocketAddr {
        self.server.local_addr()
    }
    fn admin(&self) -> SocketAddr {
        self.server.admin_addr().unwrap()
    }
    async fn admin_token(&self, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        admins::create(self.server.store(), "ops", &scopes, 0)
            .await
            .unwrap()
            .token
            .to_string()
    }
}

async fn service() -> Service {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(
        &path,
        format!(
            "issuer = \"https://auth.example.com\"\ndata_dir = {:?}\n[signing]\nalg = \"ES256\"\n\
             [[resources]]\naudience = {API:?}\n",
            dir.path().join("d").display().to_string()
        ),
    )
    .unwrap();
    let config = Config::load(Some(&path), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config, Some(MASTER)).await.unwrap();
    let registration = Registration {
        audiences: Some(vec![API.into()]),
        ..Default::default()
    };
    let grants = vec!["sessions".to_owned(), "refresh_token".to_owned()];
    let new = clients::create_with(server.store(), "backend", &grants, None, registration, 0)
        .await
        .unwrap();
    let client = (new.record.id.clone(), new.secret.to_string());
    let body = json!({"sub": "alice", "org": "acme", "audience": API}).to_string();
    let r = send(
        server.local_addr(),
        "/v1/sessions",
        &[
            basic(&client.0, &client.1),
            ("Content-Type", "application/json".into()),
        ],
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    Service {
        session: r.json(),
        server,
        client,
        _dir: dir,
    }
}

async fn as_bearer(addr: SocketAddr, method: &str, path: &str, token: &str, body: &str) -> Reply {
    let mut headers = vec![("Authorization", format!("Bearer {token}"))];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/json".into()));
    }
    send_method(addr, method, path, &headers, body).await
}

async fn session_active(s: &Service) -> bool {
    let token = s.session["access_token"].as_str().unwrap();
    let r = send(
        s.public(),
        "/oauth2/introspect",
        &[basic(&s.client.0, &s.client.1), form()],
        &format!("token={token}"),
    )
    .await;
    r.json()["active"] == true
}

/// Every credential of the public side, presented as an admin token: 401,
/// and nothing changes.
#[tokio::test]
async fn public_credentials_are_not_admin_tokens() {
    let s = service().await;
    let sid = s.session["session_id"].as_str().unwrap().to_owned();
    let credentials = [
        s.client.1.clone(),
        s.session["access_token"].as_str().unwrap().to_owned(),
        s.session["session_token"].as_str().unwrap().to_owned(),
        s.session["refresh_token"].as_str().unwrap().to_owned(),
        // The admin prefix glued to a real client secret, and injection-shaped ids.
        format!("tessera_admin_{}", s.client.1),
        "tessera_admin_' OR '1'='1' --".to_owned(),
        format!("tessera_admin_{}", "%00".repeat(15)),
    ];
    for credential in &credentials {
        for (method, path, body) in [
            ("GET", "/admin/v1/clients".to_owned(), ""),
            ("DELETE", format!("/admin/v1/sessions/{sid}"), ""),
            (
                "POST",
                "/admin/v1/revocations".to_owned(),
                r#"{"sub":"alice"}"#,
            ),
        ] {
            let r = as_bearer(s.admin(), method, &path, credential, body).await;
            assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
            assert!(!r.body.contains(&s.client.0), "nothing revealed");
        }
    }
    // Basic with the client's own id and secret: still not an admin.
    let r = send_method(
        s.admin(),
        "GET",
        "/admin/v1/clients",
        &[basic(&s.client.0, &s.client.1)],
        "",
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(session_active(&s).await, "nothing was revoked");
    s.server.shutdown().await;
}

/// An admin token is not a client credential, and admin routes do not
/// exist on the public listener, whatever the token.
#[tokio::test]
async fn an_admin_token_opens_nothing_on_the_public_listener() {
    let s = service().await;
    let all = s.admin_token(&["*"]).await;
    let token = s.session["access_token"].as_str().unwrap();
    let r = send(
        s.public(),
        "/oauth2/introspect",
        &[("Authorization", format!("Bearer {all}")), form()],
        &format!("token={token}"),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    let r = send(
        s.public(),
        "/oauth2/revoke",
        &[("Authorization", format!("Bearer {all}")), form()],
        &format!("token={token}"),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    for (method, path) in [
        ("POST", "/admin/v1/revocations"),
        ("GET", "/admin/v1/clients"),
        ("GET", "/admin//v1/clients"),
        ("GET", "/v1/../admin/v1/clients"),
        ("GET", "/ADMIN/V1/CLIENTS"),
        ("GET", "/admin/openapi.json"),
    ] {
        let r = as_bearer(s.public(), method, path, &all, r#"{"sub":"alice"}"#).await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.body);
    }
    assert!(session_active(&s).await);
    s.server.shutdown().await;
}

/// An admin that may read sessions cannot revoke them, nor read clients or
/// keys, nor touch a client: each refused with 403 and nothing changed.
#[tokio::test]
async fn a_scope_is_all_an_admin_token_opens() {
    let s = service().await;
    let reader = s.admin_token(&["sessions:read"]).await;
    let sid = s.session["session_id"].as_str().unwrap().to_owned();
    let id = s.client.0.clone();
    for (method, path, body) in [
        ("DELETE", format!("/admin/v1/sessions/{sid}"), String::new()),
        (
            "POST",
            "/admin/v1/revocations".into(),
            r#"{"sub":"alice"}"#.into(),
        ),
        ("GET", "/admin/v1/clients".into(), String::new()),
        ("GET", format!("/admin/v1/clients/{id}"), String::new()),
        ("DELETE", format!("/admin/v1/clients/{id}"), String::new()),
        (
            "POST",
            format!("/admin/v1/clients/{id}/secret"),
            String::new(),
        ),
        ("GET", "/admin/v1/keys".into(), String::new()),
        ("POST", "/admin/v1/keys/rotate".into(), String::new()),
    ] {
        let r = as_bearer(s.admin(), method, &path, &reader, &body).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(r.json()["error"], "insufficient_scope");
        assert!(
            !r.body.contains(&id) && !r.body.contains("alice"),
            "{}",
            r.body
        );
    }
    // Nothing changed: the session lives, the client's secret works, the keys did not move.
    assert!(session_active(&s).await);
    assert!(s.server.store().client(&id).await.unwrap().is_some());
    let keys = s.server.store().signing_keys().await.unwrap();
    assert!(keys.iter().all(|k| k.state.as_str() != "compromised"));
    // Yet it reads sessions, and sees no token in them.
    let r = as_bearer(
        s.admin(),
        "GET",
        "/admin/v1/sessions?sub=alice",
        &reader,
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["sessions"][0]["id"], sid.as_str());
    for secret in ["access_token", "session_token", "refresh_token"] {
        assert!(!r.body.contains(s.session[secret].as_str().unwrap()));
    }
    s.server.shutdown().await;
}
