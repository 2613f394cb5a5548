//! Configuration: `tessera.toml`, then `TESSERA_*` environment overrides,
//! then the command line; validated once, at start-up. A bad value or an
//! unknown key stops the service with one line that names the key.
//!
//! ```toml
//! issuer   = "https://auth.example.com"
//! listen   = "127.0.0.1:8080"
//! data_dir = "./tessera-data"          # or: database_url = "sqlite://…" | "postgres://…"
//! [signing]
//! alg = "RS256"                        # PS256, ES256, EdDSA selectable
//! rotate_every = "30d"
//! reload_every = "60s"                 # each node re-reads the key set this often
//! [tokens]
//! access_ttl = "15m"
//! session_ttl = "12h"
//! refresh_ttl = "30d"
//! step_up_ttl = "5m"
//! [clients]
//! cache_for = "1s"                     # a client record read is kept this long ("0s": read every time)
//! [audit]
//! keep = "90d"                         # audit events older than this are pruned
//! [admin]
//! listen = "127.0.0.1:8081"            # the admin API (tokens: `tessera admins create`); "off" disables it
//! [dpop]                               # DPoP proofs (RFC 9449) at the token and session endpoints
//! algorithms = ["ES256", "EdDSA", "PS256", "RS256"]
//! max_age = "60s"                      # how old a proof's iat may be (it may also be 10 s ahead)
//! require_nonce = false                # true: every proof carries a server nonce (DPoP-Nonce)
//! [[resources]]                        # one per audience; unlisted ones get jws, no custom claims
//! audience = "https://api.example.com"
//! format = "jws"                       # signed: anyone holding it reads it
//! claims = ["tenant_tier"]
//! dpop = "required"                    # its tokens only bound to a key (default "optional")
//! [[resources]]
//! audience = "https://records.example.com"
//! format = "jwe"                       # our signed JWT, sealed to the resource's key
//! encryption_key = "records.pub.jwk"   # or encryption_jwks_uri = "https://…" (+ encryption_jwks_refresh = "1h")
//! alg = "RSA-OAEP-256"                 # or RSA-OAEP-384/512, ECDH-ES+A128KW/A192KW/A256KW
//! enc = "A256GCM"
//! claims = ["record_id"]               # may hold personal data: it is sealed
//! [[resources]]
//! audience = "https://partner.example.org"
//! format = "nested"                    # a partner: signed, sealed, only `release` leaves
//! encryption_jwks_uri = "https://partner.example.org/jwks.json"
//! alg = "ECDH-ES+A256KW"
//! release = ["sub", "org"]
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
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
    /// A signed JWT (JWS): readable by anyone who holds it.
    Jws,
    /// Sealed to the resource's public key (JWE), so only the resource reads
    /// the claims. The JWE holds our signed JWT: anyone can encrypt to a
    /// public key, so without our signature inside, a resource could not tell
    /// our token from a forgery.
    Jwe,
    /// For a partner in another trust domain: signed by us, then sealed to
    /// the partner's key (JWS-in-JWE, `cty: "JWT"`); only the attributes in
    /// `release` leave.
    Nested,
}

/// The key-management algorithms a sealed resource may ask for: RSA-OAEP
/// with SHA-2 and ECDH-ES key wrapping. RSA1_5 and RSA-OAEP (SHA-1) are
/// weak; `dir`, AES-KW and PBES2 need a shared secret, not a public key.
pub const SEALING_ALGS: &[JweAlgorithm] = &[
    JweAlgorithm::RSA_OAEP_256,
    JweAlgorithm::RSA_OAEP_384,
    JweAlgorithm::RSA_OAEP_512,
    JweAlgorithm::ECDH_ES_A128KW,
    JweAlgorithm::ECDH_ES_A192KW,
    JweAlgorithm::ECDH_ES_A256KW,
];

/// Where a sealed resource's public encryption key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `encryption_key = "FILE"`: a public JWK or JWK Set, read at start-up.
    File(PathBuf),
    /// `encryption_jwks_uri = "https://…"`: fetched at start-up and every
    /// `refresh`, never because of a request.
    JwksUri {
        /// The URL.
        uri: String,
        /// How often it is fetched again.
        refresh: Duration,
    },
}

