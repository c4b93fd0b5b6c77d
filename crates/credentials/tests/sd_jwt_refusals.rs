//! Every refusal of an SD-JWT VC presentation, by error code, and a
//! property: any single-byte change to a presented SD-JWT+KB is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hygeia_credentials::jws::{sign_compact, Header, SigningKey, VerifyingKey};
use hygeia_credentials::sd_jwt::{
    verify_presentation, ClaimPath, SdJwt, SdJwtBuilder, SdJwtError, VerifyOptions,
    MAX_PRESENTATION_LEN,
};
use hygeia_identity::Keypair;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

const ISS: &str = "did:web:board.example";
const VCT: &str = "https://hygeia.health/vct/clinician-licence/v1";
const AUD: &str = "did:web:clinic.example";
const NONCE: &str = "nonce-7";
const NOW: i64 = 1_700_000_000;

struct Fixture {
    issuer: SigningKey,
    holder: SigningKey,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            issuer: SigningKey::Ed25519(Keypair::from_seed(&[11; 32])),
            holder: SigningKey::generate_p256(),
        }
    }

    fn resolver(&self) -> impl Fn(&str, &Header) -> Option<VerifyingKey> + '_ {
        |iss: &str, _: &Header| (iss == ISS).then(|| self.issuer.verifying_key())
    }

    fn claims(&self) -> Map<String, Value> {
        object(json!({
            "iss": ISS, "vct": VCT, "iat": NOW - 100, "exp": NOW + 1000,
            "sub": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            "licence_number": "A-1", "specialty": "cardiology",
            "profession": "physician", "jurisdiction": "DE",
            "address": {"street": "Main St", "city": "Berlin"},
            "languages": ["de", "en", "fr"],
        }))
    }

    fn issue(&self, claims: Map<String, Value>) -> String {
        SdJwtBuilder::new(claims)
            .disclosable(ClaimPath::keys(&["licence_number"]))
            .disclosable(ClaimPath::keys(&["specialty"]))
            .disclosable(ClaimPath::keys(&["address"]))
            .disclosable(ClaimPath::keys(&["address", "street"]))
            .disclosable(ClaimPath::keys(&["languages"]).any_index())
            .holder_key(&self.holder.verifying_key())
            .decoys_per_object(2)
            .issue(&self.issuer)
            .unwrap()
    }

    /// Everything disclosed, with a KB-JWT for (AUD, NONCE) at NOW.
    fn presentation(&self) -> String {
        let held = SdJwt::parse(&self.issue(self.claims()), &self.resolver()).unwrap();
        held.present_with_key_binding(&[ClaimPath::root()], AUD, NONCE, NOW, &self.holder)
            .unwrap()
    }

    fn verify(&self, presentation: &str) -> Result<(), SdJwtError> {
        verify_presentation(presentation, &self.resolver(), &options()).map(|_| ())
    }

    /// An issuer JWT over an arbitrary payload and header, with disclosures.
    fn raw(&self, header: Value, payload: Value, disclosures: &[String]) -> String {
        let mut out = sign_compact(object(header), payload.to_string().as_bytes(), &self.issuer);
        out.push('~');
        for d in disclosures {
            out.push_str(d);
            out.push('~');
        }
        out
    }

    fn raw_vc(&self, payload: Value, disclosures: &[String]) -> String {
        let mut full = object(json!({"iss": ISS, "vct": VCT, "_sd_alg": "sha-256"}));
        full.extend(object(payload));
        self.raw(
            json!({"typ": "dc+sd-jwt"}),
            Value::Object(full),
            disclosures,
        )
    }
}

fn options() -> VerifyOptions {
    VerifyOptions::new(NOW).require_key_binding(AUD, NONCE)
}

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A disclosure of `array` and its digest.
fn disclosure(array: Value) -> (String, String) {
    let encoded = b64(array.to_string().as_bytes());
    let digest = b64(&Sha256::digest(encoded.as_bytes()));
    (encoded, digest)
}

