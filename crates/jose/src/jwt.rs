//! JSON Web Tokens (RFC 7519) with the RFC 8725 best practices: the
//! verifier pins algorithms, `exp` is required by default, `aud` is always
//! checked when present, and the clock is a parameter.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tessera_jose::jwa::JwsAlgorithm;
//! use tessera_jose::jwk::Jwk;
//! use tessera_jose::jws::{JwsHeader, Signer, Verifier};
//! use tessera_jose::jwt::{self, Claims, FixedClock, Validation};
//!
//! #[derive(Debug, Serialize, Deserialize, PartialEq)]
//! struct Org { org: String }
//!
//! let key = Jwk::generate_for(JwsAlgorithm::EdDSA).unwrap();
//! let claims = Claims::new(Org { org: "acme".into() })
//!     .issuer("https://issuer.example")
//!     .subject("user-1")
//!     .audience("api")
//!     .issued_at(1_000)
//!     .expires_at(1_600);
//! let signer = Signer::new(&key, JwsAlgorithm::EdDSA).unwrap();
//! let token = jwt::sign(&signer, &JwsHeader::new().typ("at+jwt"), &claims).unwrap();
//!
//! let verifier = Verifier::builder().key(&key, &[JwsAlgorithm::EdDSA]).unwrap().build().unwrap();
//! let validation = Validation::new()
//!     .issuer("https://issuer.example")
//!     .audience("api")
//!     .typ("at+jwt");
//! let ok = jwt::verify::<Org>(&token, &verifier, &validation, &FixedClock(1_200)).unwrap();
//! assert_eq!(ok.claims().custom.org, "acme");
//! let late = jwt::verify::<Org>(&token, &verifier, &validation, &FixedClock(2_000));
//! assert_eq!(late.unwrap_err().code(), "ERR_JWT_EXPIRED");
//! ```

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::{ClaimsError, DecodeError, Error, JweError};
use crate::json;
use crate::jwe::{self, Decrypter, Encrypter, JweHeader};
use crate::jws::{typ_matches, Header, JwsHeader, SignaturePolicy, Signer, Verified, Verifier};

/// The source of "now", in seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock stopped at a given time, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0
    }
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names `who`.
    pub fn contains(&self, who: &str) -> bool {
        match self {
            Audience::One(a) => a == who,
            Audience::Many(list) => list.iter().any(|a| a == who),
        }
    }
}

/// RFC 7519 §2: a NumericDate may be non-integer; whole seconds are kept.
/// Values beyond ±10^15 s (about 30 million years) are refused.
fn whole_seconds(f: f64) -> Option<i64> {
    (f.is_finite() && f.abs() < 1e15).then(|| f.floor() as i64)
}

fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<f64>::deserialize(d)? {
        None => Ok(None),
        Some(f) => whole_seconds(f)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("NumericDate out of range")),
    }
}

/// The registered claims plus typed custom claims `T`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims<T> {
    /// `iss`
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iss: Option<String>,
    /// `sub`
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sub: Option<String>,
    /// `aud`
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub aud: Option<Audience>,
    /// `exp`, seconds since the epoch.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "numeric_date"
    )]
    pub exp: Option<i64>,
    /// `nbf`, seconds since the epoch.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "numeric_date"
    )]
    pub nbf: Option<i64>,
    /// `iat`, seconds since the epoch.
    #[serde(
        skip_serializing_if = "Option::is_none",
        default,
        deserialize_with = "numeric_date"
    )]
    pub iat: Option<i64>,
    /// `jti`
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jti: Option<String>,
    /// The application's own claims.
    #[serde(flatten)]
    pub custom: T,
}

impl<T> Claims<T> {
    /// Claims with only the custom part set.
    pub fn new(custom: T) -> Self {
        Claims {
            iss: None,
            sub: None,
            aud: None,
            exp: None,
            nbf: None,
            iat: None,
            jti: None,
            custom,
        }
    }
    /// Sets `iss`.
    pub fn issuer(mut self, iss: &str) -> Self {
        self.iss = Some(iss.into());
        self
    }
    /// Sets `sub`.
    pub fn subject(mut self, sub: &str) -> Self {
        self.sub = Some(sub.into());
        self
    }
    /// Sets `aud` to one audience.
    pub fn audience(mut self, aud: &str) -> Self {
        self.aud = Some(Audience::One(aud.into()));
        self
    }
    /// Sets `aud` to several audiences.
    pub fn audiences(mut self, aud: &[&str]) -> Self {
        self.aud = Some(Audience::Many(
            aud.iter().map(|a| (*a).to_owned()).collect(),
        ));
        self
    }
    /// Sets `exp`.
    pub fn expires_at(mut self, exp: i64) -> Self {
        self.exp = Some(exp);
        self
    }
    /// Sets `nbf`.
    pub fn not_before(mut self, nbf: i64) -> Self {
        self.nbf = Some(nbf);
        self
    }
    /// Sets `iat`.
    pub fn issued_at(mut self, iat: i64) -> Self {
        self.iat = Some(iat);
        self
    }
    /// Sets `jti`.
    pub fn jwt_id(mut self, jti: &str) -> Self {
        self.jti = Some(jti.into());
        self
    }
}

