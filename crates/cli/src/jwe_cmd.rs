//! `tessera jwe …`: encrypt to a recipient, decrypt with your key.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use tessera_jose::jwa::{JweAlgorithm, JweEncryption};
use tessera_jose::jwe::{encrypt_general, Decrypter, Encrypter, JweHeader, Recipient};

use crate::common::{
    checking, emit, emit_line, jwe_algs, jwe_encs, read_input, read_token, setup, Failure, KeyFile,
    Outcome,
};
use crate::jwk_cmd::InputArg;
use crate::jws_cmd::Serialization;

/// The `jwe` subcommands.
#[derive(Subcommand)]
pub enum JweCommand {
    /// Encrypt the input (any bytes) to the holder of a key and print the JWE.
    ///
    /// --alg says how the content key reaches the recipient (RSA-OAEP-256 or
    /// ECDH-ES+A256KW to a public key; A256KW, A256GCMKW or dir with a shared
    /// secret; PBES2-* with a password kept as an oct JWK); --enc says how the
    /// content is encrypted (A256GCM is a good default). RSA1_5 is never
    /// produced.
    #[command(after_help = "Examples:
  tessera jwe encrypt --key partner.pub.jwk --alg RSA-OAEP-256 --enc A256GCM --in claims.json
  tessera jwe encrypt --key x25519.pub.jwk --alg ECDH-ES+A256KW --enc A256GCM --zip")]
    Encrypt(EncryptArgs),
    /// Decrypt a JWE (compact or JSON) and print the plaintext.
    ///
    /// You name the alg and enc values you accept; anything else is refused
    /// (exit 1). Every decryption failure gives the same message, on purpose.
    /// Compressed JWEs need --allow-zip (inflated under a 250,000-byte cap).
    /// RSA1_5 is never decrypted: its decryption was removed (see
    /// --allow-rsa1-5). Exit 0: decrypted; 1: refused; 2: usage error or
    /// malformed input.
    #[command(after_help = "Example:
  tessera jwe decrypt --key me.jwk --alg RSA-OAEP-256,ECDH-ES+A256KW --enc A256GCM --in token.jwe")]
    Decrypt {
        /// Your private key(s) or the shared secret: a JWK, a JWK Set or a PEM private key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The key-management algorithms you accept, comma-separated.
        #[arg(long, value_name = "ALG[,ALG…]")]
        alg: String,
        /// The content encryptions you accept, comma-separated.
        #[arg(long, value_name = "ENC[,ENC…]")]
        enc: String,
        /// Accept compressed ("zip": "DEF") JWEs.
        #[arg(long)]
        allow_zip: bool,
        /// Removed: always an error (exit 2). RSA1_5 (RSAES-PKCS1-v1_5)
        /// decryption leaks its padding check through timing (the Marvin
        /// attack); ask the sender for RSA-OAEP-256 or ECDH-ES instead.
        #[arg(long = "allow-rsa1-5")]
        allow_rsa1_5: bool,
        #[command(flatten)]
        input: InputArg,
    },
}

/// The arguments of `jwe encrypt`.
#[derive(clap::Args)]
pub struct EncryptArgs {
    /// The recipient's public key (JWK, JWK Set with --kid, or PEM), or a shared oct JWK.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// The key-management algorithm, e.g. RSA-OAEP-256, ECDH-ES+A256KW, A256KW, dir.
    #[arg(long)]
    pub alg: String,
    /// The content encryption, e.g. A256GCM or A128CBC-HS256.
    #[arg(long)]
    pub enc: String,
    /// The kid to put in the header (and to pick the key of a JWK Set).
    #[arg(long, allow_hyphen_values = true)]
    pub kid: Option<String>,
    /// Compress the plaintext first ("zip": "DEF"). Compressing data an
    /// attacker can influence next to secrets leaks them (CRIME); the
    /// recipient must also opt in to decompress.
    #[arg(long)]
    pub zip: bool,
    /// The content type (cty) of the plaintext, e.g. JWT for a nested
    /// token (then surrounding whitespace, such as the newline a file
    /// ends with, is not part of the JWT and is left out).
    #[arg(long)]
    pub cty: Option<String>,
    /// How to write the JWE.
    #[arg(long, value_enum, default_value_t = Serialization::Compact)]
    pub serialization: Serialization,
    #[command(flatten)]
    pub input: InputArg,
    /// PBES2 only: the iteration count written as `p2c` (default 100,000,
    /// the most a default decrypter accepts).
    /// Other libraries cap what they accept (panva/jose 10,000, jwcrypto
    /// 16,384 by default): give such a recipient a count within its cap.
    #[arg(long, value_name = "N")]
    pub p2c: Option<u32>,
}

