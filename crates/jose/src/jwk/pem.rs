//! PEM and DER import/export: PKCS#8 (RFC 5208/5958), SubjectPublicKeyInfo
//! (RFC 5280), PKCS#1 (RFC 8017) and SEC 1 EC private keys (RFC 5915).
//!
//! ```
//! use tessera_jose::jwk::{Jwk, KeyFormat};
//! use tessera_jose::jwa::EcCurve;
//!
//! let key = Jwk::generate_ec(EcCurve::P384).unwrap();
//! let pem = key.to_pem(KeyFormat::Pkcs8).unwrap();
//! assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
//! let back = Jwk::from_pem(&pem).unwrap();
//! assert_eq!(back.thumbprint(), key.thumbprint());
//! let spki = key.to_pem(KeyFormat::Spki).unwrap();
//! assert!(!Jwk::from_pem(&spki).unwrap().is_private());
//! ```

use zeroize::Zeroizing;

use super::{split_point, Jwk, Material, Secret};
use crate::crypto::{self, RsaCrt};
use crate::der::{self, Reader};
use crate::error::{DecodeError, Error, KeyError};
use crate::jwa::{EcCurve, OkpCurve};

/// A DER/PEM key encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// PKCS#8 `PrivateKeyInfo` (`PRIVATE KEY`), any private key.
    Pkcs8,
    /// X.509 `SubjectPublicKeyInfo` (`PUBLIC KEY`), any public key.
    Spki,
    /// PKCS#1 (`RSA PRIVATE KEY` / `RSA PUBLIC KEY`), RSA only.
    Pkcs1,
    /// SEC 1 / RFC 5915 (`EC PRIVATE KEY`), EC private keys only.
    Sec1,
}

/// Largest DER key accepted: an RSA-8192 private key is about 4.8 KB.
const MAX_ENCODED_KEY: usize = 16 * 1024;

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_K256: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_X25519: &[u8] = &[0x2b, 0x65, 0x6e];

fn bad(what: &'static str) -> Error {
    Error::Decode(DecodeError::Der(what))
}

fn curve_oid(c: EcCurve) -> &'static [u8] {
    match c {
        EcCurve::P256 => OID_P256,
        EcCurve::P384 => OID_P384,
        EcCurve::P521 => OID_P521,
        EcCurve::Secp256k1 => OID_K256,
    }
}

fn curve_from_oid(oid: &[u8]) -> Result<EcCurve, Error> {
    [
        EcCurve::P256,
        EcCurve::P384,
        EcCurve::P521,
        EcCurve::Secp256k1,
    ]
    .into_iter()
    .find(|c| curve_oid(*c) == oid)
    .ok_or_else(|| KeyError::Unsupported("EC curve OID".into()).into())
}

/// Left-pads a scalar to the curve's fixed length (RFC 5915 fixes it, but
/// some encoders strip leading zeros).
fn fixed_scalar(curve: EcCurve, d: &[u8]) -> Result<Secret, Error> {
    let len = curve.coordinate_len();
    if d.len() > len {
        return Err(bad("EC private key"));
    }
    let mut out = Zeroizing::new(vec![0u8; len - d.len()]);
    out.extend_from_slice(d);
    Ok(out)
}

/// An RFC 5915 ECPrivateKey, with the curve parameters, and the public key if given.
pub(crate) fn sec1_private_der(curve: EcCurve, d: &[u8], point: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    der::write(&mut body, der::TAG_INTEGER, &[1]);
    der::write(&mut body, der::TAG_OCTET_STRING, d);
    der::write(
        &mut body,
        0xa0,
        &der::element(der::TAG_OID, curve_oid(curve)),
    );
    if let Some(p) = point {
        der::write(&mut body, 0xa1, &der::bit_string(p));
    }
    der::element(der::TAG_SEQUENCE, &body)
}

fn algorithm_identifier(oid: &[u8], params: Option<&[u8]>) -> Vec<u8> {
    let mut body = der::element(der::TAG_OID, oid);
    if let Some(p) = params {
        body.extend_from_slice(p);
    }
    der::element(der::TAG_SEQUENCE, &body)
}