/// How a `jwe` or `nested` resource's tokens are sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealing {
    /// The resource's key.
    pub source: KeySource,
    /// Key management (`alg`), one of [`SEALING_ALGS`]; default `RSA-OAEP-256`.
    pub alg: JweAlgorithm,
    /// Content encryption (`enc`); default `A256GCM`.
    pub enc: JweEncryption,
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
    /// For `jwe` and `nested`: how tokens are sealed.
    pub sealing: Option<Sealing>,
    /// For `nested` (partners): every attribute it may receive; nothing
    /// else leaves.
    pub release: Vec<String>,
    /// `dpop = "required"`: its tokens are issued only with a DPoP proof,
    /// bound to the proof's key (default `"optional"`).
    pub dpop_required: bool,
}

/// `[dpop]`: how DPoP proofs (RFC 9449) are checked at the token and
/// session endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dpop {
    /// The algorithms accepted and how old a proof may be (`algorithms`,
    /// `max_age`).
    pub rules: tessera_verify::dpop::ProofRules,
    /// Whether every proof must carry a server nonce (`require_nonce`,
    /// default false).
    pub require_nonce: bool,
}

/// `[signing]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    /// The algorithm of the service's signing keys.
    pub alg: JwsAlgorithm,
    /// How long a key signs before the next one takes over.
    pub rotate_every: Duration,
    /// How often each node re-reads the key set from the store and does
    /// key maintenance; a rotation made by one node is served by every other
    /// node within this period (several nodes on PostgreSQL).
    pub reload_every: Duration,
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
    /// Step-up assertion lifetime (default 5 minutes).
    pub step_up_ttl: Duration,
}

/// `[clients]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clients {
    /// How long a client record read from the store is kept in memory
    /// (default 1 s, at most 60 s; zero reads it on every request). A client
    /// deleted with `tessera clients delete`, or on another node, is still
    /// accepted for up to this long.
    pub cache_for: Duration,
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// How long audit events are kept (default 90 days, at least one);
    /// older ones are pruned, the chain staying verifiable from its new
    /// start.
    pub keep: Duration,
}

/// `[tls]`: serve HTTPS with this certificate chain and key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
}

/// `[admin]`: the admin listener (admin API, its OpenAPI document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Where it listens; `None` when `listen = "off"`. Default
    /// `127.0.0.1:8081` (loopback: operators reach it through an SSH tunnel
    /// or a private network), or `127.0.0.1:0` when the public listener
    /// itself takes an ephemeral port (tests).
    pub listen: Option<SocketAddr>,
    /// `[admin.tls]`: HTTPS on the admin listener.
    pub tls: Option<Tls>,
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
    /// A file holding the master key (32 bytes as 64 hex digits, base64url
    /// or standard base64, padded or not).
    pub master_key_file: Option<PathBuf>,
    /// `[signing]`.
    pub signing: Signing,
    /// `[tokens]`.
    pub tokens: Tokens,
    /// `[clients]`.
    pub clients: Clients,
    /// `[audit]`.
    pub audit: Audit,
    /// `[[resources]]`.
    pub resources: Vec<Resource>,
    /// `[tls]`.
    pub tls: Option<Tls>,
    /// `[admin]`.
    pub admin: Admin,
    /// `[dpop]`.
    pub dpop: Dpop,
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
    ("TESSERA_SIGNING_RELOAD_EVERY", "signing.reload_every"),
    ("TESSERA_TOKENS_ACCESS_TTL", "tokens.access_ttl"),
    ("TESSERA_TOKENS_SESSION_TTL", "tokens.session_ttl"),
    ("TESSERA_TOKENS_REFRESH_TTL", "tokens.refresh_ttl"),
    ("TESSERA_CLIENTS_CACHE_FOR", "clients.cache_for"),
    ("TESSERA_AUDIT_KEEP", "audit.keep"),
    ("TESSERA_TLS_CERT", "tls.cert"),
    ("TESSERA_TLS_KEY", "tls.key"),
    ("TESSERA_ADMIN_LISTEN", "admin.listen"),
    ("TESSERA_ADMIN_TLS_CERT", "admin.tls.cert"),
    ("TESSERA_ADMIN_TLS_KEY", "admin.tls.key"),
    ("TESSERA_LOG_FORMAT", "log.format"),
    ("TESSERA_DPOP_ALGORITHMS", "dpop.algorithms"),
    ("TESSERA_DPOP_MAX_AGE", "dpop.max_age"),
    ("TESSERA_DPOP_REQUIRE_NONCE", "dpop.require_nonce"),
];

