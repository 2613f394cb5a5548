//! `tessera jws …`: sign and verify raw payloads.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::KeyOp;
use tessera_jose::jws::{
    sign_general, GeneralSignature, JwsHeader, SignaturePolicy, Signer, Verifier,
};

use crate::common::{
    checking, emit, emit_line, jws_alg, jws_algs, read_file, read_input, read_token, setup,
    Failure, KeyFile, Outcome,
};
use crate::jwk_cmd::InputArg;

/// The `jws` subcommands.
#[derive(Subcommand)]
pub enum JwsCommand {
    /// Sign the input (any bytes) and print the JWS.
    ///
    /// The algorithm is yours to choose and must suit the key (an RSA key
    /// cannot make an HS256 signature). The key's kid goes into the header
    /// unless --kid says otherwise.
    #[command(after_help = "Examples:
  echo -n 'hello' | tessera jws sign --key es256.jwk --alg ES256
  tessera jws sign --key rsa.jwk --alg PS256 --serialization general --in document.json")]
    Sign {
        #[command(flatten)]
        signing: SigningKeyArgs,
        /// Extra protected header members, as a JSON object, e.g. '{"typ":"example+jws"}'.
        #[arg(long, value_name = "JSON")]
        header: Option<String>,
        /// Leave the payload out of the output (RFC 7515 Appendix F); the
        /// verifier gets it separately (jws verify --payload).
        #[arg(long)]
        detached: bool,
        /// Sign the payload as-is instead of base64url-encoding it (RFC 7797,
        /// "b64": false). In compact form the payload may not contain '.'.
        #[arg(long)]
        unencoded: bool,
        /// How to write the JWS.
        #[arg(long, value_enum, default_value_t = Serialization::Compact)]
        serialization: Serialization,
        #[command(flatten)]
        input: InputArg,
    },
    /// Verify a JWS (compact or JSON) and print its payload.
    ///
    /// You name the algorithms you accept; a token whose "alg" is anything
    /// else is refused (exit 1), and "none" is never accepted. The token's
    /// kid only picks among the keys of FILE; nothing is ever fetched.
    /// Exit 0: verified; 1: refused; 2: usage error or malformed input.
    #[command(after_help = "Examples:
  tessera jws verify --key es256.pub.jwk --alg ES256 --in token.jws
  tessera jws verify --key jwks.json --alg RS256,ES256 --payload document.json --in detached.jws")]
    Verify {
        /// The key(s): a JWK, a JWK Set or a PEM public key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The algorithms you accept, comma-separated (e.g. ES256 or RS256,PS256).
        #[arg(long, value_name = "ALG[,ALG…]")]
        alg: String,
        /// The detached payload (when the JWS was signed with --detached).
        #[arg(long, value_name = "FILE")]
        payload: Option<PathBuf>,
        /// For a JSON JWS with several signatures: require every one to verify
        /// (default: at least one made by a key of FILE).
        #[arg(long)]
        all_signatures: bool,
        #[command(flatten)]
        input: InputArg,
    },
}

/// JWS and JWE serializations.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Serialization {
    /// `header.payload.signature` (RFC 7515 §7.1, RFC 7516 §7.1).
    Compact,
    /// One JSON object, one signature or recipient (§7.2.2).
    Flattened,
    /// JSON with a `signatures` / `recipients` array (§7.2.1).
    General,
}

/// The signing key and algorithm, shared by `jws sign` and `jwt sign`.
#[derive(Args)]
pub struct SigningKeyArgs {
    /// The private key: a JWK, a JWK Set (pick the key with --kid) or a PEM file.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The signature algorithm, e.g. ES256, RS256, PS256, EdDSA, HS256.
    #[arg(long)]
    pub alg: String,
    /// The kid to put in the header (and to pick the key of a JWK Set).
    #[arg(long, allow_hyphen_values = true)]
    pub kid: Option<String>,
}

impl SigningKeyArgs {
    /// A signer for `--alg` with the key of `--key` (the one `--kid` names in a set).
    pub fn signer(&self) -> Outcome<Signer> {
        let alg = jws_alg(&self.alg)?;
        let path = &self.key;
        let file = KeyFile::read(path, "--key")?;
        let key = file.pick(self.kid.as_deref())?;
        if !key.is_private() {
            return Err(Failure::Usage(format!(
                "--key {}: a public key cannot sign; give the private key",
                path.display()
            )));
        }
        Signer::new(key, alg).map_err(setup(&format!("--key with --alg {}", alg.name())))
    }
}

