//! Configuration: `tessera.toml`, then `TESSERA_*` environment overrides,
//! then the command line; validated once, at start-up. A bad value or an
//! unknown key stops the service with one line that names the key.
//!
//! ```toml
//! issuer   = "https://auth.example.com"
//! listen   = "127.0.0.1:8080"
//! data_dir = "./tessera-data"          # or: database_url = "sqlite://…"
//! [signing]
//! alg = "RS256"                        # PS256, ES256, EdDSA selectable
//! rotate_every = "30d"
//! [tokens]
//! access_ttl = "15m"
//! session_ttl = "12h"
//! refresh_ttl = "30d"
//! [[resources]]
//! audience = "https://api.example.com"
//! format = "jws"
//! claims = ["tenant_tier"]
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tessera_jose::jwa::JwsAlgorithm;
use toml::{Table, Value};

/// A configuration error: the key (dotted path, or environment variable)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config: `{key}`: {message}")]
pub struct ConfigError {
    /// The key, as written in the file (`signing.alg`) or the environment.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_owned(),
        message: message.into(),
    }
}

/// The signing algorithms the service can issue tokens with.
pub const SIGNING_ALGS: &[JwsAlgorithm] = &[
    JwsAlgorithm::RS256,
    JwsAlgorithm::PS256,
    JwsAlgorithm::ES256,
    JwsAlgorithm::EdDSA,
];

/// How a resource's tokens are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// A signed JWT (JWS). The only format until JWE resources land.
    Jws,
}

/// The policy of one resource (audience).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The `aud` its tokens carry.
    pub audience: String,
    /// The token format.
    pub format: TokenFormat,
    /// Custom claims it accepts (anything else is refused).
    pub claims: Vec<String>,
}

/// `[signing]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    /// The algorithm of the service's signing keys.
    pub alg: JwsAlgorithm,
    /// How long a key signs before the next one takes over.
    pub rotate_every: Duration,
}

/// `[tokens]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// Access token lifetime.
    pub access_ttl: Duration,
    /// Session token lifetime.
    pub session_ttl: Duration,
    /// Refresh token lifetime.
    pub refresh_ttl: Duration,
}

/// `[tls]`: serve HTTPS with this certificate chain and key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `iss` of every token, and the base of the discovery documents.
    pub issuer: String,
    /// Whether `issuer` was not configured and is derived from the listen
    /// address (development); the server then uses the address it bound.
    pub issuer_defaulted: bool,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Where the SQLite database and a generated master key live.
    pub data_dir: PathBuf,
    /// The database, when not the SQLite file in the data directory.
    pub database_url: Option<String>,
    /// A file holding the master key (32 bytes, base64url or hex).
    pub master_key_file: Option<PathBuf>,
    /// `[signing]`.
    pub signing: Signing,
    /// `[tokens]`.
    pub tokens: Tokens,
    /// `[[resources]]`.
    pub resources: Vec<Resource>,
    /// `[tls]`.
    pub tls: Option<Tls>,
    /// `[log] format`.
    pub log_format: LogFormat,
}

/// Environment variables and the keys they set. `TESSERA_MASTER_KEY` is read
/// by the key store, not here (it is a secret, not configuration).
const ENV_KEYS: &[(&str, &str)] = &[
    ("TESSERA_ISSUER", "issuer"),
    ("TESSERA_LISTEN", "listen"),
    ("TESSERA_DATA_DIR", "data_dir"),
    ("TESSERA_DATABASE_URL", "database_url"),
    ("TESSERA_MASTER_KEY_FILE", "master_key_file"),
    ("TESSERA_SIGNING_ALG", "signing.alg"),
    ("TESSERA_SIGNING_ROTATE_EVERY", "signing.rotate_every"),
    ("TESSERA_TOKENS_ACCESS_TTL", "tokens.access_ttl"),
    ("TESSERA_TOKENS_SESSION_TTL", "tokens.session_ttl"),
    ("TESSERA_TOKENS_REFRESH_TTL", "tokens.refresh_ttl"),
    ("TESSERA_TLS_CERT", "tls.cert"),
    ("TESSERA_TLS_KEY", "tls.key"),
    ("TESSERA_LOG_FORMAT", "log.format"),
];

/// Environment variables that are not configuration keys but are known.
const ENV_OTHER: &[&str] = &["TESSERA_MASTER_KEY", "TESSERA_LOG"];

/// A configured duration in whole seconds, as token and key times are kept.
pub fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Parses a duration: a whole number and a unit, `s`, `m`, `h`, `d` or `w`
/// (`"15m"`, `"30d"`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(unit_at);
    let n: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(seconds).map(Duration::from_secs)
}

