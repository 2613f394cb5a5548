//! The `tessera` binary's integration tests, gathered into one test binary
//! (one link step): the service commands, several nodes on one PostgreSQL,
//! and the JOSE toolkit commands.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod audit;
mod faults;
mod jose;
mod nodes;
mod service;
