//! JSON Web Algorithms (RFC 7518 §3, RFC 8037, RFC 8812): one descriptor per
//! JWS algorithm; dispatch and tests read this table.
//!
//! There is no `none`: an unsecured JWS cannot be named, built or accepted.
//!
//! ```
//! use tessera_jose::jwa::JwsAlgorithm;
//! let alg: JwsAlgorithm = "ES256".parse().unwrap();
//! assert_eq!(alg.name(), "ES256");
//! assert!("none".parse::<JwsAlgorithm>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, JwsError};

/// An elliptic curve (RFC 7518 §6.2.1.1, RFC 8812 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcCurve {
    /// NIST P-256.
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521.
    P521,
    /// secp256k1 (RFC 8812).
    Secp256k1,
}

impl EcCurve {
    /// The JWK `crv` name.
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
            EcCurve::Secp256k1 => "secp256k1",
        }
    }
    /// Bytes in a coordinate or private scalar.
    pub fn coordinate_len(self) -> usize {
        match self {
            EcCurve::P256 | EcCurve::Secp256k1 => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => 66,
        }
    }
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [
            EcCurve::P256,
            EcCurve::P384,
            EcCurve::P521,
            EcCurve::Secp256k1,
        ]
        .into_iter()
        .find(|c| c.name() == name)
    }
}

/// An Octet Key Pair curve (RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OkpCurve {
    /// Ed25519 signatures.
    Ed25519,
    /// X25519 key agreement (JWE only).
    X25519,
}

impl OkpCurve {
    /// The JWK `crv` name.
    pub fn name(self) -> &'static str {
        match self {
            OkpCurve::Ed25519 => "Ed25519",
            OkpCurve::X25519 => "X25519",
        }
    }
}

/// A hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

/// What kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// A symmetric secret (`kty: oct`) of at least `min_len` bytes.
    Oct {
        /// Minimum secret length (RFC 7518 §3.2: at least the hash size).
        min_len: usize,
    },
    /// RSA, at least 2048 bits.
    Rsa,
    /// EC on the given curve.
    Ec(EcCurve),
    /// OKP on the given curve.
    Okp(OkpCurve),
}

/// The signature scheme within a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// HMAC.
    Hmac,
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1,
    /// RSASSA-PSS, MGF1 with the same hash, salt length = hash length.
    RsaPss,
    /// ECDSA, signature as fixed-length R || S.
    Ecdsa,
    /// EdDSA.
    EdDsa,
}

/// One row of the algorithm table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmInfo {
    /// The algorithm.
    pub alg: JwsAlgorithm,
    /// Its registered `alg` name.
    pub name: &'static str,
    /// The key it needs.
    pub family: KeyFamily,
    /// The scheme.
    pub scheme: Scheme,
    /// The hash (EdDSA hashes internally; listed as SHA-512).
    pub hash: Hash,
}

macro_rules! algorithms {
    ($($v:ident $name:literal $fam:expr, $scheme:ident, $hash:ident;)*) => {
        /// A JWS algorithm. `none` deliberately has no variant.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(clippy::upper_case_acronyms)]
        pub enum JwsAlgorithm {
            $(#[doc = concat!("`", $name, "`")] $v,)*
        }
        /// The table: one descriptor per algorithm.
        pub const ALGORITHMS: &[AlgorithmInfo] = &[
            $(AlgorithmInfo { alg: JwsAlgorithm::$v, name: $name, family: $fam, scheme: Scheme::$scheme, hash: Hash::$hash },)*
        ];
        impl JwsAlgorithm {
            /// This algorithm's row of [`ALGORITHMS`].
            pub const fn info(self) -> &'static AlgorithmInfo {
                match self {
                    $(JwsAlgorithm::$v => &AlgorithmInfo { alg: JwsAlgorithm::$v, name: $name, family: $fam, scheme: Scheme::$scheme, hash: Hash::$hash },)*
                }
            }
        }
    };
}

algorithms! {
    HS256 "HS256" KeyFamily::Oct { min_len: 32 }, Hmac, Sha256;
    HS384 "HS384" KeyFamily::Oct { min_len: 48 }, Hmac, Sha384;
    HS512 "HS512" KeyFamily::Oct { min_len: 64 }, Hmac, Sha512;
    RS256 "RS256" KeyFamily::Rsa, RsaPkcs1, Sha256;
    RS384 "RS384" KeyFamily::Rsa, RsaPkcs1, Sha384;
    RS512 "RS512" KeyFamily::Rsa, RsaPkcs1, Sha512;
    PS256 "PS256" KeyFamily::Rsa, RsaPss, Sha256;
    PS384 "PS384" KeyFamily::Rsa, RsaPss, Sha384;
    PS512 "PS512" KeyFamily::Rsa, RsaPss, Sha512;
    ES256 "ES256" KeyFamily::Ec(EcCurve::P256), Ecdsa, Sha256;
    ES384 "ES384" KeyFamily::Ec(EcCurve::P384), Ecdsa, Sha384;
    ES512 "ES512" KeyFamily::Ec(EcCurve::P521), Ecdsa, Sha512;
    ES256K "ES256K" KeyFamily::Ec(EcCurve::Secp256k1), Ecdsa, Sha256;
    EdDSA "EdDSA" KeyFamily::Okp(OkpCurve::Ed25519), EdDsa, Sha512;
}

impl JwsAlgorithm {
    /// The registered name, as it appears in `alg`.
    pub const fn name(self) -> &'static str {
        self.info().name
    }
    /// Every algorithm, in table order.
    pub fn all() -> impl Iterator<Item = JwsAlgorithm> {
        ALGORITHMS.iter().map(|i| i.alg)
    }
    /// Whether this is an HMAC (symmetric) algorithm.
    pub fn is_symmetric(self) -> bool {
        matches!(self.info().family, KeyFamily::Oct { .. })
    }
}

impl fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for JwsAlgorithm {
    type Err = Error;
    /// Parses a registered name; `none` and anything unknown are refused.
    fn from_str(s: &str) -> Result<Self, Error> {
        ALGORITHMS
            .iter()
            .find(|i| i.name == s)
            .map(|i| i.alg)
            .ok_or(Error::Jws(JwsError::UnsupportedAlgorithm))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for info in ALGORITHMS {
            assert_eq!(info.alg.info(), info);
            assert_eq!(info.name.parse::<JwsAlgorithm>().unwrap(), info.alg);
            if let KeyFamily::Oct { min_len } = info.family {
                assert_eq!(min_len, info.hash.output_len());
            }
        }
        for bad in ["none", "None", "NONE", "hs256", "ES521", ""] {
            assert!(bad.parse::<JwsAlgorithm>().is_err());
        }
    }
}
