//! The trial rules: the oncology scenario from registration to a site paid
//! after re-consent, and each refusal with its code and no change.

use hygeia_credentials::credential_types::VCT_TRIAL_SITE_ACCREDITATION;
use hygeia_credentials::status_list::{StatusList, StatusPurpose};
use hygeia_credentials::status_list_credential::StatusListCredential;
use hygeia_identity::Keypair;
use serde_json::{json, Value};

use super::*;
use crate::escrow::EscrowStatus;
use crate::testing::{copy, did, site_presentation, Network};
use crate::{Effect, LedgerState};

const UNIT: &str = "eur-cents";

fn fingerprint(state: &LedgerState) -> String {
    serde_json::to_string(state).unwrap()
}

struct Trial {
    net: Network,
    sponsor: Keypair,
    committee: Keypair,
    accreditor: Keypair,
    site: Keypair,
    subject: Keypair,
    study: String,
    protocol: String,
}

fn hash(n: u8) -> String {
    hex::encode([n; 32])
}

impl Trial {
    /// Signs, applies and returns the leaf hash of the transaction.
    fn run(
        &mut self,
        key: &Keypair,
        tx_type: &str,
        body: Value,
    ) -> Result<String, hygeia_ledger::TxError> {
        let tx = self.net.sign(key, tx_type, body)?;
        self.net.state.apply(self.net.next, &tx)?;
        self.net.next += 1;
        Ok(hex::encode(tx.leaf_hash().0))
    }

    fn ok(&mut self, key: &Keypair, tx_type: &str, body: Value) -> String {
        match self.run(key, tx_type, body) {
            Ok(hash) => hash,
            Err(e) => panic!("{tx_type}: {e}"),
        }
    }

    /// Submits, expects `code`, and checks nothing changed.
    fn refused(&mut self, key: &Keypair, tx_type: &str, body: Value, code: &str) {
        let before = fingerprint(&self.net.state);
        let next = self.net.next;
        let err = self.run(key, tx_type, body).expect_err(tx_type);
        assert_eq!(err.code.as_str(), code, "{tx_type}: {err}");
        assert_eq!(
            fingerprint(&self.net.state),
            before,
            "{tx_type} changed the state"
        );
        assert_eq!(self.net.next, next);
    }

    fn list_id(&self) -> String {
        self.list_named("sites")
    }

    fn list_named(&self, name: &str) -> String {
        format!(
            "https://accreditor.example{}",
            crate::credentials::list_path(&did(&self.accreditor), name)
        )
    }

    fn publish_list(&mut self, revoked: &[usize]) {
        self.publish(StatusPurpose::Revocation, "sites", revoked);
    }

    fn publish(&mut self, purpose: StatusPurpose, name: &str, revoked: &[usize]) {
        let mut list = StatusList::new(0).unwrap();
        for i in revoked {
            list.set(*i, true).unwrap();
        }
        let created = time::OffsetDateTime::from_unix_timestamp(self.net.now - 3600).unwrap();
        let credential = StatusListCredential {
            id: self.list_named(name),
            issuer: did(&self.accreditor),
            purpose,
            list,
            valid_from: Some(created),
            valid_until: None,
        }
        .issue(
            &self.accreditor,
            &self.accreditor.did().verification_method(),
            created,
        )
        .unwrap();
        let a = copy(&self.accreditor);
        self.ok(&a, "status.list", json!({ "credential": credential }));
    }

    fn presentation(&self, site: &Keypair, study: &str) -> String {
        let audience = self.net.state.network.id().unwrap().to_owned();
        let status = json!({
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": "3",
            "statusListCredential": self.list_id(),
        });
        site_presentation(
            &self.accreditor,
            &did(site),
            site,
            study,
            &audience,
            self.net.now,
            Some(status),
        )
    }

    fn consent(&self, version: &str, protocol: &str) -> Value {
        json!({"study": self.study, "site": did(&self.site), "version": version,
               "protocol": protocol, "document": hash(0x11)})
    }

    fn milestone(&self, milestone: &str) -> Value {
        json!({"study": self.study, "subject": did(&self.subject), "milestone": milestone})
    }

    fn subject(&self) -> Subject {
        self.net
            .state
            .trials
            .subject(&self.study, &did(&self.subject))
            .unwrap()
            .clone()
    }
}

/// A study registered by a sponsor with funds, its committee and a site's
/// accreditor on the trust list, the clock ticked; `approve` approves
/// version 1.0, and `recruit` activates the site and opens recruiting.
fn trial(approve: bool, recruit: bool) -> Trial {
    let net = Network::new();
    let sponsor = Keypair::generate();
    let mut t = Trial {
        net,
        sponsor,
        committee: Keypair::generate(),
        accreditor: Keypair::generate(),
        site: Keypair::generate(),
        subject: Keypair::generate(),
        study: String::new(),
        protocol: hash(0xa1),
    };
    let governance = copy(&t.net.cast.governance);
    let node = copy(&t.net.node);
    let now = t.net.now;
    t.ok(&node, "clock.tick", json!({"time": now}));
    t.ok(
        &governance,
        "trust.issuer",
        json!({"issuer": did(&t.committee), "credential_type": VCT_ETHICS_COMMITTEE, "jurisdictions": [], "op": "add"}),
    );
    t.ok(
        &governance,
        "trust.issuer",
        json!({"issuer": did(&t.accreditor), "credential_type": VCT_TRIAL_SITE_ACCREDITATION, "jurisdictions": [], "op": "add"}),
    );
    t.publish_list(&[]);
    t.ok(
        &governance,
        "unit.register",
        json!({"unit": UNIT, "issuer": did(&t.sponsor)}),
    );
    let sponsor = copy(&t.sponsor);
    t.ok(
        &sponsor,
        "unit.mint",
        json!({"unit": UNIT, "to": did(&sponsor), "amount": 1_000_000}),
    );
    t.study = t.ok(
        &sponsor,
        study::STUDY_REGISTER,
        json!({"protocol": t.protocol, "version": "1.0", "committee": did(&t.committee)}),
    );
    if approve {
        let committee = copy(&t.committee);
        let body = json!({"study": t.study, "version": "1.0", "protocol": t.protocol});
        t.ok(&committee, ethics::ETHICS_APPROVE, body);
    }
    if recruit {
        let body = json!({"study": t.study, "site": did(&t.site), "presentation": t.presentation(&t.site, &t.study)});
        t.ok(&sponsor, sites::SITE_ACTIVATE, body);
        let body = json!({"study": t.study, "state": "recruiting"});
        t.ok(&sponsor, study::STUDY_PROGRESS, body);
    }
    t
}

