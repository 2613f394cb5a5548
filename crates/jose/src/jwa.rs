//! JSON Web Algorithms (RFC 7518, RFC 8037, RFC 8812): one descriptor per
//! JWS algorithm, and the JWE key-management (`alg`) and content-encryption
//! (`enc`) algorithms; dispatch and tests read these tables.
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

use crate::error::{Error, JweError, JwsError};

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

    /// The digest of `data` (e.g. RFC 9449's `ath`, the SHA-256 of an
    /// access token).
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        crate::crypto::digest(self, data)
    }

    /// The HMAC (RFC 2104) of `data` under `key` with this hash — for a
    /// value only its maker checks again, such as a stateless DPoP nonce.
    pub fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        crate::crypto::mac(self, key, data)
    }

    /// Whether `tag` is [`Hash::mac`] of `data` under `key`, compared in
    /// constant time.
    pub fn verify_mac(self, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
        crate::crypto::verify_mac(self, key, data, tag)
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

/// How a JWE key-management algorithm obtains the content encryption key
/// (RFC 7518 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyManagement {
    /// RSAES-PKCS1-v1_5: named so that a header naming it gets a clear
    /// refusal; tessera neither encrypts nor decrypts with it.
    RsaPkcs1,
    /// RSAES-OAEP, with the hash for both OAEP and MGF1 (`None` = SHA-1).
    RsaOaep(Option<Hash>),
    /// AES Key Wrap (RFC 3394) with a key-encryption key of this many bytes.
    AesKw(usize),
    /// AES-GCM key wrapping with a key-encryption key of this many bytes.
    AesGcmKw(usize),
    /// The shared symmetric key is the content encryption key.
    Direct,
    /// ECDH-ES; `Some(n)`: the agreed key wraps the CEK with an `n`-byte AES-KW
    /// key, `None`: the agreed key is the CEK.
    EcdhEs(Option<usize>),
    /// PBES2: PBKDF2 with HMAC-`Hash`, then AES-KW with a key of this many bytes.
    Pbes2(Hash, usize),
}

macro_rules! jwe_algorithms {
    ($($v:ident $name:literal $km:expr;)*) => {
        /// A JWE key-management algorithm (`alg`, RFC 7518 §4.1). `RSA1_5`
        /// is parsed, so that a token naming it is refused with
        /// `ERR_JWE_ALG_NOT_ALLOWED`, but no encrypter or decrypter takes it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        pub enum JweAlgorithm {
            $(#[doc = concat!("`", $name, "`")] $v,)*
        }
        impl JweAlgorithm {
            /// Every key-management algorithm, in RFC 7518 order.
            pub const ALL: &'static [JweAlgorithm] = &[$(JweAlgorithm::$v,)*];
            /// The registered name, as it appears in `alg`.
            pub const fn name(self) -> &'static str {
                match self { $(JweAlgorithm::$v => $name,)* }
            }
            /// How this algorithm obtains the content encryption key.
            pub const fn key_management(self) -> KeyManagement {
                match self { $(JweAlgorithm::$v => $km,)* }
            }
        }
    };
}

jwe_algorithms! {
    RSA1_5 "RSA1_5" KeyManagement::RsaPkcs1;
    RSA_OAEP "RSA-OAEP" KeyManagement::RsaOaep(None);
    RSA_OAEP_256 "RSA-OAEP-256" KeyManagement::RsaOaep(Some(Hash::Sha256));
    RSA_OAEP_384 "RSA-OAEP-384" KeyManagement::RsaOaep(Some(Hash::Sha384));
    RSA_OAEP_512 "RSA-OAEP-512" KeyManagement::RsaOaep(Some(Hash::Sha512));
    A128KW "A128KW" KeyManagement::AesKw(16);
    A192KW "A192KW" KeyManagement::AesKw(24);
    A256KW "A256KW" KeyManagement::AesKw(32);
    Dir "dir" KeyManagement::Direct;
    ECDH_ES "ECDH-ES" KeyManagement::EcdhEs(None);
    ECDH_ES_A128KW "ECDH-ES+A128KW" KeyManagement::EcdhEs(Some(16));
    ECDH_ES_A192KW "ECDH-ES+A192KW" KeyManagement::EcdhEs(Some(24));
    ECDH_ES_A256KW "ECDH-ES+A256KW" KeyManagement::EcdhEs(Some(32));
    A128GCMKW "A128GCMKW" KeyManagement::AesGcmKw(16);
    A192GCMKW "A192GCMKW" KeyManagement::AesGcmKw(24);
    A256GCMKW "A256GCMKW" KeyManagement::AesGcmKw(32);
    PBES2_HS256_A128KW "PBES2-HS256+A128KW" KeyManagement::Pbes2(Hash::Sha256, 16);
    PBES2_HS384_A192KW "PBES2-HS384+A192KW" KeyManagement::Pbes2(Hash::Sha384, 24);
    PBES2_HS512_A256KW "PBES2-HS512+A256KW" KeyManagement::Pbes2(Hash::Sha512, 32);
}

impl JweAlgorithm {
    /// Whether the algorithm itself decides the CEK (`dir`, `ECDH-ES`), so a
    /// JWE using it can have only one recipient.
    pub fn is_direct(self) -> bool {
        matches!(
            self.key_management(),
            KeyManagement::Direct | KeyManagement::EcdhEs(None)
        )
    }
}