fn rsa_public_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    der::write_unsigned(&mut body, n);
    der::write_unsigned(&mut body, e);
    der::element(der::TAG_SEQUENCE, &body)
}

fn rsa_private_der(n: &[u8], e: &[u8], c: &RsaCrt) -> Zeroizing<Vec<u8>> {
    let mut body = Zeroizing::new(Vec::new());
    der::write(&mut body, der::TAG_INTEGER, &[0]);
    for v in [n, e, &c.d, &c.p, &c.q, &c.dp, &c.dq, &c.qi] {
        der::write_unsigned(&mut body, v);
    }
    Zeroizing::new(der::element(der::TAG_SEQUENCE, &body))
}

fn rsa_public_from_pkcs1(der: &[u8]) -> Result<Material, Error> {
    let mut outer = Reader::new(der);
    let mut seq = outer.sequence()?;
    let n = seq.unsigned()?.to_vec();
    let e = seq.unsigned()?.to_vec();
    seq.finish()?;
    outer.finish()?;
    Ok(Material::Rsa {
        n,
        e,
        private: None,
    })
}

fn rsa_from_pkcs1_private(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>, RsaCrt), Error> {
    let mut outer = Reader::new(der);
    let mut seq = outer.sequence()?;
    if seq.small_uint()? != 0 {
        return Err(KeyError::Unsupported("multi-prime RSA".into()).into());
    }
    let n = seq.unsigned()?.to_vec();
    let e = seq.unsigned()?.to_vec();
    let mut secret = || -> Result<Secret, Error> { Ok(Zeroizing::new(seq.unsigned()?.to_vec())) };
    let crt = RsaCrt {
        d: secret()?,
        p: secret()?,
        q: secret()?,
        dp: secret()?,
        dq: secret()?,
        qi: secret()?,
    };
    seq.finish()?;
    outer.finish()?;
    Ok((n, e, crt))
}

/// RSA components from a PKCS#8 document (used after generation).
pub(crate) fn rsa_parts_from_pkcs8(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>, RsaCrt), Error> {
    match pkcs8_parse(der)? {
        Material::Rsa {
            n,
            e,
            private: Some(crt),
        } => Ok((n, e, crt)),
        _ => Err(Error::Crypto),
    }
}

fn ec_private_from_sec1(der: &[u8], curve_hint: Option<EcCurve>) -> Result<Material, Error> {
    let mut outer = Reader::new(der);
    let mut seq = outer.sequence()?;
    if seq.small_uint()? != 1 {
        return Err(bad("EC private key"));
    }
    let d = seq.expect(der::TAG_OCTET_STRING)?;
    let mut curve = curve_hint;
    let mut point = None;
    if seq.peek_tag() == Some(0xa0) {
        let mut params = Reader::new(seq.expect(0xa0)?);
        let c = curve_from_oid(params.expect(der::TAG_OID)?)?;
        params.finish()?;
        if curve.is_some_and(|h| h != c) {
            return Err(bad("EC private key"));
        }
        curve = Some(c);
    }
    if seq.peek_tag() == Some(0xa1) {
        let mut p = Reader::new(seq.expect(0xa1)?);
        point = Some(p.bit_string()?.to_vec());
        p.finish()?;
    }
    seq.finish()?;
    outer.finish()?;
    let curve = curve.ok_or(bad("EC private key (no curve)"))?;
    let d = fixed_scalar(curve, d)?;
    let derived = crypto::ec_public_from_private(curve, &d)?;
    if point.is_some_and(|p| p != derived) {
        return Err(KeyError::Rejected.into());
    }
    let (x, y) = split_point(curve, &derived)?;
    Ok(Material::Ec {
        curve,
        x,
        y,
        d: Some(d),
    })
}

fn okp_private(curve: OkpCurve, inner: &[u8]) -> Result<Material, Error> {
    let mut r = Reader::new(inner);
    let seed = r.expect(der::TAG_OCTET_STRING)?;
    r.finish()?;
    if seed.len() != 32 {
        return Err(bad("OKP private key"));
    }
    let d = Zeroizing::new(seed.to_vec());
    let x = match curve {
        OkpCurve::Ed25519 => crypto::ed25519_public_from_seed(&d)?,
        OkpCurve::X25519 => crypto::x25519_public_from_private(&d)?,
    };
    Ok(Material::Okp {
        curve,
        x,
        d: Some(d),
    })
}

