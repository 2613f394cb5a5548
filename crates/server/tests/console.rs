//! The web console over real HTTP (issue 27): served on the admin listener
//! only; sign-in with an admin token into a server-side session; the
//! security headers of every answer; CSRF on every change; and a console
//! that is only a client of the admin API (the token's scopes rule, the
//! audit trail names the admin). The browser test (scripts/console-test)
//! drives the pages themselves.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::SocketAddr;

use base64::Engine as _;
use common::{send, Reply};
use serde_json::{json, Value};
use tessera_server::config::Config;
use tessera_server::store::Store;
use tessera_server::Server;

const ISSUER: &str = "https://auth.example.com";
const API: &str = "https://api.example.com";
const MASTER: &str = "4242424242424242424242424242424242424242424242424242424242424242";

struct Node {
    server: Server,
    _dir: tempfile::TempDir,
}

impl Node {
    fn admin(&self) -> SocketAddr {
        self.server.admin_addr().expect("the admin listener is on")
    }
    async fn token(&self, scopes: &[&str]) -> (String, String) {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let new = tessera_server::admins::create(self.server.store(), "ops", &scopes, 0)
            .await
            .unwrap();
        (new.token.to_string(), new.record.id.clone())
    }
}

async fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(
        &path,
        format!(
            "issuer = {ISSUER:?}\ndata_dir = {:?}\n[signing]\nalg = \"ES256\"\n\
             [[resources]]\naudience = {API:?}\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let config = Config::load(Some(&path), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config, Some(MASTER)).await.unwrap();
    Node { server, _dir: dir }
}

/// Every `Set-Cookie` of an answer.
fn set_cookies(r: &Reply) -> Vec<String> {
    r.raw_head
        .lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim().to_owned())
        })
        .collect()
}

