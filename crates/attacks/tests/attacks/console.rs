//! Attacks on the web console (issue 27): a page of another site (or of
//! another port of the admin host) driving a signed-in operator's browser;
//! signing the operator into the attacker's session; planting a session id
//! before sign-in; reaching past the admin API through the console's
//! forwarding. Each refused, and nothing changed.

use std::net::SocketAddr;

use serde_json::Value;
use tessera_server::config::Config;
use tessera_server::store::Store;
use tessera_server::{admins, Server};

use crate::service::{send_method, Reply};

const MASTER: &str = "6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e";

struct Console {
    server: Server,
    token: String,
    _dir: tempfile::TempDir,
}

impl Console {
    fn addr(&self) -> SocketAddr {
        self.server.admin_addr().unwrap()
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> Reply {
        send_method(self.addr(), method, path, headers, body).await
    }

    /// A signed-in operator: (cookie value, CSRF token).
    async fn sign_in(&self) -> (String, String) {
        let form = self.send("GET", "/console/login", &[], "").await;
        let nonce = cookie(&form, "tessera_login").unwrap();
        let r = self
            .send(
                "POST",
                "/console/login",
                &login_headers(&format!("tessera_login={nonce}")),
                &login_body(&self.token, &nonce),
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        let id = cookie(&r, "tessera_console").unwrap();
        let page = self
            .send(
                "GET",
                "/console/",
                &[("Cookie", format!("tessera_console={id}"))],
                "",
            )
            .await;
        let csrf = page
            .body
            .split("name=\"csrf-token\" content=\"")
            .nth(1)
            .and_then(|x| x.split('"').next())
            .unwrap()
            .to_owned();
        (id, csrf)
    }

    async fn kids(&self) -> Vec<String> {
        self.server
            .store()
            .signing_keys()
            .await
            .unwrap()
            .iter()
            .map(|k| format!("{}:{}", k.kid, k.state.as_str()))
            .collect()
    }
}

fn login_headers(cookie: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Cookie", cookie.to_owned()),
        ("Content-Type", "application/x-www-form-urlencoded".into()),
    ]
}

fn login_body(token: &str, csrf: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token)
        .append_pair("csrf", csrf)
        .finish()
}