fn code<T>(result: Result<T, SdJwtError>) -> &'static str {
    match result {
        Ok(_) => "accepted",
        Err(e) => {
            assert!(!e.reason().is_empty());
            e.code()
        }
    }
}

/// Replaces the KB-JWT of a presentation by one signed over `payload`.
fn with_kb(presentation: &str, header: Value, payload: Value, key: &SigningKey) -> String {
    let (sd_jwt, _) = presentation.rsplit_once('~').unwrap();
    let kb = sign_compact(object(header), payload.to_string().as_bytes(), key);
    format!("{sd_jwt}~{kb}")
}

fn sd_hash(presentation: &str) -> String {
    let (sd_jwt, _) = presentation.rsplit_once('~').unwrap();
    b64(&Sha256::digest(format!("{sd_jwt}~").as_bytes()))
}

#[test]
fn a_valid_presentation_verifies() {
    let f = Fixture::new();
    let verified = verify_presentation(&f.presentation(), &f.resolver(), &options()).unwrap();
    assert!(verified.key_bound());
    assert_eq!(verified.issuer(), ISS);
    assert_eq!(verified.vct(), VCT);
    assert_eq!(
        verified.claims()["address"],
        json!({"street": "Main St", "city": "Berlin"})
    );
    assert_eq!(verified.claims()["languages"], json!(["de", "en", "fr"]));
    assert!(verified.claims().get("_sd").is_none() && verified.claims().get("_sd_alg").is_none());
    assert_eq!(verified.holder_key(), Some(&f.holder.verifying_key()));
}

#[test]
fn selective_presentation_hides_the_rest() {
    let f = Fixture::new();
    let held = SdJwt::parse(&f.issue(f.claims()), &f.resolver()).unwrap();
    let selection = [
        ClaimPath::keys(&["address", "city"]),
        ClaimPath::keys(&["languages"]).index(1),
    ];
    let p = held
        .present_with_key_binding(&selection, AUD, NONCE, NOW, &f.holder)
        .unwrap();
    let verified = verify_presentation(&p, &f.resolver(), &options()).unwrap();
    assert_eq!(verified.claims()["address"], json!({"city": "Berlin"}));
    assert_eq!(verified.claims()["languages"], json!(["en"]));
    assert!(verified.claims().get("licence_number").is_none());
    assert_eq!(verified.claims()["profession"], "physician");
}

