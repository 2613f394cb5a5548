//! Arbitrary text as a compact JWS: never a panic, whatever the input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_jose::json::Limits;
use tessera_jose::jws::{SignaturePolicy, UnverifiedJws};

mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let f = common::fixture();
    let _ = f.verifier.verify_compact(text);
    let _ = f.verifier.verify_compact_detached(text, b"payload");
    if let Ok(parsed) = UnverifiedJws::parse_compact(text, &Limits::default()) {
        let _ = parsed.kid();
        let _ = parsed.verify(&f.verifier, SignaturePolicy::All);
    }
    let _ = tessera_jose::danger::decode_unverified(text);
});
