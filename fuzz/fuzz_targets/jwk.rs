//! Arbitrary bytes as a JWK and as a JWK Set: never a panic; an accepted key
//! survives a round trip with its thumbprint unchanged, and a set's public
//! form parses again without panicking.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_jose::jwk::{Jwk, JwkSet};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = Jwk::from_json(data) {
        let back = Jwk::from_json(key.to_private_json().as_bytes()).expect("round trip");
        assert_eq!(back.thumbprint(), key.thumbprint());
    }
    if let Ok(set) = JwkSet::from_json(data) {
        let _ = JwkSet::from_json(set.to_public_json().as_bytes());
    }
});
