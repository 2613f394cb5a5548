//! The web console, on the admin listener (`/` → `/console/`): keys,
//! clients, sessions, the audit trail, resources, and a token inspector
//! that parses in the browser only.
//!
//! **A client of the admin API, nothing more.** An operator signs in by
//! pasting an admin token once; the console keeps it server-side in a
//! console session (the browser holds only an `HttpOnly`, `SameSite=Strict`
//! cookie: `__Host-` prefixed and `Secure` when the admin listener has TLS)
//! and forwards the page's calls (`/console/api/<path>`) to
//! `/admin/v1/<path>` with that token, through the admin router itself:
//! every call is authenticated, scoped and audited exactly as if a script
//! had made it. Pages hide what the token's scopes do not allow; the API
//! refuses it anyway.
//!
//! **Sessions** end after [`IDLE`] without a request, after [`ABSOLUTE`]
//! in any case, on logout, and when the admin token stops working. They
//! live in this node's memory (a restart signs everyone out).
//!
//! **Every console answer** carries a `Content-Security-Policy` without
//! `unsafe-inline` or `unsafe-eval` (scripts and styles are files embedded
//! in the binary, loaded with their SRI hash), `X-Content-Type-Options:
//! nosniff`, `Referrer-Policy: no-referrer`, `Cache-Control: no-store` and
//! `X-Frame-Options: DENY`. **Every state-changing request** carries the
//! session's CSRF token (the `X-CSRF-Token` header from the page, a form
//! field for sign-in and sign-out) and, when the browser says where it
//! comes from (`Sec-Fetch-Site`, `Origin`), comes from this origin: a
//! cross-site POST is a 403.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use axum::Router;
use tower::ServiceExt;
use zeroize::Zeroizing;

use crate::admins;
use crate::crypto::{random_token, sha256};
use crate::http::AppState;
use crate::store::Store;

pub mod assets;
pub mod pages;

/// A console session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(15 * 60);
/// And after this long whatever happens.
pub const ABSOLUTE: Duration = Duration::from_secs(8 * 60 * 60);
/// At most this many console sessions at once (the least recently used is
/// dropped).
pub const MAX_SESSIONS: usize = 1024;
/// At most this many per admin (its own least recently used is dropped
/// first): one admin token cannot sign everyone else out.
pub const MAX_SESSIONS_PER_ADMIN: usize = 8;
/// The largest request the console forwards.
const MAX_BODY: usize = super::MAX_BODY;
/// The header a page sends its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The Content-Security-Policy of every console answer.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// One signed-in operator.
struct ConsoleSession {
    /// The admin token, as pasted (never sent back to the browser).
    token: Zeroizing<String>,
    /// The CSRF token of this session.
    csrf: Zeroizing<String>,
    admin_id: String,
    admin_name: String,
    scopes: Vec<String>,
    started: Instant,
    seen: Instant,
}

/// What a page needs to know about its session.
#[derive(Clone)]
pub struct PageSession {
    /// The session's CSRF token (in the page, for its requests).
    pub csrf: String,
    /// The admin's id.
    pub admin_id: String,
    /// The admin's name.
    pub admin_name: String,
    /// The admin token's scopes.
    pub scopes: Vec<String>,
}

/// The console's state: the admin API router it calls, and its sessions.
pub struct Console<S> {
    app: Arc<AppState<S>>,
    api: Router,
    sessions: Sessions,
}

/// The console sessions of this node.
pub struct Sessions {
    secure: bool,
    map: Mutex<HashMap<Vec<u8>, ConsoleSession>>,
}

/// A session found for a request: its key in the map, what its page
/// needs, and the admin token to forward with.
type Found = (Vec<u8>, PageSession, Zeroizing<String>);

impl Sessions {
    /// No sessions yet; `secure` when the admin listener has TLS (the
    /// cookies are then `__Host-` prefixed and `Secure`).
    pub fn new(secure: bool) -> Self {
        Sessions {
            secure,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-tessera_console"
        } else {
            "tessera_console"
        }
    }

