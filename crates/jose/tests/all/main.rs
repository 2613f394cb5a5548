//! tessera-jose integration tests, gathered into one binary (one link step).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod cookbook;
mod jwe;
mod jwt;
mod rfc;
mod roundtrip;
mod support;
mod wycheproof;
