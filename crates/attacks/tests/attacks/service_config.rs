//! Attacks through the service's configuration and timing, and through the
//! URLs a verifier is pointed at: a node that lags behind a key rotation,
//! and userinfo (`user:password@`) that made a remote host pass as loopback.
//! Time is a parameter here: the key lifecycle is driven with explicit
//! clocks, nothing sleeps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tessera_jose::jwa::JwsAlgorithm;
use tessera_server::config::Config;
use tessera_server::crypto::MasterKey;
use tessera_server::keys::{self, KeyRing, Lifecycle};
use tessera_server::store::{KeyRecord, KeyState, SqlStore, Store};
use tessera_server::Server;
use tessera_verify::urls::UrlError;
use tessera_verify::{BuildError, Verifier};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const API: &str = "https://api.example.com";
const MASTER: &str = "6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn key<'a>(keys: &'a [KeyRecord], kid: &str) -> &'a KeyRecord {
    keys.iter().find(|k| k.kid == kid).unwrap()
}

/// Finding 6. Each node re-reads the key set every `reload_every` (R);
/// verifiers cache the JWKS for `jwks_max_age` (M); the longest token lives
/// L. With R = 1 h: a next key created at T is served by a node that last
/// read the keys just before T only from T + R, and a verifier that fetched
/// that node's JWKS then holds it until T + R + M — the key must not sign
/// before. And a node that has not seen the rotation at S keeps signing
/// with the old key until S + R; those tokens live until S + R + L — the
/// old key must be published until then.
#[tokio::test]
async fn a_lagging_node_never_signs_with_a_key_verifiers_lack_nor_one_leaving_the_jwks() {
    let config = Config::load(
        None,
        env(&[
            ("TESSERA_SIGNING_ALG", "ES256"),
            ("TESSERA_SIGNING_ROTATE_EVERY", "30d"),
            ("TESSERA_SIGNING_RELOAD_EVERY", "1h"),
        ]),
        None,
    )
    .unwrap();
    let rules = Lifecycle::from_config(&config);
    let (r, l) = (3600, 12 * 3600); // reload_every; the 12 h session token
    let m = rules.jwks_max_age;
    assert_eq!(m, 3600, "the JWKS max-age is what verifiers may cache");
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_file(&dir.path().join("keys.db"))
        .await
        .unwrap();
    let master = || MasterKey::from_bytes(&[7u8; 32]).unwrap();

    // Node A starts at T: a current key, and a next key created at T.
    let t = 1_800_000_000;
    let keys = keys::maintain(&store, &master(), &rules, t).await.unwrap();
    let old = keys.iter().find(|k| k.state == KeyState::Current).unwrap();
    let new = keys.iter().find(|k| k.state == KeyState::Next).unwrap();
    let (old, new) = (old.kid.clone(), new.kid.clone());
    assert_eq!(key(&keys, &new).created_at, t);
    let every_cache_holds_it = t + r + m;

    // An operator rotates at once: scheduled, not immediate, and the
    // answer is when the key really signs.
    let at = keys::rotate_now(&store, &master(), &rules, t + 60)
        .await
        .unwrap();
    assert_eq!(at, every_cache_holds_it);
    // No maintenance pass, on any node, makes it sign any earlier.
    for now in [t + 60, t + m, t + r, every_cache_holds_it - 1] {
        let stored = store.signing_keys().await.unwrap();
        let plan = keys::plan(&stored, &rules, &master(), now).unwrap();
        assert!(
            plan.transitions.iter().all(|c| c.to != KeyState::Current),
            "the next key would sign at T + {}",
            now - t
        );
        let keys = keys::maintain(&store, &master(), &rules, now)
            .await
            .unwrap();
        assert_eq!(key(&keys, &new).state, KeyState::Next, "at T + {}", now - t);
    }

    // The rotation, at S.
    let s = every_cache_holds_it;
    let keys = keys::maintain(&store, &master(), &rules, s).await.unwrap();
    assert_eq!(key(&keys, &new).state, KeyState::Current);
    assert_eq!(key(&keys, &old).state, KeyState::Retiring);
    // A node that last read the keys just before S signs with the old key
    // until S + R; its last token expires at S + R + L.
    let last_old_token_expires = s + r + l;
    let retires_at = key(&keys, &old).retires_at.unwrap();
    assert!(
        retires_at >= last_old_token_expires,
        "the old key leaves the JWKS at S + {}, its last token expires at S + {}",
        retires_at - s,
        last_old_token_expires - s
    );
    // Every node serves it until then (a node reading the keys at that very
    // moment included).
    let ring = KeyRing::open(&store, master(), rules, last_old_token_expires)
        .await
        .unwrap();
    assert_eq!(ring.snapshot().kid, new);
    assert!(ring.snapshot().jwks.contains(&old));
    // Then it leaves, its private part erased.
    ring.tick(&store, retires_at).await.unwrap();
    assert!(!ring.snapshot().jwks.contains(&old));
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(key(&keys, &old).state, KeyState::Retired);
    assert_eq!(key(&keys, &old).sealed_private, None);
}