/// Registration → approval → site → consent → screened, enrolled, visit 1
/// (the site paid from the sponsor's escrow) → an amendment approved with
/// re-consent → visit 2 refused until the subject consents to 2.0 → visit
/// 2 pays the site.
#[test]
fn the_oncology_trial_pays_the_site_per_milestone_after_re_consent() {
    let mut t = trial(true, true);
    let (sponsor, committee, site, subject) = (
        copy(&t.sponsor),
        copy(&t.committee),
        copy(&t.site),
        copy(&t.subject),
    );
    let s = t.net.state.trials.study(&t.study).unwrap().clone();
    assert_eq!(s.state, StudyState::Recruiting);
    assert_eq!(s.current().unwrap().version, "1.0");
    assert_eq!(
        s.history
            .iter()
            .map(|(st, _)| st.code())
            .collect::<Vec<_>>(),
        ["in-review", "approved", "recruiting"]
    );

    t.ok(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &t.protocol.clone()),
    );
    assert_eq!(t.subject().state, SubjectState::Candidate);

    // The sponsor escrows the site's fees, per milestone of this subject.
    let refund_after = t.net.now + 365 * 86_400;
    let mut escrows = Vec::new();
    for (milestone, fee) in [
        ("enrolled", 50_000),
        ("visit-1", 20_000),
        ("visit-2", 20_000),
    ] {
        let id = milestone_id(&t.study, &did(&subject), &milestone.parse().unwrap());
        escrows.push(t.ok(
            &sponsor,
            "escrow.open",
            json!({"unit": UNIT, "amount": fee, "beneficiary": did(&site),
                   "condition": {"kind": "milestone", "id": id}, "refund_after": refund_after}),
        ));
    }
    let balance = |t: &Trial| t.net.state.accounts.balance(UNIT, &did(&t.site));
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("screened"));
    assert_eq!(balance(&t), 0);
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("enrolled"));
    assert_eq!(balance(&t), 50_000);
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("visit-1"));
    assert_eq!(balance(&t), 70_000);
    assert_eq!(t.subject().state, SubjectState::OnStudy);
    assert_eq!(t.net.state.trials.study(&t.study).unwrap().enrolled, 1);

    // An amendment: proposed, not yet in force.
    let v2 = hash(0xa2);
    t.ok(
        &sponsor,
        study::STUDY_AMEND,
        json!({"study": t.study, "protocol": v2, "version": "2.0", "reconsent": true}),
    );
    // Until the committee approves, 1.0 is current and visits go on? No
    // visit is needed here; a consent to 2.0 is refused.
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("2.0", &v2),
        "trial.version_not_approved",
    );
    t.ok(
        &committee,
        ethics::ETHICS_APPROVE,
        json!({"study": t.study, "version": "2.0", "protocol": v2}),
    );
    // Approved with re-consent: visit 2 does not count, and pays nothing.
    t.refused(
        &site,
        subjects::SUBJECT_MILESTONE,
        t.milestone("visit-2"),
        "trial.reconsent_required",
    );
    assert_eq!(balance(&t), 70_000);
    // A consent to the superseded version is refused.
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &t.protocol.clone()),
        "trial.version_superseded",
    );
    t.ok(&subject, econsent::ECONSENT_GIVE, t.consent("2.0", &v2));
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("visit-2"));
    assert_eq!(balance(&t), 90_000);
    for id in &escrows {
        assert_eq!(
            t.net.state.escrows.get(id).unwrap().status,
            EscrowStatus::Released
        );
    }
    let subject_entry = t.subject();
    assert_eq!(subject_entry.consents.len(), 2);
    assert_eq!(subject_entry.last_visit, 2);
    assert_eq!(
        subject_entry
            .milestones
            .iter()
            .map(|(m, _)| m.to_string())
            .collect::<Vec<_>>(),
        ["screened", "enrolled", "visit-1", "visit-2"]
    );

    // A deviation is an event; the same report twice is refused.
    let deviation = json!({"study": t.study, "subject": did(&subject), "severity": "minor", "report": hash(0xd1)});
    t.ok(&site, subjects::SUBJECT_DEVIATION, deviation.clone());
    t.refused(
        &site,
        subjects::SUBJECT_DEVIATION,
        deviation,
        "trial.deviation_exists",
    );

    // Completion, then nothing more.
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("completed"));
    assert_eq!(t.subject().state, SubjectState::OffStudy);
    t.refused(
        &site,
        subjects::SUBJECT_MILESTONE,
        t.milestone("visit-3"),
        "trial.subject_ended",
    );
}

/// An amendment without re-consent takes effect on approval and the
/// subjects' consents to the earlier version still count.
#[test]
fn an_amendment_without_reconsent_keeps_consents() {
    let mut t = trial(true, true);
    let (sponsor, committee, site, subject) = (
        copy(&t.sponsor),
        copy(&t.committee),
        copy(&t.site),
        copy(&t.subject),
    );
    t.ok(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &t.protocol.clone()),
    );
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("screened"));
    let v = hash(0xb1);
    t.ok(
        &sponsor,
        study::STUDY_AMEND,
        json!({"study": t.study, "protocol": v, "version": "1.1", "reconsent": false}),
    );
    t.ok(
        &committee,
        ethics::ETHICS_APPROVE,
        json!({"study": t.study, "version": "1.1", "protocol": v}),
    );
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("enrolled"));
    // A new subject consents to the current version only.
    let other = Keypair::generate();
    t.refused(
        &other,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &t.protocol.clone()),
        "trial.version_superseded",
    );
    t.ok(&other, econsent::ECONSENT_GIVE, t.consent("1.1", &v));
}

