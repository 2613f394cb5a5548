//! The adversarial suite, in one binary: each test builds a malicious input
//! and asserts the typed rejection. `README.md` beside `Cargo.toml` maps
//! every attack to its test.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod admin;
mod authorization;
mod claims;
mod confusion;
mod console;
mod dpop;
mod encodings;
mod jwe;
mod jws;
mod keys;
mod oracles;
mod service;
mod service_config;
mod slow_clients;
mod support;
mod typing;
