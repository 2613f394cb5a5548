//! Just enough DER and PEM for key import/export: PKCS#8, SPKI, PKCS#1, SEC1.
//!
//! The reader accepts definite, minimally encoded lengths only and never
//! recurses on its own: each caller walks a fixed structure.

use crate::error::{DecodeError, Error};

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

fn bad() -> Error {
    Error::Decode(DecodeError::Der("DER"))
}

/// A parsed AlgorithmIdentifier.
pub(crate) struct AlgorithmId<'a> {
    pub oid: &'a [u8],
    /// The parameters' tag and contents.
    pub params: Option<(u8, &'a [u8])>,
}

/// A cursor over DER bytes.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader { rest: input }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads one element and returns its tag and contents.
    pub(crate) fn any(&mut self) -> Result<(u8, &'a [u8]), Error> {
        let (&tag, rest) = self.rest.split_first().ok_or_else(bad)?;
        if tag & 0x1f == 0x1f {
            return Err(bad()); // high tag numbers never occur in key structures
        }
        let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(bad()); // indefinite, or absurdly long
            }
            let (bytes, r) = rest.split_at_checked(n).ok_or_else(bad)?;
            rest = r;
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
            if len < 0x80 || bytes.first() == Some(&0) {
                return Err(bad()); // not minimal
            }
            len
        };
        let (value, rest) = rest.split_at_checked(len).ok_or_else(bad)?;
        self.rest = rest;
        Ok((tag, value))
    }

    pub(crate) fn expect(&mut self, tag: u8) -> Result<&'a [u8], Error> {
        match self.any()? {
            (t, v) if t == tag => Ok(v),
            _ => Err(bad()),
        }
    }

    pub(crate) fn sequence(&mut self) -> Result<Reader<'a>, Error> {
        self.expect(TAG_SEQUENCE).map(Reader::new)
    }

    /// A non-negative INTEGER, returned big-endian without leading zeros.
    pub(crate) fn unsigned(&mut self) -> Result<&'a [u8], Error> {
        let v = self.expect(TAG_INTEGER)?;
        match v {
            [] => Err(bad()),
            [b, ..] if b & 0x80 != 0 => Err(bad()), // negative
            [0, next, ..] if next & 0x80 == 0 => Err(bad()), // not minimal
            [0, rest @ ..] => Ok(rest),
            _ => Ok(v),
        }
    }

    /// An AlgorithmIdentifier (RFC 5280 §4.1.1.2): the OID and, if present,
    /// the parameters element.
    pub(crate) fn algorithm_identifier(&mut self) -> Result<AlgorithmId<'a>, Error> {
        let mut alg = self.sequence()?;
        let oid = alg.expect(TAG_OID)?;
        let params = if alg.is_empty() {
            None
        } else {
            Some(alg.any()?)
        };
        alg.finish()?;
        Ok(AlgorithmId { oid, params })
    }

    pub(crate) fn small_uint(&mut self) -> Result<u8, Error> {
        match self.unsigned()? {
            [] => Ok(0),
            [v] => Ok(*v),
            _ => Err(bad()),
        }
    }

    pub(crate) fn bit_string(&mut self) -> Result<&'a [u8], Error> {
        match self.expect(TAG_BIT_STRING)? {
            [0, rest @ ..] => Ok(rest),
            _ => Err(bad()),
        }
    }

    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(bad())
        }
    }
}

/// Appends a DER element.
pub(crate) fn write(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(value);
}

/// Wraps `value` in one element and returns it.
pub(crate) fn element(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    write(&mut out, tag, value);
    out
}

/// Appends a non-negative INTEGER from big-endian bytes.
pub(crate) fn write_unsigned(out: &mut Vec<u8>, be: &[u8]) {
    let skip = be.iter().take_while(|&&b| b == 0).count();
    let be = be.get(skip..).unwrap_or_default();
    match be.first() {
        None => write(out, TAG_INTEGER, &[0]),
        Some(b) if b & 0x80 != 0 => {
            let mut v = Vec::with_capacity(be.len() + 1);
            v.push(0);
            v.extend_from_slice(be);
            write(out, TAG_INTEGER, &v);
        }
        Some(_) => write(out, TAG_INTEGER, be),
    }
}

/// A BIT STRING with no unused bits.
pub(crate) fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.push(0);
    v.extend_from_slice(bytes);
    element(TAG_BIT_STRING, &v)
}

/// PEM: one block, its label and its decoded contents.
pub(crate) fn pem_decode(input: &str) -> Result<(String, Vec<u8>), Error> {
    let err = || Error::Decode(DecodeError::Der("PEM"));
    let mut lines = input.lines().map(str::trim).skip_while(|l| l.is_empty());
    let first = lines.next().ok_or_else(err)?;
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or_else(err)?;
    let end = format!("-----END {label}-----");
    // The base64 text of a private key is as secret as the key.
    let mut body = zeroize::Zeroizing::new(String::new());
    let mut ended = false;
    for line in lines.by_ref() {
        if line == end {
            ended = true;
            break;
        }
        if line.contains(':') {
            return Err(err()); // encrypted PEM headers are not supported
        }
        body.push_str(line);
    }
    if !ended || lines.any(|l| !l.is_empty()) {
        return Err(err());
    }
    let der = std_b64_decode(&body).ok_or_else(err)?;
    Ok((label.to_owned(), der))
}

/// PEM-encodes `der` with `label`, 64 characters a line.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b = zeroize::Zeroizing::new(std_b64_encode(der));
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

// PEM uses the standard alphabet with padding: translate to and from our
// strict base64url rather than keeping a second codec.
fn std_b64_encode(der: &[u8]) -> String {
    let mut s: String = crate::b64::encode(der)
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while s.len() % 4 != 0 {
        s.push('=');
    }
    s
}

fn std_b64_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 4 != 0 {
        return None;
    }
    let unpadded = s.trim_end_matches('=');
    if s.len() - unpadded.len() > 2 || unpadded.contains(['-', '_']) {
        return None;
    }
    let url: zeroize::Zeroizing<String> = unpadded
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect::<String>()
        .into();
    crate::b64::decode(url.as_bytes(), "PEM").ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for n in [0usize, 1, 127, 128, 255, 256, 70000] {
            let v = vec![7u8; n];
            let e = element(TAG_OCTET_STRING, &v);
            let mut r = Reader::new(&e);
            assert_eq!(r.expect(TAG_OCTET_STRING).unwrap(), &v[..]);
            r.finish().unwrap();
        }
    }

    #[test]
    fn rejects_non_minimal() {
        assert!(Reader::new(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5])
            .any()
            .is_err());
        assert!(Reader::new(&[0x04, 0x80]).any().is_err());
        assert!(Reader::new(&[0x02, 0x02, 0x00, 0x05]).unsigned().is_err());
        assert!(Reader::new(&[0x02, 0x01, 0x80]).unsigned().is_err());
        assert_eq!(
            Reader::new(&[0x02, 0x02, 0x00, 0x80]).unsigned().unwrap(),
            &[0x80]
        );
    }

    #[test]
    fn pem_round_trip() {
        let der: Vec<u8> = (0..=255).collect();
        let pem = pem_encode("PUBLIC KEY", &der);
        assert_eq!(pem_decode(&pem).unwrap(), ("PUBLIC KEY".into(), der));
        assert!(pem_decode("-----BEGIN X-----\nAAAA\n").is_err());
    }
}