impl Config {
    /// Loads `path` (if given), applies `env` (the process environment, as
    /// pairs) and `listen` (the command line), and validates the result.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        listen: Option<&str>,
    ) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| err(&p.display().to_string(), format!("cannot read: {e}")))?;
                text.parse::<Table>().map_err(|e| {
                    err(
                        &p.display().to_string(),
                        format!("not valid TOML: {}", e.message()),
                    )
                })?
            }
            None => Table::new(),
        };
        for (name, value) in env {
            if !name.starts_with("TESSERA_") || ENV_OTHER.contains(&name.as_str()) {
                continue;
            }
            let key = ENV_KEYS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, k)| *k)
                .ok_or_else(|| err(&name, "unknown TESSERA_* variable"))?;
            set(&mut table, key, Value::String(value));
        }
        if let Some(listen) = listen {
            set(&mut table, "listen", Value::String(listen.to_owned()));
        }
        Config::from_table(&table)
    }

    /// Validates a parsed TOML table.
    pub fn from_table(table: &Table) -> Result<Config, ConfigError> {
        let mut t = Reader::new(table, "");
        let listen = t
            .string("listen")?
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr = listen.parse().map_err(|_| {
            err(
                "listen",
                format!("{listen:?} is not an address like 127.0.0.1:8080"),
            )
        })?;
        let configured = t.string("issuer")?;
        let issuer_defaulted = configured.is_none();
        let issuer = match configured {
            Some(i) => check_issuer(&i)?,
            None => default_issuer(listen),
        };
        let data_dir = PathBuf::from(
            t.string("data_dir")?
                .unwrap_or_else(|| "./tessera-data".to_owned()),
        );
        let database_url = t.string("database_url")?;
        if let Some(url) = &database_url {
            if !url.starts_with("sqlite:") {
                return Err(err(
                    "database_url",
                    "only sqlite:// URLs are supported in this version",
                ));
            }
        }
        let master_key_file = t.string("master_key_file")?.map(PathBuf::from);

        let signing_table = t.table("signing")?;
        let mut s = Reader::new(&signing_table, "signing");
        let alg = match s.string("alg")? {
            None => JwsAlgorithm::RS256,
            Some(name) => name
                .parse::<JwsAlgorithm>()
                .ok()
                .filter(|a| SIGNING_ALGS.contains(a))
                .ok_or_else(|| {
                    err(
                        "signing.alg",
                        format!("{name:?} is not one of RS256, PS256, ES256, EdDSA"),
                    )
                })?,
        };
        let rotate_every = s.duration("rotate_every", "30d", (3600, 366 * 86_400))?;
        s.finish()?;

        let tokens_table = t.table("tokens")?;
        let mut k = Reader::new(&tokens_table, "tokens");
        let tokens = Tokens {
            access_ttl: k.duration("access_ttl", "15m", (30, 86_400))?,
            session_ttl: k.duration("session_ttl", "12h", (60, 30 * 86_400))?,
            refresh_ttl: k.duration("refresh_ttl", "30d", (60, 366 * 86_400))?,
        };
        k.finish()?;

        let resources = t.resources()?;
        let tls = match t.table_opt("tls")? {
            None => None,
            Some(table) => {
                let mut r = Reader::new(&table, "tls");
                let cert = r
                    .string("cert")?
                    .ok_or_else(|| err("tls.cert", "missing"))?;
                let key = r.string("key")?.ok_or_else(|| err("tls.key", "missing"))?;
                r.finish()?;
                Some(Tls {
                    cert: cert.into(),
                    key: key.into(),
                })
            }
        };
        let log_table = t.table("log")?;
        let mut l = Reader::new(&log_table, "log");
        let log_format = match l.string("format")?.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(err(
                    "log.format",
                    format!("{other:?} is not \"text\" or \"json\""),
                ))
            }
        };
        l.finish()?;
        t.finish()?;
        Ok(Config {
            issuer,
            issuer_defaulted,
            listen,
            data_dir,
            database_url,
            master_key_file,
            signing: Signing { alg, rotate_every },
            tokens,
            resources,
            tls,
            log_format,
        })
    }

    /// The policy for `audience`: its `[[resources]]` entry, or the default
    /// (`jws`, no custom claims).
    pub fn resource(&self, audience: &str) -> Resource {
        self.resources
            .iter()
            .find(|r| r.audience == audience)
            .cloned()
            .unwrap_or_else(|| Resource {
                audience: audience.to_owned(),
                format: TokenFormat::Jws,
                claims: Vec::new(),
            })
    }
}

impl fmt::Display for TokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenFormat::Jws => "jws",
        })
    }
}

/// The development issuer for a listen address: this machine, as a client
/// would reach it.
pub fn default_issuer(listen: SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        format!("http://localhost:{}", listen.port())
    } else {
        format!("http://{listen}")
    }
}