/// Withdrawal at any time: the subject becomes withdrawn, and no milestone,
/// consent or payment follows.
#[test]
fn withdrawal_stops_milestones_and_payments() {
    let mut t = trial(true, true);
    let (sponsor, site, subject) = (copy(&t.sponsor), copy(&t.site), copy(&t.subject));
    t.ok(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &t.protocol.clone()),
    );
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("screened"));
    let id = milestone_id(&t.study, &did(&subject), &Milestone::Enrolled);
    let escrow = t.ok(
        &sponsor,
        "escrow.open",
        json!({"unit": UNIT, "amount": 100, "beneficiary": did(&site),
               "condition": {"kind": "milestone", "id": id}, "refund_after": t.net.now + 86_400}),
    );
    let stranger = Keypair::generate();
    t.refused(
        &stranger,
        econsent::ECONSENT_WITHDRAW,
        json!({"study": t.study}),
        "trial.not_subject",
    );
    t.ok(
        &subject,
        econsent::ECONSENT_WITHDRAW,
        json!({"study": t.study}),
    );
    let entry = t.subject();
    assert_eq!(entry.state, SubjectState::Withdrawn);
    assert!(entry.withdrawn_by_subject);
    t.refused(
        &site,
        subjects::SUBJECT_MILESTONE,
        t.milestone("enrolled"),
        "trial.subject_ended",
    );
    t.refused(
        &subject,
        econsent::ECONSENT_WITHDRAW,
        json!({"study": t.study}),
        "trial.already_withdrawn",
    );
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &t.protocol.clone()),
        "trial.subject_ended",
    );
    assert_eq!(
        t.net.state.escrows.get(&escrow).unwrap().status,
        EscrowStatus::Locked
    );
    assert_eq!(t.net.state.accounts.balance(UNIT, &did(&site)), 0);
}

/// A revoked site accreditation stops consent and milestones at its site
/// at once; a site may still record a withdrawal.
#[test]
fn a_revoked_site_accreditation_stops_enrolment() {
    let mut t = trial(true, true);
    let (site, subject) = (copy(&t.site), copy(&t.subject));
    t.ok(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &t.protocol.clone()),
    );
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("screened"));
    t.publish_list(&[3]);
    t.refused(
        &site,
        subjects::SUBJECT_MILESTONE,
        t.milestone("enrolled"),
        "trial.site_revoked",
    );
    let other = Keypair::generate();
    t.refused(
        &other,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &t.protocol.clone()),
        "trial.site_revoked",
    );
    // Distrusting the accreditor stops it too.
    t.publish_list(&[]);
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("enrolled"));
    let governance = copy(&t.net.cast.governance);
    t.ok(
        &governance,
        "trust.issuer",
        json!({"issuer": did(&t.accreditor), "credential_type": VCT_TRIAL_SITE_ACCREDITATION, "jurisdictions": [], "op": "remove"}),
    );
    t.refused(
        &site,
        subjects::SUBJECT_MILESTONE,
        t.milestone("visit-1"),
        "trial.site_untrusted",
    );
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("withdrawn"));
    assert_eq!(t.subject().state, SubjectState::Withdrawn);
    assert!(!t.subject().withdrawn_by_subject);
}

#[test]
fn amendments_need_the_studys_trusted_committee() {
    let mut t = trial(false, false);
    let (sponsor, committee) = (copy(&t.sponsor), copy(&t.committee));
    let stranger = Keypair::generate();
    let approve = |t: &Trial, version: &str, protocol: &str| json!({"study": t.study, "version": version, "protocol": protocol});
    let p = t.protocol.clone();
    // Only the named committee approves, and only with the right hash.
    t.refused(
        &stranger,
        ethics::ETHICS_APPROVE,
        approve(&t, "1.0", &p),
        "trial.not_committee",
    );
    t.refused(
        &sponsor,
        ethics::ETHICS_APPROVE,
        approve(&t, "1.0", &p),
        "trial.not_committee",
    );
    t.refused(
        &committee,
        ethics::ETHICS_APPROVE,
        approve(&t, "1.0", &hash(0xee)),
        "trial.protocol_mismatch",
    );
    t.refused(
        &committee,
        ethics::ETHICS_APPROVE,
        approve(&t, "9.9", &p),
        "trial.version_unknown",
    );
    // Nothing before approval: no amendment, no recruiting, no consent.
    t.refused(
        &sponsor,
        study::STUDY_AMEND,
        json!({"study": t.study, "protocol": hash(0xa2), "version": "2.0", "reconsent": true}),
        "trial.amendment_pending",
    );
    t.refused(
        &sponsor,
        study::STUDY_PROGRESS,
        json!({"study": t.study, "state": "recruiting"}),
        "trial.bad_transition",
    );
    t.ok(&committee, ethics::ETHICS_APPROVE, approve(&t, "1.0", &p));
    t.refused(
        &committee,
        ethics::ETHICS_APPROVE,
        approve(&t, "1.0", &p),
        "trial.already_approved",
    );
    // Amendments: only the sponsor, a new version and a new document.
    t.refused(
        &stranger,
        study::STUDY_AMEND,
        json!({"study": t.study, "protocol": hash(0xa2), "version": "2.0", "reconsent": true}),
        "trial.not_sponsor",
    );
    t.refused(
        &sponsor,
        study::STUDY_AMEND,
        json!({"study": t.study, "protocol": hash(0xa2), "version": "1.0", "reconsent": true}),
        "trial.version_exists",
    );
    t.refused(
        &sponsor,
        study::STUDY_AMEND,
        json!({"study": t.study, "protocol": p, "version": "2.0", "reconsent": true}),
        "trial.protocol_exists",
    );
    t.refused(
        &sponsor,
        study::STUDY_AMEND,
        json!({"study": hash(0x77), "protocol": hash(0xa2), "version": "2.0", "reconsent": true}),
        "trial.unknown_study",
    );
    t.ok(
        &sponsor,
        study::STUDY_AMEND,
        json!({"study": t.study, "protocol": hash(0xa2), "version": "2.0", "reconsent": true}),
    );
    // A committee the governance no longer trusts approves nothing.
    let governance = copy(&t.net.cast.governance);
    t.ok(
        &governance,
        "trust.issuer",
        json!({"issuer": did(&committee), "credential_type": VCT_ETHICS_COMMITTEE, "jurisdictions": [], "op": "remove"}),
    );
    t.refused(
        &committee,
        ethics::ETHICS_APPROVE,
        approve(&t, "2.0", &hash(0xa2)),
        "trial.untrusted_committee",
    );
    assert_eq!(
        t.net
            .state
            .trials
            .study(&t.study)
            .unwrap()
            .current()
            .unwrap()
            .version,
        "1.0"
    );
}

