//! `tessera dpop …`: DPoP proofs (RFC 9449) for curl and scripts.

use std::path::PathBuf;

use clap::Subcommand;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::Jwk;
use tessera_verify::dpop;

use crate::common::{emit_line, jws_alg, Failure, KeyFile, Outcome};

/// The `dpop` subcommands.
#[derive(Subcommand)]
pub enum DpopCommand {
    /// Print a DPoP proof for one request, signed with your private key; its
    /// public part goes in the proof's header.
    ///
    /// A fresh proof for every request: each has its own jti and the time
    /// of signing, and a server accepts it once, for a minute.
    #[command(after_help = "Examples:
  tessera jwk generate --kty EC --crv P-256 > device.jwk
  curl -H \"DPoP: $(tessera dpop proof --key device.jwk --htm POST --htu https://auth.example.com/oauth2/token)\" \\
       -u \"$CLIENT_ID:$CLIENT_SECRET\" -d grant_type=client_credentials https://auth.example.com/oauth2/token
  curl -H \"Authorization: DPoP $TOKEN\" \\
       -H \"DPoP: $(tessera dpop proof --key device.jwk --htm GET --htu https://api.example.com/orders --token \"$TOKEN\")\" \\
       https://api.example.com/orders")]
    Proof {
        /// The private key: a JWK (or a JWK Set holding one key) or a PEM key.
        #[arg(long, value_name = "KEY.jwk")]
        key: PathBuf,
        /// The algorithm (default: the key's own `alg`, else ES256, ES384 or
        /// ES512 by curve, EdDSA for Ed25519, RS256 for RSA).
        #[arg(long)]
        alg: Option<String>,
        /// The request's HTTP method (htm), e.g. POST.
        #[arg(long)]
        htm: String,
        /// The request's URL (htu); query and fragment are left out.
        #[arg(long)]
        htu: String,
        /// The access token the request carries: adds its hash (ath).
        #[arg(long)]
        token: Option<String>,
        /// The server's nonce (from its DPoP-Nonce header).
        #[arg(long)]
        nonce: Option<String>,
        /// The proof's id (default: 128 random bits).
        #[arg(long)]
        jti: Option<String>,
        /// The time of signing, Unix seconds (default: now).
        #[arg(long)]
        iat: Option<i64>,
        /// Print this many proofs, one per line, each with its own jti (for
        /// load tests; at most 1,000,000). Not with --jti.
        #[arg(long, default_value_t = 1, conflicts_with = "jti")]
        count: u32,
    },
    /// Check a DPoP proof as tessera checks one (RFC 9449 §4.3): typ, an
    /// asymmetric alg, a public jwk, the signature, htm, htu, iat within
    /// --max-age (and 10 s ahead), ath when --token is given, and the key
    /// when --jkt is. Prints {"jkt", "jti", "iat", "alg"}; exit 1 if refused.
    ///
    /// Replay is not checked here (there is no memory between runs).
    #[command(after_help = "Example:
  tessera dpop verify --htm GET --htu https://api.example.com/orders --token \"$TOKEN\" --in proof.txt")]
    Verify {
        /// The request's HTTP method.
        #[arg(long)]
        htm: String,
        /// The URL the request was for (this endpoint's).
        #[arg(long)]
        htu: String,
        /// The access token the request carried: the proof's ath must be
        /// its hash.
        #[arg(long)]
        token: Option<String>,
        /// The key the token is bound to (its cnf.jkt): the proof must be
        /// signed by it.
        #[arg(long)]
        jkt: Option<String>,
        /// How old the proof may be, in seconds (default 60).
        #[arg(long, default_value_t = 60)]
        max_age: u64,
        /// The time to check at, Unix seconds (default: now).
        #[arg(long)]
        now: Option<i64>,
        /// The proof (default: standard input).
        #[arg(long = "in", value_name = "FILE")]
        input: Option<PathBuf>,
    },
}