    /// The sign-in form's nonce cookie's name.
    pub fn login_cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-tessera_login"
        } else {
            "tessera_login"
        }
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Path=/`, and
    /// `Secure` with TLS.
    pub fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
        if self.secure {
            c.push_str("; Secure");
        }
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, ConsoleSession>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many sessions are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live session of this request at `now`, touched; `None` if there
    /// is none, or it ended (then it is forgotten).
    fn find(&self, headers: &HeaderMap, now: Instant) -> Option<Found> {
        let id = cookie(headers, self.cookie_name())?;
        let key = sha256(id.as_bytes());
        let mut sessions = self.lock();
        let s = sessions.get_mut(&key)?;
        if ended(s, now) {
            sessions.remove(&key);
            return None;
        }
        s.seen = now;
        let page = PageSession {
            csrf: s.csrf.to_string(),
            admin_id: s.admin_id.clone(),
            admin_name: s.admin_name.clone(),
            scopes: s.scopes.clone(),
        };
        Some((key, page, s.token.clone()))
    }

    /// A new session for `admin`, signed in with `token` at `now`: its id
    /// (the cookie's value; only its SHA-256 is kept).
    fn start(
        &self,
        token: &str,
        admin: &crate::store::AdminRecord,
        now: Instant,
    ) -> Option<String> {
        let id = random_token(32).ok()?;
        let csrf = random_token(32).ok()?;
        let mut sessions = self.lock();
        sessions.retain(|_, s| !ended(s, now));
        let least_recent = |sessions: &HashMap<Vec<u8>, ConsoleSession>, mine: bool| {
            sessions
                .iter()
                .filter(|(_, s)| !mine || s.admin_id == admin.id)
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
        };
        let own = sessions.values().filter(|s| s.admin_id == admin.id).count();
        if own >= MAX_SESSIONS_PER_ADMIN {
            if let Some(k) = least_recent(&sessions, true) {
                sessions.remove(&k);
            }
        }
        if sessions.len() >= MAX_SESSIONS {
            if let Some(k) = least_recent(&sessions, false) {
                sessions.remove(&k);
            }
        }
        sessions.insert(
            sha256(id.as_bytes()),
            ConsoleSession {
                token: Zeroizing::new(token.to_owned()),
                csrf,
                admin_id: admin.id.clone(),
                admin_name: admin.name.clone(),
                scopes: admin.scopes.clone(),
                started: now,
                seen: now,
            },
        );
        Some(id.to_string())
    }

    fn remove(&self, key: &[u8]) {
        self.lock().remove(key);
    }
}

/// Whether a session has ended at `now`: idle too long, or too old.
fn ended(s: &ConsoleSession, now: Instant) -> bool {
    now.saturating_duration_since(s.seen) > IDLE
        || now.saturating_duration_since(s.started) > ABSOLUTE
}

impl<S> Console<S> {
    fn session(&self, headers: &HeaderMap) -> Option<Found> {
        self.sessions.find(headers, Instant::now())
    }
}

/// The value of cookie `name` in the request, if it is there once.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=') {
                if k == name {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(v.to_owned());
                }
            }
        }
    }
    found
}

/// Whether a request comes from this origin, as far as the browser says:
/// `Sec-Fetch-Site` (same-origin, or none: typed by the user) and `Origin`
/// (this listener's own), when present. `Origin: null` — what a browser
/// sends for a form posted from a page under `Referrer-Policy:
/// no-referrer`, the console's own, but also a sandboxed frame's — names no
/// origin: then `Sec-Fetch-Site: same-origin` must vouch for it. A client
/// that sends neither (not a browser, or a browser too old for both) is
/// left to the CSRF token.
pub fn same_origin(headers: &HeaderMap, secure: bool) -> bool {
    let site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or(""));
    if site.is_some_and(|s| !matches!(s, "same-origin" | "none")) {
        return false;
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(o) if o.as_bytes() == b"null" => site == Some("same-origin"),
        Some(origin) => {
            let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
                return false;
            };
            let scheme = if secure { "https" } else { "http" };
            origin
                .to_str()
                .is_ok_and(|o| o == format!("{scheme}://{host}"))
        }
    }
}

fn equal(a: &str, b: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// The console's routes (merged into the admin listener's router), over
/// `api`, the admin API router it is a client of.
pub fn router<S: Store + Clone>(app: Arc<AppState<S>>, api: Router) -> Router {
    let secure = app.config.admin.tls.is_some();
    let console = Arc::new(Console {
        app,
        api,
        sessions: Sessions::new(secure),
    });
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        // Browsers ask for one; nothing to show.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/console/", get(overview::<S>))
        .route("/console/login", get(login_form::<S>).post(login::<S>))
        .route("/console/logout", post(logout::<S>))
        .route("/console/static/{file}", get(assets::serve))
        .route("/console/api/{*path}", any(forward::<S>))
        .route("/console/{page}", get(page::<S>))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(console)
}

/// Whether `path` is the console's (its pages, files and API, and what it
/// serves at `/`), whose every answer — a fallback's 404 or 405 too —
/// carries the console's headers.
pub fn is_console_path(path: &str) -> bool {
    path == "/" || path == "/favicon.ico" || path == "/console" || path.starts_with("/console/")
}

/// The headers of every console answer (the admin listener's router runs
/// this around everything, for [`is_console_path`] paths).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let console = is_console_path(request.uri().path());
    let mut response = next.run(request).await;
    if !console {
        return response;
    }
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

fn html(status: StatusCode, body: maud::Markup) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body.into_string(),
    )
        .into_response()
}

fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

async fn overview<S: Store>(State(c): State<Arc<Console<S>>>, headers: HeaderMap) -> Response {
    show(&c, &headers, "overview")
}

async fn page<S: Store>(
    State(c): State<Arc<Console<S>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    show(&c, &headers, &name)
}

fn show<S>(c: &Console<S>, headers: &HeaderMap, name: &str) -> Response {
    let Some(page) = pages::Page::named(name) else {
        return html(StatusCode::NOT_FOUND, pages::not_found());
    };
    match c.session(headers) {
        Some((_, session, _)) => html(
            StatusCode::OK,
            pages::shell(page, &session, &c.app.config.issuer),
        ),
        None => to_login(),
    }
}

fn login_page<S>(c: &Console<S>, status: StatusCode, error: Option<&str>) -> Response {
    let Ok(nonce) = random_token(32) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let mut response = html(status, pages::login(&nonce, error));
    response.headers_mut().append(
        header::SET_COOKIE,
        c.sessions
            .cookie(c.sessions.login_cookie_name(), &nonce, Some(600)),
    );
    response
}

async fn login_form<S: Store>(State(c): State<Arc<Console<S>>>, headers: HeaderMap) -> Response {
    if c.session(&headers).is_some() {
        return Redirect::to("/console/").into_response();
    }
    login_page(&c, StatusCode::OK, None)
}

/// The fields of a form post, by name (each at most once).
fn form(body: &[u8]) -> Option<HashMap<String, Zeroizing<String>>> {
    let mut fields = HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if fields
            .insert(k.into_owned(), Zeroizing::new(v.into_owned()))
            .is_some()
        {
            return None;
        }
    }
    Some(fields)
}

fn forbidden(why: &'static str) -> Response {
    json_error(StatusCode::FORBIDDEN, "forbidden", why)
}

async fn login<S: Store>(
    State(c): State<Arc<Console<S>>>,
    peer: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !same_origin(&headers, c.sessions.secure) {
        return forbidden("a cross-site sign-in is refused");
    }
    let Some(fields) = form(&body) else {
        return login_page(
            &c,
            StatusCode::BAD_REQUEST,
            Some("The form was not understood."),
        );
    };
    let expected = cookie(&headers, c.sessions.login_cookie_name());
    let sent = fields.get("csrf");
    let csrf_ok = matches!((&expected, sent), (Some(e), Some(s)) if !e.is_empty() && equal(e, s));
    if !csrf_ok {
        return forbidden("the sign-in form's CSRF token is missing or stale: reload the page");
    }
    let token = fields
        .get("token")
        .map(|t| t.trim().to_owned())
        .unwrap_or_default();
    let token = Zeroizing::new(token);
    let admin = match admins::authenticate(&c.app.store, &token).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            tracing::warn!("console sign-in refused: unknown admin token");
            return login_page(
                &c,
                StatusCode::UNAUTHORIZED,
                Some("This is not a valid admin token (tessera admins create makes one)."),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "console sign-in: the store failed");
            return login_page(
                &c,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("The store cannot be reached; try again."),
            );
        }
    };
    // A session this browser still had ends here (a new sign-in never
    // leaves an old cookie working beside it).
    if let Some((key, _, _)) = c.session(&headers) {
        c.sessions.remove(&key);
    }
    let Some(id) = c.sessions.start(&token, &admin, Instant::now()) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    tracing::info!(admin = %admin.id, "console sign-in");
    audit(
        &c,
        &admin.id,
        "console.signed_in",
        peer.as_ref().map(|p| &p.0),
    )
    .await;
    let mut response = Redirect::to("/console/").into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        c.sessions.cookie(c.sessions.cookie_name(), &id, None),
    );
    h.append(
        header::SET_COOKIE,
        c.sessions
            .cookie(c.sessions.login_cookie_name(), "", Some(0)),
    );
    response
}

