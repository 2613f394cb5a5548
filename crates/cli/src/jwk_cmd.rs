//! `tessera jwk …`: generate, convert and fingerprint keys.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use tessera_jose::jwa::{EcCurve, Hash, JweAlgorithm, JwsAlgorithm, KeyManagement, OkpCurve};
use tessera_jose::jwk::{Jwk, KeyFormat, KeyUse};

use crate::common::{emit, emit_line, read_input, setup, Failure, KeyFile, Outcome};

/// The `jwk` subcommands.
#[derive(Subcommand)]
pub enum JwkCommand {
    /// Generate a private key and print it as a JWK (keep the output secret).
    ///
    /// Without --kid, the key's RFC 7638 thumbprint becomes its kid (for a
    /// symmetric key, whose thumbprint is a hash of the secret, a random
    /// one). With
    /// --alg, the key is bound to that one algorithm and its "use" is set
    /// ("sig" for JWS algorithms, "enc" for JWE ones), so it cannot be
    /// misused for the other; --crv and --bits are then inferred where the
    /// algorithm decides them.
    #[command(after_help = "Examples:
  tessera jwk generate --kty EC --crv P-256 --alg ES256 > es256.jwk
  tessera jwk generate --kty RSA --bits 3072 --use enc > rsa-enc.jwk
  tessera jwk generate --kty oct --alg HS256 > hmac.jwk")]
    Generate(GenerateArgs),
    /// Print the public part of a private JWK or of every key in a JWK Set.
    ///
    /// Symmetric (oct) keys have no public part and are refused, never
    /// printed. Use the output for a JWKS you publish.
    #[command(after_help = "Example:
  tessera jwk public --in key.jwk > key.pub.jwk")]
    Public(InputArg),
    /// Print a key's RFC 7638 thumbprint (base64url), one line per key.
    ///
    /// The thumbprint identifies a key by its public members only, so a
    /// private key and its public part have the same one. A symmetric key's
    /// thumbprint is an unsalted hash of the secret: keep it as secret as
    /// the key.
    #[command(after_help = "Example:
  tessera jwk thumbprint --hash sha256 --in key.pub.jwk")]
    Thumbprint {
        /// The hash for the thumbprint.
        #[arg(long, value_enum, default_value_t = ThumbprintHash::Sha256)]
        hash: ThumbprintHash,
        #[command(flatten)]
        input: InputArg,
    },
    /// Convert a PEM or DER key to a JWK.
    ///
    /// Reads PKCS#8 (PRIVATE KEY), SubjectPublicKeyInfo (PUBLIC KEY), PKCS#1
    /// (RSA PRIVATE KEY / RSA PUBLIC KEY) or SEC 1 (EC PRIVATE KEY), as PEM
    /// text or raw DER. Encrypted PEM is not read: decrypt it first. Without
    /// --kid, the thumbprint becomes the kid.
    #[command(after_help = "Example:
  tessera jwk import --in key.pem --alg RS256 > key.jwk")]
    Import {
        #[command(flatten)]
        input: InputArg,
        #[command(flatten)]
        meta: KeyMeta,
    },
    /// Convert a JWK to PEM (or DER with --der).
    ///
    /// A private key is written as PKCS#8 (PRIVATE KEY), a public key (or a
    /// private one with --public) as SubjectPublicKeyInfo (PUBLIC KEY);
    /// --format picks PKCS#1 or SEC 1 instead.
    #[command(after_help = "Example:
  tessera jwk export --public --in key.jwk > key.pub.pem")]
    Export {
        /// Export only the public part.
        #[arg(long)]
        public: bool,
        /// Write binary DER instead of PEM text.
        #[arg(long)]
        der: bool,
        /// The encoding (default: pkcs8 for a private key, spki for a public one).
        #[arg(long, value_enum)]
        format: Option<ExportFormat>,
        /// For a JWK Set: the kid of the key to export.
        #[arg(long, allow_hyphen_values = true)]
        kid: Option<String>,
        #[command(flatten)]
        input: InputArg,
    },
}

/// `--in FILE`: the input, instead of stdin.
#[derive(Args)]
pub struct InputArg {
    /// Read the input from this file instead of standard input.
    #[arg(long = "in", value_name = "FILE")]
    pub path: Option<PathBuf>,
}

/// Key types.
#[derive(Clone, Copy, ValueEnum)]
pub enum Kty {
    /// RSA (RS*, PS*, RSA-OAEP*).
    #[value(name = "RSA")]
    Rsa,
    /// Elliptic curve (ES*, ECDH-ES*).
    #[value(name = "EC")]
    Ec,
    /// Octet key pair: Ed25519 (EdDSA) or X25519 (ECDH-ES*).
    #[value(name = "OKP")]
    Okp,
    /// A symmetric secret (HS*, A*KW, A*GCMKW, dir).
    #[value(name = "oct")]
    Oct,
}

