//! What every JOSE command shares: reading input and key files under size
//! caps, parsing algorithm lists, writing output, and turning library errors
//! into the contract's exit codes (0 success, 1 rejected, 2 usage or
//! malformed input).

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use tessera_jose::error::{JweError, JwsError};
use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
use tessera_jose::jwk::{Jwk, JwkSet};
use tessera_jose::Error;

/// Largest input read from stdin or `--in`: far above any token the library
/// accepts (256 KiB), so an oversized token is refused by the library with a
/// typed error rather than cut short here.
pub const MAX_INPUT: u64 = 16 * 1024 * 1024;
/// Largest key file: a JWK Set of 100 RSA-8192 private keys is under 1 MiB.
const MAX_KEY_FILE: u64 = 1024 * 1024;

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// Exit 1: the input was understood and refused (bad signature, failed
    /// decryption, expired, algorithm not allowed, claim check failed).
    Rejected(String),
    /// Exit 2: a usage error, a bad key file, or malformed input.
    Usage(String),
}

impl Failure {
    /// Prints `error: …` on stderr and gives the exit code.
    pub fn report(self) -> ExitCode {
        let (msg, code) = match self {
            Failure::Rejected(m) => (m, 1),
            Failure::Usage(m) => (m, 2),
        };
        eprintln!("error: {msg}");
        ExitCode::from(code)
    }
}

/// A result of a JOSE command.
pub type Outcome<T = ()> = Result<T, Failure>;

/// A library error met while setting up (reading a key, building a signer):
/// always the caller's to fix, so exit 2. `context` says what was being done.
pub fn setup(context: &str) -> impl Fn(Error) -> Failure + '_ {
    move |e| Failure::Usage(format!("{context}: {e} ({})", e.code()))
}

/// A library error met while checking a token: malformed input is exit 2,
/// a token that was understood and refused is exit 1.
pub fn checking(e: Error) -> Failure {
    let msg = format!("{e} ({})", e.code());
    let malformed = match &e {
        Error::Decode(_) => true,
        Error::Jws(JwsError::Malformed(_) | JwsError::TooManySignatures) => true,
        Error::Jwe(JweError::Malformed(_) | JweError::TooManyRecipients) => true,
        // Keys come from the caller's files; token problems are typed above.
        Error::Key(_) => true,
        _ => false,
    };
    if malformed {
        Failure::Usage(msg)
    } else {
        Failure::Rejected(msg)
    }
}

fn read_capped(reader: impl Read, cap: u64, what: &str) -> Outcome<Vec<u8>> {
    let mut buf = Vec::new();
    reader
        .take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Failure::Usage(format!("reading {what}: {e}")))?;
    if buf.len() as u64 > cap {
        return Err(Failure::Usage(format!(
            "{what} is over {} MiB; nothing this command reads is that large",
            cap / (1024 * 1024)
        )));
    }
    Ok(buf)
}

/// The command's input: the file `--in` names, else stdin.
pub fn read_input(path: Option<&Path>) -> Outcome<Vec<u8>> {
    match path {
        Some(p) => {
            let file = std::fs::File::open(p)
                .map_err(|e| Failure::Usage(format!("--in {}: {e}", p.display())))?;
            read_capped(file, MAX_INPUT, &format!("--in {}", p.display()))
        }
        None => read_capped(std::io::stdin().lock(), MAX_INPUT, "standard input"),
    }
}

/// The input as a token: UTF-8, surrounding whitespace removed, not empty.
pub fn read_token(path: Option<&Path>) -> Outcome<String> {
    let bytes = read_input(path)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Failure::Usage("the input is not text; a token is base64url or JSON".into())
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Failure::Usage(
            "no token on the input (pipe one in, or give --in FILE)".into(),
        ));
    }
    Ok(token.to_owned())
}

/// A small file the user named, read under a cap.
pub fn read_file(path: &Path, flag: &str) -> Outcome<Vec<u8>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::Usage(format!("{flag} {}: {e}", path.display())))?;
    read_capped(file, MAX_INPUT, &format!("{flag} {}", path.display()))
}