#[test]
fn an_untrusted_committee_approves_nothing() {
    let mut t = trial(false, false);
    let sponsor = copy(&t.sponsor);
    let rogue = Keypair::generate();
    let study = t.ok(
        &sponsor,
        study::STUDY_REGISTER,
        json!({"protocol": hash(0xc1), "version": "1", "committee": did(&rogue)}),
    );
    t.refused(
        &rogue,
        ethics::ETHICS_APPROVE,
        json!({"study": study, "version": "1", "protocol": hash(0xc1)}),
        "trial.untrusted_committee",
    );
    // A sponsor is not its own committee, nor registers in another's name.
    t.refused(
        &sponsor,
        study::STUDY_REGISTER,
        json!({"protocol": hash(0xc2), "version": "1", "committee": did(&sponsor)}),
        "trial.committee_is_sponsor",
    );
    t.refused(&rogue, study::STUDY_REGISTER, json!({"protocol": hash(0xc2), "version": "1", "committee": did(&t.committee), "sponsor": did(&sponsor)}), "trial.not_sponsor");
}

#[test]
fn sites_need_an_accreditation_for_the_study_bound_to_their_key() {
    let mut t = trial(true, false);
    let sponsor = copy(&t.sponsor);
    let site = copy(&t.site);
    let study = t.study.clone();
    let activate = |t: &Trial, presentation: String| json!({"study": t.study, "site": did(&t.site), "presentation": presentation});
    // For another study.
    let body = activate(&t, t.presentation(&site, &hash(0x99)));
    t.refused(
        &sponsor,
        sites::SITE_ACTIVATE,
        body,
        "trial.site_invalid_accreditation",
    );
    // Bound to another key than the site's.
    let other = Keypair::generate();
    let body = activate(&t, t.presentation(&other, &study));
    t.refused(
        &sponsor,
        sites::SITE_ACTIVATE,
        body,
        "trial.site_not_subject",
    );
    // About the site, but bound to (and presented with) another key.
    let audience = t.net.state.network.id().unwrap().to_owned();
    let status = None;
    let stolen = site_presentation(
        &t.accreditor,
        &did(&site),
        &other,
        &study,
        &audience,
        t.net.now,
        status,
    );
    t.refused(
        &sponsor,
        sites::SITE_ACTIVATE,
        activate(&t, stolen),
        "trial.site_not_holder",
    );
    // From an accreditor no one trusts.
    let rogue = Keypair::generate();
    let forged = site_presentation(
        &rogue,
        &did(&site),
        &site,
        &study,
        &audience,
        t.net.now,
        None,
    );
    t.refused(
        &sponsor,
        sites::SITE_ACTIVATE,
        activate(&t, forged),
        "trial.site_untrusted",
    );
    // Not the sponsor.
    let body = activate(&t, t.presentation(&site, &study));
    t.refused(
        &site,
        sites::SITE_ACTIVATE,
        body.clone(),
        "trial.not_sponsor",
    );
    t.ok(&sponsor, sites::SITE_ACTIVATE, body.clone());
    t.refused(&sponsor, sites::SITE_ACTIVATE, body, "trial.site_exists");
    // Consent before recruiting is refused.
    let subject = copy(&t.subject);
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &t.protocol.clone()),
        "trial.not_recruiting",
    );
}

#[test]
fn consent_and_milestones_refuse_what_the_protocol_does_not_allow() {
    let mut t = trial(true, true);
    let (sponsor, site, subject) = (copy(&t.sponsor), copy(&t.site), copy(&t.subject));
    let p = t.protocol.clone();
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("3.0", &p),
        "trial.version_unknown",
    );
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &hash(0x55)),
        "trial.protocol_mismatch",
    );
    let mut elsewhere = t.consent("1.0", &p);
    elsewhere["site"] = json!(did(&Keypair::generate()));
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        elsewhere,
        "trial.site_not_active",
    );
    t.refused(
        &sponsor,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &p),
        "trial.subject_is_party",
    );
    t.refused(
        &site,
        subjects::SUBJECT_MILESTONE,
        t.milestone("screened"),
        "trial.unknown_subject",
    );
    t.ok(&subject, econsent::ECONSENT_GIVE, t.consent("1.0", &p));
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &p),
        "trial.already_consented",
    );
    // Only the subject's site, in order.
    t.refused(
        &sponsor,
        subjects::SUBJECT_MILESTONE,
        t.milestone("screened"),
        "trial.not_site",
    );
    t.refused(
        &subject,
        subjects::SUBJECT_MILESTONE,
        t.milestone("screened"),
        "trial.not_site",
    );
    t.refused(
        &site,
        subjects::SUBJECT_MILESTONE,
        t.milestone("enrolled"),
        "trial.bad_transition",
    );
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("screened"));
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("enrolled"));
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("visit-2"));
    t.refused(
        &site,
        subjects::SUBJECT_MILESTONE,
        t.milestone("visit-1"),
        "trial.bad_transition",
    );
    // A study that stops recruiting enrols no one; its subjects go on.
    t.ok(
        &sponsor,
        study::STUDY_PROGRESS,
        json!({"study": t.study, "state": "closed-to-accrual"}),
    );
    let other = Keypair::generate();
    t.refused(
        &other,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &p),
        "trial.not_recruiting",
    );
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("visit-3"));
    t.refused(
        &sponsor,
        study::STUDY_PROGRESS,
        json!({"study": t.study, "state": "recruiting"}),
        "trial.bad_transition",
    );
    t.ok(
        &sponsor,
        study::STUDY_PROGRESS,
        json!({"study": t.study, "state": "completed"}),
    );
    t.refused(
        &site,
        subjects::SUBJECT_MILESTONE,
        t.milestone("visit-4"),
        "trial.study_ended",
    );
}

#[test]
fn milestone_codes_round_trip_and_refuse_look_alikes() {
    for code in [
        "screened",
        "screen-failed",
        "enrolled",
        "visit-1",
        "visit-999",
        "completed",
        "withdrawn",
    ] {
        assert_eq!(code.parse::<Milestone>().unwrap().to_string(), code);
    }
    for bad in [
        "visit-0",
        "visit-01",
        "visit-1000",
        "visit-",
        "visit-+1",
        "Enrolled",
        "",
    ] {
        assert!(bad.parse::<Milestone>().is_err(), "{bad}");
    }
    // An id is codes under the study, within the escrow id rules.
    let id = milestone_id(&hash(1), "did:key:z6Mk", &Milestone::Visit(12));
    crate::escrow::check_milestone_id(&id).unwrap();
    let _ = Effect::None;
}

