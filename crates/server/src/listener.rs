//! # The listener: how the service takes connections
//!
//! Which function do I call? None: [`crate::Server::start`] serves with
//! [`Limits::default`]; [`crate::Server::start_with`] takes other [`Limits`]
//! (tests use second-long timeouts). They are constructor arguments, not
//! configuration: the defaults below are the service's policy.
//!
//! Every connection is HTTP/1.1 (over TLS 1.2/1.3 when a certificate is
//! configured; ALPN offers `http/1.1` only, so HTTP/2 and its separate
//! slow-client surface are not served), and no client can hold a
//! connection, a task or a request longer than these bounds:
//!
//! | what the client does | what happens |
//! |---|---|
//! | opens a connection and stalls the TLS handshake | closed after [`TLS_HANDSHAKE_TIMEOUT`] |
//! | sends the request head slowly or partly | closed, without an answer, [`HEADER_READ_TIMEOUT`] after the connection became ready for a request |
//! | keeps an idle keep-alive connection | the same: the header clock starts when the previous answer is written |
//! | trickles the body, or the request is not answered in time | `408` with `Connection: close` after [`REQUEST_TIMEOUT`] |
//! | stops reading the answer (or moves no byte at all) | closed once no byte has moved either way for [`REQUEST_TIMEOUT`] + [`HEADER_READ_TIMEOUT`] (checked on that period, so within twice it) |
//! | sends a body over the limit and reads the `413` only once it has sent it all (Python's `urllib`, many HTTP libraries) | after the answer, the connection is half-closed and what the client still sends is read and thrown away for up to [`LINGER_TIME`] and [`LINGER_BYTES`] (a "lingering close", as nginx does), so the answer is not lost to a connection reset |
//! | opens more than [`MAX_CONNECTIONS`] connections | the extra ones are not accepted: they wait in the kernel's listen backlog (then SYNs are dropped) until a connection closes, which the bounds above guarantee |
//!
//! Waiting in the backlog rather than accepting and closing keeps the file
//! descriptors and memory bounded and costs the service nothing per
//! refused attempt; a flood of connections can delay newcomers but not
//! exhaust the process. Stopping (see [`crate::Server::shutdown`]) closes the
//! listening socket, lets each in-flight request finish (idle connections
//! close at once) and gives up on what is left after [`SHUTDOWN_GRACE`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::Router;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// How long a client has to send a request head (request line and
/// headers), counted from when the connection is ready for a request: from
/// the accept (or the end of the TLS handshake), and on a keep-alive
/// connection from when the previous answer was written. So it is also the
/// idle keep-alive timeout. Closed without an answer when it passes.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// After a connection's last answer, how long the service keeps reading and
/// discarding what the client still sends before it closes (nginx's
/// `lingering_time`). Closing a socket with unread bytes makes the kernel
/// reset the connection, and a client still writing a body the service has
/// already refused (a `413` after 64 KiB) would see `Connection reset`
/// instead of the answer. Ends early when the client closes its side.
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// The most a lingering close reads and throws away: a few MiB covers the
/// bodies clients send whole before reading, and bounds the work.
pub const LINGER_BYTES: u64 = 8 << 20;

/// How long one request may take from its head to its answer, the body
/// included: a body trickled in, or a request waiting for a busy resource,
/// gets `408 Request Timeout` and the connection is closed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a TLS client has to complete the handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once; more wait in the kernel's listen backlog.
pub const MAX_CONNECTIONS: usize = 1024;

/// How long [`crate::Server::shutdown`] waits for in-flight requests before
/// dropping their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How long to pause accepting after an accept error that is not the
/// peer's (out of file descriptors, say), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The bounds a client is held to; [`Limits::default`] is the service's
/// policy (the constants of this module). Pass others to
/// [`crate::Server::start_with`], in tests only.
///
/// ```
/// use std::time::Duration;
/// use tessera_server::listener::Limits;
/// let quick = Limits {
///     header_read_timeout: Duration::from_secs(1),
///     request_timeout: Duration::from_secs(2),
///     ..Limits::default()
/// };
/// assert_eq!(quick.max_connections, 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`HEADER_READ_TIMEOUT`] (also the idle keep-alive timeout).
    pub header_read_timeout: Duration,
    /// See [`REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
    /// See [`TLS_HANDSHAKE_TIMEOUT`].
    pub tls_handshake_timeout: Duration,
    /// See [`MAX_CONNECTIONS`]; 0 is taken as 1.
    pub max_connections: usize,
    /// See [`SHUTDOWN_GRACE`].
    pub shutdown_grace: Duration,
    /// See [`LINGER_TIME`].
    pub linger_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            tls_handshake_timeout: TLS_HANDSHAKE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            shutdown_grace: SHUTDOWN_GRACE,
            linger_time: LINGER_TIME,
        }
    }
}

