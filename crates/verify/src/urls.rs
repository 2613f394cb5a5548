//! Which URLs an issuer's metadata and keys may come from, decided on the
//! URL as parsed — by the `url` crate, the very parser reqwest fetches
//! with — never by matching its text.
//!
//! - `https://`, or plain `http://` to a loopback host only: `localhost`,
//!   `127.0.0.0/8` or `[::1]` (development and tests). A key fetched in
//!   the clear from anywhere else can be swapped on the way.
//! - No userinfo (`user:password@`): `http://localhost:x@evil.example`
//!   passed a prefix match as loopback while its host is `evil.example`.
//! - An issuer also has no query or fragment (RFC 8414 §2) and must be
//!   written in normal form (lower-case host, no default port, no `.`
//!   segments…). Its text is what tokens carry in `iss` and what every
//!   verifier compares and parses, so it is refused rather than silently
//!   rewritten: the string checked is the string used, byte for byte.
//!
//! The service checks its configuration with these same functions.

use url::{Host, Url};

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not an absolute URL.
    #[error("is not an absolute URL ({0})")]
    Malformed(String),
    /// Neither `https` nor `http`.
    #[error("must be an https:// URL")]
    Scheme,
    /// A user name or password before the host.
    #[error("must not carry a user name or password (user:password@)")]
    Userinfo,
    /// Plain `http` to a host that is not loopback.
    #[error("must use https:// (http:// only on a loopback host: localhost, 127.0.0.0/8, [::1])")]
    PlainHttp,
    /// An issuer with a query or a fragment.
    #[error("must not have a query or fragment")]
    QueryOrFragment,
    /// An issuer not written as it parses; the normal form is given.
    #[error("is not in normal form: write it as {0:?}")]
    NotNormal(String),
}

impl UrlError {
    /// One line for an error message about `url`: the URL quoted, then
    /// why — unless it carries userinfo, which may be a password and is
    /// not repeated.
    pub fn describe(&self, url: &str) -> String {
        match self {
            UrlError::Userinfo => self.to_string(),
            _ => format!("{url:?} {self}"),
        }
    }
}

/// Whether the parsed host is this machine: `localhost`, `127.0.0.0/8`,
/// `::1`. (`url` has already lower-cased a domain and read `127.1` or
/// `0x7f.0.0.1` as the address it is.)
fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => *name == "localhost",
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

fn fetchable(text: &str) -> Result<Url, UrlError> {
    let url = Url::parse(text).map_err(|e| UrlError::Malformed(e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(UrlError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Userinfo);
    }
    // `url` refuses an `http(s)` URL without a host; no host is not loopback.
    let loopback = url.host().is_some_and(|h| is_loopback(&h));
    if url.scheme() == "http" && !loopback {
        return Err(UrlError::PlainHttp);
    }
    Ok(url)
}

/// A URL a JWKS or a metadata document may be fetched from: `https://`, or
/// `http://` to a loopback host; no userinfo.
///
/// ```
/// use tessera_verify::urls::{check_fetchable, UrlError};
/// assert!(check_fetchable("https://partner.example.org/jwks.json").is_ok());
/// assert!(check_fetchable("http://127.0.0.1:8080/jwks").is_ok());
/// assert_eq!(check_fetchable("http://keys.example/jwks"), Err(UrlError::PlainHttp));
/// assert_eq!(check_fetchable("http://localhost:1@127.0.0.2:9/jwks"), Err(UrlError::Userinfo));
/// ```
pub fn check_fetchable(text: &str) -> Result<(), UrlError> {
    fetchable(text).map(|_| ())
}

/// An issuer identifier: as [`check_fetchable`], with no query or
/// fragment, and written in normal form. Returns it without trailing
/// slashes, otherwise exactly as written.
///
/// ```
/// use tessera_verify::urls::{check_issuer, UrlError};
/// assert_eq!(check_issuer("https://auth.example.com/").unwrap(), "https://auth.example.com");
/// assert_eq!(check_issuer("http://localhost:x@evil.example"), Err(UrlError::Userinfo));
/// assert_eq!(
///     check_issuer("https://Auth.example.com:443"),
///     Err(UrlError::NotNormal("https://auth.example.com".into()))
/// );
/// ```
pub fn check_issuer(text: &str) -> Result<String, UrlError> {
    let url = fetchable(text)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(UrlError::QueryOrFragment);
    }
    let written = text.trim_end_matches('/');
    let normal = url.as_str().trim_end_matches('/');
    if written != normal {
        return Err(UrlError::NotNormal(normal.to_owned()));
    }
    Ok(written.to_owned())
}