/// An accreditation whose `study_id` is `claimed` while its key binding
/// names `study` (the one being activated), with `status` as its status
/// claim.
fn accreditation_for(t: &Trial, claimed: &str, status: Option<Value>, now: i64) -> String {
    use hygeia_credentials::credential_types::{Credential, Issuance, TrialSiteAccreditation};
    use hygeia_credentials::jws::{SigningKey, VerifyingKey};
    use hygeia_credentials::sd_jwt::SdJwt;
    let issuance = Issuance {
        issuer: did(&t.accreditor),
        issued_at: now - 86_400,
        expires_at: Some(now + 86_400 * 365),
        holder_key: VerifyingKey::from(t.site.public_key()),
        status,
        key_id: Some(t.accreditor.did().verification_method()),
    };
    let issued = Credential::TrialSiteAccreditation(TrialSiteAccreditation {
        site: did(&t.site),
        study_id: claimed.to_owned(),
        scope: vec!["enrolment".into()],
    })
    .issue(&issuance, &SigningKey::from(copy(&t.accreditor)))
    .unwrap();
    let key = VerifyingKey::from(t.accreditor.public_key());
    let audience = t.net.state.network.id().unwrap().to_owned();
    SdJwt::parse(&issued, &|_: &str, _: &_| Some(key.clone()))
        .unwrap()
        .present_with_key_binding(
            &[],
            &audience,
            &t.study,
            now,
            &SigningKey::from(copy(&t.site)),
        )
        .unwrap()
}

#[test]
fn a_site_activation_refuses_what_is_not_this_sites_accreditation_for_this_study() {
    let mut t = trial(true, false);
    let sponsor = copy(&t.sponsor);
    let now = t.net.now;
    let activate = |t: &Trial, presentation: String| json!({"study": t.study, "site": did(&t.site), "presentation": presentation});
    // For another study, though presented for this one.
    let body = activate(&t, accreditation_for(&t, &hash(0x42), None, now));
    t.refused(
        &sponsor,
        sites::SITE_ACTIVATE,
        body,
        "trial.site_wrong_study",
    );
    // Another credential type (a device attestation) presented for it.
    let audience = t.net.state.network.id().unwrap().to_owned();
    let device =
        crate::testing::device_presentation(&t.accreditor, &t.site, &audience, &t.study, now, None);
    t.refused(
        &sponsor,
        sites::SITE_ACTIVATE,
        activate(&t, device),
        "trial.site_wrong_type",
    );
    // A status list outside the accreditor's namespace.
    let foreign = json!({"type": "BitstringStatusListEntry", "statusPurpose": "revocation",
        "statusListIndex": "1", "statusListCredential": "https://evil.example/v1/status-lists/x/l"});
    let body = activate(
        &t,
        accreditation_for(&t, &t.study.clone(), Some(foreign), now),
    );
    t.refused(
        &sponsor,
        sites::SITE_ACTIVATE,
        body,
        "trial.site_bad_status",
    );
    // The sponsor or the committee as the site.
    let mut body = activate(&t, t.presentation(&t.site, &t.study));
    body["site"] = json!(did(&sponsor));
    t.refused(&sponsor, sites::SITE_ACTIVATE, body, "trial.site_is_party");
}

#[test]
fn a_site_counts_only_within_its_accreditation_and_its_status() {
    // Suspended.
    let mut t = trial(true, false);
    let sponsor = copy(&t.sponsor);
    let subject = copy(&t.subject);
    let now = t.net.now;
    t.publish(StatusPurpose::Suspension, "suspended", &[]);
    let status = json!({"type": "BitstringStatusListEntry", "statusPurpose": "suspension",
        "statusListIndex": "2", "statusListCredential": t.list_named("suspended")});
    let body = json!({"study": t.study, "site": did(&t.site), "presentation": accreditation_for(&t, &t.study.clone(), Some(status), now)});
    t.ok(&sponsor, sites::SITE_ACTIVATE, body);
    t.ok(
        &sponsor,
        study::STUDY_PROGRESS,
        json!({"study": t.study, "state": "recruiting"}),
    );
    t.publish(StatusPurpose::Suspension, "suspended", &[2]);
    let p = t.protocol.clone();
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &p),
        "trial.site_suspended",
    );
    t.publish(StatusPurpose::Suspension, "suspended", &[]);
    t.ok(&subject, econsent::ECONSENT_GIVE, t.consent("1.0", &p));
    // Expired by the ledger's clock a year later.
    let node = copy(&t.net.node);
    t.ok(&node, "clock.tick", json!({"time": now + 366 * 86_400}));
    let site = copy(&t.site);
    t.refused(
        &site,
        subjects::SUBJECT_MILESTONE,
        t.milestone("screened"),
        "trial.site_expired",
    );

    // A status list never published: unknown, fail closed.
    let mut t = trial(true, false);
    let sponsor = copy(&t.sponsor);
    let status = json!({"type": "BitstringStatusListEntry", "statusPurpose": "revocation",
        "statusListIndex": "2", "statusListCredential": t.list_named("never")});
    let body = json!({"study": t.study, "site": did(&t.site), "presentation": accreditation_for(&t, &t.study.clone(), Some(status), now)});
    t.ok(&sponsor, sites::SITE_ACTIVATE, body);
    t.ok(
        &sponsor,
        study::STUDY_PROGRESS,
        json!({"study": t.study, "state": "recruiting"}),
    );
    let subject = copy(&t.subject);
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &p),
        "trial.site_status_unknown",
    );

    // Issued after the ledger's clock (beyond its lag): not yet valid.
    let mut t = trial(true, false);
    let sponsor = copy(&t.sponsor);
    let later = accreditation_for(&t, &t.study.clone(), None, now + 10 * 86_400);
    let body = json!({"study": t.study, "site": did(&t.site), "presentation": later});
    t.ok(&sponsor, sites::SITE_ACTIVATE, body);
    t.ok(
        &sponsor,
        study::STUDY_PROGRESS,
        json!({"study": t.study, "state": "recruiting"}),
    );
    let subject = copy(&t.subject);
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &p),
        "trial.site_not_yet_valid",
    );
}