/// `https://`, or `http://` on a loopback host (for development); no query
/// or fragment; no trailing slash.
fn check_issuer(issuer: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| err("issuer", format!("{issuer:?} {why}"));
    let rest = if let Some(rest) = issuer.strip_prefix("https://") {
        rest
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        let loopback = host == "localhost" || host == "127.0.0.1" || rest.starts_with("[::1]");
        if !loopback {
            return Err(bad("must use https:// (http:// only on localhost)"));
        }
        rest
    } else {
        return Err(bad("must be an https:// URL"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("has no host"));
    }
    if rest.contains(['?', '#', ' ']) {
        return Err(bad("must not have a query, fragment or spaces"));
    }
    Ok(issuer.trim_end_matches('/').to_owned())
}

/// Sets `dotted` in `table`, creating sub-tables.
fn set(table: &mut Table, dotted: &str, value: Value) {
    match dotted.split_once('.') {
        None => {
            table.insert(dotted.to_owned(), value);
        }
        Some((head, tail)) => {
            let entry = table
                .entry(head.to_owned())
                .or_insert_with(|| Value::Table(Table::new()));
            if !entry.is_table() {
                *entry = Value::Table(Table::new());
            }
            if let Value::Table(sub) = entry {
                set(sub, tail, value);
            }
        }
    }
}

/// Reads the members of one table, remembering which were used so that
/// anything left over is reported as an unknown key.
struct Reader<'a> {
    table: &'a Table,
    prefix: &'a str,
    used: Vec<&'static str>,
}