fn pkcs8_parse(der: &[u8]) -> Result<Material, Error> {
    let mut outer = Reader::new(der);
    let mut seq = outer.sequence()?;
    if seq.small_uint()? > 1 {
        return Err(bad("PKCS#8"));
    }
    let der::AlgorithmId { oid, params } = seq.algorithm_identifier()?;
    let private = seq.expect(der::TAG_OCTET_STRING)?;
    // Optional attributes [0] and public key [1] (RFC 5958) are ignored: the
    // public key is always derived from the private one.
    while !seq.is_empty() {
        match seq.any()? {
            (0xa0, _) | (0x81, _) | (0xa1, _) => {}
            _ => return Err(bad("PKCS#8")),
        }
    }
    outer.finish()?;
    match oid {
        OID_RSA => {
            let (n, e, crt) = rsa_from_pkcs1_private(private)?;
            Ok(Material::Rsa {
                n,
                e,
                private: Some(crt),
            })
        }
        OID_EC => {
            let curve = match params {
                Some((der::TAG_OID, c)) => curve_from_oid(c)?,
                _ => return Err(bad("PKCS#8 EC parameters")),
            };
            ec_private_from_sec1(private, Some(curve))
        }
        OID_ED25519 => okp_private(OkpCurve::Ed25519, private),
        OID_X25519 => okp_private(OkpCurve::X25519, private),
        _ => Err(KeyError::Unsupported("PKCS#8 algorithm".into()).into()),
    }
}

fn spki_parse(der: &[u8]) -> Result<Material, Error> {
    let mut outer = Reader::new(der);
    let mut seq = outer.sequence()?;
    let der::AlgorithmId { oid, params } = seq.algorithm_identifier()?;
    let key = seq.bit_string()?;
    seq.finish()?;
    outer.finish()?;
    match oid {
        OID_RSA => rsa_public_from_pkcs1(key),
        OID_EC => {
            let curve = match params {
                Some((der::TAG_OID, c)) => curve_from_oid(c)?,
                _ => return Err(bad("SPKI EC parameters")),
            };
            if key.first() != Some(&4) {
                return Err(KeyError::Unsupported("compressed EC point".into()).into());
            }
            let (x, y) = split_point(curve, key)?;
            Ok(Material::Ec {
                curve,
                x,
                y,
                d: None,
            })
        }
        OID_ED25519 | OID_X25519 if key.len() == 32 => Ok(Material::Okp {
            curve: if oid == OID_ED25519 {
                OkpCurve::Ed25519
            } else {
                OkpCurve::X25519
            },
            x: key.to_vec(),
            d: None,
        }),
        _ => Err(KeyError::Unsupported("SPKI algorithm".into()).into()),
    }
}

impl Jwk {
    /// Imports a key from PEM: `PRIVATE KEY`, `PUBLIC KEY`, `RSA PRIVATE KEY`,
    /// `RSA PUBLIC KEY` or `EC PRIVATE KEY`. Encrypted PEM is refused.
    pub fn from_pem(pem: &str) -> Result<Jwk, Error> {
        crate::json::check_size("PEM key", pem.len(), MAX_ENCODED_KEY * 2)?;
        let (label, der) = der::pem_decode(pem)?;
        let der = Zeroizing::new(der);
        let format = match label.as_str() {
            "PRIVATE KEY" | "PUBLIC KEY" => None,
            "RSA PRIVATE KEY" | "RSA PUBLIC KEY" => Some(KeyFormat::Pkcs1),
            "EC PRIVATE KEY" => Some(KeyFormat::Sec1),
            _ => return Err(KeyError::Unsupported(format!("PEM label {label:?}")).into()),
        };
        match format {
            Some(f) => Jwk::from_der(&der, f),
            None if label == "PRIVATE KEY" => Jwk::from_der(&der, KeyFormat::Pkcs8),
            None => Jwk::from_der(&der, KeyFormat::Spki),
        }
    }

