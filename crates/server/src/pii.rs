//! Personal data detectors, shared by the claim guard (which refuses such
//! values in a signed token) and `tessera jwt inspect` (which warns about
//! them). Heuristics: they catch the common shapes, not every possible one.

use serde_json::Value;

/// What a value looks like, if it looks like personal data.
pub fn value_kind(value: &Value) -> Option<&'static str> {
    match value {
        Value::String(s) => text_kind(s),
        Value::Number(n) => text_kind(&n.to_string()),
        Value::Array(items) => items.iter().find_map(value_kind),
        Value::Object(m) => m.values().find_map(value_kind),
        Value::Bool(_) | Value::Null => None,
    }
}

/// What a text value looks like, if it looks like personal data.
pub fn text_kind(s: &str) -> Option<&'static str> {
    let s = s.trim();
    if looks_like_email(s) {
        return Some("an e-mail address");
    }
    if looks_like_card(s) {
        return Some("a payment card number");
    }
    if looks_like_national_id(s) {
        return Some("a national identification number");
    }
    if looks_like_phone(s) {
        return Some("a phone number");
    }
    None
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !s.contains(char::is_whitespace)
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
}

fn digits(s: &str) -> Option<Vec<u32>> {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_digit(10))
        .collect()
}

/// 13–19 digits (spaces or dashes allowed) passing the Luhn check.
fn looks_like_card(s: &str) -> bool {
    let Some(d) = digits(s) else { return false };
    if !(13..=19).contains(&d.len()) {
        return false;
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    sum % 10 == 0
}

/// A US SSN (`123-45-6789`) or an IBAN (two letters, two check digits,
/// then 11–30 letters and digits, passing the mod-97 check).
fn looks_like_national_id(s: &str) -> bool {
    let b = s.as_bytes();
    let ssn = b.len() == 11
        && b.iter().enumerate().all(|(i, c)| {
            if i == 3 || i == 6 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    ssn || looks_like_iban(s)
}

fn looks_like_iban(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| *c != ' ').collect();
    let b = compact.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b.iter().take(2).all(u8::is_ascii_uppercase)
        || !b.iter().skip(2).take(2).all(u8::is_ascii_digit)
        || !b.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let rearranged = b.iter().skip(4).chain(b.iter().take(4));
    let mut rem: u32 = 0;
    for c in rearranged {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c.to_ascii_uppercase() - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// `+` then 8–15 digits, or 10–15 digits written with separators.
fn looks_like_phone(s: &str) -> bool {
    let body = s.strip_prefix('+');
    let allowed = |c: char| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')');
    let text = body.unwrap_or(s);
    if text.is_empty() || !text.chars().all(allowed) {
        return false;
    }
    let n = text.chars().filter(char::is_ascii_digit).count();
    let separated = text.chars().any(|c| !c.is_ascii_digit());
    match body {
        Some(_) => (8..=15).contains(&n),
        None => separated && (10..=15).contains(&n),
    }
}

/// An IPv4 or IPv6 address (`192.0.2.7`, `2001:db8::1`).
pub fn looks_like_ip(s: &str) -> bool {
    s.trim().parse::<std::net::IpAddr>().is_ok()
}

/// Claim names that usually carry personal data, compared without case,
/// `_` or `-`: what each one holds.
const SENSITIVE_NAMES: &[(&str, &str)] = &[
    ("email", "an e-mail address"),
    ("mail", "an e-mail address"),
    ("emailaddress", "an e-mail address"),
    ("phone", "a phone number"),
    ("phonenumber", "a phone number"),
    ("mobile", "a phone number"),
    ("tel", "a phone number"),
    ("ssn", "a national identification number"),
    ("nin", "a national identification number"),
    ("nationalid", "a national identification number"),
    ("taxid", "a national identification number"),
    ("passport", "a passport number"),
    ("passportnumber", "a passport number"),
    ("dob", "a date of birth"),
    ("birthdate", "a date of birth"),
    ("dateofbirth", "a date of birth"),
    ("birthday", "a date of birth"),
    ("address", "a postal address"),
    ("streetaddress", "a postal address"),
    ("postalcode", "a postal address"),
    ("name", "a person's name"),
    ("fullname", "a person's name"),
    ("givenname", "a person's name"),
    ("familyname", "a person's name"),
    ("firstname", "a person's name"),
    ("lastname", "a person's name"),
    ("middlename", "a person's name"),
    ("creditcard", "a payment card number"),
    ("cardnumber", "a payment card number"),
    ("iban", "a bank account number"),
    ("accountnumber", "a bank account number"),
    ("ip", "an IP address"),
    ("ipaddress", "an IP address"),
    ("gender", "a personal attribute"),
];

/// What a claim named `name` usually holds, if that is personal data.
pub fn sensitive_name(name: &str) -> Option<&'static str> {
    let folded: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    SENSITIVE_NAMES
        .iter()
        .find(|(n, _)| *n == folded)
        .map(|(_, kind)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detectors() {
        assert_eq!(text_kind("ada@example.com"), Some("an e-mail address"));
        assert_eq!(
            text_kind("4111 1111 1111 1111"),
            Some("a payment card number")
        );
        assert_eq!(
            text_kind("078-05-1120"),
            Some("a national identification number")
        );
        assert_eq!(
            text_kind("GB82 WEST 1234 5698 7654 32"),
            Some("a national identification number")
        );
        assert_eq!(text_kind("+44 20 7946 0958"), Some("a phone number"));
        assert_eq!(text_kind("user-1"), None);
        assert_eq!(text_kind("1700000000"), None);
        assert!(looks_like_ip("192.0.2.7"));
        assert!(looks_like_ip("2001:db8::1"));
        assert!(!looks_like_ip("v1.2"));
        assert_eq!(sensitive_name("Phone_Number"), Some("a phone number"));
        assert_eq!(sensitive_name("date-of-birth"), Some("a date of birth"));
        assert_eq!(
            sensitive_name("SSN"),
            Some("a national identification number")
        );
        assert_eq!(sensitive_name("roles"), None);
    }
}
