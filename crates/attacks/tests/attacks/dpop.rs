//! DPoP (RFC 9449): what whoever copies a token — from a log, a HAR file,
//! a dumped mobile-app store — can do with it, and what a captured proof is
//! worth. Over real HTTP on loopback, against `tessera serve` and
//! tessera-verify.

use serde_json::{json, Value};
use tessera_jose::b64;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::Jwk;
use tessera_jose::jwt::{Clock, SystemClock};
use tessera_server::config::Config;
use tessera_server::store::Registration;
use tessera_server::{clients, Server};
use tessera_verify::dpop::{self, NewProof};
use tessera_verify::{AccessClaims, AuthError, Verifier};

use crate::service::{basic, form, hygiene, send, Reply};

const API: &str = "https://api.example.com";
const RECORDS: &str = "https://records.example.com";
const MASTER: &str = "6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b";

struct Running {
    server: Server,
    issuer: String,
    backend: (String, String),
    app: String,
    _dir: tempfile::TempDir,
}

async fn running() -> Running {
    hygiene::capture();
    hygiene::remember(MASTER);
    let dir = tempfile::tempdir().unwrap();
    let records = Jwk::generate_rsa(2048).unwrap();
    let records_file = dir.path().join("records.jwk");
    std::fs::write(&records_file, records.to_public().unwrap().to_json()).unwrap();
    let toml = dir.path().join("tessera.toml");
    std::fs::write(
        &toml,
        format!(
            "data_dir = {:?}\n[signing]\nalg = \"ES256\"\n[[resources]]\naudience = \"{API}\"\n\
             [[resources]]\naudience = \"{RECORDS}\"\nformat = \"jwe\"\nencryption_key = {:?}\n",
            dir.path().join("data").display().to_string(),
            records_file.display().to_string(),
        ),
    )
    .unwrap();
    let config = Config::load(Some(&toml), Vec::new(), Some("127.0.0.1:0")).unwrap();
    let server = Server::start(config, Some(MASTER)).await.unwrap();
    let issuer = format!("http://{}", server.local_addr());
    let grants: Vec<String> = ["sessions", "client_credentials", "token_exchange"]
        .map(str::to_owned)
        .to_vec();
    let backend = clients::create_with(
        server.store(),
        "backend",
        &grants,
        None,
        Registration {
            audiences: Some(vec![API.to_owned(), RECORDS.to_owned()]),
            ..Default::default()
        },
        0,
    )
    .await
    .unwrap();
    hygiene::remember(&backend.secret);
    let app = clients::create_public(
        server.store(),
        "app",
        &["refresh_token".to_owned()],
        Registration {
            audiences: Some(vec![API.to_owned()]),
            may_act: vec![backend.record.id.clone()],
            ..Default::default()
        },
        0,
    )
    .await
    .unwrap();
    Running {
        server,
        issuer,
        backend: (backend.record.id.clone(), backend.secret.to_string()),
        app: app.record.id.clone(),
        _dir: dir,
    }
}

fn key() -> Jwk {
    Jwk::generate_for(JwsAlgorithm::ES256).unwrap()
}

fn proof(key: &Jwk, method: &str, url: &str, token: Option<&str>) -> String {
    let jti = tessera_server::crypto::random_token(12)
        .unwrap()
        .to_string();
    dpop::sign(
        key,
        JwsAlgorithm::ES256,
        &NewProof {
            method,
            url,
            jti: &jti,
            iat: SystemClock.now(),
            access_token: token,
            nonce: None,
        },
    )
    .unwrap()
}

impl Running {
    fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.issuer)
    }

    async fn session(&self, extra: Value) -> Value {
        let mut body = json!({"sub": "user-1", "org": "acme", "audience": API});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let reply = send(
            self.server.local_addr(),
            "/v1/sessions",
            &[
                basic(&self.backend.0, &self.backend.1),
                ("Content-Type", "application/json".into()),
            ],
            &body.to_string(),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        hygiene::remember_answer(&reply.json());
        reply.json()
    }

    async fn app_refresh(&self, token: &str, dpop: Option<String>) -> Reply {
        let mut headers = vec![form()];
        if let Some(p) = dpop {
            headers.push(("DPoP", p));
        }
        let reply = send(
            self.server.local_addr(),
            "/oauth2/token",
            &headers,
            &format!(
                "grant_type=refresh_token&client_id={}&refresh_token={token}",
                self.app
            ),
        )
        .await;
        if reply.status == 200 {
            hygiene::remember_answer(&reply.json());
        }
        reply
    }

    async fn verifier(&self) -> Verifier {
        Verifier::builder()
            .issuer(&self.issuer)
            .audience(API)
            .algorithms([JwsAlgorithm::ES256])
            .external_url(API)
            .build()
            .await
            .unwrap()
    }
}