impl<'a> Reader<'a> {
    fn new(table: &'a Table, prefix: &'a str) -> Self {
        Reader {
            table,
            prefix,
            used: Vec::new(),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn string(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        self.used.push(key);
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(err(
                &self.path(key),
                format!("expected a string, found {}", other.type_str()),
            )),
        }
    }

    fn duration(
        &mut self,
        key: &'static str,
        default: &str,
        (min, max): (u64, u64),
    ) -> Result<Duration, ConfigError> {
        let text = self.string(key)?.unwrap_or_else(|| default.to_owned());
        let d = parse_duration(&text).ok_or_else(|| {
            err(
                &self.path(key),
                format!("{text:?} is not a duration like \"15m\", \"12h\" or \"30d\""),
            )
        })?;
        if d.as_secs() < min || d.as_secs() > max {
            return Err(err(
                &self.path(key),
                format!("{text:?} is outside {min} s to {max} s"),
            ));
        }
        Ok(d)
    }

    fn table_opt(&mut self, key: &'static str) -> Result<Option<Table>, ConfigError> {
        self.used.push(key);
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Table(t)) => Ok(Some(t.clone())),
            Some(other) => Err(err(
                &self.path(key),
                format!("expected a table, found {}", other.type_str()),
            )),
        }
    }

    fn table(&mut self, key: &'static str) -> Result<Table, ConfigError> {
        Ok(self.table_opt(key)?.unwrap_or_default())
    }

    fn resources(&mut self) -> Result<Vec<Resource>, ConfigError> {
        self.used.push("resources");
        let list = match self.table.get("resources") {
            None => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(err(
                    "resources",
                    format!("expected [[resources]] tables, found {}", other.type_str()),
                ))
            }
        };
        let mut out: Vec<Resource> = Vec::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            let prefix = format!("resources[{i}]");
            let Value::Table(table) = item else {
                return Err(err(&prefix, "expected a table"));
            };
            let mut r = Reader::new(table, &prefix);
            let audience = r
                .string("audience")?
                .filter(|a| !a.is_empty())
                .ok_or_else(|| err(&format!("{prefix}.audience"), "missing"))?;
            if out.iter().any(|o| o.audience == audience) {
                return Err(err(
                    &format!("{prefix}.audience"),
                    format!("{audience:?} is listed twice"),
                ));
            }
            let format = match r.string("format")?.as_deref() {
                None | Some("jws") => TokenFormat::Jws,
                Some(other @ ("jwe" | "nested")) => {
                    return Err(err(
                        &format!("{prefix}.format"),
                        format!("{other:?} is not available yet; use \"jws\""),
                    ))
                }
                Some(other) => {
                    return Err(err(
                        &format!("{prefix}.format"),
                        format!("{other:?} is not \"jws\""),
                    ))
                }
            };
            r.used.push("claims");
            let claims = match table.get("claims") {
                None => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .ok_or_else(|| {
                                err(&format!("{prefix}.claims"), "expected a list of names")
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                Some(_) => {
                    return Err(err(&format!("{prefix}.claims"), "expected a list of names"))
                }
            };
            r.finish()?;
            out.push(Resource {
                audience,
                format,
                claims,
            });
        }
        Ok(out)
    }

    /// Any member not read is unknown.
    fn finish(self) -> Result<(), ConfigError> {
        match self.table.keys().find(|k| !self.used.contains(&k.as_str())) {
            Some(k) => Err(err(&self.path(k), "unknown key")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, toml).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(Some(&path), env, None)
    }

    const FULL: &str = r#"
issuer   = "https://auth.example.com"
listen   = "127.0.0.1:8080"
data_dir = "./tessera-data"
[signing]
alg = "RS256"
rotate_every = "30d"
[tokens]
access_ttl = "15m"
session_ttl = "12h"
refresh_ttl = "30d"
[[resources]]
audience = "https://api.example.com"
format = "jws"
claims = ["tenant_tier"]
"#;

    #[test]
    fn the_documented_shape_loads() {
        let c = load(FULL, &[]).unwrap();
        assert_eq!(c.issuer, "https://auth.example.com");
        assert_eq!(c.signing.alg, JwsAlgorithm::RS256);
        assert_eq!(c.signing.rotate_every, Duration::from_secs(30 * 86_400));
        assert_eq!(c.tokens.access_ttl, Duration::from_secs(900));
        assert_eq!(c.resources[0].claims, vec!["tenant_tier".to_owned()]);
        let default = c.resource("https://other.example.com");
        assert_eq!(
            (default.format, default.claims.len()),
            (TokenFormat::Jws, 0)
        );
    }

    #[test]
    fn no_file_means_defaults() {
        let c = Config::load(None, Vec::new(), None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./tessera-data"));
        assert_eq!(c.tokens.refresh_ttl, Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn environment_and_command_line_override() {
        let c = load(
            FULL,
            &[
                ("TESSERA_ISSUER", "https://id.example.org/"),
                ("TESSERA_SIGNING_ALG", "EdDSA"),
                ("TESSERA_TOKENS_ACCESS_TTL", "5m"),
                ("TESSERA_MASTER_KEY", "not config"),
                ("PATH", "/usr/bin"),
            ],
        )
        .unwrap();
        assert_eq!(c.issuer, "https://id.example.org");
        assert_eq!(c.signing.alg, JwsAlgorithm::EdDSA);
        assert_eq!(c.tokens.access_ttl, Duration::from_secs(300));
        let c = Config::load(None, Vec::new(), Some("0.0.0.0:9000")).unwrap();
        assert_eq!(c.listen.port(), 9000);
    }

    #[test]
    fn errors_name_the_key() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            ("[signing]\nalgo = \"RS256\"", &[], "signing.algo"),
            ("[signing]\nalg = \"HS256\"", &[], "signing.alg"),
            (
                "[tokens]\naccess_ttl = \"15 minutes\"",
                &[],
                "tokens.access_ttl",
            ),
            ("[tokens]\naccess_ttl = \"90d\"", &[], "tokens.access_ttl"),
            ("[tokens]\nrefresh_ttl = 30", &[], "tokens.refresh_ttl"),
            ("listen = \"localhost\"", &[], "listen"),
            ("issuer = \"http://auth.example.com\"", &[], "issuer"),
            ("issuer = \"auth.example.com\"", &[], "issuer"),
            ("issuer = \"http://[::2]:80\"", &[], "issuer"),
            ("surprise = 1", &[], "surprise"),
            (
                "[[resources]]\naudience = \"a\"\nformat = \"jwe\"",
                &[],
                "resources[0].format",
            ),
            (
                "[[resources]]\nformat = \"jws\"",
                &[],
                "resources[0].audience",
            ),
            (
                "[[resources]]\naudience = \"a\"\n[[resources]]\naudience = \"a\"",
                &[],
                "resources[1].audience",
            ),
            (
                "[[resources]]\naudience = \"a\"\nclaim = [\"x\"]",
                &[],
                "resources[0].claim",
            ),
            ("database_url = \"postgres://db\"", &[], "database_url"),
            ("[log]\nformat = \"xml\"", &[], "log.format"),
            ("", &[("TESSERA_ISSUR", "https://x")], "TESSERA_ISSUR"),
            ("", &[("TESSERA_LISTEN", "nope")], "listen"),
        ];
        for (toml, env, key) in cases {
            let e = load(toml, env).unwrap_err();
            assert_eq!(e.key, *key, "{toml}: {e}");
            assert!(
                e.to_string().starts_with(&format!("config: `{key}`")),
                "{e}"
            );
        }
        let e = load("issuer = ", &[]).unwrap_err();
        assert!(e.message.starts_with("not valid TOML"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("2w"), Some(Duration::from_secs(14 * 86_400)));
        for bad in ["", "15", "m", "1.5h", "-1m", "99999999999999999999d", "3 d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