/// What a JWT must satisfy beyond its signature.
#[derive(Debug, Clone)]
pub struct Validation {
    issuers: Vec<String>,
    audiences: Vec<String>,
    required: Vec<String>,
    leeway: i64,
    max_age: Option<i64>,
    typ: Option<String>,
    sole_audience: bool,
}

impl Default for Validation {
    fn default() -> Self {
        Validation {
            issuers: Vec::new(),
            audiences: Vec::new(),
            required: vec!["exp".into()],
            leeway: 60,
            max_age: None,
            typ: None,
            sole_audience: false,
        }
    }
}

impl Validation {
    /// Defaults: `exp` required, 60 s leeway, no issuer or audience expected
    /// (a token that carries `aud` is then refused, per RFC 7519 §4.1.3).
    pub fn new() -> Self {
        Self::default()
    }
    /// Accepts this issuer (call again to accept several); `iss` becomes required.
    pub fn issuer(mut self, iss: &str) -> Self {
        self.issuers.push(iss.into());
        self
    }
    /// Accepts this audience (call again for several); `aud` becomes required.
    pub fn audience(mut self, aud: &str) -> Self {
        self.audiences.push(aud.into());
        self
    }
    /// Refuses a token whose `aud` also names anyone not accepted here.
    ///
    /// RFC 7519 §4.1.3 accepts `["ours", "theirs"]`; a token good at two
    /// services lets either of them replay it at the other. Issuers that mint
    /// one audience per token (tessera does) lose nothing by refusing them.
    pub fn sole_audience(mut self) -> Self {
        self.sole_audience = true;
        self
    }
    /// Requires a claim to be present.
    pub fn require(mut self, claim: &str) -> Self {
        if !self.required.iter().any(|c| c == claim) {
            self.required.push(claim.into());
        }
        self
    }
    /// Stops requiring `exp` (tokens without expiry are then accepted).
    pub fn allow_missing_exp(mut self) -> Self {
        self.required.retain(|c| c != "exp");
        self
    }
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub fn leeway(mut self, seconds: u32) -> Self {
        self.leeway = i64::from(seconds);
        self
    }
    /// Refuses tokens whose `iat` is older than this; `iat` becomes required.
    pub fn max_age(mut self, seconds: u32) -> Self {
        self.max_age = Some(i64::from(seconds));
        self.require("iat")
    }
    /// Requires the header `typ` (RFC 8725 §3.11, RFC 9068 `at+jwt`).
    pub fn typ(mut self, typ: &str) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Checks the claims object `claims` and the header's `typ` at time `now`.
    pub fn validate(
        &self,
        header: &Header,
        claims: &Map<String, Value>,
        now: i64,
    ) -> Result<(), Error> {
        let (registered, rest) = Registered::take(claims.clone())?;
        self.check(header, &registered, &rest, now)
    }

