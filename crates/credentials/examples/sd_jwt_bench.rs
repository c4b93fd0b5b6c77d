//! SD-JWT VC + KB-JWT verifications per second, on one thread: a
//! clinician licence with 4 disclosures, all presented, key binding
//! required (issuer signature, 4 digests, holder signature, sd_hash).
//!
//! Run with `cargo run --release -p hygeia-credentials --example sd_jwt_bench`.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hygeia_credentials::credential_types::{ClinicianLicence, Credential, Issuance};
use hygeia_credentials::jws::{Header, SigningKey};
use hygeia_credentials::sd_jwt::{verify_presentation, ClaimPath, SdJwt, VerifyOptions};
use hygeia_identity::Keypair;

const RUNS: usize = 7;
const VERIFICATIONS_PER_RUN: usize = 2_000;

fn main() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    for (label, issuer, holder) in [
        (
            "EdDSA issuer, EdDSA holder",
            SigningKey::generate_ed25519(),
            SigningKey::generate_ed25519(),
        ),
        (
            "ES256 issuer, ES256 holder",
            SigningKey::generate_p256(),
            SigningKey::generate_p256(),
        ),
    ] {
        let subject = Keypair::generate().did();
        let licence = Credential::ClinicianLicence(ClinicianLicence {
            subject,
            licence_number: Some("DE-ÄK-12345".into()),
            profession: "physician".into(),
            specialty: Some("cardiology".into()),
            jurisdiction: "DE".into(),
        });
        let issuance = Issuance {
            issuer: "did:web:board.example".into(),
            issued_at: now,
            expires_at: Some(now + 86_400),
            holder_key: holder.verifying_key(),
            status: None,
            key_id: Some("board-1".into()),
        };
        // Two members beyond the type's defaults, for 4 disclosures.
        let issued = licence
            .builder(&issuance)
            .expect("valid licence")
            .disclosable(ClaimPath::keys(&["profession"]))
            .disclosable(ClaimPath::keys(&["jurisdiction"]))
            .decoys_per_object(2)
            .issue(&issuer)
            .expect("issued");
        let issuer_key = issuer.verifying_key();
        let resolver = |_: &str, _: &Header| Some(issuer_key.clone());
        let held = SdJwt::parse(&issued, &resolver).expect("holder reads it");
        assert_eq!(held.disclosable_paths().len(), 4);
        let presentation = held
            .present_with_key_binding(
                &[ClaimPath::root()],
                "did:web:clinic.example",
                "n",
                now,
                &holder,
            )
            .expect("presented");
        let options = VerifyOptions::new(now).require_key_binding("did:web:clinic.example", "n");

        let mut rates = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let start = Instant::now();
            for _ in 0..VERIFICATIONS_PER_RUN {
                let verified =
                    verify_presentation(&presentation, &resolver, &options).expect("verifies");
                std::hint::black_box(verified);
            }
            rates.push(VERIFICATIONS_PER_RUN as f64 / start.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{label}: {} bytes, 4 disclosures: median {:.0} verifications/s (min {:.0}, max {:.0}; {RUNS} runs of {VERIFICATIONS_PER_RUN})",
            presentation.len(),
            rates[RUNS / 2],
            rates[0],
            rates[RUNS - 1]
        );
    }
}