/// An encrypter for one `alg`/`enc` with the key of `path`.
pub fn encrypter(path: &Path, alg: &str, enc: &str, kid: Option<&str>) -> Outcome<Encrypter> {
    let alg = one(jwe_algs(alg, "--alg")?, "--alg")?;
    let enc = one(jwe_encs(enc)?, "--enc")?;
    if alg == JweAlgorithm::RSA1_5 {
        return Err(Failure::Usage(
            "--alg RSA1_5: tessera never encrypts with RSAES-PKCS1-v1_5 (padding oracles); \
             use RSA-OAEP-256"
                .into(),
        ));
    }
    let file = KeyFile::read(path, "--key")?;
    let key = file.pick(kid)?;
    let key = if key.is_private() && !key.is_symmetric() {
        key.to_public().map_err(setup("--key"))?
    } else {
        key.clone()
    };
    Encrypter::new(&key, alg, enc).map_err(setup(&format!(
        "--key {} with --alg {} --enc {}",
        path.display(),
        alg.name(),
        enc.name()
    )))
}

fn one<T: Copy>(list: Vec<T>, flag: &str) -> Outcome<T> {
    match list.as_slice() {
        [one] => Ok(*one),
        _ => Err(Failure::Usage(format!(
            "{flag}: encrypting uses exactly one algorithm"
        ))),
    }
}

/// Why RSA1_5 is not decrypted, and what to do instead.
const RSA1_5_REMOVED: &str = "RSA1_5 decryption was removed from tessera: RSAES-PKCS1-v1_5 \
     cannot be decrypted here in constant time, and the timing of its padding check lets an \
     attacker decrypt tokens (a Bleichenbacher padding oracle, the Marvin attack). Ask the \
     sender to encrypt with RSA-OAEP-256 (or ECDH-ES, e.g. ECDH-ES+A256KW) instead";