    fn check(
        &self,
        header: &Header,
        claims: &Registered,
        rest: &Map<String, Value>,
        now: i64,
    ) -> Result<(), Error> {
        if !header.b64() {
            // RFC 7797 §7: a JWT's payload is always base64url-encoded; an
            // unencoded one is a JWS of something else, never claims.
            return Err(crate::error::JwsError::InvalidHeader(
                "a JWT must not use an unencoded payload (b64: false, RFC 7797 §7)",
            )
            .into());
        }
        if let Some(expected) = &self.typ {
            if !header
                .typ()
                .is_some_and(|t| crate::jws::typ_matches(t, expected))
            {
                return Err(crate::error::JwsError::UnexpectedType.into());
            }
        }
        for name in &self.required {
            if !claims.has(name).unwrap_or_else(|| rest.contains_key(name)) {
                return Err(ClaimsError::Missing(name.clone()).into());
            }
        }
        let leeway = self.leeway;
        if let Some(exp) = claims.exp {
            if now >= exp.saturating_add(leeway) {
                return Err(ClaimsError::Expired.into());
            }
        }
        if let Some(nbf) = claims.nbf {
            if now.saturating_add(leeway) < nbf {
                return Err(ClaimsError::NotYetValid.into());
            }
        }
        if let Some(iat) = claims.iat {
            if iat > now.saturating_add(leeway) {
                return Err(ClaimsError::IssuedInFuture.into());
            }
            if let Some(max_age) = self.max_age {
                if now.saturating_sub(iat) > max_age.saturating_add(leeway) {
                    return Err(ClaimsError::TooOld.into());
                }
            }
        }
        if !self.issuers.is_empty() {
            match &claims.iss {
                None => return Err(ClaimsError::Missing("iss".into()).into()),
                Some(iss) if !self.issuers.iter().any(|i| i == iss) => {
                    return Err(ClaimsError::WrongIssuer.into())
                }
                Some(_) => {}
            }
        }
        match &claims.aud {
            None if self.audiences.is_empty() => Ok(()),
            None => Err(ClaimsError::Missing("aud".into()).into()),
            Some(aud) if self.sole_audience && !self.only_accepted(aud) => {
                Err(ClaimsError::WrongAudience.into())
            }
            Some(aud) if self.audiences.iter().any(|a| aud.contains(a)) => Ok(()),
            Some(_) => Err(ClaimsError::WrongAudience.into()),
        }
    }
}

impl Validation {
    /// Whether every audience `aud` names is one this validation accepts.
    fn only_accepted(&self, aud: &Audience) -> bool {
        let accepted = |a: &String| self.audiences.iter().any(|x| x == a);
        match aud {
            Audience::One(a) => accepted(a),
            Audience::Many(list) => !list.is_empty() && list.iter().all(accepted),
        }
    }
}

/// The registered claims, taken out of a claims object with their types
/// checked (RFC 7519 §4.1); everything else stays for the custom part.
#[derive(Default)]
struct Registered {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

impl Registered {
    /// Splits `map` into the registered claims and the rest, in one pass.
    fn take(map: Map<String, Value>) -> Result<(Registered, Map<String, Value>), Error> {
        fn text(v: Value, name: &str) -> Result<String, Error> {
            match v {
                Value::String(s) => Ok(s),
                _ => Err(ClaimsError::Invalid(name.into()).into()),
            }
        }
        fn date(v: Value, name: &str) -> Result<i64, Error> {
            v.as_f64()
                .and_then(whole_seconds)
                .ok_or_else(|| ClaimsError::Invalid(name.into()).into())
        }
        let mut r = Registered::default();
        let mut rest = Map::new();
        for (name, v) in map {
            match name.as_str() {
                "iss" => r.iss = Some(text(v, "iss")?),
                "sub" => r.sub = Some(text(v, "sub")?),
                "jti" => r.jti = Some(text(v, "jti")?),
                "exp" => r.exp = Some(date(v, "exp")?),
                "nbf" => r.nbf = Some(date(v, "nbf")?),
                "iat" => r.iat = Some(date(v, "iat")?),
                "aud" => {
                    r.aud = Some(match v {
                        Value::String(a) => Audience::One(a),
                        Value::Array(items) => Audience::Many(
                            items
                                .into_iter()
                                .map(|item| text(item, "aud"))
                                .collect::<Result<_, _>>()?,
                        ),
                        _ => return Err(ClaimsError::Invalid("aud".into()).into()),
                    })
                }
                _ => {
                    rest.insert(name, v);
                }
            }
        }
        Ok((r, rest))
    }

    /// Whether a registered claim is present; `None` for other names.
    fn has(&self, name: &str) -> Option<bool> {
        Some(match name {
            "iss" => self.iss.is_some(),
            "sub" => self.sub.is_some(),
            "aud" => self.aud.is_some(),
            "exp" => self.exp.is_some(),
            "nbf" => self.nbf.is_some(),
            "iat" => self.iat.is_some(),
            "jti" => self.jti.is_some(),
            _ => return None,
        })
    }
}

/// A JWT whose signature and claims have both been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedJwt<T> {
    header: Header,
    claims: Claims<T>,
}

impl<T> VerifiedJwt<T> {
    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The claims.
    pub fn claims(&self) -> &Claims<T> {
        &self.claims
    }
    /// The claims, owned.
    pub fn into_claims(self) -> Claims<T> {
        self.claims
    }
}

