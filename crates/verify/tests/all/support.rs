//! A scriptable issuer on a loopback port (metadata, JWKS, any path): what
//! each path answers can change during a test, and every request is counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::Router;
use serde_json::{json, Value};
use tessera_jose::jwa::{EcCurve, JwsAlgorithm};
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{JwsHeader, Signer};
use tessera_jose::jwt::{self, Clock, SystemClock};

pub const API: &str = super::API;

#[derive(Clone)]
struct Answer {
    status: u16,
    body: String,
    cache_control: Option<String>,
}

/// A loopback HTTP server answering what it is told, per path.
pub struct Mock {
    pub base: String,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Mock {
    pub async fn start() -> Mock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let answers: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let app = {
            let (answers, hits) = (answers.clone(), hits.clone());
            Router::new().fallback(move |uri: Uri| {
                let (answers, hits) = (answers.clone(), hits.clone());
                async move {
                    let path = uri.path().to_owned();
                    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
                    let answer = answers.lock().unwrap().get(&path).cloned();
                    let mut headers = HeaderMap::new();
                    match answer {
                        None => (StatusCode::NOT_FOUND, headers, String::new()),
                        Some(a) => {
                            if let Some(cc) = a.cache_control {
                                headers.insert(
                                    header::CACHE_CONTROL,
                                    HeaderValue::from_str(&cc).unwrap(),
                                );
                            }
                            (StatusCode::from_u16(a.status).unwrap(), headers, a.body)
                        }
                    }
                }
            })
        };
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Mock {
            base,
            answers,
            hits,
        }
    }

    /// `path` answers `status` with `body` from now on.
    pub fn serve(&self, path: &str, status: u16, body: impl Into<String>) {
        self.serve_cached(path, status, body, None);
    }

    pub fn serve_cached(
        &self,
        path: &str,
        status: u16,
        body: impl Into<String>,
        cache_control: Option<&str>,
    ) {
        self.answers.lock().unwrap().insert(
            path.to_owned(),
            Answer {
                status,
                body: body.into(),
                cache_control: cache_control.map(str::to_owned),
            },
        );
    }

    /// Serves RFC 8414 metadata naming `issuer` at `path`, with `jwks_uri`.
    pub fn serve_metadata(&self, path: &str, issuer: &str, jwks_uri: &str) {
        self.serve(
            path,
            200,
            json!({"issuer": issuer, "jwks_uri": jwks_uri}).to_string(),
        );
    }

    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// How many requests it received in all.
    pub fn total_hits(&self) -> usize {
        self.hits.lock().unwrap().values().sum()
    }
}

/// A P-256 key named `kid`.
pub fn ec_key(kid: &str) -> Jwk {
    Jwk::generate_ec(EcCurve::P256).unwrap().with_kid(kid)
}

/// A JWKS of the public parts of `keys`.
pub fn jwks(keys: &[&Jwk]) -> String {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::from_str(&k.to_public().unwrap().to_json()).unwrap())
        .collect();
    json!({ "keys": keys }).to_string()
}

/// An access token (`typ: at+jwt`, ES256) for [`API`] from `iss`, valid
/// for an hour from `now`.
pub fn access_token(key: &Jwk, iss: &str, now: i64) -> String {
    let claims = jwt::Claims::new(json!({"roles": ["reader"]}))
        .issuer(iss)
        .subject("user-1")
        .audience(API)
        .issued_at(now)
        .expires_at(now + 3600);
    jwt::sign(
        &Signer::new(key, JwsAlgorithm::ES256).unwrap(),
        &JwsHeader::new().typ("at+jwt"),
        &claims,
    )
    .unwrap()
}

/// A clock the test moves: it starts at the system time.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new() -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(SystemClock.now())))
    }
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