/// A request to the resource at `API/orders`, as tessera-verify sees it.
fn resource_request(headers: &[(&str, &str)]) -> axum::http::request::Parts {
    let mut b = axum::http::Request::builder().method("GET").uri("/orders");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap().into_parts().0
}

fn dpop_error(e: AuthError) -> &'static str {
    match e {
        AuthError::Dpop { error, .. } => error,
        other => panic!("expected a DPoP refusal, got {other:?}"),
    }
}

/// A dumped mobile-app store: the refresh token without the device's key is
/// worthless — with no proof, with the thief's key, as another public
/// client, as the backend that minted it — and trying leaves it good for the
/// device.
#[tokio::test]
async fn a_dumped_refresh_token_without_the_device_key_gets_nothing() {
    let r = running().await;
    let device = key();
    let s = r
        .session(json!({"holder": r.app, "dpop_jkt": device.thumbprint()}))
        .await;
    let stolen = s["refresh_token"].as_str().unwrap().to_owned();
    let url = r.token_url();
    for (how, dpop) in [
        ("no proof", None),
        ("the thief's key", Some(proof(&key(), "POST", &url, None))),
    ] {
        let reply = r.app_refresh(&stolen, dpop).await;
        assert_eq!(reply.status, 400, "{how}: {}", reply.body);
        assert_eq!(reply.json()["error"], "invalid_grant", "{how}");
    }
    // Another public client (the thief's own registration) presenting it.
    let other = clients::create_public(
        r.server.store(),
        "thief",
        &["refresh_token".to_owned()],
        Registration::default(),
        0,
    )
    .await
    .unwrap();
    let as_other = send(
        r.server.local_addr(),
        "/oauth2/token",
        &[form(), ("DPoP", proof(&key(), "POST", &url, None))],
        &format!(
            "grant_type=refresh_token&client_id={}&refresh_token={stolen}",
            other.record.id
        ),
    )
    .await;
    assert_eq!(
        as_other.json()["error"],
        "invalid_grant",
        "{}",
        as_other.body
    );
    // The device's own key still works: nothing was used up.
    let ok = r
        .app_refresh(&stolen, Some(proof(&device, "POST", &url, None)))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    r.server.shutdown().await;
    hygiene::assert_clean();
}

/// A copied DPoP-bound access token at the resource: as `Bearer` (the
/// downgrade), with a proof by another key, with a captured proof replayed
/// or aimed at another URL or method — all refused; the holder's own
/// request passes once.
#[tokio::test]
async fn a_copied_bound_access_token_and_captured_proofs_are_worthless() {
    let r = running().await;
    let device = key();
    let s = r.session(json!({"dpop_jkt": device.thumbprint()})).await;
    let token = s["access_token"].as_str().unwrap().to_owned();
    let v = r.verifier().await;
    let dpop_auth = format!("DPoP {token}");
    let bearer = format!("Bearer {token}");
    let orders = format!("{API}/orders");

    let downgrade = v
        .verify_request::<AccessClaims>(&resource_request(&[("authorization", &bearer)]))
        .await
        .unwrap_err();
    assert_eq!(dpop_error(downgrade), "invalid_token");
    let thief = proof(&key(), "GET", &orders, Some(&token));
    let e = v
        .verify_request::<AccessClaims>(&resource_request(&[
            ("authorization", &dpop_auth),
            ("dpop", &thief),
        ]))
        .await
        .unwrap_err();
    assert_eq!(dpop_error(e), "invalid_dpop_proof");
    // A proof the device made for another request, captured.
    for (method, url) in [("POST", orders.as_str()), ("GET", &format!("{API}/admin"))] {
        let captured = proof(&device, method, url, Some(&token));
        let e = v
            .verify_request::<AccessClaims>(&resource_request(&[
                ("authorization", &dpop_auth),
                ("dpop", &captured),
            ]))
            .await
            .unwrap_err();
        assert_eq!(dpop_error(e), "invalid_dpop_proof", "{method} {url}");
    }
    // A proof for this very request, by the device, for another token.
    let other_token = proof(&device, "GET", &orders, Some("another.access.token"));
    let e = v
        .verify_request::<AccessClaims>(&resource_request(&[
            ("authorization", &dpop_auth),
            ("dpop", &other_token),
        ]))
        .await
        .unwrap_err();
    assert_eq!(dpop_error(e), "invalid_dpop_proof");
    // The device's request passes; the same proof captured and replayed
    // does not.
    let good = proof(&device, "GET", &orders, Some(&token));
    let parts = resource_request(&[("authorization", &dpop_auth), ("dpop", &good)]);
    v.verify_request::<AccessClaims>(&parts).await.unwrap();
    let e = v.verify_request::<AccessClaims>(&parts).await.unwrap_err();
    assert_eq!(dpop_error(e), "invalid_dpop_proof");

    // Nor can the copy be exchanged for a token without the binding.
    let exchange = send(
        r.server.local_addr(),
        "/oauth2/token",
        &[basic(&r.backend.0, &r.backend.1), form()],
        &format!(
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&subject_token={token}\
             &subject_token_type=urn:ietf:params:oauth:token-type:access_token&audience={RECORDS}"
        ),
    )
    .await;
    assert_eq!(exchange.status, 400, "{}", exchange.body);
    assert_eq!(exchange.json()["error"], "invalid_dpop_proof");
    r.server.shutdown().await;
    hygiene::assert_clean();
}