/// Where an issuer's RFC 8414 metadata is (§3.1): the well-known string
/// inserted between the host and the path, any terminating `/` of the path
/// removed first. `issuer` as [`check_fetchable`] accepts it.
///
/// ```
/// use tessera_verify::urls::metadata_url;
/// let at = |issuer| metadata_url(issuer).unwrap();
/// assert_eq!(at("https://a.example"), "https://a.example/.well-known/oauth-authorization-server");
/// assert_eq!(at("https://a.example/"), "https://a.example/.well-known/oauth-authorization-server");
/// assert_eq!(
///     at("https://a.example/tenant1/"),
///     "https://a.example/.well-known/oauth-authorization-server/tenant1"
/// );
/// ```
pub fn metadata_url(issuer: &str) -> Result<String, UrlError> {
    let mut url = fetchable(issuer)?;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.into())
}

/// Where an issuer's OpenID Connect Discovery document is (Discovery §4):
/// `/.well-known/openid-configuration` appended to the issuer, any
/// terminating `/` removed first — the place of RFC 8414 metadata before
/// RFC 8414 (§5), where tessera behind a path prefix serves it too.
///
/// ```
/// use tessera_verify::urls::openid_configuration_url;
/// assert_eq!(
///     openid_configuration_url("https://a.example/tenant1/").unwrap(),
///     "https://a.example/tenant1/.well-known/openid-configuration"
/// );
/// ```
pub fn openid_configuration_url(issuer: &str) -> Result<String, UrlError> {
    let mut url = fetchable(issuer)?;
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{path}/.well-known/openid-configuration"));
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_read_from_the_parsed_host() {
        for ok in [
            "https://auth.example.com/jwks",
            "http://localhost/jwks",
            "http://localhost:8080/jwks",
            "http://LOCALHOST:8080/jwks",
            "http://127.0.0.1:9/jwks",
            "http://127.0.0.2:9/jwks",
            "http://127.1:9/jwks",
            "http://[::1]:9/jwks",
            "https://keys.example/jwks?tenant=1",
        ] {
            assert_eq!(check_fetchable(ok), Ok(()), "{ok}");
        }
        let cases: &[(&str, UrlError)] = &[
            ("http://localhost:1@127.0.0.2:9/jwks", UrlError::Userinfo),
            ("http://localhost:x@evil.example", UrlError::Userinfo),
            ("http://127.0.0.1@evil.example/jwks", UrlError::Userinfo),
            ("https://user@auth.example.com/jwks", UrlError::Userinfo),
            ("https://:pw@auth.example.com/jwks", UrlError::Userinfo),
            ("http://keys.example/jwks", UrlError::PlainHttp),
            ("http://localhost.evil.example/jwks", UrlError::PlainHttp),
            ("http://127.0.0.1.evil.example/jwks", UrlError::PlainHttp),
            ("http://[::2]:80/jwks", UrlError::PlainHttp),
            ("http://[::ffff:127.0.0.1]/jwks", UrlError::PlainHttp),
            ("http://0.0.0.0:9/jwks", UrlError::PlainHttp),
            ("ftp://localhost/jwks", UrlError::Scheme),
            ("file:///etc/passwd", UrlError::Scheme),
            ("localhost:8080", UrlError::Scheme),
        ];
        for (bad, why) in cases {
            assert_eq!(check_fetchable(bad).as_ref(), Err(why), "{bad}");
        }
        for bad in ["", "auth.example.com", "/jwks", "http://", "https://"] {
            assert!(
                matches!(check_fetchable(bad), Err(UrlError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_issuer_is_kept_as_written_or_refused() {
        for (written, kept) in [
            ("https://auth.example.com", "https://auth.example.com"),
            ("https://auth.example.com/", "https://auth.example.com"),
            ("https://auth.example.com//", "https://auth.example.com"),
            (
                "https://auth.example.com/tenant/a",
                "https://auth.example.com/tenant/a",
            ),
            ("http://localhost:8080", "http://localhost:8080"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[::1]:8080", "http://[::1]:8080"),
        ] {
            assert_eq!(check_issuer(written).as_deref(), Ok(kept), "{written}");
        }
        let not_normal = |n: &str| UrlError::NotNormal(n.to_owned());
        let cases: &[(&str, UrlError)] = &[
            ("http://localhost:x@evil.example", UrlError::Userinfo),
            ("http://auth.example.com", UrlError::PlainHttp),
            ("https://auth.example.com?x=1", UrlError::QueryOrFragment),
            ("https://auth.example.com/#", UrlError::QueryOrFragment),
            (
                "https://Auth.Example.com",
                not_normal("https://auth.example.com"),
            ),
            (
                "https://auth.example.com:443",
                not_normal("https://auth.example.com"),
            ),
            ("http://127.1:8080", not_normal("http://127.0.0.1:8080")),
            (
                "http://localhost\\@evil.example",
                not_normal("http://localhost/@evil.example"),
            ),
            (
                "https://auth.example.com/a/../b",
                not_normal("https://auth.example.com/b"),
            ),
            (
                "https://auth.example.com/a b",
                not_normal("https://auth.example.com/a%20b"),
            ),
            (
                " https://auth.example.com",
                not_normal("https://auth.example.com"),
            ),
            (
                "https://auth.exa\tmple.com",
                not_normal("https://auth.example.com"),
            ),
        ];
        for (bad, why) in cases {
            assert_eq!(check_issuer(bad).as_ref(), Err(why), "{bad}");
        }
    }

    /// Issue 23: RFC 8414 §3.1 inserts the well-known string between the
    /// host and the path (the path used to be appended after it).
    #[test]
    fn metadata_is_where_rfc_8414_puts_it() {
        for (issuer, metadata, openid) in [
            (
                "https://a.example",
                "https://a.example/.well-known/oauth-authorization-server",
                "https://a.example/.well-known/openid-configuration",
            ),
            (
                "https://a.example/",
                "https://a.example/.well-known/oauth-authorization-server",
                "https://a.example/.well-known/openid-configuration",
            ),
            (
                "https://a.example/tenant1",
                "https://a.example/.well-known/oauth-authorization-server/tenant1",
                "https://a.example/tenant1/.well-known/openid-configuration",
            ),
            (
                "https://a.example/t/1/",
                "https://a.example/.well-known/oauth-authorization-server/t/1",
                "https://a.example/t/1/.well-known/openid-configuration",
            ),
            (
                "http://127.0.0.1:8080/a%20b",
                "http://127.0.0.1:8080/.well-known/oauth-authorization-server/a%20b",
                "http://127.0.0.1:8080/a%20b/.well-known/openid-configuration",
            ),
            (
                "https://a.example:8443/x",
                "https://a.example:8443/.well-known/oauth-authorization-server/x",
                "https://a.example:8443/x/.well-known/openid-configuration",
            ),
        ] {
            assert_eq!(metadata_url(issuer).as_deref(), Ok(metadata), "{issuer}");
            assert_eq!(
                openid_configuration_url(issuer).as_deref(),
                Ok(openid),
                "{issuer}"
            );
        }
        assert_eq!(
            metadata_url("http://auth.example.com"),
            Err(UrlError::PlainHttp)
        );
    }

    #[test]
    fn a_password_is_not_repeated_in_the_message() {
        let url = "https://user:hunter2-secret@auth.example.com";
        let e = check_fetchable(url).unwrap_err();
        assert!(!e.describe(url).contains("hunter2"), "{}", e.describe(url));
        let url = "http://keys.example/jwks";
        let e = check_fetchable(url).unwrap_err();
        assert!(e
            .describe(url)
            .starts_with("\"http://keys.example/jwks\" must use https://"));
    }
}