/// Key uses.
#[derive(Clone, Copy, ValueEnum)]
pub enum Use {
    /// Signatures (JWS).
    Sig,
    /// Encryption (JWE).
    Enc,
}

/// Thumbprint hashes.
#[derive(Clone, Copy, ValueEnum)]
pub enum ThumbprintHash {
    /// SHA-256 (what RFC 7638 examples use).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// Export encodings.
#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// PKCS#8 PrivateKeyInfo (private keys).
    Pkcs8,
    /// X.509 SubjectPublicKeyInfo (public keys).
    Spki,
    /// PKCS#1 (RSA keys).
    Pkcs1,
    /// SEC 1 / RFC 5915 (EC private keys).
    Sec1,
}

/// Members set on a generated or imported key.
#[derive(Args)]
pub struct KeyMeta {
    /// Bind the key to this algorithm (its "alg" member), e.g. ES256 or RSA-OAEP-256.
    #[arg(long)]
    alg: Option<String>,
    /// What the key is for: sig (signatures) or enc (encryption).
    #[arg(long = "use", value_enum)]
    key_use: Option<Use>,
    /// The key id (default: the key's RFC 7638 thumbprint; random for a
    /// symmetric key, whose thumbprint would be a hash of the secret).
    #[arg(long, allow_hyphen_values = true)]
    kid: Option<String>,
}

/// `jwk generate` arguments.
#[derive(Args)]
pub struct GenerateArgs {
    /// The key type.
    #[arg(long, value_enum, ignore_case = true)]
    kty: Kty,
    /// Key size in bits: RSA (default 2048, at least 2048) or oct (default 256,
    /// or what --alg needs).
    #[arg(long)]
    bits: Option<usize>,
    /// The curve: P-256, P-384, P-521 or secp256k1 for EC; Ed25519 or X25519 for OKP.
    #[arg(long)]
    crv: Option<String>,
    #[command(flatten)]
    meta: KeyMeta,
}

/// An algorithm a key can be bound to.
#[derive(Clone, Copy)]
enum AnyAlg {
    Jws(JwsAlgorithm),
    Jwe(JweAlgorithm),
}

fn parse_key_alg(name: &str) -> Outcome<AnyAlg> {
    if name.eq_ignore_ascii_case("none") {
        return Err(Failure::Usage(
            "--alg none: a key for unsigned tokens is not a thing tessera makes".into(),
        ));
    }
    if let Ok(a) = name.parse::<JwsAlgorithm>() {
        return Ok(AnyAlg::Jws(a));
    }
    if let Ok(a) = name.parse::<JweAlgorithm>() {
        return Ok(AnyAlg::Jwe(a));
    }
    Err(Failure::Usage(format!(
        "--alg: {name:?} is neither a JWS algorithm (RS256, ES256, EdDSA, HS256, …) \
         nor a JWE key-management algorithm (RSA-OAEP-256, ECDH-ES+A256KW, A256KW, dir, …)"
    )))
}

fn curve_from_name(kty: Kty, name: &str) -> Outcome<Curve> {
    let c = match (kty, name) {
        (Kty::Ec, "P-256") => Curve::Ec(EcCurve::P256),
        (Kty::Ec, "P-384") => Curve::Ec(EcCurve::P384),
        (Kty::Ec, "P-521") => Curve::Ec(EcCurve::P521),
        (Kty::Ec, "secp256k1") => Curve::Ec(EcCurve::Secp256k1),
        (Kty::Okp, "Ed25519") => Curve::Okp(OkpCurve::Ed25519),
        (Kty::Okp, "X25519") => Curve::Okp(OkpCurve::X25519),
        (Kty::Ec, _) => {
            return Err(Failure::Usage(format!(
                "--crv {name:?}: an EC key's curve is P-256, P-384, P-521 or secp256k1"
            )))
        }
        _ => {
            return Err(Failure::Usage(format!(
                "--crv {name:?}: an OKP key's curve is Ed25519 or X25519"
            )))
        }
    };
    Ok(c)
}

enum Curve {
    Ec(EcCurve),
    Okp(OkpCurve),
}

