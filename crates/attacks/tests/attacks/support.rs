//! Shared helpers: keys and single-key verifiers.

use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::Verifier;

/// A verifier with one key for one algorithm.
pub fn verifier(key: &Jwk, alg: JwsAlgorithm) -> Verifier {
    Verifier::builder()
        .key(key, &[alg])
        .unwrap()
        .build()
        .unwrap()
}

/// A fresh key bound to `alg`. RSA keys are slow to generate, so one RSA key
/// per test run serves every RSA algorithm (bound to each in turn).
pub fn key_for(alg: JwsAlgorithm) -> Jwk {
    static RSA: std::sync::OnceLock<Jwk> = std::sync::OnceLock::new();
    match alg.info().family {
        tessera_jose::jwa::KeyFamily::Rsa => RSA
            .get_or_init(|| Jwk::generate_rsa(2048).unwrap().with_kid("rsa"))
            .clone()
            .with_alg(alg.name())
            .unwrap(),
        _ => Jwk::generate_for(alg).unwrap(),
    }
}
