//! `tessera jwt …`: sign, verify and inspect JWTs.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Map, Value};
use tessera_jose::error::ClaimsError;
use tessera_jose::jwe::JweHeader;
use tessera_jose::jws::{JwsHeader, SignaturePolicy};
use tessera_jose::jwt::{self, Audience, Claims, Clock, SystemClock, Validation};
use tessera_jose::Error;

use crate::common::{
    checking, emit_line, jws_algs, pretty, read_token, seconds, setup, Failure, Outcome,
};
use crate::jwk_cmd::InputArg;
use crate::{jwe_cmd, jws_cmd};

/// The `jwt` subcommands.
#[derive(Subcommand)]
pub enum JwtCommand {
    /// Sign a JWT: the claims you give plus iat, exp (now + --ttl) and a random jti.
    ///
    /// A signed JWT is readable by anyone who holds it: put nothing secret
    /// or personal in it (see `jwt inspect`). --claims may set exp, nbf, iat
    /// or jti itself (then the defaults step aside), but not iss, sub or aud
    /// when the option of that name is also given.
    #[command(after_help = "Example:
  tessera jwt sign --key es256.jwk --alg ES256 --iss https://issuer.example \\
      --aud api --sub user-1 --ttl 15m --claims '{\"roles\":[\"reader\"]}'")]
    Sign(SignArgs),
    /// Verify a JWT and print its claims as JSON.
    ///
    /// The signature must verify with a key of --key under one of the
    /// algorithms you name; exp is required and checked, as are iss, aud and
    /// typ when you name them (a token that has an aud is refused unless you
    /// give --aud). For a nested token (a JWT signed, then encrypted to you),
    /// give --decrypt-key, --key-alg and --enc: it is decrypted, then the
    /// inner JWT verified. Exit 0: valid; 1: refused; 2: usage error or
    /// malformed input.
    #[command(after_help = "Examples:
  tessera jwt verify --key issuer.jwks --alg RS256 --iss https://issuer.example --aud api --in token
  tessera jwt verify --key issuer.jwks --alg ES256 --aud partner \\
      --decrypt-key me.jwk --key-alg RSA-OAEP-256 --enc A256GCM --in nested.jwe")]
    Verify(VerifyArgs),
    /// Show a token's header and claims WITHOUT verifying anything.
    ///
    /// Prints pretty JSON on stdout. On stderr it reminds you that a signed
    /// token's claims are readable by anyone who holds it, and flags claims
    /// that look like personal data (e-mail addresses, phone numbers,
    /// national identity and card numbers, IP addresses, claims named like
    /// email, ssn, dob, …). For an encrypted token (JWE) it shows the header
    /// only: the claims are sealed.
    #[command(after_help = "Example:
  tessera jwt inspect --in token")]
    Inspect(InputArg),
}

/// `jwt sign` arguments.
#[derive(Args)]
pub struct SignArgs {
    #[command(flatten)]
    signing: jws_cmd::SigningKeyArgs,
    /// The issuer (iss).
    #[arg(long)]
    iss: Option<String>,
    /// The audience (aud).
    #[arg(long)]
    aud: Option<String>,
    /// The subject (sub).
    #[arg(long)]
    sub: Option<String>,
    /// Lifetime: exp = now + TTL (e.g. 90s, 15m, 1h).
    #[arg(long, default_value = "15m")]
    ttl: String,
    /// The header typ (default JWT; at+jwt for RFC 9068 access tokens).
    #[arg(long)]
    typ: Option<String>,
    /// More claims, as a JSON object.
    #[arg(long, value_name = "JSON")]
    claims: Option<String>,
    /// Make a nested token: after signing, encrypt the JWT to this
    /// recipient's public key (JWK, JWK Set with one key, or PEM).
    #[arg(long, value_name = "FILE", requires_all = ["key_alg", "enc"])]
    encrypt_key: Option<PathBuf>,
    /// For a nested token: the JWE key-management algorithm, e.g. RSA-OAEP-256.
    #[arg(long, requires = "encrypt_key")]
    key_alg: Option<String>,
    /// For a nested token: the JWE content encryption, e.g. A256GCM.
    #[arg(long, requires = "encrypt_key")]
    enc: Option<String>,
}

