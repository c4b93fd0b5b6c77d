//! Zero-knowledge range presentations and eligibility answers as a holder
//! sends them: arbitrary bytes to `RangePresentation::parse` and
//! `EligibilityResponse::parse`, then `verify` against the presentation's own
//! statement and challenge, trusting one fixed issuer key. No panic; a
//! parsed presentation re-serializes to JSON that parses to the same; an
//! accepted one reports exactly what it carried.
#![no_main]

use hygeia_credentials::zk::{
    verify, EligibilityResponse, RangePresentation, Requirement, TrustedIssuers,
};
use hygeia_identity::Keypair;
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "did:web:fuzz.example";
const NOW: u64 = 1_750_000_000;

fuzz_target!(|data: &[u8]| {
    let _ = EligibilityResponse::parse(data);
    let Ok(presentation) = RangePresentation::parse(data) else {
        return;
    };
    let json = presentation.to_json();
    let again = RangePresentation::parse(json.as_bytes()).expect("re-serialized presentation parses");
    assert_eq!(again.to_json(), json);

    let issuers = TrustedIssuers::new().with(ISSUER, Keypair::from_seed(&[3; 32]).public_key());
    let credential = presentation.credential();
    let requirement = Requirement {
        attribute: credential.attribute().to_string(),
        loinc: credential.loinc().map(str::to_string),
        range: *presentation.range(),
    };
    let challenge = presentation.challenge().clone();
    if let Ok(verified) = verify(&presentation, &issuers, &requirement, &challenge, NOW) {
        assert_eq!(verified.issuer(), ISSUER);
        assert_eq!(verified.range(), presentation.range());
        assert_eq!(verified.holder(), credential.holder());
        assert_eq!(verified.verifier(), challenge.verifier);
    }
});