#[test]
fn a_subject_re_consents_at_its_own_site_and_an_ended_study_takes_nothing() {
    let mut t = trial(true, true);
    let (sponsor, committee, subject) = (copy(&t.sponsor), copy(&t.committee), copy(&t.subject));
    let p = t.protocol.clone();
    t.ok(&subject, econsent::ECONSENT_GIVE, t.consent("1.0", &p));
    // A second site.
    let second = Keypair::generate();
    let body = json!({"study": t.study, "site": did(&second), "presentation": t.presentation(&second, &t.study)});
    t.ok(&sponsor, sites::SITE_ACTIVATE, body);
    let v2 = hash(0xa2);
    t.ok(
        &sponsor,
        study::STUDY_AMEND,
        json!({"study": t.study, "protocol": v2, "version": "2.0", "reconsent": true}),
    );
    t.ok(
        &committee,
        ethics::ETHICS_APPROVE,
        json!({"study": t.study, "version": "2.0", "protocol": v2}),
    );
    let mut elsewhere = t.consent("2.0", &v2);
    elsewhere["site"] = json!(did(&second));
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        elsewhere,
        "trial.other_site",
    );
    // Terminated: nothing more, by anyone.
    t.ok(
        &sponsor,
        study::STUDY_PROGRESS,
        json!({"study": t.study, "state": "terminated"}),
    );
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("2.0", &v2),
        "trial.study_ended",
    );
    t.refused(
        &sponsor,
        study::STUDY_AMEND,
        json!({"study": t.study, "protocol": hash(0xa3), "version": "3.0", "reconsent": true}),
        "trial.study_ended",
    );
    let third = Keypair::generate();
    let body = json!({"study": t.study, "site": did(&third), "presentation": t.presentation(&third, &t.study)});
    t.refused(&sponsor, sites::SITE_ACTIVATE, body, "trial.study_ended");
    let site = copy(&t.site);
    t.refused(
        &site,
        subjects::SUBJECT_MILESTONE,
        t.milestone("screened"),
        "trial.study_ended",
    );
    t.refused(
        &sponsor,
        study::STUDY_PROGRESS,
        json!({"study": t.study, "state": "completed"}),
        "trial.bad_transition",
    );
    // The site still records a withdrawal.
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("withdrawn"));
}

#[test]
fn a_study_pending_approval_ends_only_by_withdrawal_and_the_committee_cannot_approve_it_then() {
    let mut t = trial(false, false);
    let (sponsor, committee) = (copy(&t.sponsor), copy(&t.committee));
    t.ok(
        &sponsor,
        study::STUDY_PROGRESS,
        json!({"study": t.study, "state": "withdrawn"}),
    );
    let p = t.protocol.clone();
    t.refused(
        &committee,
        ethics::ETHICS_APPROVE,
        json!({"study": t.study, "version": "1.0", "protocol": p}),
        "trial.study_ended",
    );
}

#[test]
fn the_state_a_study_and_a_subject_hold_is_bounded() {
    let mut t = trial(true, true);
    let (sponsor, committee, site, subject) = (
        copy(&t.sponsor),
        copy(&t.committee),
        copy(&t.site),
        copy(&t.subject),
    );
    for v in 2..=study::MAX_VERSIONS {
        let (version, protocol) = (format!("{v}"), hex::encode([v as u8; 32]));
        t.ok(
            &sponsor,
            study::STUDY_AMEND,
            json!({"study": t.study, "protocol": protocol, "version": version, "reconsent": false}),
        );
        t.ok(
            &committee,
            ethics::ETHICS_APPROVE,
            json!({"study": t.study, "version": version, "protocol": protocol}),
        );
    }
    t.refused(
        &sponsor,
        study::STUDY_AMEND,
        json!({"study": t.study, "protocol": hash(0xff), "version": "x", "reconsent": false}),
        "trial.too_many_versions",
    );
    let current = t
        .net
        .state
        .trials
        .study(&t.study)
        .unwrap()
        .current()
        .unwrap()
        .clone();
    t.ok(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent(&current.version, &current.protocol),
    );
    for i in 0..subjects::MAX_DEVIATIONS {
        let report = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            (i as u64).to_be_bytes(),
        ));
        t.ok(&site, subjects::SUBJECT_DEVIATION, json!({"study": t.study, "subject": did(&subject), "severity": "minor", "report": report}));
    }
    t.refused(&site, subjects::SUBJECT_DEVIATION, json!({"study": t.study, "subject": did(&subject), "severity": "minor", "report": hash(0xfe)}), "trial.too_many_deviations");
    for _ in 1..sites::MAX_SITES {
        let another = Keypair::generate();
        let body = json!({"study": t.study, "site": did(&another), "presentation": t.presentation(&another, &t.study)});
        t.ok(&sponsor, sites::SITE_ACTIVATE, body);
    }
    let another = Keypair::generate();
    let body = json!({"study": t.study, "site": did(&another), "presentation": t.presentation(&another, &t.study)});
    t.refused(&sponsor, sites::SITE_ACTIVATE, body, "trial.too_many_sites");
}

/// A study's subjects are its own range of the ordered map, and survive a
/// snapshot's encoding.
#[test]
fn a_studys_subjects_are_its_own_and_survive_a_snapshot() {
    let mut trials = Trials::default();
    let subject = |site: &str| Subject::new(site.into(), 0, hash(1), 7);
    for (study, did) in [
        ("b", "did:key:z2"),
        ("a", "did:key:z1"),
        ("ab", "did:key:z3"),
        ("a", "did:key:z0"),
    ] {
        trials.put_subject(study, did, subject(study));
    }
    let names = |t: &Trials, study: &str| -> Vec<String> {
        t.subjects_of(study)
            .into_iter()
            .map(|(d, _)| d.to_owned())
            .collect()
    };
    assert_eq!(names(&trials, "a"), ["did:key:z0", "did:key:z1"]);
    assert_eq!(names(&trials, "ab"), ["did:key:z3"]);
    assert!(names(&trials, "c").is_empty());
    let text = serde_json::to_string(&trials).unwrap();
    let back: Trials = serde_json::from_str(&text).unwrap();
    assert_eq!(names(&back, "a"), names(&trials, "a"));
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
}

impl Trial {
    /// The subject's own grant to `grantee` with `purpose` and `actions`.
    fn subject_grant(&mut self, grantee: &str, purpose: &str, actions: &[&str]) -> String {
        let subject = copy(&self.subject);
        let now = self.net.now;
        let body = json!({"patient": did(&subject), "grantee": grantee,
                          "scope": {"categories": ["device"]}, "actions": actions,
                          "purpose": purpose, "not_before": now - 60, "not_after": now + 365 * 86_400});
        self.ok(&subject, "consent.grant", body)
    }