/// A decrypter for every pair of `algs` × `encs` the keys of `path` can
/// serve. `allow_rsa1_5` (the `--allow-rsa1-5` flag) is kept so that old
/// scripts get the reason instead of "unexpected argument": it is refused.
pub fn decrypter(
    path: &Path,
    algs: &str,
    encs: &str,
    allow_zip: bool,
    allow_rsa1_5: bool,
    alg_flag: &str,
) -> Outcome<Decrypter> {
    if allow_rsa1_5 {
        return Err(Failure::Usage(format!("--allow-rsa1-5: {RSA1_5_REMOVED}")));
    }
    let algs = jwe_algs(algs, alg_flag)?;
    let encs = jwe_encs(encs)?;
    if algs.contains(&JweAlgorithm::RSA1_5) {
        return Err(Failure::Usage(format!(
            "{alg_flag} RSA1_5: {RSA1_5_REMOVED}"
        )));
    }
    let pairs: Vec<(JweAlgorithm, JweEncryption)> = algs
        .iter()
        .flat_map(|&a| encs.iter().map(move |&e| (a, e)))
        .collect();
    let file = KeyFile::read(path, "--key")?;
    if let Some(public) = file.keys.iter().find(|k| !k.is_private()) {
        if !file.is_set {
            return Err(Failure::Usage(format!(
                "--key {}: a public key cannot decrypt; give the private key{}",
                path.display(),
                public
                    .kid()
                    .map(|k| format!(" (kid {k})"))
                    .unwrap_or_default()
            )));
        }
    }
    let mut builder = Decrypter::builder();
    if allow_zip {
        builder = builder.allow_compression();
    }
    if file.is_set {
        builder = builder
            .jwk_set(&file.set(), &pairs)
            .map_err(setup("--key"))?;
    } else {
        let key = file.pick(None)?;
        let fitting: Vec<_> = pairs
            .iter()
            .copied()
            .filter(|&(a, e)| key.check_permits_jwe(true, a, e).is_ok())
            .collect();
        if fitting.is_empty() {
            let (a, e) = pairs
                .first()
                .copied()
                .unwrap_or((JweAlgorithm::Dir, JweEncryption::A256GCM));
            return Err(match key.check_permits_jwe(true, a, e) {
                Err(err) => setup(&format!(
                    "--key {} for {} / {}",
                    path.display(),
                    a.name(),
                    e.name()
                ))(err),
                Ok(()) => Failure::Usage("--key cannot serve --alg/--enc".into()),
            });
        }
        builder = builder.key(key, &fitting).map_err(setup("--key"))?;
    }
    builder.build().map_err(|_| {
        Failure::Usage(format!(
            "--key {}: no key there can decrypt the algorithms asked for",
            path.display()
        ))
    })
}

fn encrypt(args: &EncryptArgs) -> Outcome {
    let kid = args.kid.as_deref();
    let cty = args.cty.as_deref();
    let mut encrypter = encrypter(&args.key, &args.alg, &args.enc, kid)?;
    if let Some(count) = args.p2c {
        if !args.alg.starts_with("PBES2-") {
            return Err(Failure::Usage(format!(
                "--p2c is for the PBES2-* algorithms, not --alg {}",
                args.alg
            )));
        }
        if count < 1000 {
            return Err(Failure::Usage(format!(
                "--p2c {count}: at least 1000 iterations (RFC 7518 section 4.8.1.2)"
            )));
        }
        encrypter = encrypter.pbes2_count(count).map_err(setup("--p2c"))?;
    }
    if args.zip {
        encrypter = encrypter.compress();
    }
    let mut plaintext = zeroize::Zeroizing::new(read_input(args.input.path.as_deref())?);
    if cty.is_some_and(|c| c.eq_ignore_ascii_case("JWT")) {
        let text = plaintext.trim_ascii();
        *plaintext = text.to_vec();
    }
    let mut header = JweHeader::new();
    if let Some(kid) = kid {
        header = header.kid(kid);
    }
    if let Some(cty) = cty {
        header = header.cty(cty);
    }
    let sealing =
        |e: tessera_jose::Error| Failure::Usage(format!("cannot encrypt: {e} ({})", e.code()));
    let out = match args.serialization {
        Serialization::Compact => encrypter.encrypt_compact(&header, &plaintext),
        Serialization::Flattened => {
            encrypter.encrypt_flattened(&header, &JweHeader::new(), None, &plaintext)
        }
        Serialization::General => encrypt_general(
            &header,
            &JweHeader::new(),
            None,
            &[Recipient {
                encrypter: &encrypter,
                header: JweHeader::new(),
            }],
            &plaintext,
        ),
    }
    .map_err(sealing)?;
    emit_line(&out)
}

/// Runs a `jwe` subcommand.
pub fn run(command: JweCommand) -> Outcome {
    match command {
        JweCommand::Encrypt(args) => encrypt(&args),
        JweCommand::Decrypt {
            key,
            alg,
            enc,
            allow_zip,
            allow_rsa1_5,
            input,
        } => {
            let decrypter = decrypter(&key, &alg, &enc, allow_zip, allow_rsa1_5, "--alg")?;
            let token = read_token(input.path.as_deref())?;
            let opened = decrypter.decrypt(&token).map_err(checking)?;
            emit(opened.plaintext())
        }
    }
}
