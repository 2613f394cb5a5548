//! What the service's integration tests share: plain HTTP/1.1 requests
//! and a throw-away PostgreSQL database.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An answer: status, the head lowercased, the body.
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: String,
    /// The head as received.
    pub raw_head: String,
}

impl Reply {
    /// The value of header `name` (any case) as received, if present.
    pub fn raw_header(&self, name: &str) -> Option<String> {
        self.raw_head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

pub async fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    send(addr, method, path, &[], "").await
}

pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
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
        raw_head: head.to_owned(),
    }
}

/// A fresh, empty PostgreSQL database on the server named by
/// `TESSERA_TEST_PG_URL` (scripts/test starts a throw-away one): its URL.
pub async fn fresh_pg_database() -> String {
    let base = std::env::var("TESSERA_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "TESSERA_TEST_PG_URL is not set: run the tests through scripts/test, which starts a \
             throw-away PostgreSQL, or point it at a server you own"
        )
    });
    tessera_server::testing::fresh_pg_database(&base)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}
