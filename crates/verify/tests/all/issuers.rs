//! Issue 23: issuers compared as RFC 8414 says (the metadata location of an
//! issuer with a path or a trailing `/`; its `issuer` identical to the one
//! configured, as every token's `iss` must be), and one verifier bound to
//! one issuer and its one key set.

use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwt::{Clock, SystemClock};
use tessera_verify::{AccessClaims, AuthError, BuildError, Verifier};

use super::support::{access_token, ec_key, jwks, Mock, API};

const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

async fn build(issuer: &str) -> Result<Verifier, BuildError> {
    Verifier::builder()
        .issuer(issuer)
        .audience(API)
        .algorithms([JwsAlgorithm::ES256])
        .build()
        .await
}

#[tokio::test]
async fn an_issuer_with_a_trailing_slash_is_compared_as_written() {
    let mock = Mock::start().await;
    let key = ec_key("k1");
    mock.serve("/jwks", 200, jwks(&[&key]));
    let issuer = format!("{}/", mock.base);
    // RFC 8414 §3.1: the terminating `/` is removed before the well-known
    // string is inserted; §3.3: the metadata names the issuer identically.
    mock.serve_metadata(WELL_KNOWN, &issuer, &format!("{}/jwks", mock.base));
    let verifier = build(&issuer).await.unwrap();
    let now = SystemClock.now();
    let ok = verifier.verify::<AccessClaims>(&access_token(&key, &issuer, now));
    assert!(ok.is_ok(), "iss {issuer:?} as configured: {ok:?}");
    assert_eq!(
        verifier
            .verify::<AccessClaims>(&access_token(&key, &mock.base, now))
            .unwrap_err(),
        AuthError::InvalidToken("the token is from another issuer"),
        "an iss without the slash is another issuer (RFC 7519 §2: compared as strings)"
    );

    // Metadata that writes the issuer differently is another issuer.
    mock.serve_metadata(WELL_KNOWN, &mock.base, &format!("{}/jwks", mock.base));
    assert!(
        matches!(build(&issuer).await, Err(BuildError::Metadata(_))),
        "{issuer:?} configured, {:?} in the metadata",
        mock.base
    );
    mock.serve_metadata(WELL_KNOWN, &issuer, &format!("{}/jwks", mock.base));
    assert!(
        matches!(build(&mock.base).await, Err(BuildError::Metadata(_))),
        "{:?} configured, {issuer:?} in the metadata",
        mock.base
    );
}

#[tokio::test]
async fn an_issuer_with_a_path_reads_its_metadata_where_rfc_8414_puts_it() {
    let mock = Mock::start().await;
    let key = ec_key("k1");
    mock.serve("/tenant1/jwks", 200, jwks(&[&key]));
    let tenant1 = format!("{}/tenant1", mock.base);
    let at = format!("{WELL_KNOWN}/tenant1");
    mock.serve_metadata(&at, &tenant1, &format!("{tenant1}/jwks"));
    let verifier = build(&tenant1).await.unwrap();
    assert_eq!(verifier.jwks_uri(), format!("{tenant1}/jwks"));
    assert_eq!(mock.hits(&at), 1);
    assert_eq!(mock.hits(&format!("/tenant1{WELL_KNOWN}")), 0);
    let now = SystemClock.now();
    assert!(verifier
        .verify::<AccessClaims>(&access_token(&key, &tenant1, now))
        .is_ok());
    for other in [
        mock.base.clone(),
        format!("{tenant1}/"),
        format!("{}/tenant2", mock.base),
    ] {
        assert_eq!(
            verifier
                .verify::<AccessClaims>(&access_token(&key, &other, now))
                .unwrap_err(),
            AuthError::InvalidToken("the token is from another issuer"),
            "{other}"
        );
    }

    // With a terminating `/`, the same location; the metadata must say
    // `…/tenant1/`, and the tokens too.
    let slashed = format!("{tenant1}/");
    mock.serve_metadata(&at, &slashed, &format!("{tenant1}/jwks"));
    let verifier = build(&slashed).await.unwrap();
    assert_eq!(mock.hits(&at), 2);
    assert!(verifier
        .verify::<AccessClaims>(&access_token(&key, &slashed, now))
        .is_ok());
    assert!(verifier
        .verify::<AccessClaims>(&access_token(&key, &tenant1, now))
        .is_err());

    // Metadata for another tenant, or none: refused.
    mock.serve_metadata(
        &at,
        &format!("{}/tenant2", mock.base),
        &format!("{tenant1}/jwks"),
    );
    assert!(matches!(
        build(&tenant1).await,
        Err(BuildError::Metadata(_))
    ));
    assert!(matches!(
        build(&format!("{}/tenant9", mock.base)).await,
        Err(BuildError::Metadata(_))
    ));

    // An issuer that publishes only the OpenID Connect Discovery document
    // (at `{issuer}/.well-known/openid-configuration`, as tessera behind a
    // path prefix does): read there when RFC 8414's location is a 404, with
    // the same identical-issuer rule.
    let tenant3 = format!("{}/tenant3", mock.base);
    mock.serve_metadata(
        "/tenant3/.well-known/openid-configuration",
        &tenant3,
        &format!("{tenant1}/jwks"),
    );
    let verifier = build(&tenant3).await.unwrap();
    assert_eq!(mock.hits(&format!("{WELL_KNOWN}/tenant3")), 1);
    assert!(verifier
        .verify::<AccessClaims>(&access_token(&key, &tenant3, now))
        .is_ok());
    mock.serve_metadata(
        "/tenant3/.well-known/openid-configuration",
        &tenant1,
        &format!("{tenant1}/jwks"),
    );
    assert!(matches!(
        build(&tenant3).await,
        Err(BuildError::Metadata(_))
    ));
}

