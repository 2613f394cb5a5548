//! `tessera`: the JOSE toolkit (keys, JWS, JWE, JWT) and the token service.
//!
//! Exit codes: 0 success; 1 rejected (bad signature, failed decryption,
//! expired, algorithm not allowed, claim check failed) or the operation
//! failed; 2 usage error, malformed input or configuration error.
#![forbid(unsafe_code)]

mod common;
mod dpop_cmd;
mod jwe_cmd;
mod jwk_cmd;
mod jws_cmd;
mod jwt_cmd;
mod service;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use service::{
    admins_command, audit_command, clients_command, fail, init_logging, keys_command, load_config,
    serve,
};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    arg_required_else_help = false,
    about = "A token service and JOSE toolkit",
    long_about = "A token service and JOSE toolkit.\n\n\
        Tokens and keys are read from standard input (or --in FILE) and results \
        written to standard output; messages go to standard error as `error: …`.\n\
        Exit codes: 0 success; 1 rejected (bad signature, failed decryption, expired, \
        algorithm not allowed, claim check failed); 2 usage error or malformed input.",
    after_help = "A first walk-through:
  tessera jwk generate --kty EC --crv P-256 --alg ES256 > key.jwk
  tessera jwt sign --key key.jwk --alg ES256 --sub user-1 --aud api > token
  tessera jwt inspect --in token
  tessera jwt verify --key key.jwk --alg ES256 --aud api --in token
  tessera jwk generate --kty RSA --alg RSA-OAEP-256 > enc.jwk
  tessera jwe encrypt --key enc.jwk --alg RSA-OAEP-256 --enc A256GCM --in token"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the token service (SQLite in ./tessera-data, generated keys, unless configured).
    Serve {
        /// The configuration file (tessera.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The address to listen on (overrides `listen`).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Clients: the backends that mint sessions or tokens.
    #[command(arg_required_else_help = false)]
    Clients {
        /// The configuration file (tessera.toml).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// Admins: the operators of the admin API and their scopes. Managed
    /// here only, never over HTTP.
    #[command(arg_required_else_help = false)]
    Admins {
        /// The configuration file (tessera.toml).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: AdminsCommand,
    },
    /// The service's signing keys.
    #[command(arg_required_else_help = false)]
    Keys {
        /// The configuration file (tessera.toml).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The audit trail: verify its hash chain, export it, find a secret in it.
    #[command(arg_required_else_help = false)]
    Audit {
        /// The configuration file (tessera.toml).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// JSON Web Keys: generate, show the public part, thumbprint, PEM/DER import and export.
    #[command(subcommand, arg_required_else_help = false)]
    Jwk(jwk_cmd::JwkCommand),
    /// JSON Web Signatures: sign and verify any payload.
    #[command(subcommand, arg_required_else_help = false)]
    Jws(jws_cmd::JwsCommand),
    /// JSON Web Encryption: encrypt to a recipient's key, decrypt with yours.
    #[command(subcommand, arg_required_else_help = false)]
    Jwe(jwe_cmd::JweCommand),
    /// JSON Web Tokens: sign, verify (also nested JWS-in-JWE), inspect.
    #[command(subcommand, arg_required_else_help = false)]
    Jwt(jwt_cmd::JwtCommand),
    /// DPoP (RFC 9449): proofs of possession of your key, for each request.
    #[command(subcommand, arg_required_else_help = false)]
    Dpop(dpop_cmd::DpopCommand),
    /// Print a shell completion script.
    #[command(after_help = "Example (bash):
  tessera completions bash > ~/.local/share/bash-completion/completions/tessera")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
pub(crate) enum ClientsCommand {
    /// Register a client; its secret is printed once and stored only hashed.
    Create {
        /// A name for humans.
        #[arg(long)]
        name: String,
        /// Grants, comma-separated: sessions, client_credentials, refresh_token,
        /// token_exchange (RFC 8693: step-up assertions and partner tokens).
        #[arg(long, value_delimiter = ',', required = true)]
        grant: Vec<String>,
        /// Authenticate with private_key_jwt (RFC 7523) using the keys of this
        /// public JWK Set file, instead of a secret.
        #[arg(long, conflicts_with = "public")]
        jwks: Option<PathBuf>,
        /// A public client (a mobile app, which cannot keep a secret): no
        /// secret, only --grant refresh_token; it refreshes the sessions a
        /// backend minted for it (`"holder"`), always with a DPoP proof.
        #[arg(long)]
        public: bool,
        #[command(flatten)]
        registration: RegistrationArgs,
        /// Print {"client_id", "client_secret"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change what a client may ask for; the options given replace those
    /// lists, the others stay. A running service sees the change within
    /// `clients.cache_for`.
    Update {
        /// The client id.
        id: String,
        #[command(flatten)]
        registration: RegistrationArgs,
        /// Forget the registered audiences: the default rule applies again
        /// (the audiences declared as jws resources; any, with none declared).
        #[arg(long, conflicts_with = "audience")]
        default_audiences: bool,
    },
    /// List clients (never their secrets).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete a client, its sessions and refresh tokens. A running service
    /// stops accepting it within `clients.cache_for` (1 s by default).
    Delete {
        /// The client id.
        id: String,
    },
}

/// What a client may ask for (`clients create` and `clients update`).
#[derive(clap::Args, Debug, Default)]
pub(crate) struct RegistrationArgs {
    /// Audiences (resources) it may ask tokens for, comma-separated (RFC 8707
    /// invalid_target otherwise). Without it: the audiences declared as jws
    /// resources in `[[resources]]`, or any when none are declared; a jwe or
    /// nested resource must always be named here.
    #[arg(long, value_delimiter = ',')]
    pub audience: Option<Vec<String>>,
    /// Scopes it may ask for, space- or comma-separated ("orders:read
    /// orders:write"); a request naming another is invalid_scope, one naming
    /// none gets them all. Without it, a request naming a scope is refused.
    #[arg(long)]
    pub scope: Option<Vec<String>>,
    /// Clients trusted to exchange this client's session tokens (RFC 8693
    /// delegation; the issued token names them in `act`), comma-separated.
    /// For a public client (--public): the backends that may mint the
    /// sessions it holds (POST /v1/sessions with "holder").
    #[arg(long = "may-act", value_delimiter = ',', value_name = "CLIENT_ID")]
    pub may_act: Option<Vec<String>>,
    /// Audiences whose tokens it may introspect (a resource server),
    /// comma-separated. Any client may introspect the tokens issued to it.
    #[arg(long, value_delimiter = ',', value_name = "AUDIENCE")]
    pub introspect: Option<Vec<String>>,
    /// required: every token issued to it is bound to the key of a DPoP
    /// proof (RFC 9449), and a request without one is refused; optional
    /// (the default): bound when the request carries a proof.
    #[arg(long, value_enum)]
    pub dpop: Option<DpopPolicy>,
}

/// `--dpop`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DpopPolicy {
    /// Tokens bound when the request carries a proof.
    Optional,
    /// Every token bound; a request without a proof is refused.
    Required,
}

#[derive(Subcommand)]
pub(crate) enum AdminsCommand {
    /// Create an admin; its bearer token is printed once and stored only
    /// hashed.
    #[command(after_help = "Example:
  tessera admins create --name alice --scopes clients:read,clients:write --json")]
    Create {
        /// A name for humans (who holds the token).
        #[arg(long)]
        name: String,
        /// What it may do, comma-separated: clients:read, clients:write,
        /// keys:read, keys:write, sessions:read, sessions:write, audit:read,
        /// or * for all of them.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// Print {"admin_id", "token"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List admins (never their tokens).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete an admin: its token stops working at once.
    Delete {
        /// The admin id.
        id: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// List the signing keys, their states and dates.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make the next key sign now (or as soon as verifiers' JWKS caches have it).
    Rotate,
    /// A signing key leaked: a fresh key signs at once, the leaked one
    /// leaves the JWKS (every node within seconds on PostgreSQL), its private
    /// part is destroyed and its tokens fail introspection. Prints how long
    /// verifiers that cached the JWKS may still accept it.
    #[command(after_help = "Example:
  tessera keys list
  tessera keys compromised 3Vn8…kid --yes --json")]
    Compromised {
        /// The leaked key's kid (from `tessera keys list`).
        kid: String,
        /// Confirm: this cannot be undone.
        #[arg(long)]
        yes: bool,
        /// Print {"kid", "new_kid", "verifiers_may_accept_until"} as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Print the reference under which the audit trail names a token or
    /// secret (hmac-sha256:…, keyed by the master key), to search for it.
    #[command(after_help = "Example:
  tessera audit hash < refresh-token.txt
  tessera audit export | grep \"$(tessera audit hash < refresh-token.txt)\"")]
    Hash {
        /// The value (without it: standard input, one trailing newline
        /// dropped; keeps it out of the shell history).
        value: Option<String>,
    },
    /// Check the whole hash chain: exit 0 when intact, 1 naming the first
    /// seq edited, deleted or reordered.
    Verify,
    /// Print the events as NDJSON, in order.
    Export {
        /// Only the events after this seq.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
}

/// Runs a JOSE command: no runtime, no configuration, no logging setup.
fn jose(outcome: common::Outcome) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}

fn main() -> ExitCode {
    // Whatever happens, one line on stderr and never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error ({info}); please report it");
    }));
    let cli = Cli::parse();
    let command = match cli.command {
        Command::Jwk(c) => return jose(jwk_cmd::run(c)),
        Command::Jws(c) => return jose(jws_cmd::run(c)),
        Command::Jwe(c) => return jose(jwe_cmd::run(c)),
        Command::Jwt(c) => return jose(jwt_cmd::run(c)),
        Command::Dpop(c) => return jose(dpop_cmd::run(c)),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "tessera", &mut out);
            return jose(common::emit(&out));
        }
        other => other,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let master_env = std::env::var("TESSERA_MASTER_KEY").ok();
    match command {
        Command::Serve { config, listen } => {
            let config = match load_config(config.as_ref(), listen.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(config.log_format);
            runtime.block_on(serve(config, master_env))
        }
        Command::Clients { config, command } => {
            let config = match load_config(config.as_ref(), None) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(config.log_format);
            runtime.block_on(clients_command(config, master_env, command))
        }
        Command::Admins { config, command } => {
            let config = match load_config(config.as_ref(), None) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(config.log_format);
            runtime.block_on(admins_command(config, master_env, command))
        }
        Command::Keys { config, command } => {
            let config = match load_config(config.as_ref(), None) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(config.log_format);
            runtime.block_on(keys_command(config, master_env, command))
        }
        Command::Audit { config, command } => {
            let config = match load_config(config.as_ref(), None) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(config.log_format);
            runtime.block_on(audit_command(config, master_env, command))
        }
        Command::Jwk(_)
        | Command::Jws(_)
        | Command::Jwe(_)
        | Command::Jwt(_)
        | Command::Dpop(_)
        | Command::Completions { .. } => ExitCode::from(2),
    }
}
