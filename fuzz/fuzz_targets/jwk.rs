//! Arbitrary bytes as a JWK, a JWK Set, PEM and DER keys; accepted keys
//! must survive a round trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_jose::jwk::{Jwk, JwkSet, KeyFormat};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = Jwk::from_json(data) {
        let back = Jwk::from_json(key.to_private_json().as_bytes()).expect("round trip");
        assert_eq!(back.thumbprint(), key.thumbprint());
    }
    let _ = JwkSet::from_json(data);
    for format in [
        KeyFormat::Pkcs8,
        KeyFormat::Spki,
        KeyFormat::Pkcs1,
        KeyFormat::Sec1,
    ] {
        if let Ok(key) = Jwk::from_der(data, format) {
            let _ = key.to_der(format);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Jwk::from_pem(text);
    }
});