/// A verifier accepting `algs` with every key of `path` that can serve one.
pub fn verifier(path: &std::path::Path, algs: &[JwsAlgorithm]) -> Outcome<Verifier> {
    let file = KeyFile::read(path, "--key")?;
    let mut builder = Verifier::builder();
    if file.is_set {
        builder = builder.jwk_set(&file.set(), algs).map_err(setup("--key"))?;
    } else {
        let key = file.pick(None)?;
        let fitting: Vec<JwsAlgorithm> = algs
            .iter()
            .copied()
            .filter(|&a| key.check_permits(KeyOp::Verify, a).is_ok())
            .collect();
        if fitting.is_empty() {
            // Say why for the first algorithm asked for.
            let first = algs.first().copied().unwrap_or(JwsAlgorithm::ES256);
            return Err(match key.check_permits(KeyOp::Verify, first) {
                Err(e) => setup(&format!(
                    "--key {} for --alg {}",
                    path.display(),
                    first.name()
                ))(e),
                Ok(()) => Failure::Usage("--key cannot serve --alg".into()),
            });
        }
        builder = builder.key(key, &fitting).map_err(setup("--key"))?;
    }
    builder.build().map_err(|_| {
        Failure::Usage(format!(
            "--key {}: no key there can verify {}",
            path.display(),
            algs.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// `--header` as protected header members.
fn extra_header(json: Option<&str>, mut header: JwsHeader) -> Outcome<JwsHeader> {
    let Some(json) = json else { return Ok(header) };
    let map = tessera_jose::json::parse_object(
        json.as_bytes(),
        &tessera_jose::json::Limits::default(),
        "--header",
    )
    .map_err(setup("--header"))?;
    for (name, value) in map {
        header = match name.as_str() {
            "alg" => return Err(Failure::Usage("--header: alg is set by --alg".into())),
            "b64" | "crit" => {
                return Err(Failure::Usage(
                    "--header: b64 and crit are set by --unencoded".into(),
                ))
            }
            _ => header.param(&name, value).map_err(setup("--header"))?,
        };
    }
    Ok(header)
}

fn sign(
    signing: &SigningKeyArgs,
    header: Option<&str>,
    detached: bool,
    unencoded: bool,
    serialization: Serialization,
    input: &InputArg,
) -> Outcome {
    let signer = signing.signer()?;
    let payload = zeroize::Zeroizing::new(read_input(input.path.as_deref())?);
    let mut h = extra_header(header, JwsHeader::new())?;
    if let Some(kid) = &signing.kid {
        h = h.kid(kid);
    }
    if unencoded {
        h = h.unencoded_payload();
    }
    let signing = checking_sign;
    let out = match serialization {
        Serialization::Compact if detached => signer
            .sign_compact_detached(&h, &payload)
            .map_err(signing)?,
        Serialization::Compact => signer.sign_compact(&h, &payload).map_err(signing)?,
        Serialization::Flattened => signer.sign_flattened(&h, None, &payload).map_err(signing)?,
        Serialization::General => sign_general(
            &payload,
            &[GeneralSignature {
                signer: &signer,
                protected: Some(signer.protect(&h)),
                unprotected: None,
            }],
        )
        .map_err(signing)?,
    };
    let out = if detached && serialization != Serialization::Compact {
        // RFC 7515 Appendix F: a detached JSON JWS has no `payload` member.
        let mut doc: serde_json::Map<String, Value> =
            serde_json::from_str(&out).map_err(|e| Failure::Usage(e.to_string()))?;
        doc.remove("payload");
        Value::Object(doc).to_string()
    } else {
        out
    };
    emit_line(&out)
}

/// A signing failure: the caller's input or options, so exit 2.
fn checking_sign(e: tessera_jose::Error) -> Failure {
    Failure::Usage(format!("cannot sign: {e} ({})", e.code()))
}

fn verify(
    key: &std::path::Path,
    algs: &str,
    payload: Option<&std::path::Path>,
    all: bool,
    input: &InputArg,
) -> Outcome {
    let algs = jws_algs(algs)?;
    let verifier = verifier(key, &algs)?;
    let token = read_token(input.path.as_deref())?;
    let policy = if all {
        SignaturePolicy::All
    } else {
        SignaturePolicy::Any
    };
    let json = token.starts_with('{');
    let verified = match payload {
        Some(p) => {
            let detached = read_file(p, "--payload")?;
            if json {
                verifier.verify_json_detached(&token, policy, &detached)
            } else {
                verifier.verify_compact_detached(&token, &detached)
            }
        }
        None if json => verifier.verify_json(&token, policy),
        None => {
            if token.split('.').nth(1) == Some("") {
                return Err(Failure::Usage(
                    "the JWS has no payload (it was signed --detached); give it with --payload FILE"
                        .into(),
                ));
            }
            verifier.verify_compact(&token)
        }
    }
    .map_err(checking)?;
    emit(verified.payload())
}

/// Runs a `jws` subcommand.
pub fn run(command: JwsCommand) -> Outcome {
    match command {
        JwsCommand::Sign {
            signing,
            header,
            detached,
            unencoded,
            serialization,
            input,
        } => sign(
            &signing,
            header.as_deref(),
            detached,
            unencoded,
            serialization,
            &input,
        ),
        JwsCommand::Verify {
            key,
            alg,
            payload,
            all_signatures,
            input,
        } => verify(&key, &alg, payload.as_deref(), all_signatures, &input),
    }
}