/// The keys of a key file: one JWK, a JWK Set, or a PEM key.
pub struct KeyFile {
    /// Where it came from, for messages (`--key k.jwk`).
    pub shown: String,
    /// Its keys (one for a JWK or PEM file).
    pub keys: Vec<Jwk>,
    /// Whether the file was a JWK Set.
    pub is_set: bool,
    /// Keys of a set that could not be read: their index, and why.
    pub rejected: Vec<(usize, Error)>,
}

impl KeyFile {
    /// Reads `path` as a JWK (`{"kty": …}`), a JWK Set (`{"keys": […]}`) or a
    /// PEM key. Keys of a set that cannot be used are reported on stderr and
    /// left out (RFC 7517 §5); a set with no usable key is an error.
    pub fn read(path: &Path, flag: &str) -> Outcome<KeyFile> {
        let shown = format!("{flag} {}", path.display());
        let file =
            std::fs::File::open(path).map_err(|e| Failure::Usage(format!("{shown}: {e}")))?;
        let bytes = zeroize::Zeroizing::new(read_capped(file, MAX_KEY_FILE, &shown)?);
        let file = KeyFile::parse(&bytes, shown)?;
        for (index, why) in &file.rejected {
            eprintln!("warning: {}: key #{index} left out: {why}", file.shown);
        }
        if file.keys.is_empty() {
            return Err(Failure::Usage(format!(
                "{}: the JWK Set has no usable key",
                file.shown
            )));
        }
        Ok(file)
    }

    /// The keys of the command's input (`--in FILE` or stdin), for commands
    /// that print them back: a set with a key that cannot be read is refused
    /// whole, so nothing is silently lost.
    pub fn from_input(path: Option<&Path>) -> Outcome<KeyFile> {
        let bytes = zeroize::Zeroizing::new(read_input(path)?);
        let shown = path.map_or_else(
            || "the input".to_owned(),
            |p| format!("--in {}", p.display()),
        );
        let file = KeyFile::parse(&bytes, shown)?;
        if let Some((index, why)) = file.rejected.first() {
            return Err(Failure::Usage(format!(
                "{}: key #{index} of the set cannot be read ({why}); nothing was printed",
                file.shown
            )));
        }
        Ok(file)
    }

    fn parse(bytes: &[u8], shown: String) -> Outcome<KeyFile> {
        let not_a_key = || Failure::Usage(format!("{shown}: not a JWK, JWK Set or PEM key"));
        let text = std::str::from_utf8(bytes).map_err(|_| not_a_key())?;
        let trimmed = text.trim_start();
        let (keys, is_set, rejected) = if trimmed.starts_with("-----BEGIN") {
            (
                vec![Jwk::from_pem(text).map_err(setup(&shown))?],
                false,
                Vec::new(),
            )
        } else if is_jwk_set(text) {
            let set = JwkSet::from_json(text.as_bytes()).map_err(setup(&shown))?;
            (set.keys().to_vec(), true, set.rejected().to_vec())
        } else if trimmed.starts_with('{') {
            let key = Jwk::from_json(text.as_bytes()).map_err(setup(&shown))?;
            (vec![key], false, Vec::new())
        } else {
            return Err(not_a_key());
        };
        Ok(KeyFile {
            shown,
            keys,
            is_set,
            rejected,
        })
    }

    /// The one key to sign, encrypt or export: the file's only key, or the
    /// one whose `kid` is `kid`.
    pub fn pick(&self, kid: Option<&str>) -> Outcome<&Jwk> {
        let shown = &self.shown;
        if let (true, Some(kid)) = (self.is_set, kid) {
            let mut found = self.keys.iter().filter(|k| k.kid() == Some(kid));
            return match (found.next(), found.next()) {
                (Some(k), None) => Ok(k),
                (None, _) => Err(Failure::Usage(format!("{shown}: no key with kid {kid:?}"))),
                (Some(_), Some(_)) => Err(Failure::Usage(format!(
                    "{shown}: several keys have kid {kid:?}"
                ))),
            };
        }
        match self.keys.as_slice() {
            [one] => Ok(one),
            _ => Err(Failure::Usage(format!(
                "{shown} holds {} keys; say which with --kid",
                self.keys.len()
            ))),
        }
    }

    /// All keys as a set.
    pub fn set(&self) -> JwkSet {
        JwkSet::new(self.keys.clone())
    }
}

