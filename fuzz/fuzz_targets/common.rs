// Shared fixtures: verifiers over fixed keys, built once.
use std::sync::OnceLock;

use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{Signer, Verifier};

pub struct Fixture {
    #[allow(dead_code)] // only jwt_claims signs
    pub signer: Signer,
    pub verifier: Verifier,
}

// RFC 7515 Appendix A.1's HMAC key: fixed so crashes reproduce.
const KEY: &str = r#"{"kty":"oct","kid":"k1","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;

pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = Jwk::from_json(KEY.as_bytes()).expect("fixed key");
        Fixture {
            signer: Signer::new(&key, JwsAlgorithm::HS256).expect("signer"),
            verifier: Verifier::builder()
                .key(&key, &[JwsAlgorithm::HS256])
                .expect("key")
                .understand_crit("exp")
                .build()
                .expect("verifier"),
        }
    })
}