    /// Imports a key from DER in the given format. For PKCS#1, private and
    /// public structures are both accepted.
    pub fn from_der(der: &[u8], format: KeyFormat) -> Result<Jwk, Error> {
        crate::json::check_size("DER key", der.len(), MAX_ENCODED_KEY)?;
        let material = match format {
            KeyFormat::Pkcs8 => pkcs8_parse(der)?,
            KeyFormat::Spki => spki_parse(der)?,
            KeyFormat::Pkcs1 => match rsa_from_pkcs1_private(der) {
                Ok((n, e, crt)) => Material::Rsa {
                    n,
                    e,
                    private: Some(crt),
                },
                Err(_) => rsa_public_from_pkcs1(der)?,
            },
            KeyFormat::Sec1 => ec_private_from_sec1(der, None)?,
        };
        Jwk::new_validated(material)
    }

    /// Exports as DER. PKCS#8 and SEC 1 need a private key; SPKI exports the
    /// public part; PKCS#1 exports what the RSA key has.
    pub fn to_der(&self, format: KeyFormat) -> Result<Zeroizing<Vec<u8>>, Error> {
        let unsupported = || -> Error {
            KeyError::Unsupported(format!("{} key as {format:?}", self.kty())).into()
        };
        let out = match (format, &self.material) {
            (
                KeyFormat::Pkcs8,
                Material::Rsa {
                    n,
                    e,
                    private: Some(c),
                },
            ) => pkcs8(
                OID_RSA,
                Some(&[der::TAG_NULL, 0]),
                &rsa_private_der(n, e, c),
            ),
            (
                KeyFormat::Pkcs8,
                Material::Ec {
                    curve,
                    x,
                    y,
                    d: Some(d),
                },
            ) => {
                let point = super::uncompressed_point(x, y);
                let inner = Zeroizing::new(sec1_private_der(*curve, d, Some(&point)));
                let params = der::element(der::TAG_OID, curve_oid(*curve));
                pkcs8(OID_EC, Some(&params), &inner)
            }
            (
                KeyFormat::Pkcs8,
                Material::Okp {
                    curve, d: Some(d), ..
                },
            ) => {
                let oid = match curve {
                    OkpCurve::Ed25519 => OID_ED25519,
                    OkpCurve::X25519 => OID_X25519,
                };
                let inner = Zeroizing::new(der::element(der::TAG_OCTET_STRING, d));
                pkcs8(oid, None, &inner)
            }
            (
                KeyFormat::Pkcs8 | KeyFormat::Sec1,
                Material::Rsa { .. } | Material::Ec { .. } | Material::Okp { .. },
            ) if !self.is_private() => return Err(KeyError::NotPrivate.into()),
            (KeyFormat::Spki, Material::Rsa { n, e, .. }) => spki(
                &algorithm_identifier(OID_RSA, Some(&[der::TAG_NULL, 0])),
                &rsa_public_der(n, e),
            ),
            (KeyFormat::Spki, Material::Ec { curve, x, y, .. }) => spki(
                &algorithm_identifier(OID_EC, Some(&der::element(der::TAG_OID, curve_oid(*curve)))),
                &super::uncompressed_point(x, y),
            ),
            (KeyFormat::Spki, Material::Okp { curve, x, .. }) => spki(
                &algorithm_identifier(
                    match curve {
                        OkpCurve::Ed25519 => OID_ED25519,
                        OkpCurve::X25519 => OID_X25519,
                    },
                    None,
                ),
                x,
            ),
            (
                KeyFormat::Pkcs1,
                Material::Rsa {
                    n,
                    e,
                    private: Some(c),
                },
            ) => rsa_private_der(n, e, c),
            (
                KeyFormat::Pkcs1,
                Material::Rsa {
                    n,
                    e,
                    private: None,
                },
            ) => Zeroizing::new(rsa_public_der(n, e)),
            (
                KeyFormat::Sec1,
                Material::Ec {
                    curve,
                    x,
                    y,
                    d: Some(d),
                },
            ) => {
                let point = super::uncompressed_point(x, y);
                Zeroizing::new(sec1_private_der(*curve, d, Some(&point)))
            }
            _ => return Err(unsupported()),
        };
        Ok(out)
    }

