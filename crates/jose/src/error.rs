//! The one error type of tessera-jose.
//!
//! [`Error`] is made of one sub-enum per area. Every variant has a stable
//! [`Error::code`] that callers can switch on (`"ERR_JWS_SIGNATURE_INVALID"`,
//! `"ERR_JWT_EXPIRED"`, …). Signature failures are deliberately uninformative:
//! they never say which byte or which key was wrong, and no error ever carries
//! secret material.
//!
//! ```
//! use tessera_jose::jwa::JwsAlgorithm;
//! use tessera_jose::jwk::Jwk;
//! use tessera_jose::jws::Verifier;
//!
//! let key = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
//! let verifier = Verifier::builder().key(&key, &[JwsAlgorithm::ES256]).unwrap().build().unwrap();
//! let err = verifier.verify_compact("eyJhbGciOiJub25lIn0.e30.").unwrap_err();
//! match err.code() {
//!     "ERR_JWS_UNSUPPORTED_ALG" => {} // `none`: never an algorithm here
//!     other => panic!("unexpected {other}"),
//! }
//! ```

use thiserror::Error as ThisError;

/// Everything that can go wrong in tessera-jose.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum Error {
    /// Malformed input: base64url, JSON, DER or PEM, or an input over a limit.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A key was malformed, too weak, or used for something it may not do.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A JWS was malformed or did not verify.
    #[error(transparent)]
    Jws(#[from] JwsError),
    /// A JWE was malformed or did not decrypt.
    #[error(transparent)]
    Jwe(#[from] JweError),
    /// A JWT's claims did not pass validation.
    #[error(transparent)]
    Claims(#[from] ClaimsError),
    /// The underlying cryptographic library failed (for example, no randomness).
    #[error("cryptographic operation failed")]
    Crypto,
}

/// Malformed input.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not strict base64url (RFC 4648 §5) without padding.
    #[error("invalid base64url in {0}")]
    Base64(&'static str),
    /// Not valid JSON, or JSON of the wrong shape.
    #[error("invalid JSON in {what}: {reason}")]
    Json {
        /// Which part of the input.
        what: &'static str,
        /// What the parser said (never contains input bytes beyond a position).
        reason: String,
    },
    /// A JSON object repeats a member name (RFC 7515 §5.2, RFC 7519 §4).
    #[error("duplicate member {member:?} in {what}")]
    DuplicateMember {
        /// Which part of the input.
        what: &'static str,
        /// The repeated name.
        member: String,
    },
    /// JSON nested deeper than the configured limit.
    #[error("JSON in {0} is nested too deeply")]
    TooDeep(&'static str),
    /// An input is larger than the configured limit.
    #[error("{what} is {actual} bytes, over the limit of {limit}")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// Its size.
        actual: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Not valid DER or PEM.
    #[error("invalid {0} encoding")]
    Der(&'static str),
    /// The input is not UTF-8 where UTF-8 is required.
    #[error("{0} is not valid UTF-8")]
    Utf8(&'static str),
}

/// A key problem.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum KeyError {
    /// A JWK is missing a required member or has one of the wrong form.
    #[error("invalid JWK: {}", describe_member(.0))]
    InvalidJwk(&'static str),
    /// The `kty` or `crv` is not one tessera supports.
    #[error("unsupported key type or curve: {0}")]
    Unsupported(String),
    /// The key is too small for its use (RSA under 2048 bits, HMAC secret shorter than the hash).
    #[error("key too weak: {0}")]
    TooWeak(&'static str),
    /// The key material is inconsistent (private part does not match public part, point not on curve, …).
    #[error("key material rejected")]
    Rejected,
    /// The key type cannot serve this algorithm (e.g. an RSA key asked to act as an HMAC secret).
    #[error("a {kty} key cannot be used with {alg}")]
    WrongKeyType {
        /// The key's `kty` (and curve, when it has one).
        kty: String,
        /// The algorithm asked for.
        alg: &'static str,
    },
    /// The key's `alg` member names a different algorithm.
    #[error("the key is bound to {key_alg:?}, not {alg}")]
    AlgorithmMismatch {
        /// The key's own `alg`.
        key_alg: String,
        /// The algorithm asked for.
        alg: &'static str,
    },
    /// The key's `use` or `key_ops` forbid this operation.
    #[error("the key's use/key_ops forbid {0}")]
    OperationNotPermitted(&'static str),
    /// A private key is needed and this is a public key.
    #[error("a private key is required")]
    NotPrivate,
    /// A verifier or key set was built with nothing in it, or an empty algorithm list.
    #[error("empty key set or algorithm list")]
    Empty,
    /// A symmetric key's length is not the one the algorithm needs (an
    /// A128KW key is 16 bytes, a `dir` key for A256GCM is 32, …).
    #[error("the key has the wrong length for {0}")]
    WrongSize(&'static str),
}

/// `y` → "member `y` is missing or malformed"; a sentence stays as it is.
fn describe_member(what: &str) -> std::borrow::Cow<'_, str> {
    if what.contains(' ') {
        what.into()
    } else {
        format!("member `{what}` is missing or malformed").into()
    }
}

/// A JWS problem.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum JwsError {
    /// The serialization is not well-formed (wrong number of parts, missing members, …).
    #[error("malformed JWS: {0}")]
    Malformed(&'static str),
    /// The header is missing `alg`, or names an algorithm tessera does not implement (`none` among them).
    #[error("unsupported or missing algorithm")]
    UnsupportedAlgorithm,
    /// The header's algorithm is not one the verifier allows.
    #[error("algorithm {0} is not allowed by this verifier")]
    AlgorithmNotAllowed(&'static str),
    /// The `kid` names no key of the verifier.
    #[error("no key of this verifier has that kid")]
    UnknownKid,
    /// No key of the verifier can serve the header's algorithm.
    #[error("no suitable key")]
    NoSuitableKey,
    /// The signature did not verify.
    #[error("signature verification failed")]
    SignatureInvalid,
    /// A `crit` extension is not understood, or `crit` is malformed (RFC 7515 §4.1.11).
    #[error("critical header parameter not understood or crit malformed")]
    Crit,
    /// A header parameter is invalid or misplaced (e.g. `b64` without `crit`, a name in both headers).
    #[error("invalid header: {0}")]
    InvalidHeader(&'static str),
    /// The `typ` header is missing or not the one expected (RFC 8725 §3.11).
    #[error("unexpected typ")]
    UnexpectedType,
    /// More signatures or header members than the limits allow.
    #[error("too many signatures")]
    TooManySignatures,
}

/// A JWE problem. Every failure to decrypt (wrong key, tampered ciphertext,
/// IV, tag, AAD, header or encrypted key, bad padding) is the one
/// uninformative [`JweError::DecryptionFailed`].
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum JweError {
    /// The serialization is not well-formed (wrong number of parts, missing members, …).
    #[error("malformed JWE: {0}")]
    Malformed(&'static str),
    /// The header is missing `alg` or `enc`, or names an algorithm tessera does not implement.
    #[error("unsupported or missing alg/enc")]
    UnsupportedAlgorithm,
    /// The `alg`/`enc` pair is not one the decrypter allows, or one tessera
    /// never uses: `RSA1_5`, refused for encryption and decryption alike.
    #[error("{0} is not allowed here")]
    AlgorithmNotAllowed(&'static str),
    /// The `kid` names no key of the decrypter.
    #[error("no key of this decrypter has that kid")]
    UnknownKid,
    /// No key of the decrypter can serve the header's `alg`/`enc`.
    #[error("no suitable key")]
    NoSuitableKey,
    /// Decryption failed. Deliberately says nothing more.
    #[error("decryption failed")]
    DecryptionFailed,
    /// A `crit` extension is not understood, or `crit` is malformed (RFC 7516 §4.1.13).
    #[error("critical header parameter not understood or crit malformed")]
    Crit,
    /// A header parameter is invalid or misplaced.
    #[error("invalid header: {0}")]
    InvalidHeader(&'static str),
    /// The `typ` header is missing or not the one expected.
    #[error("unexpected typ")]
    UnexpectedType,
    /// More recipients than the limits allow.
    #[error("too many recipients")]
    TooManyRecipients,
    /// The JWE is compressed (`zip`) and the decrypter does not accept compression.
    #[error("compressed JWE refused (zip not enabled)")]
    CompressionNotAllowed,
    /// A compressed plaintext inflates past the decrypter's cap; inflating
    /// stopped there.
    #[error("decompressed plaintext exceeds the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The cap in force.
        limit: usize,
    },
    /// The ECDH-ES ephemeral public key (`epk`) is malformed, not on the
    /// curve, or not on the recipient key's curve (invalid-curve attack).
    #[error("ephemeral public key rejected")]
    EphemeralKeyRejected,
    /// PBES2 `p2c` is missing, zero, or above the decrypter's bound.
    #[error("PBES2 iteration count {p2c} is not between 1 and {limit}")]
    Pbes2Count {
        /// The count in the header (0 when missing or not a number).
        p2c: u64,
        /// The bound in force.
        limit: u32,
    },
    /// PBES2 `p2s` is missing or shorter than 8 bytes.
    #[error("PBES2 salt missing or shorter than 8 bytes")]
    Pbes2Salt,
    /// Nested JWT expected (`cty: JWT` with a signed JWT inside), and this is not one.
    #[error("not a nested (signed, then encrypted) JWT")]
    NotNested,
}

/// A JWT claims problem (RFC 7519, RFC 8725).
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum ClaimsError {
    /// `exp` is in the past (beyond leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is in the future (beyond leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// `iat` is older than the maximum age.
    #[error("token too old")]
    TooOld,
    /// `iss` is not the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is absent.
    #[error("missing required claim {0}")]
    Missing(String),
    /// A claim has the wrong type (e.g. `exp` not a number).
    #[error("invalid claim: {0}")]
    Invalid(String),
}

impl Error {
    /// A stable, machine-readable code for this error.
    ///
    /// ```
    /// use tessera_jose::{Error, error::ClaimsError};
    /// assert_eq!(Error::from(ClaimsError::Expired).code(), "ERR_JWT_EXPIRED");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Error::Decode(e) => match e {
                DecodeError::Base64(_) => "ERR_BASE64",
                DecodeError::Json { .. } => "ERR_JSON",
                DecodeError::DuplicateMember { .. } => "ERR_JSON_DUPLICATE_MEMBER",
                DecodeError::TooDeep(_) => "ERR_JSON_TOO_DEEP",
                DecodeError::TooLarge { .. } => "ERR_TOO_LARGE",
                DecodeError::Der(_) => "ERR_DER",
                DecodeError::Utf8(_) => "ERR_UTF8",
            },
            Error::Key(e) => match e {
                KeyError::InvalidJwk(_) => "ERR_JWK_INVALID",
                KeyError::Unsupported(_) => "ERR_JWK_UNSUPPORTED",
                KeyError::TooWeak(_) => "ERR_KEY_TOO_WEAK",
                KeyError::Rejected => "ERR_KEY_REJECTED",
                KeyError::WrongKeyType { .. } => "ERR_KEY_WRONG_TYPE",
                KeyError::AlgorithmMismatch { .. } => "ERR_KEY_ALG_MISMATCH",
                KeyError::OperationNotPermitted(_) => "ERR_KEY_OPERATION_NOT_PERMITTED",
                KeyError::NotPrivate => "ERR_KEY_NOT_PRIVATE",
                KeyError::Empty => "ERR_KEY_SET_EMPTY",
                KeyError::WrongSize(_) => "ERR_KEY_WRONG_SIZE",
            },
            Error::Jws(e) => match e {
                JwsError::Malformed(_) => "ERR_JWS_MALFORMED",
                JwsError::UnsupportedAlgorithm => "ERR_JWS_UNSUPPORTED_ALG",
                JwsError::AlgorithmNotAllowed(_) => "ERR_JWS_ALG_NOT_ALLOWED",
                JwsError::UnknownKid => "ERR_JWS_UNKNOWN_KID",
                JwsError::NoSuitableKey => "ERR_JWS_NO_SUITABLE_KEY",
                JwsError::SignatureInvalid => "ERR_JWS_SIGNATURE_INVALID",
                JwsError::Crit => "ERR_JWS_CRIT",
                JwsError::InvalidHeader(_) => "ERR_JWS_INVALID_HEADER",
                JwsError::UnexpectedType => "ERR_JWS_UNEXPECTED_TYP",
                JwsError::TooManySignatures => "ERR_JWS_TOO_MANY_SIGNATURES",
            },
            Error::Jwe(e) => match e {
                JweError::Malformed(_) => "ERR_JWE_MALFORMED",
                JweError::UnsupportedAlgorithm => "ERR_JWE_UNSUPPORTED_ALG",
                JweError::AlgorithmNotAllowed(_) => "ERR_JWE_ALG_NOT_ALLOWED",
                JweError::UnknownKid => "ERR_JWE_UNKNOWN_KID",
                JweError::NoSuitableKey => "ERR_JWE_NO_SUITABLE_KEY",
                JweError::DecryptionFailed => "ERR_JWE_DECRYPTION_FAILED",
                JweError::Crit => "ERR_JWE_CRIT",
                JweError::InvalidHeader(_) => "ERR_JWE_INVALID_HEADER",
                JweError::UnexpectedType => "ERR_JWE_UNEXPECTED_TYP",
                JweError::TooManyRecipients => "ERR_JWE_TOO_MANY_RECIPIENTS",
                JweError::CompressionNotAllowed => "ERR_JWE_ZIP_NOT_ALLOWED",
                JweError::DecompressedTooLarge { .. } => "ERR_JWE_DECOMPRESSED_TOO_LARGE",
                JweError::EphemeralKeyRejected => "ERR_JWE_EPK_REJECTED",
                JweError::Pbes2Count { .. } => "ERR_JWE_PBES2_COUNT",
                JweError::Pbes2Salt => "ERR_JWE_PBES2_SALT",
                JweError::NotNested => "ERR_JWE_NOT_NESTED",
            },
            Error::Claims(e) => match e {
                ClaimsError::Expired => "ERR_JWT_EXPIRED",
                ClaimsError::NotYetValid => "ERR_JWT_NOT_YET_VALID",
                ClaimsError::IssuedInFuture => "ERR_JWT_IAT_IN_FUTURE",
                ClaimsError::TooOld => "ERR_JWT_TOO_OLD",
                ClaimsError::WrongIssuer => "ERR_JWT_WRONG_ISSUER",
                ClaimsError::WrongAudience => "ERR_JWT_WRONG_AUDIENCE",
                ClaimsError::Missing(_) => "ERR_JWT_CLAIM_MISSING",
                ClaimsError::Invalid(_) => "ERR_JWT_CLAIM_INVALID",
            },
            Error::Crypto => "ERR_CRYPTO",
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