/// Signs `claims` as a compact JWT. The header gets `typ: JWT` unless it sets its own.
pub fn sign<T: Serialize>(
    signer: &Signer,
    header: &JwsHeader,
    claims: &Claims<T>,
) -> Result<String, Error> {
    let mut payload = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut payload, TopLevelNames::default());
    claims
        .serialize(&mut ser)
        .map_err(|e| match e.io_error_kind() {
            // A custom claim named like a registered one, written twice.
            Some(std::io::ErrorKind::InvalidData) => {
                Error::from(ClaimsError::Invalid(e.to_string()))
            }
            _ => Error::from(DecodeError::Json {
                what: "claims",
                reason: e.to_string(),
            }),
        })?;
    if header.is_unencoded() {
        return Err(crate::error::JwsError::InvalidHeader(
            "a JWT must not use an unencoded payload (b64: false, RFC 7797 §7)",
        )
        .into());
    }
    signer.sign_compact_with(&signer.protect_typed(header, "JWT"), &payload)
}

/// Compact JSON that refuses to write a top-level member name twice: a
/// custom claim that repeats a registered one (`exp` in `T` and in
/// [`Claims::exp`]) would otherwise make a token that parsers read
/// differently, and that tessera itself refuses.
struct TopLevelNames {
    depth: usize,
    in_name: bool,
    /// Every top-level name so far, end to end; `ends` marks where each stops.
    names: String,
    ends: Vec<usize>,
}

impl Default for TopLevelNames {
    fn default() -> Self {
        TopLevelNames {
            depth: 0,
            in_name: false,
            names: String::with_capacity(128),
            ends: Vec::with_capacity(16),
        }
    }
}

impl serde_json::ser::Formatter for TopLevelNames {
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        serde_json::ser::CompactFormatter.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        serde_json::ser::CompactFormatter.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.in_name = self.depth == 1;
        serde_json::ser::CompactFormatter.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        if self.in_name {
            self.in_name = false;
            let start = self.ends.last().copied().unwrap_or(0);
            let name = self.names.get(start..).unwrap_or_default();
            let mut previous = 0;
            for &end in &self.ends {
                if self.names.get(previous..end) == Some(name) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("claim {name:?} is written twice"),
                    ));
                }
                previous = end;
            }
            self.ends.push(self.names.len());
        }
        serde_json::ser::CompactFormatter.end_object_key(w)
    }
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if self.in_name {
            self.names.push_str(fragment);
        }
        serde_json::ser::CompactFormatter.write_string_fragment(w, fragment)
    }
    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        use serde_json::ser::CharEscape as E;
        if self.in_name {
            self.names.push(match escape {
                E::Quote => '"',
                E::ReverseSolidus => '\\',
                E::Solidus => '/',
                E::Backspace => '\u{8}',
                E::FormFeed => '\u{c}',
                E::LineFeed => '\n',
                E::CarriageReturn => '\r',
                E::Tab => '\t',
                E::AsciiControl(b) => char::from(b),
            });
        }
        serde_json::ser::CompactFormatter.write_char_escape(w, escape)
    }
}

/// Verifies a compact JWT: signature (with `verifier`), then claims (with
/// `validation` at `clock`'s time), then converts the claims to `T`.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    verifier: &Verifier,
    validation: &Validation,
    clock: &dyn Clock,
) -> Result<VerifiedJwt<T>, Error> {
    validate_verified(verifier.verify_compact(token)?, verifier, validation, clock)
}

/// Verifies a JWT carried in a flattened or general JSON JWS (RFC 7515
/// §7.2) — not a JWT in RFC 7519's sense, which is always compact, but the
/// same claims under a JSON serialization. `policy` says how many
/// signatures must verify; the claims are then validated as by [`verify`],
/// with the header of the first signature that verified.
pub fn verify_json<T: DeserializeOwned>(
    input: &str,
    verifier: &Verifier,
    policy: SignaturePolicy,
    validation: &Validation,
    clock: &dyn Clock,
) -> Result<VerifiedJwt<T>, Error> {
    validate_verified(
        verifier.verify_json(input, policy)?,
        verifier,
        validation,
        clock,
    )
}

fn validate_verified<T: DeserializeOwned>(
    verified: Verified,
    verifier: &Verifier,
    validation: &Validation,
    clock: &dyn Clock,
) -> Result<VerifiedJwt<T>, Error> {
    let limits = verifier.limits();
    let claims = json::parse_object(verified.payload(), limits, "claims")?;
    let (r, rest) = Registered::take(claims)?;
    validation.check(verified.header(), &r, &rest, clock.now())?;
    let claims = Claims {
        iss: r.iss,
        sub: r.sub,
        aud: r.aud,
        exp: r.exp,
        nbf: r.nbf,
        iat: r.iat,
        jti: r.jti,
        // serde's message could quote a claim value: keep it out of the error.
        custom: T::deserialize(Value::Object(rest))
            .map_err(|_| ClaimsError::Invalid("claims do not fit the expected type".into()))?,
    };
    let header = verified.signatures.into_iter().next().map(|s| s.header);
    Ok(VerifiedJwt {
        header: header.ok_or(crate::error::JwsError::SignatureInvalid)?,
        claims,
    })
}