async fn logout<S: Store>(
    State(c): State<Arc<Console<S>>>,
    peer: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !same_origin(&headers, c.sessions.secure) {
        return forbidden("a cross-site sign-out is refused");
    }
    if let Some((key, session, _)) = c.session(&headers) {
        let sent = form(&body).and_then(|mut f| f.remove("csrf"));
        if !sent.is_some_and(|s| equal(&s, &session.csrf)) {
            return forbidden("the CSRF token is missing or wrong");
        }
        c.sessions.remove(&key);
        audit(
            &c,
            &session.admin_id,
            "console.signed_out",
            peer.as_ref().map(|p| &p.0),
        )
        .await;
    }
    let mut response = to_login();
    response.headers_mut().append(
        header::SET_COOKIE,
        c.sessions.cookie(c.sessions.cookie_name(), "", Some(0)),
    );
    response
}

/// A console sign-in or sign-out in the audit trail, as the admin's (a
/// console session stands in for the admin token for hours).
async fn audit<S: Store>(
    c: &Console<S>,
    admin_id: &str,
    action: &str,
    peer: Option<&ConnectInfo<std::net::SocketAddr>>,
) {
    let actor = crate::audit::Actor::admin(admin_id);
    let context = crate::audit::Context {
        actor: Some(actor.clone()),
        request_id: Some(crate::audit::request_id()),
        source_ip: peer.map(|p| p.0.ip().to_string()),
    };
    let events = [crate::audit::Event::success(
        action,
        admin_id,
        serde_json::json!({}),
    )];
    let appended = crate::audit::with_context(context, c.app.store.append_audit(&events, actor));
    if let Err(e) = appended.await {
        tracing::error!(error = %e, action, "the console could not audit a sign-in or sign-out");
    }
}

fn json_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::json!({"error": code, "error_description": description}).to_string(),
    )
        .into_response()
}