#[test]
fn issuer_side_refusals() {
    let f = Fixture::new();
    let good = f.presentation();
    let (jwt, rest) = good.split_once('~').unwrap();

    // Signature and issuer.
    let other = SigningKey::Ed25519(Keypair::from_seed(&[12; 32]));
    let forged = format!(
        "{}~{rest}",
        sign_compact(
            object(json!({"typ": "dc+sd-jwt"})),
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(1).unwrap())
                .unwrap(),
            &other
        )
    );
    assert_eq!(code(f.verify(&forged)), "sd-jwt-bad-signature");
    let unknown = f.raw(
        json!({"typ": "dc+sd-jwt"}),
        json!({"iss": "did:web:other.example", "vct": VCT}),
        &[],
    );
    assert_eq!(
        code(verify_presentation(
            &unknown,
            &f.resolver(),
            &VerifyOptions::new(NOW)
        )),
        "sd-jwt-unknown-issuer"
    );
    let no_iss = f.raw(json!({"typ": "dc+sd-jwt"}), json!({"vct": VCT}), &[]);
    assert_eq!(
        code(verify_presentation(
            &no_iss,
            &f.resolver(),
            &VerifyOptions::new(NOW)
        )),
        "sd-jwt-missing-claim"
    );
    let no_vct = f.raw(json!({"typ": "dc+sd-jwt"}), json!({"iss": ISS}), &[]);
    assert_eq!(
        code(verify_presentation(
            &no_vct,
            &f.resolver(),
            &VerifyOptions::new(NOW)
        )),
        "sd-jwt-missing-claim"
    );

    // Header.
    for typ in [
        json!({"typ": "vc+sd-jwt"}),
        json!({"typ": "JWT"}),
        json!({}),
    ] {
        let p = f.raw(typ, json!({"iss": ISS, "vct": VCT}), &[]);
        assert_eq!(
            code(verify_presentation(
                &p,
                &f.resolver(),
                &VerifyOptions::new(NOW)
            )),
            "sd-jwt-wrong-type"
        );
    }
    let crit = f.raw(
        json!({"typ": "dc+sd-jwt", "crit": ["exp"]}),
        json!({"iss": ISS, "vct": VCT}),
        &[],
    );
    assert_eq!(
        code(verify_presentation(
            &crit,
            &f.resolver(),
            &VerifyOptions::new(NOW)
        )),
        "sd-jwt-critical-header"
    );
    let none = format!(
        "{}.{}.~",
        b64(br#"{"alg":"none","typ":"dc+sd-jwt"}"#),
        b64(json!({"iss": ISS, "vct": VCT}).to_string().as_bytes())
    );
    assert_eq!(
        code(verify_presentation(
            &none,
            &f.resolver(),
            &VerifyOptions::new(NOW)
        )),
        "sd-jwt-unsupported-algorithm"
    );

    // Structure and size.
    for bad in [
        "",
        "~",
        "abc~",
        "a.b.c",
        &format!("{jwt}~~{rest}"),
        "{\"payload\":1}",
    ] {
        assert_eq!(code(f.verify(bad)), "sd-jwt-malformed", "{bad}");
    }
    let long = format!("{good}{}", "A".repeat(MAX_PRESENTATION_LEN));
    assert_eq!(code(f.verify(&long)), "sd-jwt-too-long");
    let dup_payload = format!(
        "{}.{}",
        b64(br#"{"alg":"EdDSA","typ":"dc+sd-jwt"}"#),
        b64(format!(r#"{{"iss":"{ISS}","vct":"{VCT}","vct":"x"}}"#).as_bytes())
    );
    let sig = match &f.issuer {
        SigningKey::Ed25519(k) => b64(&k.sign(dup_payload.as_bytes()).to_bytes()),
        SigningKey::P256(_) => unreachable!(),
    };
    assert_eq!(
        code(verify_presentation(
            &format!("{dup_payload}.{sig}~"),
            &f.resolver(),
            &VerifyOptions::new(NOW)
        )),
        "sd-jwt-malformed"
    );
}

#[test]
fn disclosure_refusals() {
    let f = Fixture::new();
    let opts = VerifyOptions::new(NOW);
    let verify = |p: &str| code(verify_presentation(p, &f.resolver(), &opts));
    let (a, a_digest) = disclosure(json!(["salt-a", "a", 1]));
    let (e, e_digest) = disclosure(json!(["salt-e", 2]));

    assert_eq!(
        verify(&f.raw_vc(json!({"_sd": [a_digest]}), std::slice::from_ref(&a))),
        "accepted"
    );
    assert_eq!(
        verify(&f.raw_vc(json!({"_sd": [a_digest]}), &[a.clone(), a.clone()])),
        "sd-jwt-disclosure-duplicate"
    );
    assert_eq!(
        verify(&f.raw_vc(
            json!({"_sd": [a_digest, a_digest]}),
            std::slice::from_ref(&a)
        )),
        "sd-jwt-digest-duplicate"
    );
    assert_eq!(
        verify(&f.raw_vc(json!({"_sd": [a_digest], "x": {"_sd": [a_digest]}}), &[])),
        "sd-jwt-digest-duplicate"
    );
    assert_eq!(
        verify(&f.raw_vc(json!({}), std::slice::from_ref(&a))),
        "sd-jwt-disclosure-unreferenced"
    );
    assert_eq!(
        verify(&f.raw_vc(json!({"_sd": [e_digest]}), std::slice::from_ref(&e))),
        "sd-jwt-digest-mismatch"
    );
    assert_eq!(
        verify(&f.raw_vc(json!({"x": [{"...": a_digest}]}), std::slice::from_ref(&a))),
        "sd-jwt-digest-mismatch"
    );
    assert_eq!(
        verify(&f.raw_vc(json!({"_sd": [a_digest], "a": 0}), std::slice::from_ref(&a))),
        "sd-jwt-claim-collision"
    );
    assert_eq!(
        verify(&f.raw_vc(json!({"...": 1}), &[])),
        "sd-jwt-reserved-claim-name"
    );
    let (reserved, reserved_digest) = disclosure(json!(["s", "_sd", []]));
    assert_eq!(
        verify(&f.raw_vc(json!({"_sd": [reserved_digest]}), &[reserved])),
        "sd-jwt-reserved-claim-name"
    );
    let (not_array, _) = disclosure(json!({"a": 1}));
    assert_eq!(
        verify(&f.raw_vc(json!({}), &[not_array])),
        "sd-jwt-disclosure-malformed"
    );
    assert_eq!(
        verify(&f.raw_vc(json!({}), &["!!".into()])),
        "sd-jwt-disclosure-malformed"
    );
    for name in ["exp", "cnf", "status", "nbf"] {
        let (d, digest) = disclosure(json!(["s", name, 1]));
        assert_eq!(
            verify(&f.raw_vc(json!({"_sd": [digest]}), &[d])),
            "sd-jwt-claim-not-disclosable",
            "{name}"
        );
    }
    assert_eq!(
        verify(&f.raw_vc(json!({"_sd_alg": "sha-512"}), &[])),
        "sd-jwt-unsupported-hash-alg"
    );
    assert_eq!(
        verify(&f.raw_vc(json!({"cnf": {"jwk": {"kty": "RSA"}}}), &[])),
        "sd-jwt-bad-holder-key"
    );
    assert_eq!(
        verify(&f.raw_vc(json!({"cnf": {"kid": "x"}}), &[])),
        "sd-jwt-bad-holder-key"
    );
    let private = json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"});
    assert_eq!(
        verify(&f.raw_vc(json!({"cnf": {"jwk": private}}), &[])),
        "sd-jwt-bad-holder-key"
    );
    let mut deep = json!(1);
    let mut chain = Vec::new();
    for i in 0..80 {
        let (d, digest) = disclosure(json!([format!("s{i}"), deep]));
        chain.push(d);
        deep = json!([{"...": digest}]);
    }
    assert_eq!(
        verify(&f.raw_vc(json!({"deep": deep}), &chain)),
        "sd-jwt-too-deep"
    );
}

#[test]
fn validity_times() {
    let f = Fixture::new();
    let skew = VerifyOptions::DEFAULT_CLOCK_SKEW_SECS;
    let at = |payload: Value, now: i64| {
        code(verify_presentation(
            &f.raw_vc(payload, &[]),
            &f.resolver(),
            &VerifyOptions::new(now),
        ))
    };
    assert_eq!(at(json!({"exp": NOW}), NOW + skew), "sd-jwt-expired");
    assert_eq!(at(json!({"exp": NOW}), NOW + skew - 1), "accepted");
    assert_eq!(
        at(json!({"nbf": NOW}), NOW - skew - 1),
        "sd-jwt-not-yet-valid"
    );
    assert_eq!(at(json!({"nbf": NOW}), NOW - skew), "accepted");
    assert_eq!(at(json!({"iat": NOW + 1000}), NOW), "sd-jwt-not-yet-valid");
    assert_eq!(at(json!({"exp": "tomorrow"}), NOW), "sd-jwt-missing-claim");
    assert_eq!(at(json!({"exp": 1.7e9 + 0.5}), NOW), "accepted");
}

#[test]
fn key_binding_refusals() {
    let f = Fixture::new();
    let good = f.presentation();
    let hash = sd_hash(&good);
    let kb = |payload: Value| with_kb(&good, json!({"typ": "kb+jwt"}), payload, &f.holder);
    let payload = |aud: &str, nonce: &str, iat: i64, hash: &str| json!({"aud": aud, "nonce": nonce, "iat": iat, "sd_hash": hash});

    assert_eq!(
        code(f.verify(&kb(payload(AUD, NONCE, NOW, &hash)))),
        "accepted"
    );
    assert_eq!(
        code(f.verify(&kb(payload(AUD, "other", NOW, &hash)))),
        "kb-jwt-wrong-nonce"
    );
    assert_eq!(
        code(f.verify(&kb(payload("did:web:evil.example", NONCE, NOW, &hash)))),
        "kb-jwt-wrong-audience"
    );
    assert_eq!(
        code(f.verify(&kb(payload(AUD, NONCE, NOW, "AAAA")))),
        "kb-jwt-sd-hash-mismatch"
    );
    let max_age = VerifyOptions::DEFAULT_KB_MAX_AGE_SECS + VerifyOptions::DEFAULT_CLOCK_SKEW_SECS;
    assert_eq!(
        code(f.verify(&kb(payload(AUD, NONCE, NOW - max_age - 1, &hash)))),
        "kb-jwt-stale"
    );
    assert_eq!(
        code(f.verify(&kb(payload(AUD, NONCE, NOW + 3600, &hash)))),
        "kb-jwt-stale"
    );
    assert_eq!(
        code(f.verify(&kb(json!({"aud": AUD, "nonce": NONCE, "sd_hash": hash})))),
        "kb-jwt-malformed"
    );
    assert_eq!(
        code(f.verify(&with_kb(
            &good,
            json!({"typ": "JWT"}),
            payload(AUD, NONCE, NOW, &hash),
            &f.holder
        ))),
        "kb-jwt-wrong-type"
    );
    let stranger = SigningKey::generate_p256();
    assert_eq!(
        code(f.verify(&with_kb(
            &good,
            json!({"typ": "kb+jwt"}),
            payload(AUD, NONCE, NOW, &hash),
            &stranger
        ))),
        "kb-jwt-bad-signature"
    );
    let ed = SigningKey::generate_ed25519();
    assert_eq!(
        code(f.verify(&with_kb(
            &good,
            json!({"typ": "kb+jwt"}),
            payload(AUD, NONCE, NOW, &hash),
            &ed
        ))),
        "kb-jwt-bad-signature"
    );
    let (sd_jwt, _) = good.rsplit_once('~').unwrap();
    assert_eq!(code(f.verify(&format!("{sd_jwt}~"))), "kb-jwt-missing");
    assert_eq!(
        code(f.verify(&format!("{sd_jwt}~not-a-jwt"))),
        "kb-jwt-malformed"
    );
    let hs256 = format!(
        "{}.{}.AAAA",
        b64(br#"{"alg":"HS256","typ":"kb+jwt"}"#),
        b64(b"{}")
    );
    assert_eq!(
        code(f.verify(&format!("{sd_jwt}~{hs256}"))),
        "kb-jwt-unsupported-algorithm"
    );

    // A KB-JWT for a presentation with fewer disclosures does not cover this one.
    let held = SdJwt::parse(&f.issue(f.claims()), &f.resolver()).unwrap();
    let fewer = held
        .present_with_key_binding(&[], AUD, NONCE, NOW, &f.holder)
        .unwrap();
    let (_, fewer_kb) = fewer.rsplit_once('~').unwrap();
    assert_eq!(
        code(f.verify(&format!("{sd_jwt}~{fewer_kb}"))),
        "kb-jwt-sd-hash-mismatch"
    );

    // Not bound: no cnf, but the verifier asks for key binding.
    let unbound = SdJwtBuilder::new(f.claims()).issue(&f.issuer).unwrap();
    assert_eq!(code(f.verify(&unbound)), "sd-jwt-missing-holder-key");
    let unbound_held = SdJwt::parse(&unbound, &f.resolver()).unwrap();
    assert_eq!(
        code(unbound_held.present_with_key_binding(&[], AUD, NONCE, NOW, &f.holder)),
        "sd-jwt-missing-holder-key"
    );
    // The holder must sign with the bound key.
    assert_eq!(
        code(held.present_with_key_binding(&[], AUD, NONCE, NOW, &stranger)),
        "kb-jwt-holder-key-mismatch"
    );
    // Without a key-binding requirement, a KB-JWT is still checked.
    let relaxed = VerifyOptions::new(NOW);
    let wrong_sig = with_kb(
        &good,
        json!({"typ": "kb+jwt"}),
        payload("x", "y", NOW, &hash),
        &stranger,
    );
    assert_eq!(
        code(verify_presentation(&wrong_sig, &f.resolver(), &relaxed)),
        "kb-jwt-bad-signature"
    );
    let other_verifier = kb(payload("x", "y", NOW, &hash));
    let verified = verify_presentation(&other_verifier, &f.resolver(), &relaxed).unwrap();
    assert!(!verified.key_bound());
}

#[test]
fn issuance_refusals() {
    let f = Fixture::new();
    let issue = |claims: Map<String, Value>, path: ClaimPath| {
        SdJwtBuilder::new(claims).disclosable(path).issue(&f.issuer)
    };
    let c = f.claims();
    assert_eq!(
        issue(c.clone(), ClaimPath::keys(&["nope"]))
            .unwrap_err()
            .code(),
        "sd-jwt-issue-no-such-claim"
    );
    assert_eq!(
        issue(c.clone(), ClaimPath::keys(&["languages"]).index(9))
            .unwrap_err()
            .code(),
        "sd-jwt-issue-no-such-claim"
    );
    assert_eq!(
        issue(c.clone(), ClaimPath::keys(&["exp"]))
            .unwrap_err()
            .code(),
        "sd-jwt-issue-claim-not-disclosable"
    );
    let mut reserved = c.clone();
    reserved.insert("x".into(), json!({"_sd": []}));
    assert_eq!(
        issue(reserved, ClaimPath::keys(&["sub"]))
            .unwrap_err()
            .code(),
        "sd-jwt-issue-reserved-claim-name"
    );
    let mut no_vct = c.clone();
    no_vct.remove("vct");
    assert_eq!(
        issue(no_vct, ClaimPath::keys(&["sub"])).unwrap_err().code(),
        "sd-jwt-issue-missing-claim"
    );
}

#[test]
fn flattened_json_presentations_verify_and_keep_their_binding() {
    let f = Fixture::new();
    let good = f.presentation();
    let json = hygeia_credentials::sd_jwt::to_flattened_json(&good).unwrap();
    assert!(f.verify(&json).is_ok());
    let mut value: Value = serde_json::from_str(&json).unwrap();
    value["header"]["disclosures"].as_array_mut().unwrap().pop();
    assert_eq!(
        code(f.verify(&value.to_string())),
        "kb-jwt-sd-hash-mismatch"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Any one byte changed, anywhere in an SD-JWT+KB (issuer JWT,
    /// disclosure, separator or KB-JWT), and the presentation is refused.
    #[test]
    fn any_single_byte_change_is_refused(position in proptest::prelude::any::<proptest::sample::Index>(), byte in proptest::prelude::any::<u8>()) {
        let (f, good) = &*FIXTURE;
        let mut bytes = good.clone().into_bytes();
        let i = position.index(bytes.len());
        proptest::prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        if let Ok(text) = String::from_utf8(bytes) {
            proptest::prop_assert!(f.verify(&text).is_err(), "accepted a change at byte {} to {:#x}", i, byte);
        }
    }
}

static FIXTURE: std::sync::LazyLock<(Fixture, String)> = std::sync::LazyLock::new(|| {
    let f = Fixture::new();
    let p = f.presentation();
    (f, p)
});