impl Limits {
    /// No byte moving either way for this long means the peer stopped
    /// reading (or sending): longer than any legitimate silence, which is
    /// a request being handled (at most `request_timeout`) or an idle
    /// keep-alive connection (at most `header_read_timeout`).
    fn stall_timeout(&self) -> Duration {
        self.request_timeout
            .saturating_add(self.header_read_timeout)
            .max(Duration::from_millis(1))
    }
}

/// The TLS acceptor for a PEM certificate chain and private key (PKCS#8,
/// PKCS#1 or SEC1), on aws-lc-rs, offering HTTP/1.1 only.
pub(crate) async fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let cert_pem = tokio::fs::read(cert).await.map_err(|e| e.to_string())?;
    let key_pem = tokio::fs::read(key).await.map_err(|e| e.to_string())?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate in the certificate file".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| format!("key: {e}"))?;
    // aws-lc-rs is the only crypto provider (no ring), named here rather
    // than installed process-wide.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` (over TLS when `tls` is given) within
/// `limits` until `stop` turns true (or its sender is dropped), then drains
/// as the module documentation says.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let mut connections = JoinSet::new();
    let told = stop.clone();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = accept(&listener, &slots) => match accepted {
                Ok((tcp, peer, slot)) => {
                    connections.spawn(connection(tcp, peer, app.clone(), tls.clone(), limits, told.clone(), slot));
                }
                Err(e) if is_peer_error(&e) => tracing::debug!(error = %e, "accept failed"),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    // New connections are refused from here on.
    drop(listener);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_grace, drain)
        .await
        .is_err()
    {
        tracing::warn!(
            left = connections.len(),
            "requests still in flight after the shutdown grace period; dropping them"
        );
        connections.shutdown().await;
    }
}

/// Resolves once the service is told to stop (or its sender is gone); the
/// watch guard is dropped inside, so callers stay `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// A free slot, then a connection. Cancel-safe: dropping it mid-way gives
/// the slot back and loses no connection.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> io::Result<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let slot = slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| io::Error::other("connection slots closed"))?;
    let (tcp, peer) = listener.accept().await?;
    Ok((tcp, peer, slot))
}

/// Errors about one connection that went away before it was accepted:
/// nothing to pause for.
fn is_peer_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One connection, holding its slot until it ends.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    // Answers are small and written whole: send them at once.
    let _ = tcp.set_nodelay(true);
    let progress = Arc::new(AtomicU64::new(0));
    let io = Watched {
        inner: tcp,
        progress: progress.clone(),
        linger_time: limits.linger_time,
        stopping: stop.clone(),
        linger: None,
    };
    match tls {
        None => http(io, peer, app, limits, stop, &progress).await,
        Some(acceptor) => {
            let handshake = tokio::select! {
                done = tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(io)) => done,
                () = stopped(&mut stop) => return,
            };
            match handshake {
                Ok(Ok(stream)) => http(stream, peer, app, limits, stop, &progress).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out; connection closed"),
            }
        }
    }
}

/// HTTP/1.1 on an established connection, within `limits`.
async fn http<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    progress: &AtomicU64,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = TowerToHyperService::new(app);
    let request_timeout = limits.request_timeout;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        // Handlers that record who asked (the audit trail) read it.
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let answer = app.call(request);
        async move {
            Ok::<_, Infallible>(match tokio::time::timeout(request_timeout, answer).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => {
                    tracing::debug!("request timed out; answering 408");
                    timed_out()
                }
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut conn = std::pin::pin!(builder.serve_connection(TokioIo::new(io), service));

    let stall = limits.stall_timeout();
    let mut watchdog = std::pin::pin!(tokio::time::sleep(stall));
    let mut seen = progress.load(Ordering::Relaxed);
    let mut stopping = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection closed");
                }
                return;
            }
            () = stopped(&mut stop), if !stopping => {
                // Finishes the request in flight, if any, then closes.
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = &mut watchdog => {
                let now = progress.load(Ordering::Relaxed);
                if now == seen {
                    tracing::debug!("no byte moved on the connection; closed");
                    return;
                }
                seen = now;
                watchdog.as_mut().reset(tokio::time::Instant::now() + stall);
            }
        }
    }
}