fn sign(a: SignArgs) -> Outcome {
    let SignArgs {
        iss,
        aud,
        sub,
        signing,
        ..
    } = a;
    let kid = signing.kid.as_deref();
    let ttl = seconds(&a.ttl, "--ttl")?;
    let signer = signing.signer()?;
    let encrypter = match (&a.encrypt_key, &a.key_alg, &a.enc) {
        (Some(k), Some(alg), Some(enc)) => Some(jwe_cmd::encrypter(k, alg, enc, None)?),
        _ => None,
    };
    let given = match a.claims.as_deref() {
        Some(json) => tessera_jose::json::parse_object(
            json.as_bytes(),
            &tessera_jose::json::Limits::default(),
            "--claims",
        )
        .map_err(setup("--claims"))?,
        None => Map::new(),
    };
    for (flag, value) in [("iss", &iss), ("sub", &sub), ("aud", &aud)] {
        if value.is_some() && given.contains_key(flag) {
            return Err(Failure::Usage(format!(
                "--claims sets {flag} and so does --{flag}; keep one"
            )));
        }
    }
    let mut claims: Claims<Map<String, Value>> = serde_json::from_value(Value::Object(given))
        .map_err(|e| {
            Failure::Usage(format!(
                "--claims: a registered claim has the wrong type ({e}); \
                 iss, sub, jti are strings, aud a string or list, exp, nbf, iat numbers"
            ))
        })?;
    let now = SystemClock.now();
    let ttl = i64::try_from(ttl).unwrap_or(i64::MAX);
    claims.iss = claims.iss.or(iss);
    claims.sub = claims.sub.or(sub);
    claims.aud = claims.aud.or(aud.map(Audience::One));
    claims.iat = claims.iat.or(Some(now));
    claims.exp = claims.exp.or(Some(now.saturating_add(ttl)));
    if claims.jti.is_none() {
        let jti = tessera_server::crypto::random_token(16)
            .map_err(|e| Failure::Rejected(format!("no randomness for jti: {e}")))?;
        claims.jti = Some(jti.as_str().to_owned());
    }
    let mut header = JwsHeader::new();
    if let Some(kid) = kid {
        header = header.kid(kid);
    }
    if let Some(typ) = &a.typ {
        header = header.typ(typ);
    }
    let failed = |e: Error| Failure::Usage(format!("cannot sign: {e} ({})", e.code()));
    let token = match &encrypter {
        Some(enc) => jwt::sign_and_encrypt(&signer, &header, &claims, enc, &JweHeader::new()),
        None => jwt::sign(&signer, &header, &claims),
    }
    .map_err(failed)?;
    emit_line(&token)
}

/// What `jwt verify` prints: every claim, registered ones included.
fn claims_json(claims: &Claims<Map<String, Value>>) -> Value {
    serde_json::to_value(claims).unwrap_or(Value::Null)
}

/// Whether `token` is a JWE: five compact segments, or JSON with `ciphertext`.
fn is_jwe(token: &str) -> bool {
    if token.starts_with('{') {
        top_level(token).is_some_and(|m| m.contains_key("ciphertext"))
    } else {
        token.matches('.').count() == 4
    }
}

/// A JSON token's top-level object, under the library's limits.
fn top_level(token: &str) -> Option<Map<String, Value>> {
    let limits = tessera_jose::json::Limits::default();
    let doc = tessera_jose::json::Limits {
        max_json_bytes: limits.max_token_bytes,
        ..limits
    };
    tessera_jose::json::parse_object(token.as_bytes(), &doc, "token").ok()
}

/// `jwt verify` arguments.
#[derive(Args)]
pub struct VerifyArgs {
    /// The issuer's key(s): a JWK, a JWK Set or a PEM public key.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The signature algorithms you accept, comma-separated.
    #[arg(long, value_name = "ALG[,ALG…]")]
    alg: String,
    /// The issuer the token must name (iss).
    #[arg(long)]
    iss: Option<String>,
    /// Who you are: the token's aud must contain this.
    #[arg(long)]
    aud: Option<String>,
    /// The header typ the token must have (e.g. at+jwt).
    #[arg(long)]
    typ: Option<String>,
    /// Clock skew tolerated on exp, nbf and iat.
    #[arg(long, default_value = "60s")]
    leeway: String,
    /// For a nested token: your private key (JWK, JWK Set or PEM) to decrypt it.
    #[arg(long, value_name = "FILE", requires_all = ["key_alg", "enc"])]
    decrypt_key: Option<PathBuf>,
    /// For a nested token: the JWE key-management algorithm(s) you accept.
    #[arg(long, value_name = "ALG[,ALG…]", requires = "decrypt_key")]
    key_alg: Option<String>,
    /// For a nested token: the JWE content encryption(s) you accept.
    #[arg(long, value_name = "ENC[,ENC…]", requires = "decrypt_key")]
    enc: Option<String>,
    #[command(flatten)]
    input: InputArg,
}