/// The curve an algorithm implies, where it implies one.
fn implied_curve(kty: Kty, alg: Option<AnyAlg>) -> Option<Curve> {
    match (kty, alg) {
        (Kty::Ec, Some(AnyAlg::Jws(JwsAlgorithm::ES256))) => Some(Curve::Ec(EcCurve::P256)),
        (Kty::Ec, Some(AnyAlg::Jws(JwsAlgorithm::ES384))) => Some(Curve::Ec(EcCurve::P384)),
        (Kty::Ec, Some(AnyAlg::Jws(JwsAlgorithm::ES512))) => Some(Curve::Ec(EcCurve::P521)),
        (Kty::Ec, Some(AnyAlg::Jws(JwsAlgorithm::ES256K))) => Some(Curve::Ec(EcCurve::Secp256k1)),
        (Kty::Okp, Some(AnyAlg::Jws(JwsAlgorithm::EdDSA))) => Some(Curve::Okp(OkpCurve::Ed25519)),
        (Kty::Okp, Some(AnyAlg::Jwe(_))) => Some(Curve::Okp(OkpCurve::X25519)),
        _ => None,
    }
}

/// The secret size an algorithm needs, in bits.
fn implied_bits(alg: Option<AnyAlg>) -> Option<usize> {
    match alg? {
        AnyAlg::Jws(JwsAlgorithm::HS256) => Some(256),
        AnyAlg::Jws(JwsAlgorithm::HS384) => Some(384),
        AnyAlg::Jws(JwsAlgorithm::HS512) => Some(512),
        AnyAlg::Jwe(a) => match a.key_management() {
            KeyManagement::AesKw(n) | KeyManagement::AesGcmKw(n) => Some(n * 8),
            _ => None,
        },
        AnyAlg::Jws(_) => None,
    }
}

fn generate(args: GenerateArgs) -> Outcome {
    let alg = args.meta.alg.as_deref().map(parse_key_alg).transpose()?;
    let key = match args.kty {
        Kty::Rsa => {
            if args.crv.is_some() {
                return Err(Failure::Usage("--crv is for EC and OKP keys".into()));
            }
            Jwk::generate_rsa(args.bits.unwrap_or(2048)).map_err(setup("generating the key"))?
        }
        Kty::Ec | Kty::Okp => {
            if args.bits.is_some() {
                return Err(Failure::Usage(
                    "--bits is for RSA and oct keys; EC and OKP keys take --crv".into(),
                ));
            }
            let curve = match (&args.crv, implied_curve(args.kty, alg)) {
                (Some(name), _) => curve_from_name(args.kty, name)?,
                (None, Some(c)) => c,
                (None, None) => {
                    return Err(Failure::Usage(match args.kty {
                        Kty::Ec => "--crv is required: P-256, P-384, P-521 or secp256k1".into(),
                        _ => "--crv is required: Ed25519 or X25519".into(),
                    }))
                }
            };
            match curve {
                Curve::Ec(c) => Jwk::generate_ec(c),
                Curve::Okp(c) => Jwk::generate_okp(c),
            }
            .map_err(setup("generating the key"))?
        }
        Kty::Oct => {
            if args.crv.is_some() {
                return Err(Failure::Usage("--crv is for EC and OKP keys".into()));
            }
            let bits = args.bits.or(implied_bits(alg)).unwrap_or(256);
            if bits % 8 != 0 {
                return Err(Failure::Usage(format!(
                    "--bits {bits}: a symmetric key is a whole number of bytes"
                )));
            }
            Jwk::generate_oct(bits / 8).map_err(setup("generating the key"))?
        }
    };
    let key = apply_meta(key, alg, &args.meta)?;
    emit_line(&key.to_private_json())
}

/// Binds `alg`, sets `use` (given, or implied by the algorithm) and the kid.
fn apply_meta(mut key: Jwk, alg: Option<AnyAlg>, meta: &KeyMeta) -> Outcome<Jwk> {
    let implied_use = match alg {
        Some(AnyAlg::Jws(_)) => Some(Use::Sig),
        Some(AnyAlg::Jwe(_)) => Some(Use::Enc),
        None => None,
    };
    match (meta.key_use, implied_use) {
        (Some(Use::Enc), Some(Use::Sig)) | (Some(Use::Sig), Some(Use::Enc)) => {
            return Err(Failure::Usage(
                "--use contradicts --alg: a signing algorithm needs use sig, \
                 an encryption algorithm use enc"
                    .into(),
            ))
        }
        _ => {}
    }
    if let Some(u) = meta.key_use.or(implied_use) {
        key = key
            .with_use(match u {
                Use::Sig => KeyUse::Signature,
                Use::Enc => KeyUse::Encryption,
            })
            .map_err(setup("--use"))?;
    }
    if let Some(name) = &meta.alg {
        key = key.with_alg(name).map_err(setup("--alg"))?;
    }
    match &meta.kid {
        Some(kid) => Ok(key.with_kid(kid)),
        None => key.with_default_kid().map_err(setup("the kid")),
    }
}