    fn consent_with(&self, version: &str, protocol: &str, grants: &[&str]) -> Value {
        let mut body = self.consent(version, protocol);
        body["grants"] = json!(grants);
        body
    }

    fn revoked(&self, grant: &str) -> bool {
        self.net.state.policy.consents().is_revoked(grant)
    }
}

/// The consent is backed by the subject's HRESCH grants to the sponsor and
/// the site: an amendment asking for re-consent revokes them, the new
/// consent names new ones, and withdrawal revokes those at once.
#[test]
fn the_grants_backing_a_consent_stop_with_re_consent_and_withdrawal() {
    let mut t = trial(true, true);
    let (sponsor, committee, subject) = (copy(&t.sponsor), copy(&t.committee), copy(&t.subject));
    let to_sponsor = t.subject_grant(&did(&sponsor), "HRESCH", &["read"]);
    let to_site = t.subject_grant(&did(&t.site), "HRESCH", &["read"]);
    let body = t.consent_with("1.0", &t.protocol.clone(), &[&to_sponsor, &to_site]);
    t.ok(&subject, econsent::ECONSENT_GIVE, body);
    assert_eq!(t.subject().grants, [to_sponsor.clone(), to_site.clone()]);
    assert!(!t.revoked(&to_sponsor) && !t.revoked(&to_site));

    // An amendment without re-consent leaves them alone.
    let v2 = hash(0xa2);
    let study_id = t.study.clone();
    let amend = |v: &str, p: &str, reconsent: bool| json!({"study": study_id, "protocol": p, "version": v, "reconsent": reconsent});
    t.ok(&sponsor, study::STUDY_AMEND, amend("2.0", &v2, false));
    t.ok(
        &committee,
        ethics::ETHICS_APPROVE,
        json!({"study": t.study, "version": "2.0", "protocol": v2}),
    );
    assert!(!t.revoked(&to_sponsor) && !t.revoked(&to_site));

    // One that asks for re-consent revokes them in its approval.
    let v3 = hash(0xa3);
    t.ok(&sponsor, study::STUDY_AMEND, amend("3.0", &v3, true));
    assert!(
        !t.revoked(&to_sponsor),
        "a pending amendment changes nothing"
    );
    t.ok(
        &committee,
        ethics::ETHICS_APPROVE,
        json!({"study": t.study, "version": "3.0", "protocol": v3}),
    );
    assert!(t.revoked(&to_sponsor) && t.revoked(&to_site));

    // A revoked grant cannot back the new consent, and a grant named
    // before cannot be named again; a fresh one can.
    let body = t.consent_with("3.0", &v3, &[&to_sponsor]);
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        body,
        "trial.grant_revoked",
    );
    let fresh = t.subject_grant(&did(&sponsor), "HRESCH", &["read"]);
    let body = t.consent_with("3.0", &v3, &[&fresh]);
    t.ok(&subject, econsent::ECONSENT_GIVE, body);
    assert_eq!(t.subject().grants.len(), 3);
    assert!(!t.revoked(&fresh));

    // Withdrawal revokes what is still live, in the same transaction, and
    // records when, as consent.revoke does (research-sharing payouts stop
    // counting days there).
    t.ok(
        &subject,
        econsent::ECONSENT_WITHDRAW,
        json!({"study": t.study}),
    );
    assert!(t.revoked(&fresh));
    let clock = t.net.state.escrows.clock;
    for grant in [&to_sponsor, &to_site, &fresh] {
        let usage = t.net.state.sharing.usage(grant);
        assert_eq!(usage.revoked_at, Some(clock), "{grant}");
    }
    assert_eq!(t.subject().state, SubjectState::Withdrawn);
}

/// Only the subject's own unrevoked HRESCH read grants to the sponsor or
/// the consent's site back a consent; each other grant is refused with its
/// code and changes nothing.
#[test]
fn a_consent_is_backed_only_by_the_subjects_own_research_grants_to_the_study() {
    let mut t = trial(true, true);
    let (sponsor, subject) = (copy(&t.sponsor), copy(&t.subject));
    let protocol = t.protocol.clone();

    let body = t.consent_with("1.0", &protocol, &[&hash(0x77)]);
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        body,
        "trial.grant_unknown",
    );

    // Someone else's grant to the sponsor (the network's demo patient).
    let patient = copy(&t.net.cast.patient);
    let now = t.net.now;
    let foreign = t.ok(
        &patient,
        "consent.grant",
        json!({"patient": did(&patient), "grantee": did(&sponsor), "scope": {"categories": ["device"]},
               "actions": ["read"], "purpose": "HRESCH", "not_before": now - 60, "not_after": now + 86_400}),
    );
    let body = t.consent_with("1.0", &protocol, &[&foreign]);
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        body,
        "trial.grant_not_subjects",
    );

    let treatment = t.subject_grant(&did(&sponsor), "TREAT", &["read"]);
    let body = t.consent_with("1.0", &protocol, &[&treatment]);
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        body,
        "trial.grant_not_for_study",
    );

    let stranger = t.subject_grant(&did(&Keypair::generate()), "HRESCH", &["read"]);
    let body = t.consent_with("1.0", &protocol, &[&stranger]);
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        body,
        "trial.grant_not_for_study",
    );

    let write_only = t.subject_grant(&did(&sponsor), "HRESCH", &["write"]);
    let body = t.consent_with("1.0", &protocol, &[&write_only]);
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        body,
        "trial.grant_not_for_study",
    );

    let revoked = t.subject_grant(&did(&sponsor), "HRESCH", &["read"]);
    t.ok(&subject, "consent.revoke", json!({"grant": revoked}));
    let body = t.consent_with("1.0", &protocol, &[&revoked]);
    t.refused(
        &subject,
        econsent::ECONSENT_GIVE,
        body,
        "trial.grant_revoked",
    );

    // Malformed lists never reach the rule.
    let good = t.subject_grant(&did(&sponsor), "HRESCH", &["read"]);
    for grants in [
        vec![good.clone(), good.clone()],
        vec![good.clone(); 5],
        vec!["nothex".to_owned()],
    ] {
        let mut body = t.consent("1.0", &protocol);
        body["grants"] = json!(grants);
        let before = fingerprint(&t.net.state);
        assert!(t.run(&subject, econsent::ECONSENT_GIVE, body).is_err());
        assert_eq!(fingerprint(&t.net.state), before);
    }
    let body = t.consent_with("1.0", &protocol, &[&good]);
    t.ok(&subject, econsent::ECONSENT_GIVE, body);
    assert_eq!(t.subject().grants, [good]);
}