/// Environment variables that are not configuration keys but are known.
const ENV_OTHER: &[&str] = &["TESSERA_MASTER_KEY", "TESSERA_LOG"];

/// A prefix reserved for the project's test scripts (`TESSERA_TEST_PG_URL`,
/// `TESSERA_TEST_FUZZ_SECONDS`, ...): a service started by a test inherits
/// them, and they are not configuration.
const ENV_TEST_PREFIX: &str = "TESSERA_TEST_";

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
            if !name.starts_with("TESSERA_")
                || name.starts_with(ENV_TEST_PREFIX)
                || ENV_OTHER.contains(&name.as_str())
            {
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
            let known = ["sqlite:", "postgres://", "postgresql://"];
            if !known.iter().any(|p| url.starts_with(p)) {
                return Err(err(
                    "database_url",
                    "expected sqlite://… (one node) or postgres://… (several nodes sharing one state)",
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
        // A minute is the floor (for trials); in production, days.
        let rotate_every = s.duration("rotate_every", "30d", (60, 366 * 86_400))?;
        let reload_every = s.duration("reload_every", "60s", (1, 3600))?;
        s.finish()?;

        let tokens_table = t.table("tokens")?;
        let mut k = Reader::new(&tokens_table, "tokens");
        let tokens = Tokens {
            access_ttl: k.duration("access_ttl", "15m", (30, 86_400))?,
            session_ttl: k.duration("session_ttl", "12h", (60, 30 * 86_400))?,
            refresh_ttl: k.duration("refresh_ttl", "30d", (60, 366 * 86_400))?,
            step_up_ttl: k.duration("step_up_ttl", "5m", (30, 3600))?,
        };
        k.finish()?;

        let clients_table = t.table("clients")?;
        let mut c = Reader::new(&clients_table, "clients");
        let clients = Clients {
            cache_for: c.duration("cache_for", "1s", (0, 60))?,
        };
        c.finish()?;

        let audit_table = t.table("audit")?;
        let mut au = Reader::new(&audit_table, "audit");
        let audit = Audit {
            keep: au.duration("keep", "90d", (86_400, 100 * 366 * 86_400))?,
        };
        au.finish()?;

        let resources = t.resources()?;
        let tls = match t.table_opt("tls")? {
            None => None,
            Some(table) => Some(tls_table(&table, "tls")?),
        };
        let admin_table = t.table("admin")?;
        let mut a = Reader::new(&admin_table, "admin");
        let admin_listen = match a.string("listen")?.as_deref() {
            Some("off") => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                err(
                    "admin.listen",
                    format!("{text:?} is not an address like 127.0.0.1:8081, or \"off\""),
                )
            })?),
            None if listen.port() == 0 => Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            None => Some(SocketAddr::from(([127, 0, 0, 1], 8081))),
        };
        if admin_listen.is_some_and(|a| a == listen && a.port() != 0) {
            return Err(err(
                "admin.listen",
                "the admin listener needs its own address, not the public one",
            ));
        }
        let admin_tls = match a.table_opt("tls")? {
            None => None,
            Some(table) => Some(tls_table(&table, "admin.tls")?),
        };
        a.finish()?;
        let admin = Admin {
            listen: admin_listen,
            tls: admin_tls,
        };
        let dpop = t.dpop()?;
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
            signing: Signing {
                alg,
                rotate_every,
                reload_every,
            },
            tokens,
            clients,
            audit,
            resources,
            tls,
            admin,
            dpop,
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
                sealing: None,
                release: Vec::new(),
                dpop_required: false,
            })
    }
}

