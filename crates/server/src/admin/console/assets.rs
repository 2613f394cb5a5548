//! The console's static files, embedded in the binary: its script, its
//! token inspector and its style sheet. Each is loaded with its SRI hash
//! (`integrity="sha256-…"`), and its URL carries a piece of that hash, so a
//! new build never meets an old copy.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;

/// One embedded file.
pub struct Asset {
    /// Its name under `/console/static/`.
    pub name: &'static str,
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

/// Every embedded file.
pub const ASSETS: [Asset; 3] = [
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/console.js"),
    },
    Asset {
        name: "inspector.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/inspector.js"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("assets/console.css"),
    },
];

/// An asset's SRI value (`sha256-<base64>`) and its URL (with a version).
pub struct Reference {
    /// `sha256-…`, for `integrity`.
    pub integrity: String,
    /// `/console/static/<name>?v=<hash prefix>`.
    pub url: String,
}

static REFERENCES: LazyLock<Vec<Reference>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = crate::crypto::sha256(a.body.as_bytes());
            let integrity = format!(
                "sha256-{}",
                base64::engine::general_purpose::STANDARD.encode(&digest)
            );
            let version: String = crate::audit::hex(&digest).chars().take(12).collect();
            Reference {
                integrity,
                url: format!("/console/static/{}?v={version}", a.name),
            }
        })
        .collect()
});

/// The reference of the asset `name`.
pub fn reference(name: &str) -> Option<&'static Reference> {
    ASSETS
        .iter()
        .position(|a| a.name == name)
        .and_then(|i| REFERENCES.get(i))
}

/// `GET /console/static/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == file) {
        Some(a) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            )],
            a.body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