fn public(input: &InputArg) -> Outcome {
    let file = KeyFile::from_input(input.path.as_deref())?;
    let mut keys = Vec::with_capacity(file.keys.len());
    for k in &file.keys {
        if k.is_symmetric() {
            return Err(Failure::Usage(format!(
                "{}: {} is a symmetric secret: it has no public part, and must not be published",
                file.shown,
                k.kid()
                    .map_or("the key".to_owned(), |kid| format!("key {kid:?}"))
            )));
        }
        keys.push(k.to_public().map_err(setup("the public part"))?.to_json());
    }
    match keys.as_slice() {
        [one] if !file.is_set => emit_line(one),
        _ => emit_line(&format!(r#"{{"keys":[{}]}}"#, keys.join(","))),
    }
}

fn thumbprint(hash: ThumbprintHash, input: &InputArg) -> Outcome {
    let file = KeyFile::from_input(input.path.as_deref())?;
    let hash = match hash {
        ThumbprintHash::Sha256 => Hash::Sha256,
        ThumbprintHash::Sha384 => Hash::Sha384,
        ThumbprintHash::Sha512 => Hash::Sha512,
    };
    let mut out = String::new();
    for k in &file.keys {
        out.push_str(&tessera_jose::b64::encode(k.thumbprint_with(hash)));
        out.push('\n');
    }
    emit(out.as_bytes())
}

fn import(input: &InputArg, meta: &KeyMeta) -> Outcome {
    let bytes = zeroize::Zeroizing::new(read_input(input.path.as_deref())?);
    let pem = std::str::from_utf8(&bytes)
        .ok()
        .filter(|t| t.trim_start().starts_with("-----BEGIN"));
    let key = match pem {
        Some(text) => {
            if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
                return Err(Failure::Usage(
                    "this PEM key is encrypted; decrypt it first (tessera does not ask for passwords)"
                        .into(),
                ));
            }
            Jwk::from_pem(text).map_err(setup("reading the PEM key"))?
        }
        None => {
            let formats = [
                KeyFormat::Pkcs8,
                KeyFormat::Spki,
                KeyFormat::Pkcs1,
                KeyFormat::Sec1,
            ];
            let mut found = None;
            let mut last = None;
            for f in formats {
                match Jwk::from_der(&bytes, f) {
                    Ok(k) => {
                        found = Some(k);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            match (found, last) {
                (Some(k), _) => k,
                (None, Some(e)) if !matches!(e, tessera_jose::Error::Decode(_)) => {
                    return Err(setup("reading the DER key")(e))
                }
                (None, _) => {
                    return Err(Failure::Usage(
                        "the input is neither a PEM key nor DER in PKCS#8, SPKI, PKCS#1 or SEC 1"
                            .into(),
                    ))
                }
            }
        }
    };
    let alg = meta.alg.as_deref().map(parse_key_alg).transpose()?;
    let key = apply_meta(key, alg, meta)?;
    if key.is_private() {
        emit_line(&key.to_private_json())
    } else {
        emit_line(&key.to_json())
    }
}

fn export(
    public: bool,
    der: bool,
    format: Option<ExportFormat>,
    kid: Option<&str>,
    input: &InputArg,
) -> Outcome {
    let file = KeyFile::from_input(input.path.as_deref())?;
    let key = file.pick(kid)?;
    if key.is_symmetric() {
        return Err(Failure::Usage(
            "an oct key is a bare secret: PEM and DER have no form for it".into(),
        ));
    }
    let key = if public {
        key.to_public().map_err(setup("the public part"))?
    } else {
        key.clone()
    };
    let format = match format {
        Some(ExportFormat::Pkcs8) => KeyFormat::Pkcs8,
        Some(ExportFormat::Spki) => KeyFormat::Spki,
        Some(ExportFormat::Pkcs1) => KeyFormat::Pkcs1,
        Some(ExportFormat::Sec1) => KeyFormat::Sec1,
        None if key.is_private() => KeyFormat::Pkcs8,
        None => KeyFormat::Spki,
    };
    if der {
        emit(&key.to_der(format).map_err(setup("encoding the key"))?)
    } else {
        emit(
            key.to_pem(format)
                .map_err(setup("encoding the key"))?
                .as_bytes(),
        )
    }
}

/// Runs a `jwk` subcommand.
pub fn run(command: JwkCommand) -> Outcome {
    match command {
        JwkCommand::Generate(args) => generate(args),
        JwkCommand::Public(input) => public(&input),
        JwkCommand::Thumbprint { hash, input } => thumbprint(hash, &input),
        JwkCommand::Import { input, meta } => import(&input, &meta),
        JwkCommand::Export {
            public: p,
            der,
            format,
            kid,
            input,
        } => export(p, der, format, kid.as_deref(), &input),
    }
}