/// Finding 8, the service side. A prefix match read
/// `http://localhost:x@evil.example` as loopback (its host is
/// `evil.example`) and fetched `http://localhost:1@127.0.0.2:9/jwks` from
/// 127.0.0.2: the configuration now parses URLs, refuses userinfo, and
/// names the key.
#[test]
fn userinfo_in_the_issuer_or_a_jwks_uri_does_not_pass_as_loopback() {
    let e = Config::load(
        None,
        env(&[("TESSERA_ISSUER", "http://localhost:x@evil.example")]),
        None,
    )
    .unwrap_err();
    assert_eq!(e.key, "issuer", "{e}");
    assert!(e.message.contains("user name or password"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let load = |toml: &str| {
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, toml).unwrap();
        Config::load(Some(&path), Vec::new(), None)
    };
    let e = load("issuer = \"http://localhost:x@evil.example\"").unwrap_err();
    assert_eq!(e.key, "issuer", "{e}");
    let sealed = |uri: &str| {
        format!(
            "[[resources]]\naudience = \"https://records.example.com\"\nformat = \"jwe\"\n\
             encryption_jwks_uri = \"{uri}\"\n"
        )
    };
    for uri in [
        "http://localhost:1@127.0.0.2:9/jwks",
        "http://127.0.0.1@evil.example/jwks",
        "https://user:password@partner.example.org/jwks.json",
    ] {
        let e = load(&sealed(uri)).unwrap_err();
        assert_eq!(e.key, "resources[0].encryption_jwks_uri", "{uri}: {e}");
        assert!(e.message.contains("user name or password"), "{e}");
        assert!(!e.message.contains(uri), "a password is not repeated: {e}");
    }
    // The loopback exception reads the parsed host: without userinfo,
    // 127.0.0.2 is loopback, and evil.example is not.
    assert!(load(&sealed("http://127.0.0.2:9/jwks")).is_ok());
    let e = load(&sealed("http://evil.example/jwks")).unwrap_err();
    assert_eq!(e.key, "resources[0].encryption_jwks_uri", "{e}");
    assert_eq!(
        load("issuer = \"http://localhost:8080/\"").unwrap().issuer,
        "http://localhost:8080"
    );
}

/// A loopback HTTP server that answers every request with RFC 8414
/// metadata naming `jwks_uri` (`{addr}`: its own address), and counts
/// connections: proof that a refused URL was never requested.
async fn counting_issuer(jwks_uri: &str) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let base = format!("http://{addr}");
    let body = serde_json::json!({
        "issuer": base,
        "jwks_uri": jwks_uri.replace("{addr}", &addr),
    })
    .to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    (base, hits)
}

fn refused_url(result: Result<Verifier, BuildError>) -> (&'static str, UrlError) {
    match result {
        Err(BuildError::Url { which, reason }) => (which, reason),
        other => panic!("expected a refused URL, got {other:?}"),
    }
}

/// Finding 8, the verifier side: tessera-verify took any `http://`
/// issuer. Now the issuer, a given JWKS URL and the one the metadata names
/// must be `https://` or `http://` to a loopback host, without userinfo —
/// refused with `BuildError::Url` before any request to them.
#[tokio::test]
async fn tessera_verify_refuses_a_plain_http_issuer_off_loopback() {
    let build = |issuer: &str, jwks_uri: Option<&str>| {
        let mut b = Verifier::builder()
            .issuer(issuer)
            .audience(API)
            .algorithms([JwsAlgorithm::ES256]);
        if let Some(uri) = jwks_uri {
            b = b.jwks_uri(uri);
        }
        b.build()
    };
    // Off loopback, in the clear; and a remote host dressed as localhost.
    // Neither is resolved nor connected to: the error is not `Metadata`.
    assert_eq!(
        refused_url(build("http://auth.example.com", None).await),
        ("issuer", UrlError::PlainHttp)
    );
    assert_eq!(
        refused_url(build("http://localhost:1@evil.example", None).await),
        ("issuer", UrlError::Userinfo)
    );

    // Userinfo in front of a listening loopback host: refused, and the
    // listener saw no connection.
    let (base, hits) = counting_issuer("http://keys.example/jwks").await;
    let port = base.rsplit(':').next().unwrap();
    let dressed = format!("http://localhost:1@127.0.0.1:{port}");
    assert_eq!(
        refused_url(build(&dressed, None).await),
        ("issuer", UrlError::Userinfo)
    );
    let jwks = format!("http://user:pw@127.0.0.1:{port}/jwks");
    assert_eq!(
        refused_url(build(&base, Some(&jwks)).await),
        ("jwks_uri", UrlError::Userinfo)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was requested");

    // The JWKS URL the issuer's metadata names obeys the same rule: the
    // metadata is read, the plain-http JWKS on another host is not.
    assert_eq!(
        refused_url(build(&base, None).await),
        ("jwks_uri of the issuer's metadata", UrlError::PlainHttp)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the metadata only");
    let (base, hits) = counting_issuer("http://localhost:1@{addr}/jwks").await;
    assert_eq!(
        refused_url(build(&base, None).await),
        ("jwks_uri of the issuer's metadata", UrlError::Userinfo)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "the metadata only");

    // A tessera service on loopback over plain http, as the tests run it,
    // is still accepted.
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("tessera.toml");
    std::fs::write(
        &toml,
        format!(
            "data_dir = {:?}\n[signing]\nalg = \"ES256\"\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let config = Config::load(Some(&toml), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config, Some(MASTER)).await.unwrap();
    let issuer = format!("http://{}", server.local_addr());
    let verifier = build(&issuer, None).await.unwrap();
    assert_eq!(
        verifier.jwks_uri(),
        format!("{issuer}/.well-known/jwks.json")
    );
    assert_eq!(verifier.fetches(), 2, "metadata and JWKS");
    server.shutdown().await;
}