/// A `[tls]` or `[admin.tls]` table: the certificate chain and key files.
fn tls_table(table: &Table, prefix: &'static str) -> Result<Tls, ConfigError> {
    let mut r = Reader::new(table, prefix);
    let cert = r
        .string("cert")?
        .ok_or_else(|| err(&format!("{prefix}.cert"), "missing"))?;
    let key = r
        .string("key")?
        .ok_or_else(|| err(&format!("{prefix}.key"), "missing"))?;
    r.finish()?;
    Ok(Tls {
        cert: cert.into(),
        key: key.into(),
    })
}

/// A JWKS URL must be `https://`; plain `http://` only to a loopback host
/// (development and tests), since a key fetched in the clear can be
/// swapped; never with `user:password@`. Decided on the URL as parsed, by
/// the parser the fetch uses ([`tessera_verify::urls::check_fetchable`]):
/// `http://localhost:1@127.0.0.2:9/jwks` names the host `127.0.0.2`.
fn check_jwks_uri(uri: &str) -> Result<(), String> {
    tessera_verify::urls::check_fetchable(uri).map_err(|e| e.describe(uri))
}

impl fmt::Display for TokenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenFormat::Jws => "jws",
            TokenFormat::Jwe => "jwe",
            TokenFormat::Nested => "nested",
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