/// Proofs an attacker forges for the token endpoint: `alg: none`, HS256
/// keyed with the public key it carries, a private key shipped in `jwk`,
/// an `htu` naming the `Host` the attacker sent rather than the issuer, a
/// proof replayed. Each is `invalid_dpop_proof`; a public client asking for
/// anything but a refresh is `unauthorized_client`.
#[tokio::test]
async fn forged_and_misdirected_proofs_at_the_token_endpoint() {
    let r = running().await;
    let k = key();
    let url = r.token_url();
    let public: Value = serde_json::from_str(&k.to_public().unwrap().to_json()).unwrap();
    let claims = json!({"jti": "j-1", "htm": "POST", "htu": url, "iat": SystemClock.now()});
    let encode = |v: &Value| b64::encode(serde_json::to_vec(v).unwrap());
    let none = format!(
        "{}.{}.",
        encode(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": public})),
        encode(&claims)
    );
    // HS256 with the public key's JSON as the secret (key confusion).
    let hs_header = encode(&json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": public}));
    let input = format!("{hs_header}.{}", encode(&claims));
    let mac_key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        k.to_public().unwrap().to_json().as_bytes(),
    );
    let tag = aws_lc_rs::hmac::sign(&mac_key, input.as_bytes());
    let hs256 = format!("{input}.{}", b64::encode(tag.as_ref()));
    let private: Value = serde_json::from_str(&k.to_private_json()).unwrap();
    let leaky = {
        let mut h = tessera_jose::jws::JwsHeader::new()
            .param("typ", json!("dpop+jwt"))
            .unwrap()
            .param("jwk", private)
            .unwrap();
        h = h.param("x", json!(1)).unwrap();
        tessera_jose::jws::Signer::new(&k, JwsAlgorithm::ES256)
            .unwrap()
            .sign_compact(&h, &serde_json::to_vec(&claims).unwrap())
            .unwrap()
    };
    let host_htu = proof(&k, "POST", "http://attacker.example/oauth2/token", None);
    for (name, p, host) in [
        ("alg none", none, None),
        ("HS256 keyed with the public key", hs256, None),
        ("private key in jwk", leaky, None),
        ("htu of the Host sent", host_htu, Some("attacker.example")),
    ] {
        let mut headers = vec![basic(&r.backend.0, &r.backend.1), form(), ("DPoP", p)];
        if let Some(h) = host {
            headers.push(("X-Forwarded-Host", h.to_owned()));
        }
        let reply = send(
            r.server.local_addr(),
            "/oauth2/token",
            &headers,
            "grant_type=client_credentials",
        )
        .await;
        assert_eq!(reply.status, 400, "{name}: {}", reply.body);
        assert_eq!(reply.json()["error"], "invalid_dpop_proof", "{name}");
    }
    // Replayed: accepted once.
    let once = proof(&k, "POST", &url, None);
    let headers = [
        basic(&r.backend.0, &r.backend.1),
        form(),
        ("DPoP", once.clone()),
    ];
    let body = format!("grant_type=client_credentials&audience={API}");
    let ask = || send(r.server.local_addr(), "/oauth2/token", &headers, &body);
    assert_eq!(ask().await.status, 200);
    let again = ask().await;
    assert_eq!(
        again.json()["error"],
        "invalid_dpop_proof",
        "{}",
        again.body
    );
    // A public client is no client_credentials client.
    let cc = send(
        r.server.local_addr(),
        "/oauth2/token",
        &[form(), ("DPoP", proof(&k, "POST", &url, None))],
        &format!("grant_type=client_credentials&client_id={}", r.app),
    )
    .await;
    assert_eq!(cc.json()["error"], "unauthorized_client", "{}", cc.body);
    r.server.shutdown().await;
    hygiene::assert_clean();
}