    /// Exports as PEM with the label that matches `format` and the key.
    pub fn to_pem(&self, format: KeyFormat) -> Result<Zeroizing<String>, Error> {
        let der = self.to_der(format)?;
        let label = match format {
            KeyFormat::Pkcs8 => "PRIVATE KEY",
            KeyFormat::Spki => "PUBLIC KEY",
            KeyFormat::Pkcs1 if self.is_private() => "RSA PRIVATE KEY",
            KeyFormat::Pkcs1 => "RSA PUBLIC KEY",
            KeyFormat::Sec1 => "EC PRIVATE KEY",
        };
        Ok(Zeroizing::new(der::pem_encode(label, &der)))
    }
}

fn pkcs8(oid: &[u8], params: Option<&[u8]>, private: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut body = Zeroizing::new(Vec::new());
    der::write(&mut body, der::TAG_INTEGER, &[0]);
    body.extend_from_slice(&algorithm_identifier(oid, params));
    der::write(&mut body, der::TAG_OCTET_STRING, private);
    Zeroizing::new(der::element(der::TAG_SEQUENCE, &body))
}

fn spki(alg: &[u8], key: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut body = alg.to_vec();
    body.extend_from_slice(&der::bit_string(key));
    Zeroizing::new(der::element(der::TAG_SEQUENCE, &body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwa::JwsAlgorithm;

    #[test]
    fn every_format_round_trips() {
        let keys = [
            Jwk::generate_rsa(2048).unwrap(),
            Jwk::generate_ec(EcCurve::P256).unwrap(),
            Jwk::generate_ec(EcCurve::P384).unwrap(),
            Jwk::generate_ec(EcCurve::P521).unwrap(),
            Jwk::generate_ec(EcCurve::Secp256k1).unwrap(),
            Jwk::generate_okp(OkpCurve::Ed25519).unwrap(),
            Jwk::generate_okp(OkpCurve::X25519).unwrap(),
        ];
        for key in &keys {
            for format in [
                KeyFormat::Pkcs8,
                KeyFormat::Spki,
                KeyFormat::Pkcs1,
                KeyFormat::Sec1,
            ] {
                let Ok(pem) = key.to_pem(format) else {
                    assert!(
                        (format == KeyFormat::Pkcs1 && key.kty() != "RSA")
                            || (format == KeyFormat::Sec1 && key.kty() != "EC")
                    );
                    continue;
                };
                let back = Jwk::from_pem(&pem).unwrap();
                assert_eq!(back.thumbprint(), key.thumbprint(), "{format:?} {key:?}");
                assert_eq!(back.is_private(), format != KeyFormat::Spki);
            }
        }
    }

    #[test]
    fn aws_lc_accepts_our_pkcs8() {
        // Our encoder's output must be a PKCS#8 the crypto library itself reads.
        let key = Jwk::generate_for(JwsAlgorithm::RS256).unwrap();
        assert!(crypto::pkcs8_accepted(
            &key.to_der(KeyFormat::Pkcs8).unwrap()
        ));
        let ec = Jwk::generate_for(JwsAlgorithm::ES256).unwrap();
        assert!(crypto::pkcs8_accepted(
            &ec.to_der(KeyFormat::Pkcs8).unwrap()
        ));
        let ed = Jwk::generate_for(JwsAlgorithm::EdDSA).unwrap();
        assert!(crypto::pkcs8_accepted(
            &ed.to_der(KeyFormat::Pkcs8).unwrap()
        ));
    }

    #[test]
    fn rejects_garbage_and_symmetric() {
        assert!(Jwk::from_der(&[0x30, 0x03, 0x02, 0x01, 0x00], KeyFormat::Pkcs8).is_err());
        assert!(
            Jwk::from_pem("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n")
                .is_err()
        );
        let oct = Jwk::generate_oct(32).unwrap();
        assert!(oct.to_der(KeyFormat::Pkcs8).is_err());
    }
}
