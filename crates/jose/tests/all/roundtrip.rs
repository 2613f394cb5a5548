//! Round trips for every algorithm in the table, with property-tested payloads.

use proptest::prelude::*;
use tessera_jose::jwa::JwsAlgorithm;
use tessera_jose::jwk::Jwk;
use tessera_jose::jws::{
    sign_general, GeneralSignature, JwsHeader, SignaturePolicy, Signer, Verifier,
};

use crate::support::key_for;

struct Fixture {
    alg: JwsAlgorithm,
    signer: Signer,
    verifier: Verifier,
}

fn fixtures() -> &'static [Fixture] {
    static ALL: std::sync::OnceLock<Vec<Fixture>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        JwsAlgorithm::all()
            .map(|alg| {
                let key = key_for(alg);
                // The verifier gets the key through JSON, as it would in practice.
                let json = if key.is_symmetric() {
                    key.to_private_json().to_string()
                } else {
                    key.to_public().unwrap().to_json()
                };
                let public = Jwk::from_json(json.as_bytes()).unwrap();
                Fixture {
                    alg,
                    signer: Signer::new(&key, alg).unwrap(),
                    verifier: Verifier::builder()
                        .key(&public, &[alg])
                        .unwrap()
                        .build()
                        .unwrap(),
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_algorithm_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..512), flip in any::<usize>()) {
        for f in fixtures() {
            let compact = f.signer.sign_compact(&JwsHeader::new().typ("JWT"), &payload).unwrap();
            let verified = f.verifier.verify_compact(&compact).unwrap();
            prop_assert_eq!(verified.payload(), &payload[..]);
            prop_assert_eq!(verified.header().alg(), f.alg);

            let flat = f.signer.sign_flattened(&JwsHeader::new(), None, &payload).unwrap();
            let v = f.verifier.verify_json(&flat, SignaturePolicy::All).unwrap();
            prop_assert_eq!(v.payload(), &payload[..]);
            let general = sign_general(&payload, &[GeneralSignature {
                signer: &f.signer, protected: Some(f.signer.protect(&JwsHeader::new())), unprotected: None,
            }]).unwrap();
            let v = f.verifier.verify_json(&general, SignaturePolicy::All).unwrap();
            prop_assert_eq!(v.payload(), &payload[..]);

            let detached = f.signer.sign_compact_detached(&JwsHeader::new(), &payload).unwrap();
            prop_assert!(f.verifier.verify_compact_detached(&detached, &payload).is_ok());
            let mut other = payload.clone();
            other.push(1);
            prop_assert!(f.verifier.verify_compact_detached(&detached, &other).is_err());

            // Changing any one character of the token breaks it.
            let mut bytes = compact.clone().into_bytes();
            let i = flip % bytes.len();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered != compact {
                prop_assert!(f.verifier.verify_compact(&tampered).is_err(), "{} accepted a changed token", f.alg);
            }
        }
    }

    #[test]
    fn unencoded_payloads_round_trip(payload in "[a-zA-Z0-9 $,;:!-]{0,200}") {
        let f = &fixtures()[0];
        let header = JwsHeader::new().unencoded_payload();
        let token = f.signer.sign_compact(&header, payload.as_bytes()).unwrap();
        let verified = f.verifier.verify_compact(&token).unwrap();
        prop_assert_eq!(verified.payload(), payload.as_bytes());
        prop_assert!(!verified.header().b64());
    }
}
