//! Arbitrary text as a flattened or general JSON JWS.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tessera_jose::jws::SignaturePolicy;

mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let f = common::fixture();
    let _ = f.verifier.verify_json(text, SignaturePolicy::All);
    let _ = f.verifier.verify_json(text, SignaturePolicy::Any);
    let _ = f
        .verifier
        .verify_json_detached(text, SignaturePolicy::Any, b"payload");
});