fn verify(a: VerifyArgs) -> Outcome {
    let algs = jws_algs(&a.alg)?;
    let leeway = u32::try_from(seconds(&a.leeway, "--leeway")?)
        .map_err(|_| Failure::Usage("--leeway is far too long".into()))?;
    let mut validation = Validation::new().leeway(leeway);
    if let Some(iss) = &a.iss {
        validation = validation.issuer(iss);
    }
    if let Some(aud) = &a.aud {
        validation = validation.audience(aud);
    }
    if let Some(typ) = &a.typ {
        validation = validation.typ(typ);
    }
    let verifier = jws_cmd::verifier(&a.key, &algs)?;
    let decrypter = match (&a.decrypt_key, &a.key_alg, &a.enc) {
        (Some(k), Some(alg), Some(enc)) => {
            Some(jwe_cmd::decrypter(k, alg, enc, false, false, "--key-alg")?)
        }
        _ => None,
    };
    let token = read_token(a.input.path.as_deref())?;
    let clock = SystemClock;
    let jwe = is_jwe(&token);
    let result = match (&decrypter, jwe) {
        (Some(d), true) => {
            jwt::decrypt_and_verify::<Map<String, Value>>(&token, d, &verifier, &validation, &clock)
                .map(jwt::NestedJwt::into_jwt)
        }
        (None, true) => {
            return Err(Failure::Usage(
                "this token is encrypted (JWE): give --decrypt-key, --key-alg and --enc".into(),
            ))
        }
        (Some(_), false) => {
            return Err(Failure::Rejected(
                "expected a nested token (signed, then encrypted), and this one is not \
                 encrypted"
                    .into(),
            ))
        }
        (None, false) if token.starts_with('{') => {
            jwt::verify_json(&token, &verifier, SignaturePolicy::Any, &validation, &clock)
        }
        (None, false) => jwt::verify(&token, &verifier, &validation, &clock),
    };
    match result {
        Ok(v) => emit_line(&pretty(&claims_json(v.claims()))),
        Err(Error::Claims(ClaimsError::WrongAudience)) if a.aud.is_none() => {
            Err(Failure::Rejected(
                "the token names an audience (aud) and you gave none: say who you are with --aud \
                 (ERR_JWT_WRONG_AUDIENCE)"
                    .into(),
            ))
        }
        Err(Error::Claims(ClaimsError::Missing(c))) if c == "exp" => Err(Failure::Rejected(
            "the token has no exp: tokens that never expire are refused (ERR_JWT_CLAIM_MISSING)"
                .into(),
        )),
        Err(e) => Err(checking(e)),
    }
}

/// Where a flagged claim was found and why it was flagged.
struct Finding {
    path: String,
    why: String,
}

