//! Arbitrary HTTP requests through the service's real router (SQLite in a
//! temporary directory, one client): every parser a request reaches (Basic
//! credentials, forms, JSON bodies, client assertions, tokens) runs on
//! fuzzed bytes. Never a panic, and never a 5xx: bad input is a 4xx.
//!
//! Input layout: byte 0 picks the method, byte 1 the path (one of the
//! service's, or the fuzzed path), byte 2's low bits add the client's real
//! credentials and a content type; the rest is `path\n` (when fuzzed),
//! `name: value` header lines, a blank line, then the body.
#![no_main]
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use tessera_server::config::Config;
use tessera_server::{clients, Server};
use tower::ServiceExt;

struct Service {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    basic: String,
    _server: Server,
    _dir: tempfile::TempDir,
}

const PATHS: &[&str] = &[
    "/v1/sessions",
    "/oauth2/token",
    "/oauth2/introspect",
    "/oauth2/revoke",
    "/v1/sessions/s_x/step-up",
    "/v1/sessions/s_x",
    "/.well-known/jwks.json",
    "/.well-known/oauth-authorization-server",
    "/openapi.json",
    "/healthz",
];
const METHODS: &[&str] = &["POST", "GET", "DELETE", "PUT", "OPTIONS", "HEAD", "PATCH"];

fn service() -> &'static Service {
    static S: OnceLock<Service> = OnceLock::new();
    S.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let toml = dir.path().join("tessera.toml");
        std::fs::write(
            &toml,
            format!(
                "data_dir = {:?}\n[signing]\nalg = \"ES256\"\n[[resources]]\naudience = \"https://api.example.com\"\n",
                dir.path().join("data").display().to_string()
            ),
        )
        .expect("config");
        let config = Config::load(Some(&toml), Vec::new(), Some("127.0.0.1:0")).expect("config");
        let (server, basic) = runtime.block_on(async {
            let server = Server::start(config, Some(&"6b".repeat(32)))
                .await
                .expect("start");
            let grants = vec!["sessions".to_owned(), "client_credentials".to_owned()];
            let new = clients::create(server.store(), "fuzz", &grants, None, 0)
                .await
                .expect("client");
            let raw = format!("{}:{}", new.record.id, &*new.secret);
            let basic = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            );
            (server, basic)
        });
        Service {
            router: server.router(),
            runtime,
            basic,
            _server: server,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let [m, p, flags, rest @ ..] = data else {
        return;
    };
    let s = service();
    let method = METHODS[usize::from(*m) % METHODS.len()];
    let mut rest = rest;
    let path = match PATHS.get(usize::from(*p) % (PATHS.len() + 1)) {
        Some(path) => (*path).to_owned(),
        None => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let path = String::from_utf8_lossy(&rest[..end]).into_owned();
            rest = rest.get(end + 1..).unwrap_or_default();
            path
        }
    };
    let split = rest
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(rest.len());
    let head = String::from_utf8_lossy(&rest[..split]).into_owned();
    let body = rest.get(split + 2..).unwrap_or_default().to_vec();
    let mut builder = Request::builder().method(method).uri(path.as_str());
    if flags & 1 == 1 {
        builder = builder.header("authorization", s.basic.as_str());
    }
    match flags >> 1 & 3 {
        1 => builder = builder.header("content-type", "application/x-www-form-urlencoded"),
        2 => builder = builder.header("content-type", "application/json"),
        _ => {}
    }
    for line in head.lines() {
        if let Some((name, value)) = line.split_once(':') {
            builder = builder.header(name.trim(), value.trim());
        }
    }
    // Requests the HTTP layer itself could never form (a bad URI or header
    // name) are not the service's to answer.
    let Ok(request) = builder.body(Body::from(body)) else {
        return;
    };
    let response = s
        .runtime
        .block_on(s.router.clone().oneshot(request))
        .expect("infallible");
    assert!(
        response.status() < StatusCode::INTERNAL_SERVER_ERROR,
        "{method} {path}: {}",
        response.status()
    );
});