/// The value a `Set-Cookie` of `r` gives cookie `name`.
fn cookie(r: &Reply, name: &str) -> Option<String> {
    r.head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        if !n.eq_ignore_ascii_case("set-cookie") {
            return None;
        }
        let (k, v) = v.trim().split(';').next()?.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

async fn console() -> Console {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(
        &path,
        format!(
            "issuer = \"https://auth.example.com\"\ndata_dir = {:?}\n[signing]\nalg = \"ES256\"\n",
            dir.path().join("d").display().to_string()
        ),
    )
    .unwrap();
    let config = Config::load(Some(&path), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config, Some(MASTER)).await.unwrap();
    let token = admins::create(server.store(), "ops", &["*".to_owned()], 0)
        .await
        .unwrap()
        .token
        .to_string();
    Console {
        server,
        token,
        _dir: dir,
    }
}

#[tokio::test]
async fn a_cross_site_page_cannot_drive_the_operators_console() {
    let c = console().await;
    let (id, csrf) = c.sign_in().await;
    let keys = c.kids().await;
    let session = format!("tessera_console={id}");
    let json = ("Content-Type", "application/json".to_owned());
    // What a page of another origin can make the browser send: the cookie
    // (a same-site page of another port even with SameSite=Strict), but
    // not the CSRF token, which only the console's own page holds — or,
    // with it somehow, its own Origin and Sec-Fetch-Site.
    let attempts: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "no CSRF token",
            vec![("Cookie", session.clone()), json.clone()],
        ),
        (
            "a guessed CSRF token",
            vec![
                ("Cookie", session.clone()),
                ("X-CSRF-Token", "A".repeat(43)),
                json.clone(),
            ],
        ),
        (
            "a form post (no custom header possible)",
            vec![
                ("Cookie", session.clone()),
                ("Content-Type", "application/x-www-form-urlencoded".into()),
                ("Sec-Fetch-Site", "cross-site".into()),
                ("Origin", "https://evil.example".into()),
            ],
        ),
        (
            "the token, from another origin",
            vec![
                ("Cookie", session.clone()),
                ("X-CSRF-Token", csrf.clone()),
                ("Origin", "https://evil.example".into()),
                json.clone(),
            ],
        ),
        (
            "the token, from another port of the host (same site)",
            vec![
                ("Cookie", session.clone()),
                ("X-CSRF-Token", csrf.clone()),
                ("Sec-Fetch-Site", "same-site".into()),
                json.clone(),
            ],
        ),
        (
            "the token, from a sandboxed frame (Origin: null)",
            vec![
                ("Cookie", session.clone()),
                ("X-CSRF-Token", csrf.clone()),
                ("Origin", "null".into()),
                ("Sec-Fetch-Site", "cross-site".into()),
                json.clone(),
            ],
        ),
    ];
    for (what, headers) in &attempts {
        for (method, path, body) in [
            ("POST", "/console/api/keys/rotate", ""),
            (
                "POST",
                "/console/api/clients",
                r#"{"name":"evil","grants":["client_credentials"]}"#,
            ),
            ("POST", "/console/api/revocations", r#"{"sub":"alice"}"#),
            ("GET", "/console/api/clients", ""),
            ("POST", "/console/logout", "csrf=x"),
        ] {
            let r = c.send(method, path, headers, body).await;
            assert_eq!(r.status, 403, "{what}: {method} {path}: {}", r.body);
            assert!(!r.body.contains("client_secret"), "{what}");
        }
    }
    assert_eq!(c.kids().await, keys, "no key rotated");
    assert!(
        c.server.store().clients().await.unwrap().is_empty(),
        "no client created"
    );
    // The session is still the operator's, and works from the console page.
    let ok = c
        .send(
            "GET",
            "/console/api/keys",
            &[
                ("Cookie", session),
                ("X-CSRF-Token", csrf),
                ("Sec-Fetch-Site", "same-origin".into()),
            ],
            "",
        )
        .await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn no_signing_in_as_the_attacker_and_no_planted_session() {
    let c = console().await;
    // Login CSRF: another site posts the attacker's own admin token, to
    // sign the operator into the attacker's console. Without the sign-in
    // form's nonce (its cookie and its field together), or from another
    // site, nothing is signed in.
    let form = c.send("GET", "/console/login", &[], "").await;
    let nonce = cookie(&form, "tessera_login").unwrap();
    for (what, cookie_header, field, extra) in [
        ("no nonce at all", String::new(), String::new(), None),
        (
            "a field without its cookie",
            String::new(),
            nonce.clone(),
            None,
        ),
        (
            "a made-up pair",
            "tessera_login=made-up".to_owned(),
            "other".to_owned(),
            None,
        ),
        (
            "the pair, from another site",
            format!("tessera_login={nonce}"),
            nonce.clone(),
            Some(("Sec-Fetch-Site", "cross-site".to_owned())),
        ),
        (
            "the pair, from a sandboxed frame",
            format!("tessera_login={nonce}"),
            nonce.clone(),
            Some(("Origin", "null".to_owned())),
        ),
    ] {
        let mut headers = login_headers(&cookie_header);
        headers.extend(extra);
        let r = c
            .send(
                "POST",
                "/console/login",
                &headers,
                &login_body(&c.token, &field),
            )
            .await;
        assert_eq!(r.status, 403, "{what}");
        assert!(
            cookie(&r, "tessera_console").is_none(),
            "{what}: no session"
        );
    }
    // Session fixation: an id planted in the browser before sign-in is
    // never the session's; it opens nothing before or after.
    let planted = "planted-by-the-attacker-0000000000000000000";
    let r = c
        .send(
            "POST",
            "/console/login",
            &login_headers(&format!("tessera_login={nonce}; tessera_console={planted}")),
            &login_body(&c.token, &nonce),
        )
        .await;
    assert_eq!(r.status, 303);
    let issued = cookie(&r, "tessera_console").unwrap();
    assert_ne!(issued, planted);
    let with_planted = c
        .send(
            "GET",
            "/console/keys",
            &[("Cookie", format!("tessera_console={planted}"))],
            "",
        )
        .await;
    assert_eq!(with_planted.status, 303, "the planted id is no session");
    // And the admin token never comes back to the browser.
    let page = c
        .send(
            "GET",
            "/console/keys",
            &[("Cookie", format!("tessera_console={issued}"))],
            "",
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(&c.token) && !page.head.contains(&c.token));
}

#[tokio::test]
async fn the_console_forwards_to_the_admin_api_and_nowhere_else() {
    let c = console().await;
    let (id, csrf) = c.sign_in().await;
    let headers = [
        ("Cookie", format!("tessera_console={id}")),
        ("X-CSRF-Token", csrf),
        ("Sec-Fetch-Site", "same-origin".to_owned()),
    ];
    for path in [
        "/console/api/../openapi.json",
        "/console/api/..%2fopenapi.json",
        "/console/api/%2e%2e/openapi.json",
        "/console/api/keys/../../../console/keys",
        "/console/api//admin/v1/keys",
        "/console/api/clients%3Fx=1",
        "/console/api/%2e/keys",
    ] {
        let r = c.send("GET", path, &headers, "").await;
        assert!(
            matches!(r.status, 400 | 404),
            "{path}: {} {}",
            r.status,
            r.body
        );
        let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        assert!(
            body.get("keys").is_none() && body.get("openapi").is_none(),
            "{path}"
        );
    }
}