/// Walks the claims, flagging names and values that look like personal data.
fn scan(value: &Value, path: &str, depth: usize, out: &mut Vec<Finding>) {
    use tessera_server::pii;
    if depth > 32 || out.len() >= 100 {
        return;
    }
    match value {
        Value::Object(map) => {
            for (name, v) in map {
                let here = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if let Some(kind) = pii::sensitive_name(name) {
                    if !matches!(v, Value::Null | Value::Bool(_)) {
                        out.push(Finding {
                            path: here.clone(),
                            why: format!("is named like a claim that holds {kind}"),
                        });
                        continue;
                    }
                }
                scan(v, &here, depth + 1, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                scan(v, &format!("{path}[{i}]"), depth + 1, out);
            }
        }
        Value::String(s) => {
            let kind =
                pii::text_kind(s).or_else(|| pii::looks_like_ip(s).then_some("an IP address"));
            if let Some(kind) = kind {
                out.push(Finding {
                    path: path.to_owned(),
                    why: format!("looks like {kind}"),
                });
            }
        }
        Value::Number(_) => {
            if let Some(kind) = pii::value_kind(value) {
                out.push(Finding {
                    path: path.to_owned(),
                    why: format!("looks like {kind}"),
                });
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

fn claims_from_payload(payload: &[u8]) -> Value {
    let limits = tessera_jose::json::Limits::default();
    match tessera_jose::json::parse_value(payload, &limits, "claims") {
        Ok(v) => v,
        Err(_) => Value::String(String::from_utf8_lossy(payload).into_owned()),
    }
}

fn warn_readable(claims: &Value, kind: &str) {
    eprintln!(
        "warning: NOT VERIFIED. This is a signed token ({kind}), not an encrypted one: \
         anyone who holds it can read every claim below."
    );
    let mut findings = Vec::new();
    scan(claims, "", 0, &mut findings);
    for f in &findings {
        eprintln!("warning: claim {:?} {}", f.path, f.why);
    }
    if !findings.is_empty() {
        eprintln!(
            "warning: personal data in a signed token leaks to every browser, proxy and log \
             it passes; seal it in a JWE instead"
        );
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
        let now = SystemClock.now();
        if exp <= now {
            eprintln!(
                "note: exp is {} s in the past: the token has expired",
                now - exp
            );
        }
    }
}

fn inspect(input: &InputArg) -> Outcome {
    use tessera_jose::danger;
    let token = read_token(input.path.as_deref())?;
    let bad = |e: Error| Failure::Usage(format!("not a token: {e} ({})", e.code()));
    if is_jwe(&token) {
        let h = danger::decode_jwe_headers(&token).map_err(bad)?;
        let mut shown = Shown {
            header: Some(Value::Object(h.protected.clone())),
            unprotected: h.shared.map(Value::Object),
            ..Shown::default()
        };
        if h.recipients.iter().any(Option::is_some) {
            shown.recipients = Some(
                h.recipients
                    .into_iter()
                    .map(|r| r.map_or(Value::Null, Value::Object))
                    .collect(),
            );
        }
        let text = |n: &str| {
            h.protected
                .get(n)
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned()
        };
        eprintln!(
            "note: this is an encrypted token (JWE, alg {}, enc {}): its claims are sealed; \
             only the holder of the recipient's key can read them (tessera jwt verify \
             --decrypt-key …). Nothing here is verified.",
            text("alg"),
            text("enc")
        );
        if h.protected
            .get("cty")
            .and_then(Value::as_str)
            .is_some_and(|c| c.eq_ignore_ascii_case("JWT"))
        {
            eprintln!("note: it carries a nested, signed JWT (cty JWT).");
        }
        return shown.emit();
    }
    let mut shown = Shown::default();
    let claims = if token.starts_with('{') {
        let parts = danger::decode_unverified_json(&token).map_err(bad)?;
        let headers: Vec<Value> = parts
            .signatures
            .iter()
            .map(|s| {
                let mut m = s.protected.clone();
                if let Some(u) = &s.unprotected {
                    m.extend(u.clone());
                }
                Value::Object(m)
            })
            .collect();
        if let [only] = headers.as_slice() {
            shown.header = Some(only.clone());
        } else {
            shown.headers = Some(headers);
        }
        match parts.payload {
            Some(p) => claims_from_payload(&p),
            None => {
                eprintln!("note: the payload is detached: there are no claims to show");
                Value::Null
            }
        }
    } else {
        let parts = danger::decode_unverified(&token).map_err(bad)?;
        shown.header = Some(Value::Object(parts.header));
        if token.split('.').nth(1) == Some("") {
            eprintln!("note: the payload is detached: there are no claims to show");
            Value::Null
        } else {
            claims_from_payload(&parts.payload)
        }
    };
    if !claims.is_null() {
        warn_readable(
            &claims,
            if token.starts_with('{') {
                "JSON JWS"
            } else {
                "JWS"
            },
        );
    }
    shown.claims = Some(claims);
    shown.emit()
}

/// What `jwt inspect` prints, in this order (header first, then claims).
#[derive(serde::Serialize, Default)]
struct Shown {
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<Value>,
    /// Each signature's header, for a JSON JWS with several.
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Vec<Value>>,
    /// A JSON JWE's shared unprotected header.
    #[serde(skip_serializing_if = "Option::is_none")]
    unprotected: Option<Value>,
    /// A JSON JWE's per-recipient headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    recipients: Option<Vec<Value>>,
    /// `null` when the payload is detached; absent for a JWE.
    #[serde(skip_serializing_if = "Option::is_none")]
    claims: Option<Value>,
}

impl Shown {
    fn emit(&self) -> Outcome {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Failure::Usage(format!("showing the token: {e}")))?;
        emit_line(&text)
    }
}

/// Runs a `jwt` subcommand.
pub fn run(command: JwtCommand) -> Outcome {
    match command {
        JwtCommand::Sign(args) => sign(args),
        JwtCommand::Verify(args) => verify(args),
        JwtCommand::Inspect(input) => inspect(&input),
    }
}