/// A grant backs one consent of a subject; a subject's consents name a
/// bounded number of grants in all.
#[test]
fn a_subjects_consents_name_each_grant_once_and_a_bounded_number_in_all() {
    let mut t = trial(true, true);
    let (sponsor, committee, subject) = (copy(&t.sponsor), copy(&t.committee), copy(&t.subject));
    let mut version = 1;
    let mut protocol = t.protocol.clone();
    let mut first = None;
    loop {
        let grants: Vec<String> = (0..econsent::MAX_CONSENT_GRANTS)
            .map(|_| t.subject_grant(&did(&sponsor), "HRESCH", &["read"]))
            .collect();
        let names: Vec<&str> = grants.iter().map(String::as_str).collect();
        let body = t.consent_with(&format!("{version}.0"), &protocol, &names);
        let named = t
            .net
            .state
            .trials
            .subject(&t.study, &did(&subject))
            .map_or(0, |s| s.grants.len());
        if named < econsent::MAX_SUBJECT_GRANTS {
            t.ok(&subject, econsent::ECONSENT_GIVE, body);
            first.get_or_insert(grants[0].clone());
        } else {
            t.refused(
                &subject,
                econsent::ECONSENT_GIVE,
                body,
                "trial.too_many_grants",
            );
            break;
        }
        // The next version, without re-consent: the grants stay live.
        version += 1;
        protocol = hash(0xa0 + version as u8);
        let v = format!("{version}.0");
        let study = t.study.clone();
        t.ok(
            &sponsor,
            study::STUDY_AMEND,
            json!({"study": study, "protocol": protocol, "version": v, "reconsent": false}),
        );
        t.ok(
            &committee,
            ethics::ETHICS_APPROVE,
            json!({"study": study, "version": v, "protocol": protocol}),
        );
        if version == 2 {
            let again = first.clone().unwrap();
            let body = t.consent_with("2.0", &protocol, &[&again]);
            t.refused(
                &subject,
                econsent::ECONSENT_GIVE,
                body,
                "trial.grant_already_named",
            );
        }
    }
    assert_eq!(t.subject().grants.len(), econsent::MAX_SUBJECT_GRANTS);
}

/// Endpoint assessments are events: the site records which endpoint was
/// assessed and the report's hash (never the finding), which may pay the
/// site from the sponsor's escrow; everything else is refused with its
/// code and no change.
#[test]
fn endpoint_assessments_are_events_of_a_subject_on_study() {
    let mut t = trial(true, true);
    let (sponsor, committee, site, subject) = (
        copy(&t.sponsor),
        copy(&t.committee),
        copy(&t.site),
        copy(&t.subject),
    );
    let study_id = t.study.clone();
    let endpoint = |name: &str, report: u8| json!({"study": study_id, "subject": did(&subject), "endpoint": name, "report": hash(report)});
    t.ok(
        &subject,
        econsent::ECONSENT_GIVE,
        t.consent("1.0", &t.protocol.clone()),
    );
    // A candidate is not assessed yet.
    t.refused(
        &site,
        subjects::SUBJECT_ENDPOINT,
        endpoint("primary", 0xe1),
        "trial.not_on_study",
    );
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("screened"));
    t.ok(&site, subjects::SUBJECT_MILESTONE, t.milestone("enrolled"));

    // The sponsor pays the site per primary-endpoint assessment.
    let id = subjects::endpoint_milestone_id(&t.study, &did(&subject), "primary");
    assert!(crate::escrow::check_milestone_id(&id).is_ok(), "{id}");
    t.ok(
        &sponsor,
        "escrow.open",
        json!({"unit": UNIT, "amount": 30_000, "beneficiary": did(&site),
               "condition": {"kind": "milestone", "id": id}, "refund_after": t.net.now + 86_400}),
    );
    let stranger = Keypair::generate();
    t.refused(
        &stranger,
        subjects::SUBJECT_ENDPOINT,
        endpoint("primary", 0xe1),
        "trial.not_site",
    );
    t.ok(&site, subjects::SUBJECT_ENDPOINT, endpoint("primary", 0xe1));
    assert_eq!(t.net.state.accounts.balance(UNIT, &did(&site)), 30_000);
    let recorded = t.subject().endpoints;
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].endpoint.as_str(), recorded[0].report.as_str()),
        ("primary", hash(0xe1).as_str())
    );
    t.refused(
        &site,
        subjects::SUBJECT_ENDPOINT,
        endpoint("secondary", 0xe1),
        "trial.endpoint_exists",
    );

    // Malformed bodies never reach the rule.
    for bad in [endpoint("Primary", 0xe2), endpoint(&"x".repeat(49), 0xe2)] {
        let before = fingerprint(&t.net.state);
        assert!(t.run(&site, subjects::SUBJECT_ENDPOINT, bad).is_err());
        assert_eq!(fingerprint(&t.net.state), before);
    }

    // Awaiting re-consent, nothing is assessed.
    let v2 = hash(0xa2);
    t.ok(
        &sponsor,
        study::STUDY_AMEND,
        json!({"study": t.study, "protocol": v2, "version": "2.0", "reconsent": true}),
    );
    t.ok(
        &committee,
        ethics::ETHICS_APPROVE,
        json!({"study": t.study, "version": "2.0", "protocol": v2}),
    );
    t.refused(
        &site,
        subjects::SUBJECT_ENDPOINT,
        endpoint("secondary", 0xe2),
        "trial.reconsent_required",
    );
    t.ok(&subject, econsent::ECONSENT_GIVE, t.consent("2.0", &v2));

    // Bounded per subject.
    for n in 1..subjects::MAX_ENDPOINTS {
        t.ok(
            &site,
            subjects::SUBJECT_ENDPOINT,
            endpoint("secondary", n as u8),
        );
    }
    t.refused(
        &site,
        subjects::SUBJECT_ENDPOINT,
        endpoint("secondary", 0xff),
        "trial.too_many_endpoints",
    );

    // After withdrawal, nothing more.
    t.ok(
        &subject,
        econsent::ECONSENT_WITHDRAW,
        json!({"study": t.study}),
    );
    t.refused(
        &site,
        subjects::SUBJECT_ENDPOINT,
        endpoint("primary", 0xfe),
        "trial.not_on_study",
    );
}