/// A verifier holds one issuer's keys: another issuer's key is not among
/// them even under a colliding `kid`, and the builder takes one issuer and
/// one JWKS URL (a second is refused, not silently preferred).
#[tokio::test]
async fn a_verifier_trusts_one_issuer_and_its_one_key_set() {
    let (a, b) = (Mock::start().await, Mock::start().await);
    let (key_a, key_b) = (ec_key("k1"), ec_key("k1"));
    let key_b2 = ec_key("k2");
    for (mock, keys) in [(&a, vec![&key_a]), (&b, vec![&key_b, &key_b2])] {
        mock.serve("/jwks", 200, jwks(&keys));
        mock.serve_metadata(WELL_KNOWN, &mock.base, &format!("{}/jwks", mock.base));
    }
    let verifier = build(&a.base).await.unwrap();
    assert!(build(&b.base).await.is_ok(), "b is a working issuer");
    let now = SystemClock.now();
    assert!(verifier
        .verify::<AccessClaims>(&access_token(&key_a, &a.base, now))
        .is_ok());
    for (what, token, why) in [
        (
            "b's key, same kid, claiming b",
            access_token(&key_b, &b.base, now),
            "the token's signature is invalid",
        ),
        (
            "b's key, same kid, claiming a",
            access_token(&key_b, &a.base, now),
            "the token's signature is invalid",
        ),
        (
            "b's other key, claiming a",
            access_token(&key_b2, &a.base, now),
            "the token names no key of the issuer",
        ),
        (
            "a's key, claiming b",
            access_token(&key_a, &b.base, now),
            "the token is from another issuer",
        ),
    ] {
        assert_eq!(
            verifier.verify::<AccessClaims>(&token).unwrap_err(),
            AuthError::InvalidToken(why),
            "{what}"
        );
    }

    let twice = |first: &str, second: &str, jwks: bool| {
        let b = Verifier::builder()
            .audience(API)
            .algorithms([JwsAlgorithm::ES256]);
        if jwks {
            b.issuer(&a.base).jwks_uri(first).jwks_uri(second)
        } else {
            b.issuer(first).issuer(second)
        }
        .build()
    };
    let (jwks_a, jwks_b) = (format!("{}/jwks", a.base), format!("{}/jwks", b.base));
    let before = (a.total_hits(), b.total_hits());
    for (first, second, jwks, which) in [
        (&jwks_a, &jwks_b, true, "jwks_uri"),
        (&jwks_a, &jwks_a, true, "jwks_uri"),
        (&a.base, &b.base, false, "issuer"),
    ] {
        match twice(first, second, jwks).await {
            Err(BuildError::Repeated(w)) => assert_eq!(w, which),
            other => panic!("{which} given twice: {other:?}"),
        }
    }
    assert_eq!((a.total_hits(), b.total_hits()), before, "nothing fetched");
}