impl fmt::Display for JweAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for JweAlgorithm {
    type Err = Error;
    /// Parses a registered name; anything unknown is refused.
    fn from_str(s: &str) -> Result<Self, Error> {
        JweAlgorithm::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or(Error::Jwe(JweError::UnsupportedAlgorithm))
    }
}

/// A JWE content-encryption algorithm (`enc`, RFC 7518 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum JweEncryption {
    /// `A128CBC-HS256`
    A128CBC_HS256,
    /// `A192CBC-HS384`
    A192CBC_HS384,
    /// `A256CBC-HS512`
    A256CBC_HS512,
    /// `A128GCM`
    A128GCM,
    /// `A192GCM`
    A192GCM,
    /// `A256GCM`
    A256GCM,
}

impl JweEncryption {
    /// Every content-encryption algorithm, in RFC 7518 order.
    pub const ALL: &'static [JweEncryption] = &[
        JweEncryption::A128CBC_HS256,
        JweEncryption::A192CBC_HS384,
        JweEncryption::A256CBC_HS512,
        JweEncryption::A128GCM,
        JweEncryption::A192GCM,
        JweEncryption::A256GCM,
    ];
    /// The registered name, as it appears in `enc`.
    pub const fn name(self) -> &'static str {
        match self {
            JweEncryption::A128CBC_HS256 => "A128CBC-HS256",
            JweEncryption::A192CBC_HS384 => "A192CBC-HS384",
            JweEncryption::A256CBC_HS512 => "A256CBC-HS512",
            JweEncryption::A128GCM => "A128GCM",
            JweEncryption::A192GCM => "A192GCM",
            JweEncryption::A256GCM => "A256GCM",
        }
    }
    /// The content encryption key length in bytes (for CBC-HMAC, MAC key
    /// and encryption key together).
    pub const fn key_len(self) -> usize {
        match self {
            JweEncryption::A128CBC_HS256 => 32,
            JweEncryption::A192CBC_HS384 => 48,
            JweEncryption::A256CBC_HS512 => 64,
            JweEncryption::A128GCM => 16,
            JweEncryption::A192GCM => 24,
            JweEncryption::A256GCM => 32,
        }
    }
    /// The initialization vector length in bytes.
    pub const fn iv_len(self) -> usize {
        if self.is_gcm() {
            12
        } else {
            16
        }
    }
    /// The authentication tag length in bytes (full length, never truncated).
    pub const fn tag_len(self) -> usize {
        match self {
            JweEncryption::A128CBC_HS256 => 16,
            JweEncryption::A192CBC_HS384 => 24,
            JweEncryption::A256CBC_HS512 => 32,
            _ => 16,
        }
    }
    /// Whether this is AES-GCM (otherwise AES-CBC with HMAC-SHA-2).
    pub const fn is_gcm(self) -> bool {
        matches!(
            self,
            JweEncryption::A128GCM | JweEncryption::A192GCM | JweEncryption::A256GCM
        )
    }
    /// For AES-CBC-HMAC, the HMAC hash.
    pub(crate) const fn mac_hash(self) -> Hash {
        match self {
            JweEncryption::A192CBC_HS384 => Hash::Sha384,
            JweEncryption::A256CBC_HS512 => Hash::Sha512,
            _ => Hash::Sha256,
        }
    }
}

impl fmt::Display for JweEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for JweEncryption {
    type Err = Error;
    /// Parses a registered name; anything unknown is refused.
    fn from_str(s: &str) -> Result<Self, Error> {
        JweEncryption::ALL
            .iter()
            .copied()
            .find(|e| e.name() == s)
            .ok_or(Error::Jwe(JweError::UnsupportedAlgorithm))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// RFC 4231 §4.3, test case 2 (a key shorter than the block).
    #[test]
    fn hmac_of_rfc_4231_test_case_2() {
        let data = b"what do ya want for nothing?";
        let want: [(Hash, &str); 3] = [
            (
                Hash::Sha256,
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                Hash::Sha384,
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
                 8e2240ca5e69e2c78b3239ecfab21649",
            ),
            (
                Hash::Sha512,
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
                 9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ),
        ];
        for (hash, hex) in want {
            let tag = hash.mac(b"Jefe", data);
            let got: String = tag.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(got, hex, "{hash:?}");
            assert!(hash.verify_mac(b"Jefe", data, &tag));
            let mut bad = tag.clone();
            *bad.first_mut().unwrap() ^= 1;
            assert!(!hash.verify_mac(b"Jefe", data, &bad));
            assert!(!hash.verify_mac(b"Jeff", data, &tag));
            assert!(!hash.verify_mac(b"Jefe", data, tag.split_last().unwrap().1));
        }
    }

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
        for alg in JweAlgorithm::ALL {
            assert_eq!(alg.name().parse::<JweAlgorithm>().unwrap(), *alg);
        }
        for enc in JweEncryption::ALL {
            assert_eq!(enc.name().parse::<JweEncryption>().unwrap(), *enc);
            if !enc.is_gcm() {
                assert_eq!(enc.tag_len() * 2, enc.key_len());
                assert_eq!(enc.mac_hash().output_len(), enc.key_len());
            }
        }
        for bad in ["none", "A128CBC-H256", "dir ", "RSA-OAEP-1", ""] {
            assert!(bad.parse::<JweAlgorithm>().is_err());
            assert!(bad.parse::<JweEncryption>().is_err());
        }
    }
}