/// The value of cookie `name` set by an answer.
fn cookie_value(r: &Reply, name: &str) -> Option<String> {
    set_cookies(r).iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

fn assert_console_headers(r: &Reply, what: &str) {
    let csp = r
        .raw_header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"));
    for needed in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "script-src 'self'",
    ] {
        assert!(csp.contains(needed), "{what}: CSP {csp} lacks {needed}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(
        r.raw_header("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        r.raw_header("referrer-policy").as_deref(),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(
        r.raw_header("cache-control").as_deref(),
        Some("no-store"),
        "{what}"
    );
}

/// A signed-in console: its cookie and CSRF token.
struct Signed {
    cookie: String,
    csrf: String,
}

impl Signed {
    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("Cookie", format!("tessera_console={}", self.cookie))]
    }

    async fn api(&self, addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Reply {
        let mut h = self.headers();
        h.push(("X-CSRF-Token", self.csrf.clone()));
        h.push(("Sec-Fetch-Site", "same-origin".to_owned()));
        h.push(("Origin", format!("http://{addr}")));
        if body.is_some() {
            h.push(("Content-Type", "application/json".to_owned()));
        }
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        send(addr, method, &format!("/console/api/{path}"), &h, &text).await
    }
}

/// The sign-in form's nonce (cookie and hidden field).
async fn login_form(addr: SocketAddr) -> String {
    let r = send(addr, "GET", "/console/login", &[], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_console_headers(&r, "login form");
    let nonce = cookie_value(&r, "tessera_login").expect("a sign-in nonce cookie");
    assert!(
        r.body.contains(&format!("value=\"{nonce}\"")),
        "the form carries the nonce"
    );
    nonce
}

async fn post_login(
    addr: SocketAddr,
    nonce: &str,
    form_csrf: &str,
    token: &str,
    extra: &[(&str, String)],
) -> Reply {
    let mut h = vec![
        ("Cookie", format!("tessera_login={nonce}")),
        (
            "Content-Type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
    ];
    h.extend(extra.iter().cloned());
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .append_pair("csrf", form_csrf)
        .finish();
    send(addr, "POST", "/console/login", &h, &body).await
}

async fn sign_in(addr: SocketAddr, token: &str) -> Signed {
    let nonce = login_form(addr).await;
    let r = post_login(addr, &nonce, &nonce, token, &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.raw_header("location").as_deref(), Some("/console/"));
    let set = set_cookies(&r);
    let session = set
        .iter()
        .find(|c| c.starts_with("tessera_console="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    signed_by(addr, cookie_value(&r, "tessera_console").unwrap()).await
}

/// The console page's CSRF token for a session cookie.
async fn signed_by(addr: SocketAddr, cookie: String) -> Signed {
    let page = send(
        addr,
        "GET",
        "/console/",
        &[("Cookie", format!("tessera_console={cookie}"))],
        "",
    )
    .await;
    assert_eq!(page.status, 200);
    let csrf = page
        .body
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries its CSRF token")
        .to_owned();
    Signed { cookie, csrf }
}

#[tokio::test]
async fn sign_in_pages_headers_and_sign_out() {
    let n = node().await;
    let addr = n.admin();
    let (token, _) = n.token(&["*"]).await;

    // Not signed in: every page leads to the sign-in form.
    let root = send(addr, "GET", "/", &[], "").await;
    assert_eq!(root.status, 303);
    assert_eq!(root.raw_header("location").as_deref(), Some("/console/"));
    assert_console_headers(&root, "/");
    for path in ["/console/", "/console/keys", "/console/inspector"] {
        let r = send(addr, "GET", path, &[], "").await;
        assert_eq!(r.status, 303, "{path}");
        assert_eq!(
            r.raw_header("location").as_deref(),
            Some("/console/login"),
            "{path}"
        );
        assert_console_headers(&r, path);
    }
    let api = send(addr, "GET", "/console/api/keys", &[], "").await;
    assert_eq!(api.status, 401);
    // Never on the public listener.
    let public = send(n.server.local_addr(), "GET", "/console/", &[], "").await;
    assert_eq!(public.status, 404);

    // A wrong token: the form again, with a fresh nonce, and no session.
    let nonce = login_form(addr).await;
    let wrong = post_login(addr, &nonce, &nonce, "tessera_admin_nope", &[]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("not a valid admin token"));
    assert!(cookie_value(&wrong, "tessera_console").is_none());

    let s = sign_in(addr, &token).await;
    for page in [
        "",
        "keys",
        "clients",
        "sessions",
        "audit",
        "resources",
        "inspector",
    ] {
        let r = send(addr, "GET", &format!("/console/{page}"), &s.headers(), "").await;
        assert_eq!(r.status, 200, "/console/{page}");
        assert_console_headers(&r, page);
        assert!(!r.body.contains("<script>"), "{page}: no inline script");
        assert!(
            !r.body.contains(&token),
            "{page}: the admin token never reaches the page"
        );
        assert!(
            r.body.contains("integrity=\"sha256-"),
            "{page}: SRI on its files"
        );
    }
    for (method, path) in [
        ("GET", "/console/nope"),
        ("GET", "/console/a/b"),
        ("GET", "/console/static/x/y"),
        ("GET", "/console/static/nope.js"),
        ("DELETE", "/console/keys"),
        ("PUT", "/console/login"),
    ] {
        let r = send(addr, method, path, &s.headers(), "").await;
        assert!(
            matches!(r.status, 404 | 405),
            "{method} {path}: {}",
            r.status
        );
        assert_console_headers(&r, path);
    }
    // The admin API's own answers are not the console's.
    let api = send(addr, "GET", "/admin/v1/keys", &[], "").await;
    assert!(api.raw_header("content-security-policy").is_none());

    // The embedded files are what the pages' SRI hashes say.
    let page = send(addr, "GET", "/console/inspector", &s.headers(), "").await;
    for name in ["console.js", "inspector.js", "console.css"] {
        let marker = format!("/console/static/{name}?v=");
        let at = page.body.find(&marker).expect(name);
        let rest = &page.body[at..];
        let url = rest.split('"').next().unwrap();
        let integrity = rest
            .split("integrity=\"")
            .nth(1)
            .and_then(|x| x.split('"').next())
            .unwrap();
        let file = send(addr, "GET", url, &s.headers(), "").await;
        assert_eq!(file.status, 200, "{url}");
        assert_console_headers(&file, url);
        let digest = tessera_server::crypto::sha256(file.body.as_bytes());
        let want = format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(integrity, want, "{name}");
    }

    // Through the console, the admin API.
    let keys = s.api(addr, "GET", "keys", None).await;
    assert_eq!(keys.status, 200, "{}", keys.body);
    assert!(!keys.json()["keys"].as_array().unwrap().is_empty());
    let overview = s.api(addr, "GET", "overview", None).await.json();
    assert_eq!(overview["issuer"], ISSUER);
    assert_eq!(overview["store"], "sqlite");
    assert_eq!(overview["counts"]["clients"], 0);
    assert_eq!(overview["counts"]["live_sessions"], 0);
    let nodes = overview["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{overview}");
    assert_eq!(nodes[0]["this"], true);
    assert!(nodes[0]["id"].as_str().unwrap().starts_with("node_"));
    let resources = s.api(addr, "GET", "resources", None).await.json();
    assert_eq!(resources["resources"][0]["audience"], API);
    assert_eq!(resources["resources"][0]["format"], "jws");
    assert!(resources["resources"][0]["readable_by"]
        .as_str()
        .unwrap()
        .starts_with("Anyone"));

    // Sign out: the session ends; the cookie is cleared.
    let mut h = s.headers();
    h.push((
        "Content-Type",
        "application/x-www-form-urlencoded".to_owned(),
    ));
    let bad = send(addr, "POST", "/console/logout", &h, "csrf=nope").await;
    assert_eq!(bad.status, 403, "sign-out needs the CSRF token");
    let out = send(
        addr,
        "POST",
        "/console/logout",
        &h,
        &format!("csrf={}", s.csrf),
    )
    .await;
    assert_eq!(out.status, 303);
    assert_eq!(
        out.raw_header("location").as_deref(),
        Some("/console/login")
    );
    assert!(set_cookies(&out)
        .iter()
        .any(|c| c.starts_with("tessera_console=;") && c.contains("Max-Age=0")));
    assert_eq!(s.api(addr, "GET", "keys", None).await.status, 401);
}

#[tokio::test]
async fn csrf_and_cross_site_requests_are_refused() {
    let n = node().await;
    let addr = n.admin();
    let (token, _) = n.token(&["*"]).await;

    // Sign-in: the nonce of the cookie and the form must match; a
    // cross-site post is refused whatever it carries.
    let nonce = login_form(addr).await;
    assert_eq!(
        post_login(addr, &nonce, "other", &token, &[]).await.status,
        403
    );
    assert_eq!(post_login(addr, "", "", &token, &[]).await.status, 403);
    let evil = [("Origin", "https://evil.example".to_owned())];
    assert_eq!(
        post_login(addr, &nonce, &nonce, &token, &evil).await.status,
        403
    );
    let cross = [("Sec-Fetch-Site", "cross-site".to_owned())];
    assert_eq!(
        post_login(addr, &nonce, &nonce, &token, &cross)
            .await
            .status,
        403
    );

    let s = sign_in(addr, &token).await;
    let body = json!({"name": "web", "grants": ["client_credentials"]}).to_string();
    let mut h = s.headers();
    h.push(("Content-Type", "application/json".to_owned()));
    // No CSRF token: refused, nothing created.
    let r = send(addr, "POST", "/console/api/clients", &h, &body).await;
    assert_eq!(r.status, 403, "{}", r.body);
    // A wrong one.
    let mut wrong = h.clone();
    wrong.push(("X-CSRF-Token", "x".repeat(43)));
    assert_eq!(
        send(addr, "POST", "/console/api/clients", &wrong, &body)
            .await
            .status,
        403
    );
    // The right token from another site.
    for (name, value) in [
        ("Origin", "https://evil.example".to_owned()),
        ("Sec-Fetch-Site", "cross-site".to_owned()),
        ("Sec-Fetch-Site", "same-site".to_owned()),
    ] {
        let mut x = h.clone();
        x.push(("X-CSRF-Token", s.csrf.clone()));
        x.push((name, value.clone()));
        let r = send(addr, "POST", "/console/api/clients", &x, &body).await;
        assert_eq!(r.status, 403, "{name}: {value}");
    }
    // A DELETE is a change too.
    let r = send(addr, "DELETE", "/console/api/sessions/ses_x", &h, "").await;
    assert_eq!(r.status, 403);
    // And reading goes through the page too: the CSRF token, this origin.
    let r = send(addr, "GET", "/console/api/clients", &s.headers(), "").await;
    assert_eq!(r.status, 403, "a GET without the page's CSRF token");
    let mut cross = s.headers();
    cross.push(("X-CSRF-Token", s.csrf.clone()));
    cross.push(("Sec-Fetch-Site", "same-site".to_owned()));
    let r = send(addr, "GET", "/console/api/audit/verify", &cross, "").await;
    assert_eq!(r.status, 403, "a GET from another port of this host");
    // `Origin: null` (a sandboxed frame) counts only with Sec-Fetch-Site.
    let mut null = h.clone();
    null.push(("X-CSRF-Token", s.csrf.clone()));
    null.push(("Origin", "null".to_owned()));
    let r = send(addr, "POST", "/console/api/clients", &null, &body).await;
    assert_eq!(r.status, 403);
    let none = s.api(addr, "GET", "clients", None).await.json();
    assert_eq!(
        none["clients"],
        json!([]),
        "no refused request created anything"
    );

    // With it: created, and the secret is shown (once, by the API).
    let created = s
        .api(
            addr,
            "POST",
            "clients",
            Some(json!({"name": "web", "grants": ["client_credentials"]})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.json()["client_secret"].is_string());
}

#[tokio::test]
async fn the_console_can_do_only_what_its_token_may() {
    let n = node().await;
    let addr = n.admin();
    let (token, admin_id) = n.token(&["keys:read", "audit:read"]).await;
    let s = sign_in(addr, &token).await;

    let page = send(addr, "GET", "/console/keys", &s.headers(), "").await;
    assert!(page.body.contains("data-scopes=\"keys:read audit:read\""));
    assert_eq!(s.api(addr, "GET", "keys", None).await.status, 200);
    let refused = s.api(addr, "POST", "keys/rotate", None).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["error"], "insufficient_scope");
    assert_eq!(s.api(addr, "GET", "clients", None).await.status, 403);
    assert_eq!(s.api(addr, "GET", "resources", None).await.status, 403);
    let overview = s.api(addr, "GET", "overview", None).await.json();
    assert_eq!(overview["counts"]["clients"], Value::Null);
    assert_eq!(overview["counts"]["live_sessions"], Value::Null);
    // Nothing outside the admin API is reachable through the console, and
    // a path is decoded once, by the admin router.
    for path in [
        "../openapi.json",
        "keys/../clients",
        "/keys",
        "keys//rotate",
        "clients%3Fx=1",
        "%6beys",
        "%2e%2e/openapi.json",
        "",
    ] {
        let r = s.api(addr, "GET", path, None).await;
        assert!(matches!(r.status, 400 | 404), "{path}: {}", r.status);
    }

    // Signing in again ends the session the browser had.
    let nonce = login_form(addr).await;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", &token)
        .append_pair("csrf", &nonce)
        .finish();
    let headers = [
        (
            "Cookie",
            format!("tessera_login={nonce}; tessera_console={}", s.cookie),
        ),
        (
            "Content-Type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("Sec-Fetch-Site", "same-origin".to_owned()),
    ];
    let again = send(addr, "POST", "/console/login", &headers, &body).await;
    assert_eq!(again.status, 303);
    assert_eq!(
        s.api(addr, "GET", "keys", None).await.status,
        401,
        "the old session ended"
    );
    let s = signed_by(addr, cookie_value(&again, "tessera_console").unwrap()).await;
    // Sign-ins are in the trail, as the admin's.
    let signed = s
        .api(
            addr,
            "GET",
            &format!("audit?action=console.signed_in&actor={admin_id}"),
            None,
        )
        .await
        .json();
    assert_eq!(signed["events"].as_array().unwrap().len(), 2, "{signed}");

    // A change made through the console is the admin's, in the trail.
    let (writer, writer_id) = n.token(&["*"]).await;
    let w = sign_in(addr, &writer).await;
    let rotated = w.api(addr, "POST", "keys/rotate", None).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let by_actor = s
        .api(addr, "GET", &format!("audit?actor={writer_id}"), None)
        .await
        .json();
    let mine = by_actor["events"].as_array().unwrap();
    assert!(
        !mine.is_empty(),
        "the rotation is in the trail as the admin's"
    );
    assert!(mine.iter().all(|e| e["actor"]["id"] == writer_id.as_str()));
    let action = mine
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .find(|a| a.starts_with("key"))
        .expect("the rotation's events");
    assert!(action.starts_with("key"), "{action}");
    let trail = s
        .api(addr, "GET", &format!("audit?action={action}"), None)
        .await;
    assert_eq!(trail.status, 200, "{}", trail.body);
    let events = trail.json()["events"].as_array().unwrap().clone();
    assert!(events.iter().all(|e| e["action"] == action.as_str()));
    assert!(events
        .iter()
        .any(|e| e["actor"]["id"] == writer_id.as_str()));
    let none = s
        .api(addr, "GET", "audit?since=4000000000", None)
        .await
        .json();
    assert_eq!(none["events"], json!([]));
    assert_eq!(none["next"], Value::Null);
    let chain = s.api(addr, "GET", "audit/verify", None).await.json();
    assert!(chain["verified_through"].as_i64().unwrap() >= 1, "{chain}");
    assert_eq!(chain["broken_at"], Value::Null);

    // The admin token deleted: the console session ends with it.
    assert!(n.server.store().delete_admin(&admin_id).await.unwrap());
    assert_eq!(s.api(addr, "GET", "keys", None).await.status, 401);
    let page = send(addr, "GET", "/console/keys", &s.headers(), "").await;
    assert_eq!(page.status, 303, "the session is gone too");
}