/// `/console/api/<path>` → `/admin/v1/<path>` with the session's admin
/// token, through the admin API router: authenticated, scoped and audited
/// there, as any client's call.
async fn forward<S: Store>(
    State(c): State<Arc<Console<S>>>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Some((key, session, token)) = c.session(&parts.headers) else {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "no console session: sign in again",
        );
    };
    // Every call, reading ones too, comes from a console page: this origin
    // (when the browser says) and the session's CSRF token. A page of
    // another port of this host (the same site for SameSite cookies)
    // cannot drive the console even to read.
    if !same_origin(&parts.headers, c.sessions.secure) {
        return forbidden("a cross-site request is refused");
    }
    let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if !sent.is_some_and(|s| equal(s, &session.csrf)) {
        return forbidden("the CSRF token is missing or wrong");
    }
    // The path as sent (still percent-encoded: the admin router decodes it
    // once), under /admin/v1/ and nowhere else.
    let raw = parts
        .uri
        .path()
        .strip_prefix("/console/api/")
        .unwrap_or_default();
    if path.is_empty()
        || raw
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return json_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint");
    }
    let target = match parts.uri.query() {
        Some(q) => format!("/admin/v1/{raw}?{q}"),
        None => format!("/admin/v1/{raw}"),
    };
    let authorization = Zeroizing::new(format!("Bearer {}", token.as_str()));
    let Ok(bearer) = HeaderValue::from_str(&authorization) else {
        return json_error(StatusCode::UNAUTHORIZED, "invalid_token", "sign in again");
    };
    let mut inner = Request::builder().method(parts.method.clone()).uri(target);
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = parts.headers.get(&name) {
            inner = inner.header(name, v.clone());
        }
    }
    let Ok(mut inner) = inner
        .header(header::AUTHORIZATION, bearer)
        .body(Body::new(body))
    else {
        return json_error(StatusCode::BAD_REQUEST, "invalid_request", "bad request");
    };
    if let Some(peer) = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>() {
        inner.extensions_mut().insert(*peer);
    }
    let response = match c.api.clone().oneshot(inner).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if response.status() == StatusCode::UNAUTHORIZED {
        // The admin token stopped working (deleted): so does the session.
        c.sessions.remove(&key);
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn admin() -> crate::store::AdminRecord {
        crate::store::AdminRecord {
            id: "adm_1".into(),
            name: "ops".into(),
            scopes: vec!["keys:read".into()],
            token_hash: vec![0; 32],
            created_at: 0,
        }
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_session_ends_idle_or_old_and_is_then_forgotten() {
        let s = Sessions::new(false);
        let t0 = Instant::now();
        let id = s.start("tessera_admin_x", &admin(), t0).unwrap();
        let h = with_cookie(&format!("tessera_console={id}"));
        let (_, page, token) = s.find(&h, t0).unwrap();
        assert_eq!(token.as_str(), "tessera_admin_x");
        assert_eq!(page.scopes, vec!["keys:read".to_owned()]);
        // Used within the idle time, again and again: alive...
        let mut t = t0;
        while t.duration_since(t0) < ABSOLUTE - IDLE {
            t += IDLE - Duration::from_secs(1);
            assert!(s.find(&h, t).is_some());
        }
        // ...until the absolute limit, however busy.
        assert!(s.find(&h, t0 + ABSOLUTE + Duration::from_secs(1)).is_none());
        assert!(s.is_empty(), "an ended session is forgotten");

        let id = s.start("tessera_admin_y", &admin(), t0).unwrap();
        let h = with_cookie(&format!("tessera_console={id}"));
        assert!(s.find(&h, t0 + IDLE + Duration::from_secs(1)).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn only_the_exact_cookie_once_names_a_session() {
        let s = Sessions::new(false);
        let now = Instant::now();
        let id = s.start("tessera_admin_x", &admin(), now).unwrap();
        assert!(s
            .find(
                &with_cookie(&format!("a=b; tessera_console={id}; c=d")),
                now
            )
            .is_some());
        for bad in [
            format!("tessera_console={id}x"),
            format!("Tessera_console={id}"),
            format!("tessera_console={id}; tessera_console={id}"),
            // Cookie tossing: a second value set by a sibling domain.
            format!("tessera_console=other; tessera_console={id}"),
            String::new(),
        ] {
            assert!(s.find(&with_cookie(&bad), now).is_none(), "{bad}");
        }
        // With TLS, only the __Host- cookie counts.
        let tls = Sessions::new(true);
        let id = tls.start("tessera_admin_x", &admin(), now).unwrap();
        assert!(tls
            .find(&with_cookie(&format!("tessera_console={id}")), now)
            .is_none());
        assert!(tls
            .find(&with_cookie(&format!("__Host-tessera_console={id}")), now)
            .is_some());
        let set = tls.cookie(tls.cookie_name(), "v", None);
        let set = set.to_str().unwrap();
        assert!(set.starts_with("__Host-tessera_console=v; Path=/; HttpOnly; SameSite=Strict"));
        assert!(set.contains("; Secure"));
    }

    #[test]
    fn the_session_map_is_bounded_overall_and_per_admin() {
        let s = Sessions::new(false);
        let now = Instant::now();
        let mut other = admin();
        other.id = "adm_other".into();
        let theirs = s.start("t", &other, now).unwrap();
        // One admin signing in again and again keeps at most its own few.
        let mine: Vec<String> = (1..=MAX_SESSIONS_PER_ADMIN + 3)
            .map(|i| {
                s.start("t", &admin(), now + Duration::from_millis(i as u64))
                    .unwrap()
            })
            .collect();
        assert_eq!(s.len(), MAX_SESSIONS_PER_ADMIN + 1);
        let later = now + Duration::from_secs(1);
        let found = |id: &str| s.find(&with_cookie(&format!("tessera_console={id}")), later);
        assert!(found(&theirs).is_some(), "another admin's session stays");
        assert!(found(&mine[0]).is_none(), "its own oldest went");
        assert!(found(mine.last().unwrap()).is_some());
        // Many admins: the overall bound, least recently used first.
        let s = Sessions::new(false);
        let first = s.start("t", &admin(), now).unwrap();
        for i in 1..=MAX_SESSIONS {
            let mut a = admin();
            a.id = format!("adm_{i}");
            s.start("t", &a, now + Duration::from_millis(i as u64))
                .unwrap();
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        let h = with_cookie(&format!("tessera_console={first}"));
        assert!(s.find(&h, later).is_none(), "the least recently used went");
    }

    #[test]
    fn what_counts_as_this_origin() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            m.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8081"));
            for (k, v) in pairs {
                m.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            m
        };
        assert!(same_origin(&h(&[]), false), "a non-browser client");
        assert!(same_origin(&h(&[("sec-fetch-site", "same-origin")]), false));
        assert!(same_origin(&h(&[("sec-fetch-site", "none")]), false));
        assert!(same_origin(
            &h(&[("origin", "http://127.0.0.1:8081")]),
            false
        ));
        assert!(same_origin(
            &h(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
            false
        ));
        for bad in [
            vec![("sec-fetch-site", "cross-site")],
            vec![("sec-fetch-site", "same-site")],
            vec![("origin", "http://evil.example")],
            vec![("origin", "https://127.0.0.1:8081")],
            vec![
                ("origin", "http://127.0.0.1:8081"),
                ("sec-fetch-site", "cross-site"),
            ],
            vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
        ] {
            assert!(!same_origin(&h(&bad), false), "{bad:?}");
        }
        assert!(same_origin(
            &h(&[("origin", "https://127.0.0.1:8081")]),
            true
        ));
    }
}
