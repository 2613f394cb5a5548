//! The service over real HTTP: started on a free port with a temporary
//! data directory, spoken to with plain HTTP/1.1 requests.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::Path;

use tessera_jose::jwk::JwkSet;
use tessera_server::config::Config;
use tessera_server::{Server, StartError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

async fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

fn config(data_dir: &Path) -> Config {
    let env = vec![
        (
            "TESSERA_DATA_DIR".to_owned(),
            data_dir.display().to_string(),
        ),
        ("TESSERA_SIGNING_ALG".to_owned(), "ES256".to_owned()),
    ];
    Config::load(None, env, Some("127.0.0.1:0")).unwrap()
}

#[tokio::test]
async fn newcomer_start_serves_health_and_jwks_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tessera-data");
    let server = Server::start(config(&data), None).await.unwrap();
    let addr = server.local_addr();

    let health = request(addr, "GET", "/healthz").await;
    assert_eq!(health.status, 200);
    assert!(health.body.contains("\"ok\""));

    let jwks = request(addr, "GET", "/.well-known/jwks.json").await;
    assert_eq!(jwks.status, 200);
    assert!(
        jwks.headers.contains("cache-control: public, max-age=3600"),
        "{}",
        jwks.headers
    );
    assert!(jwks
        .headers
        .contains("content-type: application/jwk-set+json"));
    let set = JwkSet::from_json(jwks.body.as_bytes()).unwrap();
    assert_eq!(set.keys().len(), 2, "current and next");
    assert!(set
        .keys()
        .iter()
        .all(|k| !k.is_private() && k.alg() == Some("ES256")));
    assert!(!jwks.body.contains("\"d\""));

    // The data directory holds the database and a generated master key.
    assert!(data.join("tessera.db").exists());
    assert!(data.join("master.key").exists());
    server.shutdown().await;

    // Restart: the same keys come back.
    let server = Server::start(config(&data), None).await.unwrap();
    let again = request(server.local_addr(), "GET", "/.well-known/jwks.json").await;
    assert_eq!(again.body, jwks.body);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_rfc6749_shaped_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(&dir.path().join("d")), None)
        .await
        .unwrap();
    let addr = server.local_addr();
    let missing = request(addr, "GET", "/nope").await;
    assert_eq!(missing.status, 404);
    let body: serde_json::Value = serde_json::from_str(&missing.body).unwrap();
    assert_eq!(body["error"], "not_found");
    let wrong = request(addr, "POST", "/.well-known/jwks.json").await;
    assert_eq!(wrong.status, 405);
    let body: serde_json::Value = serde_json::from_str(&wrong.body).unwrap();
    assert_eq!(body["error"], "invalid_request");
    server.shutdown().await;
}

#[tokio::test]
async fn a_different_master_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let key_a = "aa".repeat(32);
    let key_b = "bb".repeat(32);
    Server::start(config(&data), Some(&key_a))
        .await
        .unwrap()
        .shutdown()
        .await;
    let err = Server::start(config(&data), Some(&key_b))
        .await
        .unwrap_err();
    assert!(matches!(err, StartError::Keys(_)), "{err}");
    assert!(
        err.to_string()
            .contains("does not open with this master key"),
        "{err}"
    );
    // No key file was written: the key came from the environment.
    assert!(!data.join("master.key").exists());
}