/// Signs `claims` as a JWT, then encrypts that JWT (RFC 7519 §5.2, §11.2:
/// sign, then encrypt), producing a compact JWE with `cty: "JWT"`.
///
/// ```
/// use tessera_jose::jwa::{JweAlgorithm, JweEncryption, JwsAlgorithm};
/// use tessera_jose::jwe::{Decrypter, Encrypter, JweHeader};
/// use tessera_jose::jwk::Jwk;
/// use tessera_jose::jws::{JwsHeader, Signer, Verifier};
/// use tessera_jose::jwt::{self, Claims, FixedClock, Validation};
///
/// let signing = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
/// let (alg, enc) = (JweAlgorithm::RSA_OAEP_256, JweEncryption::A256GCM);
/// let sealing = Jwk::generate_for_encryption(alg, enc).unwrap();
///
/// let claims = Claims::new(()).subject("user-1").audience("partner").expires_at(2_000);
/// let token = jwt::sign_and_encrypt(
///     &Signer::new(&signing, JwsAlgorithm::ES256).unwrap(),
///     &JwsHeader::new(),
///     &claims,
///     &Encrypter::new(&sealing.to_public().unwrap(), alg, enc).unwrap(),
///     &JweHeader::new(),
/// ).unwrap();
///
/// let decrypter = Decrypter::builder().key(&sealing, &[(alg, enc)]).unwrap().build().unwrap();
/// let verifier = Verifier::builder().key(&signing, &[JwsAlgorithm::ES256]).unwrap().build().unwrap();
/// let nested = jwt::decrypt_and_verify::<serde_json::Value>(
///     &token, &decrypter, &verifier, &Validation::new().audience("partner"), &FixedClock(1_000),
/// ).unwrap();
/// assert_eq!(nested.jwt().claims().sub.as_deref(), Some("user-1"));
/// assert_eq!(nested.outer_header().cty(), Some("JWT"));
/// ```
pub fn sign_and_encrypt<T: Serialize>(
    signer: &Signer,
    header: &JwsHeader,
    claims: &Claims<T>,
    encrypter: &Encrypter,
    jwe_header: &JweHeader,
) -> Result<String, Error> {
    let inner = zeroize::Zeroizing::new(sign(signer, header, claims)?);
    encrypter.encrypt_compact(&jwe_header.clone().cty("JWT"), inner.as_bytes())
}

/// A nested JWT that decrypted, and whose inner JWT verified and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NestedJwt<T> {
    outer: jwe::Header,
    jwt: VerifiedJwt<T>,
}

impl<T> NestedJwt<T> {
    /// The JWE header.
    pub fn outer_header(&self) -> &jwe::Header {
        &self.outer
    }
    /// The inner, verified JWT.
    pub fn jwt(&self) -> &VerifiedJwt<T> {
        &self.jwt
    }
    /// The inner JWT, owned.
    pub fn into_jwt(self) -> VerifiedJwt<T> {
        self.jwt
    }
}

/// Decrypts a nested JWT with `decrypter`, then demands that what is inside
/// be a JWS that verifies under `verifier` and whose claims pass
/// `validation`. The JWE must say `cty: "JWT"` (RFC 7519 §5.2); an
/// encrypted-but-unsigned token (claims straight inside the JWE) is refused
/// with `ERR_JWE_NOT_NESTED`, as is a JWE inside the JWE. The outer JWE may
/// be compact or JSON ([`Decrypter::decrypt`]); the inner JWT is compact.
pub fn decrypt_and_verify<T: DeserializeOwned>(
    token: &str,
    decrypter: &Decrypter,
    verifier: &Verifier,
    validation: &Validation,
    clock: &dyn Clock,
) -> Result<NestedJwt<T>, Error> {
    let opened = decrypter.decrypt(token)?;
    if !opened.header().cty().is_some_and(|c| typ_matches(c, "JWT")) {
        return Err(JweError::NotNested.into());
    }
    let inner = std::str::from_utf8(opened.plaintext()).map_err(|_| JweError::NotNested)?;
    if inner.split('.').count() != 3 {
        return Err(JweError::NotNested.into());
    }
    let jwt = verify(inner, verifier, validation, clock)?;
    Ok(NestedJwt {
        outer: opened.header().clone(),
        jwt,
    })
}
