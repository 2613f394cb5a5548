//! Strict base64url without padding (RFC 7515 §2, RFC 4648 §5).
//!
//! Decoding refuses padding (`=`), whitespace, any character outside the
//! URL-safe alphabet, impossible lengths, and non-zero unused trailing bits.
//! The last rule makes every byte string have exactly one encoding, so a token
//! cannot be altered without changing what was signed (Wycheproof tc375).
//!
//! ```
//! use tessera_jose::b64;
//! assert_eq!(b64::encode(b"hi"), "aGk");
//! assert_eq!(b64::decode("aGk", "example").unwrap(), b"hi");
//! assert!(b64::decode("aGk=", "example").is_err()); // padding
//! assert!(b64::decode("aGl", "example").is_err()); // non-canonical trailing bits
//! ```

// Indexing here is bounded by construction: `chunks_exact` yields slices of the
// exact length, tables have 256 / 64 entries indexed by a `u8` / a 6-bit value.
#![allow(clippy::indexing_slicing)]

use crate::error::{DecodeError, Error};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const INVALID: u8 = 0xff;

const fn decode_table() -> [u8; 256] {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
}
static DECODE: [u8; 256] = decode_table();

/// The encoded length of `n` bytes.
pub fn encoded_len(n: usize) -> usize {
    n / 3 * 4 + [0, 2, 3][n % 3]
}

/// Appends the base64url encoding (no padding) of `input` to `out`.
pub fn encode_into(input: &[u8], out: &mut String) {
    out.reserve(encoded_len(input.len()));
    // Encode a block at a time into a stack buffer, then append it as one
    // string: far cheaper than pushing characters one by one.
    let mut buf = [0u8; 1024];
    for block in input.chunks(768) {
        let n = encode_block(block, &mut buf);
        // The alphabet is ASCII, so the check cannot fail.
        out.push_str(std::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or_default());
    }
}

/// Encodes up to 768 bytes into `out` (1024 bytes); returns the length written.
fn encode_block(input: &[u8], out: &mut [u8; 1024]) -> usize {
    let sym = |v: u32| ALPHABET[(v & 63) as usize];
    let mut outs = out.chunks_exact_mut(4);
    let mut written = 0;
    let mut chunks = input.chunks_exact(3);
    for (c, o) in (&mut chunks).zip(&mut outs) {
        let v = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
        o[0] = sym(v >> 18);
        o[1] = sym(v >> 12);
        o[2] = sym(v >> 6);
        o[3] = sym(v);
        written += 4;
    }
    let Some(o) = outs.next() else {
        return written;
    };
    match *chunks.remainder() {
        [a] => {
            let v = u32::from(a) << 16;
            o[0] = sym(v >> 18);
            o[1] = sym(v >> 12);
            written + 2
        }
        [a, b] => {
            let v = u32::from(a) << 16 | u32::from(b) << 8;
            o[0] = sym(v >> 18);
            o[1] = sym(v >> 12);
            o[2] = sym(v >> 6);
            written + 3
        }
        _ => written,
    }
}

/// The base64url encoding (no padding) of `input`.
pub fn encode(input: impl AsRef<[u8]>) -> String {
    let mut s = String::new();
    encode_into(input.as_ref(), &mut s);
    s
}

/// Decodes strict base64url; `what` names the input in the error.
pub fn decode(input: impl AsRef<[u8]>, what: &'static str) -> Result<Vec<u8>, Error> {
    let input = input.as_ref();
    let err = || Error::Decode(DecodeError::Base64(what));
    if input.len() % 4 == 1 {
        return Err(err());
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    let mut chunks = input.chunks_exact(4);
    let val = |c: u8| -> Result<u32, Error> {
        match DECODE[usize::from(c)] {
            INVALID => Err(err()),
            v => Ok(u32::from(v)),
        }
    };
    for c in &mut chunks {
        let v = val(c[0])? << 18 | val(c[1])? << 12 | val(c[2])? << 6 | val(c[3])?;
        out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
    }
    match *chunks.remainder() {
        [a, b] => {
            let v = val(a)? << 18 | val(b)? << 12;
            if v & 0xffff != 0 {
                return Err(err());
            }
            out.push((v >> 16) as u8);
        }
        [a, b, c] => {
            let v = val(a)? << 18 | val(b)? << 12 | val(c)? << 6;
            if v & 0xff != 0 {
                return Err(err());
            }
            out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8]);
        }
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc4648_vectors() {
        // RFC 4648 §10, translated to the URL-safe alphabet with padding removed.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain), enc);
            assert_eq!(decode(enc, "t").unwrap(), plain.as_bytes());
        }
        assert_eq!(encode([0xfb, 0xff]), "-_8");
    }

    #[test]
    fn rejects_non_strict_input() {
        for bad in [
            "Zg==", "Zg=", "Z", "Zm9v\n", " Zm9v", "Zm 9v", "Zm+v", "Zm/v", "Zh", "Zm9", "VGVzdA==",
        ] {
            assert!(decode(bad, "t").is_err(), "{bad:?} accepted");
        }
        // Same bits as "AA" but with non-zero unused bits (Wycheproof tc375).
        assert!(decode("AB", "t").is_err());
        assert_eq!(decode("AA", "t").unwrap(), [0]);
    }

    #[test]
    fn block_boundaries() {
        // encode_into works in 768-byte blocks: lengths around the edges.
        let data: Vec<u8> = (0..2400u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for len in (0..40)
            .chain(760..780)
            .chain(1530..1545)
            .chain([2300, 2304, 2305])
        {
            let slice = &data[..len];
            let e = encode(slice);
            assert_eq!(e.len(), encoded_len(len));
            assert_eq!(decode(&e, "t").unwrap(), slice, "len {len}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let e = encode(&data);
            prop_assert_eq!(e.len(), encoded_len(data.len()));
            prop_assert_eq!(decode(&e, "t").unwrap(), data);
        }
    }
}