/// Runs a `dpop` command.
pub fn run(command: DpopCommand) -> Outcome {
    match command {
        DpopCommand::Proof {
            key,
            alg,
            htm,
            htu,
            token,
            nonce,
            jti,
            iat,
            count,
        } => {
            if !(1..=1_000_000).contains(&count) {
                return Err(Failure::Usage("--count: 1 to 1000000".into()));
            }
            let file = KeyFile::read(&key, "--key")?;
            let jwk = file.pick(None)?;
            if !jwk.is_private() || jwk.is_symmetric() {
                return Err(Failure::Usage(format!(
                    "--key {}: a DPoP proof is signed with a private asymmetric key (EC, OKP or RSA)",
                    key.display()
                )));
            }
            let alg = match alg {
                Some(name) => jws_alg(&name)?,
                None => default_alg(jwk)?,
            };
            if htm.is_empty() || !htm.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(Failure::Usage(format!(
                    "--htm {htm:?}: an HTTP method such as POST"
                )));
            }
            if let Some(j) = &jti {
                if j.is_empty() || j.len() > dpop::MAX_JTI_BYTES {
                    return Err(Failure::Usage(format!(
                        "--jti: 1 to {} bytes",
                        dpop::MAX_JTI_BYTES
                    )));
                }
            }
            let iat = iat.unwrap_or_else(now);
            let mut out = String::new();
            for _ in 0..count {
                let jti = match &jti {
                    Some(j) => j.clone(),
                    None => tessera_server::crypto::random_token(16)
                        .map_err(|e| Failure::Usage(format!("no randomness for the jti: {e}")))?
                        .to_string(),
                };
                let proof = dpop::sign(
                    jwk,
                    alg,
                    &dpop::NewProof {
                        method: &htm,
                        url: &htu,
                        jti: &jti,
                        iat,
                        access_token: token.as_deref(),
                        nonce: nonce.as_deref(),
                    },
                )
                .map_err(|e| Failure::Usage(format!("cannot make the proof: {e}")))?;
                out.push_str(&proof);
                out.push('\n');
            }
            crate::common::emit(out.as_bytes())
        }
        DpopCommand::Verify {
            htm,
            htu,
            token,
            jkt,
            max_age,
            now: at,
            input,
        } => {
            let raw = crate::common::read_input(input.as_deref())?;
            let text = String::from_utf8(raw)
                .map_err(|_| Failure::Usage("the proof is not UTF-8 text".into()))?;
            let rules = dpop::ProofRules::new(
                &dpop::DEFAULT_ALGORITHMS,
                std::time::Duration::from_secs(max_age),
            )
            .map_err(|e| Failure::Usage(format!("--max-age: {e}")))?;
            let request = dpop::Request {
                method: &htm,
                url: &htu,
                access_token: token.as_deref(),
                nonce: dpop::Nonce::NotRequired,
            };
            let proof = dpop::check(text.trim(), &rules, &request, at.unwrap_or_else(now))
                .map_err(|e| Failure::Rejected(e.to_string()))?;
            if jkt.as_deref().is_some_and(|j| j != proof.jkt) {
                return Err(Failure::Rejected(dpop::DpopError::KeyMismatch.to_string()));
            }
            emit_line(
                &serde_json::json!({
                    "jkt": proof.jkt, "jti": proof.jti, "iat": proof.iat,
                    "alg": proof.alg.name(),
                })
                .to_string(),
            )
        }
    }
}

/// The algorithm a key signs proofs with when none is named.
fn default_alg(key: &Jwk) -> Outcome<JwsAlgorithm> {
    if let Some(name) = key.alg() {
        return jws_alg(name);
    }
    Ok(match (key.kty(), key.curve_name()) {
        ("EC", Some("P-256")) => JwsAlgorithm::ES256,
        ("EC", Some("P-384")) => JwsAlgorithm::ES384,
        ("EC", Some("P-521")) => JwsAlgorithm::ES512,
        ("OKP", Some("Ed25519")) => JwsAlgorithm::EdDSA,
        ("RSA", _) => JwsAlgorithm::RS256,
        (kty, crv) => {
            return Err(Failure::Usage(format!(
                "--key: no DPoP algorithm for a {kty} key{}; name one with --alg",
                crv.map(|c| format!(" on {c}")).unwrap_or_default()
            )))
        }
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