/// `https://`, or `http://` on a loopback host (for development); no
/// userinfo, query or fragment; no trailing slash. Parsed, not
/// pattern-matched ([`tessera_verify::urls::check_issuer`], the rule
/// tessera-verify applies too): it must already be in normal form, since
/// its text is the `iss` every verifier compares, so
/// `https://Auth.example.com:443` is refused with the form to write
/// rather than rewritten behind the operator's back.
fn check_issuer(issuer: &str) -> Result<String, ConfigError> {
    tessera_verify::urls::check_issuer(issuer).map_err(|e| err("issuer", e.describe(issuer)))
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

    /// A boolean: `true`/`false`, or the strings `"true"`/`"false"` (what
    /// an environment variable gives).
    fn boolean(&mut self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        self.used.push(key);
        match self.table.get(key) {
            None => Ok(default),
            Some(Value::Boolean(b)) => Ok(*b),
            Some(Value::String(s)) if s == "true" => Ok(true),
            Some(Value::String(s)) if s == "false" => Ok(false),
            Some(other) => Err(err(
                &self.path(key),
                format!("expected true or false, found {other}"),
            )),
        }
    }

    /// `[dpop]`: `algorithms` (a list, or a comma-separated string — what
    /// `TESSERA_DPOP_ALGORITHMS` gives), `max_age`, `require_nonce`.
    fn dpop(&mut self) -> Result<Dpop, ConfigError> {
        let table = self.table("dpop")?;
        let mut d = Reader::new(&table, "dpop");
        d.used.push("algorithms");
        let names: Vec<String> = match table.get("algorithms") {
            None => tessera_verify::dpop::DEFAULT_ALGORITHMS
                .iter()
                .map(|a| a.name().to_owned())
                .collect(),
            Some(Value::String(list)) => list
                .split(',')
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| err("dpop.algorithms", "expected a list of names"))
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(err(
                    "dpop.algorithms",
                    format!("expected a list of names, found {}", other.type_str()),
                ))
            }
        };
        let mut algorithms = Vec::with_capacity(names.len());
        for name in &names {
            let alg = name
                .parse::<JwsAlgorithm>()
                .ok()
                .filter(|a| !a.is_symmetric() && a.name() != "none")
                .ok_or_else(|| {
                    err(
                        "dpop.algorithms",
                        format!(
                            "{name:?} is not an asymmetric JWS algorithm (ES256, ES384, ES512, \
                             EdDSA, PS256, PS384, PS512, RS256, RS384, RS512)"
                        ),
                    )
                })?;
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        let max_age = d.duration("max_age", "60s", (1, 3600))?;
        let rules = tessera_verify::dpop::ProofRules::new(&algorithms, max_age)
            .map_err(|m| err("dpop.algorithms", m))?;
        let require_nonce = d.boolean("require_nonce", false)?;
        d.finish()?;
        Ok(Dpop {
            rules,
            require_nonce,
        })
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
                Some("jwe") => TokenFormat::Jwe,
                Some("nested") => TokenFormat::Nested,
                Some(other) => {
                    return Err(err(
                        &format!("{prefix}.format"),
                        format!("{other:?} is not \"jws\", \"jwe\" or \"nested\""),
                    ))
                }
            };
            let claims = r.names("claims")?;
            let release = r.names("release")?;
            let sealing = r.sealing(format)?;
            let dpop_required = match r.string("dpop")?.as_deref() {
                None | Some("optional") => false,
                Some("required") => true,
                Some(other) => {
                    return Err(err(
                        &format!("{prefix}.dpop"),
                        format!("{other:?} is not \"optional\" or \"required\""),
                    ))
                }
            };
            if format != TokenFormat::Nested && table.contains_key("release") {
                return Err(err(
                    &format!("{prefix}.release"),
                    "only a \"nested\" (partner) resource has a release list",
                ));
            }
            r.finish()?;
            out.push(Resource {
                audience,
                format,
                claims,
                sealing,
                release,
                dpop_required,
            });
        }
        Ok(out)
    }

    /// A list of non-empty names (`claims`, `release`); empty when absent.
    fn names(&mut self, key: &'static str) -> Result<Vec<String>, ConfigError> {
        self.used.push(key);
        let bad = || err(&self.path(key), "expected a list of names");
        match self.table.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .ok_or_else(bad)
                })
                .collect(),
            Some(_) => Err(bad()),
        }
    }

    /// `encryption_key` or `encryption_jwks_uri`, `alg`, `enc`: required
    /// (one key source) for `jwe`/`nested`, refused for `jws`.
    fn sealing(&mut self, format: TokenFormat) -> Result<Option<Sealing>, ConfigError> {
        let file = self.string("encryption_key")?;
        let uri = self.string("encryption_jwks_uri")?;
        let refresh = self.duration("encryption_jwks_refresh", "1h", (60, 7 * 86_400))?;
        let alg = self.string("alg")?;
        let enc = self.string("enc")?;
        if format == TokenFormat::Jws {
            for key in [
                "encryption_key",
                "encryption_jwks_uri",
                "encryption_jwks_refresh",
                "alg",
                "enc",
            ] {
                if self.table.contains_key(key) {
                    return Err(err(
                        &self.path(key),
                        "only a \"jwe\" or \"nested\" resource is sealed to a key",
                    ));
                }
            }
            return Ok(None);
        }
        let source = match (file, uri) {
            (Some(f), None) => KeySource::File(PathBuf::from(f)),
            (None, Some(u)) => {
                check_jwks_uri(&u).map_err(|why| err(&self.path("encryption_jwks_uri"), why))?;
                KeySource::JwksUri { uri: u, refresh }
            }
            (None, None) => {
                return Err(err(
                    &self.path("encryption_key"),
                    format!(
                        "missing: a {format} resource needs its public key, as \
                         encryption_key = \"FILE\" or encryption_jwks_uri = \"https://…\""
                    ),
                ))
            }
            (Some(_), Some(_)) => {
                return Err(err(
                    &self.path("encryption_jwks_uri"),
                    "give encryption_key or encryption_jwks_uri, not both",
                ))
            }
        };
        let alg = match alg {
            None => JweAlgorithm::RSA_OAEP_256,
            Some(name) => name
                .parse::<JweAlgorithm>()
                .ok()
                .filter(|a| SEALING_ALGS.contains(a))
                .ok_or_else(|| {
                    err(
                        &self.path("alg"),
                        format!(
                            "{name:?} is not one of {}",
                            SEALING_ALGS
                                .iter()
                                .map(|a| a.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?,
        };
        let enc = match enc {
            None => JweEncryption::A256GCM,
            Some(name) => name.parse::<JweEncryption>().map_err(|_| {
                err(
                    &self.path("enc"),
                    format!(
                        "{name:?} is not one of {}",
                        JweEncryption::ALL
                            .iter()
                            .map(|e| e.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?,
        };
        Ok(Some(Sealing { source, alg, enc }))
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
    fn sealed_resources() {
        let c = load(
            r#"
[[resources]]
audience = "https://records.example.com"
format = "jwe"
encryption_key = "records.jwk"
claims = ["record_id"]
[[resources]]
audience = "https://partner.example.org"
format = "nested"
encryption_jwks_uri = "https://partner.example.org/jwks.json"
alg = "ECDH-ES+A256KW"
enc = "A128GCM"
release = ["sub", "org"]
[[resources]]
audience = "http://127.0.0.1:9/api"
format = "jwe"
encryption_jwks_uri = "http://127.0.0.1:9/jwks"
"#,
            &[],
        )
        .unwrap();
        let records = &c.resources[0];
        assert_eq!(records.format, TokenFormat::Jwe);
        let sealing = records.sealing.as_ref().unwrap();
        assert_eq!(sealing.source, KeySource::File("records.jwk".into()));
        assert_eq!(
            (sealing.alg, sealing.enc),
            (JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM),
            "defaults"
        );
        let partner = &c.resources[1];
        assert_eq!(partner.format, TokenFormat::Nested);
        assert_eq!(partner.release, vec!["sub".to_owned(), "org".to_owned()]);
        let sealing = partner.sealing.as_ref().unwrap();
        assert_eq!(
            sealing.source,
            KeySource::JwksUri {
                uri: "https://partner.example.org/jwks.json".into(),
                refresh: Duration::from_secs(3600)
            }
        );
        assert_eq!(
            (sealing.alg, sealing.enc),
            (JweAlgorithm::ECDH_ES_A256KW, JweEncryption::A128GCM)
        );
        assert!(
            c.resources[2].sealing.is_some(),
            "http on loopback is accepted"
        );
        assert_eq!(c.tokens.step_up_ttl, Duration::from_secs(300));
    }

    #[test]
    fn no_file_means_defaults() {
        let c = Config::load(None, Vec::new(), None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./tessera-data"));
        assert_eq!(c.tokens.refresh_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(c.clients.cache_for, Duration::from_secs(1));
        assert_eq!(c.admin.listen, Some("127.0.0.1:8081".parse().unwrap()));
        assert_eq!(c.admin.tls, None);
    }

    #[test]
    fn the_admin_listener() {
        // An ephemeral public port (tests) gives an ephemeral admin port.
        let c = load("", &[("TESSERA_LISTEN", "127.0.0.1:0")]).unwrap();
        assert_eq!(c.admin.listen, Some("127.0.0.1:0".parse().unwrap()));
        let c = load("[admin]\nlisten = \"off\"", &[]).unwrap();
        assert_eq!(c.admin.listen, None);
        let c = load("", &[("TESSERA_ADMIN_LISTEN", "10.0.0.5:9443")]).unwrap();
        assert_eq!(c.admin.listen, Some("10.0.0.5:9443".parse().unwrap()));
        let c = load(
            "[admin]\nlisten = \"127.0.0.1:9000\"\n[admin.tls]\ncert = \"a.pem\"\nkey = \"k.pem\"",
            &[],
        )
        .unwrap();
        assert_eq!(c.admin.tls.unwrap().cert, PathBuf::from("a.pem"));
        let c = load(
            "",
            &[
                ("TESSERA_ADMIN_TLS_CERT", "c.pem"),
                ("TESSERA_ADMIN_TLS_KEY", "k.pem"),
            ],
        )
        .unwrap();
        assert_eq!(c.admin.tls.unwrap().key, PathBuf::from("k.pem"));
        for (toml, env, key) in [
            ("[admin]\nlisten = \"localhost\"", &[][..], "admin.listen"),
            ("[admin]\nlisten = 8081", &[], "admin.listen"),
            ("[admin]\nport = 1", &[], "admin.port"),
            ("[admin.tls]\ncert = \"a\"", &[], "admin.tls.key"),
            (
                "",
                &[("TESSERA_ADMIN_LISTEN", "127.0.0.1:8080")],
                "admin.listen",
            ),
        ] {
            let e = load(toml, env).unwrap_err();
            assert_eq!(e.key, key, "{toml} {env:?}: {e}");
        }
    }

    #[test]
    fn client_cache_time_may_be_zero_and_at_most_a_minute() {
        let c = load("[clients]\ncache_for = \"0s\"", &[]).unwrap();
        assert_eq!(c.clients.cache_for, Duration::ZERO);
        let c = load("", &[("TESSERA_CLIENTS_CACHE_FOR", "1m")]).unwrap();
        assert_eq!(c.clients.cache_for, Duration::from_secs(60));
        for bad in ["2m", "1h", "soon"] {
            let e = load(&format!("[clients]\ncache_for = \"{bad}\""), &[]).unwrap_err();
            assert_eq!(e.key, "clients.cache_for", "{bad}");
        }
    }

    #[test]
    fn dpop_rules_and_per_resource_policy() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.dpop.rules, tessera_verify::dpop::ProofRules::default());
        assert!(!c.dpop.require_nonce);
        let c = load(
            "[dpop]\nalgorithms = [\"ES256\", \"EdDSA\"]\nmax_age = \"30s\"\nrequire_nonce = true\n\
             [[resources]]\naudience = \"a\"\ndpop = \"required\"\n[[resources]]\naudience = \"b\"",
            &[],
        )
        .unwrap();
        assert_eq!(
            c.dpop.rules.algorithms(),
            &[JwsAlgorithm::ES256, JwsAlgorithm::EdDSA]
        );
        assert_eq!(c.dpop.rules.max_age(), Duration::from_secs(30));
        assert!(c.dpop.require_nonce);
        assert!(c.resource("a").dpop_required);
        assert!(!c.resource("b").dpop_required && !c.resource("c").dpop_required);
        let c = load(
            "",
            &[
                ("TESSERA_DPOP_ALGORITHMS", "PS256, ES256"),
                ("TESSERA_DPOP_REQUIRE_NONCE", "true"),
                ("TESSERA_DPOP_MAX_AGE", "2m"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.dpop.rules.algorithms(),
            &[JwsAlgorithm::PS256, JwsAlgorithm::ES256]
        );
        assert!(c.dpop.require_nonce);
        for (toml, key) in [
            ("[dpop]\nalgorithms = [\"HS256\"]", "dpop.algorithms"),
            ("[dpop]\nalgorithms = [\"none\"]", "dpop.algorithms"),
            ("[dpop]\nalgorithms = []", "dpop.algorithms"),
            ("[dpop]\nmax_age = \"2h\"", "dpop.max_age"),
            ("[dpop]\nrequire_nonce = \"yes\"", "dpop.require_nonce"),
            ("[dpop]\nnonce = true", "dpop.nonce"),
            (
                "[[resources]]\naudience = \"a\"\ndpop = \"always\"",
                "resources[0].dpop",
            ),
        ] {
            let e = load(toml, &[]).unwrap_err();
            assert_eq!(e.key, key, "{toml}: {e}");
        }
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
                ("TESSERA_TEST_PG_URL", "the test suite's, not config"),
                ("TESSERA_TEST_FUZZ_SECONDS", "5"),
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
                "[[resources]]\naudience = \"a\"\nformat = \"jwt\"",
                &[],
                "resources[0].format",
            ),
            (
                "[[resources]]\naudience = \"a\"\nformat = \"jwe\"",
                &[],
                "resources[0].encryption_key",
            ),
            (
                "[[resources]]\naudience = \"a\"\nformat = \"nested\"\nencryption_key = \"k\"\nencryption_jwks_uri = \"https://x/jwks\"",
                &[],
                "resources[0].encryption_jwks_uri",
            ),
            (
                "[[resources]]\naudience = \"a\"\nformat = \"jwe\"\nencryption_jwks_uri = \"http://keys.example/jwks\"",
                &[],
                "resources[0].encryption_jwks_uri",
            ),
            (
                "[[resources]]\naudience = \"a\"\nformat = \"jwe\"\nencryption_key = \"k\"\nalg = \"RSA1_5\"",
                &[],
                "resources[0].alg",
            ),
            (
                "[[resources]]\naudience = \"a\"\nformat = \"jwe\"\nencryption_key = \"k\"\nalg = \"dir\"",
                &[],
                "resources[0].alg",
            ),
            (
                "[[resources]]\naudience = \"a\"\nformat = \"jwe\"\nencryption_key = \"k\"\nenc = \"A512GCM\"",
                &[],
                "resources[0].enc",
            ),
            (
                "[[resources]]\naudience = \"a\"\nencryption_key = \"k\"",
                &[],
                "resources[0].encryption_key",
            ),
            (
                "[[resources]]\naudience = \"a\"\nformat = \"jwe\"\nencryption_key = \"k\"\nrelease = [\"sub\"]",
                &[],
                "resources[0].release",
            ),
            (
                "[[resources]]\naudience = \"a\"\nformat = \"nested\"\nencryption_key = \"k\"\nrelease = \"sub\"",
                &[],
                "resources[0].release",
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
            ("database_url = \"mysql://db\"", &[], "database_url"),
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
    fn urls_are_parsed_not_pattern_matched() {
        // Userinfo made these pass as loopback: refused, naming the key.
        let sealed = |uri: &str| {
            format!("[[resources]]\naudience = \"a\"\nformat = \"jwe\"\nencryption_jwks_uri = \"{uri}\"")
        };
        type Case<'a> = (String, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                "issuer = \"http://localhost:x@evil.example\"".into(),
                &[],
                "issuer",
            ),
            (
                String::new(),
                &[("TESSERA_ISSUER", "http://localhost:x@evil.example")],
                "issuer",
            ),
            (
                "issuer = \"https://admin:pw@auth.example.com\"".into(),
                &[],
                "issuer",
            ),
            (
                "issuer = \"https://Auth.example.com\"".into(),
                &[],
                "issuer",
            ),
            ("issuer = \"http://127.1:8080\"".into(), &[], "issuer"),
            (
                "issuer = \"http://localhost\\\\@evil.example\"".into(),
                &[],
                "issuer",
            ),
            (
                "issuer = \"https://auth.example.com#x\"".into(),
                &[],
                "issuer",
            ),
            (
                sealed("http://localhost:1@127.0.0.2:9/jwks"),
                &[],
                "resources[0].encryption_jwks_uri",
            ),
            (
                sealed("http://127.0.0.1@evil.example/jwks"),
                &[],
                "resources[0].encryption_jwks_uri",
            ),
            (
                sealed("ftp://localhost/jwks"),
                &[],
                "resources[0].encryption_jwks_uri",
            ),
        ];
        for (toml, env, key) in cases {
            let e = load(toml, env).unwrap_err();
            assert_eq!(e.key, *key, "{toml} {env:?}: {e}");
        }
        let e = load("issuer = \"https://admin:pw@auth.example.com\"", &[]).unwrap_err();
        assert!(
            !e.message.contains("pw@"),
            "no password in the message: {e}"
        );
        // The loopback exception reads the parsed host: all of 127.0.0.0/8 and ::1.
        for uri in [
            "http://127.0.0.2:9/jwks",
            "http://[::1]:9/jwks",
            "http://localhost/jwks",
        ] {
            assert!(load(&sealed(uri), &[]).is_ok(), "{uri}");
        }
        let c = load("issuer = \"http://[::1]:8080/\"", &[]).unwrap();
        assert_eq!(c.issuer, "http://[::1]:8080");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("2w"), Some(Duration::from_secs(14 * 86_400)));
        for bad in ["", "15", "m", "1.5h", "-1m", "99999999999999999999d", "3 d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn audit_retention() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.audit.keep, Duration::from_secs(90 * 86_400));
        let c = load("[audit]\nkeep = \"2w\"\n", &[]).unwrap();
        assert_eq!(c.audit.keep, Duration::from_secs(14 * 86_400));
        let c = load("", &[("TESSERA_AUDIT_KEEP", "365d")]).unwrap();
        assert_eq!(c.audit.keep, Duration::from_secs(365 * 86_400));
        for (toml, key) in [
            ("[audit]\nkeep = \"1h\"\n", "audit.keep"),
            ("[audit]\nkeep = \"forever\"\n", "audit.keep"),
            ("[audit]\nkept = \"90d\"\n", "audit.kept"),
        ] {
            assert_eq!(load(toml, &[]).unwrap_err().key, key, "{toml}");
        }
    }
}
