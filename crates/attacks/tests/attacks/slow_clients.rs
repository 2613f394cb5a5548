//! Slow clients against the running service (slowloris and friends): a
//! request head that never ends, a body trickled a byte a second, hundreds
//! of idle connections, more connections than the cap. The service runs
//! with second-long [`Limits`] (through `Server::start_with`, which is not
//! configuration) so the suite stays quick; the production numbers and what
//! each bound does are in `tessera_server::listener`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tessera_server::config::Config;
use tessera_server::listener::Limits;
use tessera_server::Server;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MASTER: &str = "6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b";
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Scheduling on a busy two-core machine, not part of any bound.
const SLACK: Duration = Duration::from_secs(3);

fn quick() -> Limits {
    Limits {
        header_read_timeout: HEADER_TIMEOUT,
        request_timeout: REQUEST_TIMEOUT,
        tls_handshake_timeout: HEADER_TIMEOUT,
        ..Limits::default()
    }
}

async fn running(limits: Limits) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("tessera.toml");
    std::fs::write(
        &toml,
        format!(
            "data_dir = {:?}\n[signing]\nalg = \"ES256\"\n\
             [[resources]]\naudience = \"https://api.example.com\"\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let config = Config::load(Some(&toml), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start_with(config, Some(MASTER), limits)
        .await
        .unwrap();
    (server, dir)
}

/// Reads until the service closes the connection (EOF or reset) and
/// returns what it answered; fails if it is still open after `bound`.
async fn closed_within<R: AsyncRead + Unpin>(stream: &mut R, bound: Duration) -> Vec<u8> {
    let mut raw = Vec::new();
    let read = tokio::time::timeout(bound, stream.read_to_end(&mut raw)).await;
    assert!(read.is_ok(), "the connection is still open after {bound:?}");
    raw
}

/// `GET /healthz` on a new connection: the status.
async fn healthz(addr: SocketAddr) -> u16 {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    text.split(' ').nth(1).unwrap_or("0").parse().unwrap()
}

#[tokio::test]
async fn a_partial_header_is_cut_off() {
    let (server, _dir) = running(quick()).await;
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    tcp.write_all(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let sent = Instant::now();
    let answer = closed_within(&mut tcp, HEADER_TIMEOUT + SLACK).await;
    assert!(
        answer.is_empty(),
        "closed without an answer: {}",
        String::from_utf8_lossy(&answer)
    );
    assert!(sent.elapsed() >= HEADER_TIMEOUT / 2, "{:?}", sent.elapsed());
    server.shutdown().await;
}

#[tokio::test]
async fn a_body_trickled_byte_by_byte_is_cut_off() {
    let (server, _dir) = running(quick()).await;
    let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let (mut from_service, mut to_service) = tcp.into_split();
    to_service
        .write_all(
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
        )
        .await
        .unwrap();
    let sent = Instant::now();
    let trickle = tokio::spawn(async move {
        while to_service.write_all(b"a").await.is_ok() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    // Meanwhile the service answers everyone else.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(healthz(server.local_addr()).await, 200);

    let answer = closed_within(&mut from_service, REQUEST_TIMEOUT + SLACK).await;
    let text = String::from_utf8_lossy(&answer);
    // 408, or a reset that overtook it (the trickled bytes were unread).
    assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    assert!(
        sent.elapsed() >= REQUEST_TIMEOUT / 2,
        "{:?}",
        sent.elapsed()
    );
    trickle.abort();
    server.shutdown().await;
}

#[tokio::test]
async fn many_idle_connections_do_not_starve_new_requests() {
    let (server, _dir) = running(quick()).await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(TcpStream::connect(server.local_addr()).await.unwrap());
    }
    let asked = Instant::now();
    assert_eq!(healthz(server.local_addr()).await, 200);
    // Answered at once, not because the idle ones were cut off first.
    assert!(asked.elapsed() < HEADER_TIMEOUT, "{:?}", asked.elapsed());
    // And the idle ones do not stay.
    for tcp in &mut idle {
        assert!(closed_within(tcp, HEADER_TIMEOUT + SLACK).await.is_empty());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let limits = Limits {
        max_connections: 8,
        ..quick()
    };
    let (server, _dir) = running(limits).await;
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(server.local_addr()).await.unwrap());
    }
    // The ninth waits in the backlog until the header timeout frees slots.
    let asked = Instant::now();
    assert_eq!(healthz(server.local_addr()).await, 200);
    let waited = asked.elapsed();
    assert!(waited >= HEADER_TIMEOUT / 2, "not held back: {waited:?}");
    assert!(waited < HEADER_TIMEOUT + SLACK, "{waited:?}");
    server.shutdown().await;
}