/// The answer to a request that did not complete within the request
/// timeout, shaped like the service's other errors (RFC 6749 §5.2).
fn timed_out() -> Response<Body> {
    let mut response = Response::new(Body::from(
        r#"{"error":"invalid_request","error_description":"the request did not complete in time"}"#,
    ));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // The body may be half read: the connection cannot be reused.
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A stream that counts the reads and writes that moved bytes, so the
/// connection's watchdog can tell a stalled peer from a busy handler; and
/// whose shutdown is a lingering close.
struct Watched<T> {
    inner: T,
    progress: Arc<AtomicU64>,
    /// How long the lingering close may last ([`Limits::linger_time`]).
    linger_time: Duration,
    /// The service is stopping: close at once, no lingering.
    stopping: watch::Receiver<bool>,
    /// Set once hyper asks to shut the connection down.
    linger: Option<Linger>,
}

/// The lingering close in progress: the sending side shut down (the client
/// has every byte of the answer, then the end of the stream), what the
/// client still sends is read and thrown away until it closes its side, at
/// most [`LINGER_BYTES`] and until [`Limits::linger_time`] has passed.
struct Linger {
    shut: bool,
    discarded: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<T> Watched<T> {
    fn moved(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }

    fn count_written(&self, polled: &Poll<io::Result<usize>>) {
        if matches!(polled, Poll::Ready(Ok(n)) if *n > 0) {
            self.moved();
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.moved();
        }
        polled
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.count_written(&polled);
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.count_written(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    /// hyper shuts a connection down once it has flushed its last answer
    /// (and TLS sends its close_notify through here): the lingering close.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let linger_time = this.linger_time;
        let linger = this.linger.get_or_insert_with(|| Linger {
            shut: false,
            discarded: 0,
            deadline: Box::pin(tokio::time::sleep(linger_time)),
        });
        if !linger.shut {
            std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            linger.shut = true;
        }
        if *this.stopping.borrow() {
            return Poll::Ready(Ok(()));
        }
        let mut scratch = [0u8; 8 * 1024];
        loop {
            if linger.deadline.as_mut().poll(cx).is_ready() {
                tracing::debug!(
                    discarded = linger.discarded,
                    "lingering close: time is up; closed"
                );
                return Poll::Ready(Ok(()));
            }
            if linger.discarded >= LINGER_BYTES {
                tracing::debug!(
                    discarded = linger.discarded,
                    "lingering close: the client kept sending; closed"
                );
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                // The client closed its side (or the connection broke):
                // nothing is left to lose.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => linger.discarded += buf.filled().len() as u64,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::task::JoinHandle;

    use super::*;

    const BIG: usize = 64 << 20;

    fn quick() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            tls_handshake_timeout: Duration::from_secs(1),
            max_connections: 16,
            shutdown_grace: Duration::from_secs(5),
            linger_time: Duration::from_secs(1),
        }
    }

    fn app() -> Router {
        Router::new()
            .route("/ok", get(|| async { "ok" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    "slow"
                }),
            )
            .route("/big", get(|| async { vec![b'x'; BIG] }))
    }

    struct Serving {
        addr: SocketAddr,
        stop: watch::Sender<bool>,
        task: JoinHandle<()>,
    }

    async fn serving(limits: Limits, tls: Option<TlsAcceptor>) -> Serving {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve(listener, app(), tls, limits, stopped));
        Serving { addr, stop, task }
    }

    /// Reads until the server closes (EOF or reset), at most `bound`.
    async fn until_closed<S: AsyncRead + Unpin>(stream: &mut S, bound: Duration) -> Vec<u8> {
        let mut raw = Vec::new();
        let read = tokio::time::timeout(bound, stream.read_to_end(&mut raw)).await;
        assert!(read.is_ok(), "still open after {bound:?}");
        raw
    }

    /// A self-signed certificate for `localhost`: the acceptor (through
    /// the PEM loader) and a client trusting it.
    async fn tls_pair(dir: &Path) -> (TlsAcceptor, tokio_rustls::TlsConnector) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
        let acceptor = tls_acceptor(&cert_path, &key_path).await.unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        (acceptor, tokio_rustls::TlsConnector::from(Arc::new(client)))
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed() {
        let s = serving(quick(), None).await;
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        tcp.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let raw = until_closed(&mut tcp, Duration::from_secs(4)).await;
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(started.elapsed() >= Duration::from_millis(900));
    }

    #[tokio::test]
    async fn a_stalled_tls_handshake_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let (acceptor, _) = tls_pair(dir.path()).await;
        let limits = Limits {
            header_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            ..quick()
        };
        let s = serving(limits, Some(acceptor)).await;
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        // A ClientHello's record header, and nothing more.
        tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
            .await
            .unwrap();
        until_closed(&mut tcp, Duration::from_secs(4)).await;
    }

    #[tokio::test]
    async fn a_partial_header_over_tls_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let (acceptor, connector) = tls_pair(dir.path()).await;
        let s = serving(quick(), Some(acceptor)).await;
        let tcp = TcpStream::connect(s.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        // Offered h2 and HTTP/1.1, the service picks HTTP/1.1.
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        tls.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let raw = until_closed(&mut tls, Duration::from_secs(4)).await;
        assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
        // A whole request on a new connection is answered.
        let tcp = TcpStream::connect(s.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        tls.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let raw = until_closed(&mut tls, Duration::from_secs(4)).await;
        assert!(raw.starts_with(b"HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_off() {
        let s = serving(quick(), None).await;
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        tcp.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // Nothing moves once the socket buffers are full; the watchdog
        // (2 s here, checked every 2 s) closes the connection.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let raw = until_closed(&mut tcp, Duration::from_secs(5)).await;
        assert!(raw.starts_with(b"HTTP/1.1 200"));
        assert!(raw.len() < BIG, "the whole answer was delivered");
    }

    #[tokio::test]
    async fn shutdown_lets_the_request_in_flight_finish() {
        let s = serving(quick(), None).await;
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        tcp.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut idle = TcpStream::connect(s.addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.stop.send(true).unwrap();
        let raw = until_closed(&mut tcp, Duration::from_secs(3)).await;
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(text.ends_with("slow"), "{text}");
        // The idle connection is closed, not answered.
        assert!(until_closed(&mut idle, Duration::from_secs(1))
            .await
            .is_empty());
        tokio::time::timeout(Duration::from_secs(2), s.task)
            .await
            .unwrap()
            .unwrap();
        assert!(TcpStream::connect(s.addr).await.is_err());
    }

    #[tokio::test]
    async fn the_cap_is_at_least_one() {
        let limits = Limits {
            max_connections: 0,
            ..quick()
        };
        let s = serving(limits, None).await;
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        tcp.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let raw = until_closed(&mut tcp, Duration::from_secs(2)).await;
        assert!(raw.starts_with(b"HTTP/1.1 200"));
    }

    /// The lingering close is bounded: a client that, after its answer,
    /// neither reads nor closes but keeps sending loses the connection
    /// (and its slot) once `linger_time` has passed; and it gets the whole
    /// answer, then the end of the stream, first.
    #[tokio::test]
    async fn the_lingering_close_ends_within_its_time() {
        let s = serving(quick(), None).await;
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answered = Instant::now();
        let (mut from, mut to) = c.into_split();
        let answer = until_closed(&mut from, Duration::from_secs(2)).await;
        assert!(String::from_utf8_lossy(&answer).ends_with("ok"));
        // Keeps sending after the answer: discarded, until the time is up.
        let cut = loop {
            if to.write_all(&[b'x'; 1024]).await.is_err() {
                break answered.elapsed();
            }
            assert!(
                answered.elapsed() < Duration::from_secs(5),
                "still accepted after the linger time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(cut >= Duration::from_millis(900), "{cut:?}");
        let _ = s.stop.send(true);
        s.task.await.unwrap();
    }
}