/// Whether a JSON text is a JWK Set rather than a JWK: it has a top-level
/// `keys` member. Only the top level is looked at.
fn is_jwk_set(text: &str) -> bool {
    let limits = tessera_jose::json::Limits {
        max_json_bytes: MAX_KEY_FILE as usize,
        max_json_depth: 4,
        ..Default::default()
    };
    tessera_jose::json::parse_object(text.as_bytes(), &limits, "key file")
        .is_ok_and(|m| m.contains_key("keys"))
}

const NONE_REFUSED: &str =
    "`none` is never accepted: an unsigned token proves nothing about who made it";

/// One JWS algorithm, by its RFC 7518 name.
pub fn jws_alg(name: &str) -> Outcome<JwsAlgorithm> {
    let name = name.trim();
    if name.eq_ignore_ascii_case("none") {
        return Err(Failure::Usage(NONE_REFUSED.into()));
    }
    name.parse().map_err(|_| {
        unknown(
            "--alg",
            "JWS algorithm",
            name,
            JwsAlgorithm::all().map(JwsAlgorithm::name),
        )
    })
}

/// A comma-separated list (`RS256,ES256`), each name parsed by `one`;
/// repeats dropped, at least one required.
fn list_of<T: PartialEq>(
    list: &str,
    flag: &str,
    one: impl Fn(&str) -> Outcome<T>,
) -> Outcome<Vec<T>> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let item = one(name)?;
        if !out.contains(&item) {
            out.push(item);
        }
    }
    if out.is_empty() {
        return Err(Failure::Usage(format!(
            "{flag}: name at least one algorithm"
        )));
    }
    Ok(out)
}

fn unknown(
    flag: &str,
    what: &str,
    name: &str,
    known: impl Iterator<Item = &'static str>,
) -> Failure {
    Failure::Usage(format!(
        "{flag}: unknown {what} {name:?}; one of: {}",
        known.collect::<Vec<_>>().join(", ")
    ))
}

/// A comma-separated list of JWS algorithms (`RS256,ES256`).
pub fn jws_algs(list: &str) -> Outcome<Vec<JwsAlgorithm>> {
    list_of(list, "--alg", jws_alg)
}

/// A comma-separated list of JWE key-management algorithms.
pub fn jwe_algs(list: &str, flag: &str) -> Outcome<Vec<JweAlgorithm>> {
    list_of(list, flag, |name| {
        name.parse().map_err(|_| {
            unknown(
                flag,
                "JWE algorithm",
                name,
                JweAlgorithm::ALL.iter().map(|a| a.name()),
            )
        })
    })
}

/// A comma-separated list of JWE content-encryption algorithms.
pub fn jwe_encs(list: &str) -> Outcome<Vec<JweEncryption>> {
    list_of(list, "--enc", |name| {
        name.parse().map_err(|_| {
            unknown(
                "--enc",
                "content encryption",
                name,
                JweEncryption::ALL.iter().map(|e| e.name()),
            )
        })
    })
}

/// A duration such as `90s`, `15m`, `12h`, `7d`, or plain seconds.
pub fn seconds(text: &str, flag: &str) -> Outcome<u64> {
    let t = text.trim();
    let parsed = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>().ok()
    } else {
        tessera_server::config::parse_duration(t).map(|d| d.as_secs())
    };
    parsed.ok_or_else(|| {
        Failure::Usage(format!(
            "{flag}: {text:?} is not a duration like \"60s\", \"15m\", \"12h\" or \"7d\""
        ))
    })
}

/// Writes `bytes` to stdout. A closed pipe (`| head`) ends quietly.
pub fn emit(bytes: &[u8]) -> Outcome {
    write_out(&[bytes])
}

/// Writes a line of text to stdout (written as is, then a newline: a private
/// key is never copied into a buffer that is not zeroized).
pub fn emit_line(text: &str) -> Outcome {
    write_out(&[text.as_bytes(), b"\n"])
}

fn write_out(parts: &[&[u8]]) -> Outcome {
    let mut out = std::io::stdout().lock();
    let written = parts
        .iter()
        .try_for_each(|p| out.write_all(p))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Usage(format!("writing the output: {e}"))),
    }
}

/// Pretty JSON for people (still valid JSON for scripts).
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}
