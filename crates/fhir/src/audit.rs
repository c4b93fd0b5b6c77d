//! FHIR R5 views of ledger events: each `access` decision as an AuditEvent,
//! each record version as a Provenance.
//!
//! Both are generated from signed ledger entries, never stored as FHIR, and
//! each carries where its entry sits in the log: two extensions, the entry's
//! index ([`LEDGER_INDEX_EXTENSION`]) and the URL of its inclusion proof
//! ([`LEDGER_PROOF_EXTENSION`]), so that a reader can check the view against
//! the log instead of trusting the server.
//!
//! The ledger index is a `valueInteger64`, the R5 type for counters that
//! outgrow 32 bits; FHIR JSON writes it as a string (`"12"`), so that it
//! survives JSON parsers that hold numbers as doubles. `valueUnsignedInt`
//! was not chosen because it stops at 2^31 - 1, which a busy log passes.
//!
//! AuditEvents follow IHE Basic Audit Log Patterns (BALP) for RESTful
//! interactions, in their R5 form: the client is the requestor with the
//! DICOM "Source Role ID" type, the node the "Destination Role ID" and the
//! observer; the patient, the records and the consent grants are entities.

use hygeia_policy::purpose::PURPOSE_OF_USE_SYSTEM;
use hygeia_policy::{Action, PurposeOfUse};
use serde_json::{json, Map, Value};

use crate::consent::{format_instant, record_reference, LedgerLink};
use crate::reference::did_reference;

/// Extension holding a ledger entry's index, as `valueInteger64`.
pub const LEDGER_INDEX_EXTENSION: &str =
    "https://hygeia.health/fhir/StructureDefinition/ledger-index";
/// Extension holding the URL of a ledger entry's inclusion proof, as
/// `valueUrl`.
pub const LEDGER_PROOF_EXTENSION: &str =
    "https://hygeia.health/fhir/StructureDefinition/ledger-proof";
/// Hygeia's policy ids (Cedar `@id`s), as AuditEvent outcome details.
pub const POLICY_SYSTEM: &str = "https://hygeia.health/fhir/CodeSystem/policy";

const DCM_SYSTEM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const AUDIT_EVENT_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION_SYSTEM: &str = "http://hl7.org/fhir/restful-interaction";
const AUDIT_OUTCOME_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/audit-event-outcome";
const OBJECT_ROLE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const SOURCE_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const DATA_OPERATION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-DataOperation";
const PARTICIPANT_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
const SIGNATURE_TYPE_SYSTEM: &str = "urn:iso-astm:E1762-95:2013";
const AUTHOR_SIGNATURE_CODE: &str = "1.2.840.10065.1.12.1.1";
const VERIFICATION_SIGNATURE_CODE: &str = "1.2.840.10065.1.12.1.5";

/// The ledger extensions of a view: the index (left out if it does not fit
/// an integer64, which no log reaches) and the proof URL.
pub fn ledger_extensions(link: &LedgerLink) -> Value {
    let mut extensions = Vec::new();
    if let Ok(index) = i64::try_from(link.index) {
        extensions.push(json!({
            "url": LEDGER_INDEX_EXTENSION,
            "valueInteger64": index.to_string(),
        }));
    }
    extensions.push(json!({ "url": LEDGER_PROOF_EXTENSION, "valueUrl": link.proof_url }));
    Value::Array(extensions)
}

/// The ledger position a view carries, read back from its extensions.
pub fn ledger_link_of(resource: &Value) -> Option<LedgerLink> {
    let extensions = resource.get("extension")?.as_array()?;
    let value_of = |url: &str, key: &str| {
        extensions
            .iter()
            .find(|e| e.get("url").and_then(Value::as_str) == Some(url))
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
    };
    Some(LedgerLink {
        index: value_of(LEDGER_INDEX_EXTENSION, "valueInteger64")?
            .parse()
            .ok()?,
        proof_url: value_of(LEDGER_PROOF_EXTENSION, "valueUrl")?.to_owned(),
    })
}

/// One `access` decision, with what the node knows around it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessView {
    /// The `access` entry's index in the log.
    pub index: u64,
    /// Where its inclusion proof is served.
    pub proof_url: String,
    /// The DID that signed the request.
    pub requester: String,
    /// The patient whose data it was.
    pub patient: String,
    pub action: Action,
    /// The FHIR restful interaction (`read`, `vread`, `search-type`,
    /// `history-instance`, `create`, `update`, `delete`, `transaction`,
    /// `operation` for `$export`...).
    pub interaction: String,
    /// The purpose-of-use code the requester stated.
    pub purpose: String,
    pub permitted: bool,
    /// Permitted only by a break-glass policy.
    pub break_glass: bool,
    /// A break-glass permit whose request carried a justification (the text
    /// is kept off the ledger, and off this view).
    pub justified: bool,
    /// The policies that decided (Cedar `@id`s). Empty on a deny means
    /// deny by default.
    pub reasons: Vec<String>,
    /// Ids of the grants that permitted (their Consents' ids).
    pub grants: Vec<String>,
    /// Commitments of the records concerned.
    pub records: Vec<String>,
    /// The custodian node's DID, which decided and signed the event.
    pub node: String,
    /// Decision time, Unix seconds.
    pub time: i64,
}

/// `(action, display)` for a restful interaction: BALP's C/R/U/D for the
/// create, read, update and delete families, E (execute) for searches, as
/// BALP's Query pattern has it, and for batches, transactions and
/// operations. An interaction this table does not know falls back on the
/// decided action.
fn interaction_action(interaction: &str, action: Action) -> (&'static str, Option<&'static str>) {
    let known = [
        ("read", "R"),
        ("vread", "R"),
        ("history", "R"),
        ("history-instance", "R"),
        ("history-type", "R"),
        ("history-system", "R"),
        ("search", "E"),
        ("search-type", "E"),
        ("search-system", "E"),
        ("create", "C"),
        ("update", "U"),
        ("patch", "U"),
        ("delete", "D"),
        ("transaction", "E"),
        ("batch", "E"),
        ("operation", "E"),
        ("capabilities", "E"),
    ];
    match known.iter().find(|(code, _)| *code == interaction) {
        Some((code, crud)) => (crud, Some(code)),
        None => match action {
            Action::Read => ("R", None),
            Action::Write => ("U", None),
        },
    }
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [coding(system, code, display)] })
}

/// The stated purpose as a CodeableConcept of v3-ActReason.
fn purpose_concept(purpose: &str) -> Value {
    match purpose.parse::<PurposeOfUse>() {
        Ok(p) => concept(PURPOSE_OF_USE_SYSTEM, p.code(), p.display()),
        Err(_) => json!({ "coding": [{ "system": PURPOSE_OF_USE_SYSTEM, "code": purpose }] }),
    }
}

/// An `access` decision as an R5 AuditEvent (IHE BALP style).
///
/// - `category`: `rest` (audit-event-type) and DICOM 110110 "Patient
///   Record"; a break-glass decision is also DICOM 110113 "Security Alert";
/// - `code`: the restful interaction; `action`: C, R, U, D or E;
/// - `outcome`: `0` (success) for a permit, `4` (minor failure) for a deny;
///   `detail` names the deciding policies (system [`POLICY_SYSTEM`]), or
///   says deny by default, and tells break-glass apart;
/// - `authorization`: the stated purpose of use, plus `BTG` (break the
///   glass) on a break-glass decision; the requester's agent carries the
///   same;
/// - `agent`: the requester (DICOM 110153 Source Role ID, `requestor`) and
///   the node (110152 Destination Role ID); `source.observer`: the node;
/// - `entity`: the patient (object-role 1), each record by commitment and
///   each grant that permitted as `Consent/<grant id>` (object-role 4,
///   Domain Resource, as in the R5 example `example-consent-permit-authz`).
///
/// `recorded` is the decision time; a time FHIR cannot write (outside
/// years 1 to 9999, which no node clock gives) is clamped to that range.
pub fn audit_event(id: &str, view: &AccessView) -> Value {
    let (crud, interaction_code) = interaction_action(&view.interaction, view.action);
    let mut code = json!({ "system": RESTFUL_INTERACTION_SYSTEM, "code": view.interaction });
    if let Some(display) = interaction_code {
        code["display"] = json!(display);
    }

    let mut category = vec![
        concept(AUDIT_EVENT_TYPE_SYSTEM, "rest", "Restful Operation"),
        concept(DCM_SYSTEM, "110110", "Patient Record"),
    ];
    if view.break_glass {
        category.push(concept(DCM_SYSTEM, "110113", "Security Alert"));
    }

    let mut details: Vec<Value> = view
        .reasons
        .iter()
        .map(|reason| json!({ "coding": [{ "system": POLICY_SYSTEM, "code": reason }] }))
        .collect();
    if !view.permitted && view.reasons.is_empty() {
        details.push(json!({ "text": "deny by default: no policy permitted the request" }));
    }
    if view.break_glass {
        let text = if view.justified {
            "break-glass: permitted by an emergency policy; a justification was given (kept off the ledger)"
        } else {
            "break-glass: permitted by an emergency policy within an open break-glass window"
        };
        details.push(json!({ "text": text }));
    }
    let mut outcome = json!({
        "code": if view.permitted {
            coding(AUDIT_OUTCOME_SYSTEM, "0", "Success")
        } else {
            coding(AUDIT_OUTCOME_SYSTEM, "4", "Minor failure")
        },
    });
    if !details.is_empty() {
        outcome["detail"] = Value::Array(details);
    }

    let mut authorization = vec![purpose_concept(&view.purpose)];
    if view.break_glass {
        authorization.push(concept(PURPOSE_OF_USE_SYSTEM, "BTG", "break the glass"));
    }

    let agents = json!([
        {
            "type": concept(DCM_SYSTEM, "110153", "Source Role ID"),
            "who": did_reference(&view.requester),
            "requestor": true,
            "authorization": authorization.clone(),
        },
        {
            "type": concept(DCM_SYSTEM, "110152", "Destination Role ID"),
            "who": did_reference(&view.node),
            "requestor": false,
        },
    ]);

    let mut entities = vec![json!({
        "what": did_reference(&view.patient),
        "role": concept(OBJECT_ROLE_SYSTEM, "1", "Patient"),
    })];
    for record in &view.records {
        entities.push(json!({
            "what": record_reference(record),
            "role": concept(OBJECT_ROLE_SYSTEM, "4", "Domain Resource"),
        }));
    }
    for grant in &view.grants {
        entities.push(json!({
            "what": { "reference": format!("Consent/{grant}") },
            "role": concept(OBJECT_ROLE_SYSTEM, "4", "Domain Resource"),
        }));
    }

    let link = LedgerLink {
        index: view.index,
        proof_url: view.proof_url.clone(),
    };
    let mut event = Map::new();
    event.insert("resourceType".into(), json!("AuditEvent"));
    event.insert("id".into(), json!(id));
    event.insert("extension".into(), ledger_extensions(&link));
    event.insert("category".into(), Value::Array(category));
    event.insert("code".into(), json!({ "coding": [code] }));
    event.insert("action".into(), json!(crud));
    event.insert("recorded".into(), json!(clamped_instant(view.time)));
    event.insert("outcome".into(), outcome);
    event.insert("authorization".into(), Value::Array(authorization));
    event.insert("patient".into(), did_reference(&view.patient));
    event.insert("agent".into(), agents);
    event.insert(
        "source".into(),
        json!({
            "observer": did_reference(&view.node),
            "type": [concept(SOURCE_TYPE_SYSTEM, "4", "Application Server")],
        }),
    );
    event.insert("entity".into(), Value::Array(entities));
    Value::Object(event)
}

/// An instant FHIR can write, clamping to years 1 to 9999.
fn clamped_instant(secs: i64) -> String {
    // 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
    const FIRST: i64 = -62_135_596_800;
    const LAST: i64 = 253_402_300_799;
    format_instant(secs.clamp(FIRST, LAST)).unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// One version of a record, as the node's `record` entry and custody store
/// know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionView {
    /// The version's FHIR reference, e.g. `Observation/123/_history/2`.
    pub target: String,
    /// When the version was recorded, Unix seconds.
    pub recorded: i64,
    /// The author's DID.
    pub author: String,
    /// The custodian node's DID.
    pub node: String,
    /// The author's provenance signature: Ed25519, unpadded base64url, over
    /// the domain-separated statement of docs/records.md
    /// (`"hygeia.record.v1" || 0x00 || JCS({category, content_sha256,
    /// media_type, patient, resource_type})`).
    pub signature: String,
    /// Who made `signature`, and in which role.
    pub signer: Signer,
    /// The record's commitment (its id on the ledger).
    pub commitment: String,
    /// The `record` entry.
    pub ledger: LedgerLink,
    /// `create`, `update` or `delete`.
    pub activity: String,
}

/// Whose signature a Provenance carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signer {
    /// The author's own signature over the record statement (records
    /// uploaded through `/v1/records`).
    Author,
    /// The custodian node's signature over the version's `record`
    /// transaction (versions written through FHIR, whose clients do not
    /// sign): ASTM E1762 "Verification Signature", `who` the node.
    Custodian,
}

/// A record version as an R5 Provenance.
///
/// - `target`: the version's reference, with the record's commitment as its
///   identifier (system [`crate::consent::RECORD_IDENTIFIER_SYSTEM`]);
/// - `activity`: v3-DataOperation `CREATE`, `UPDATE` or `DELETE` (left out
///   for another activity);
/// - `agent`: the author (provenance-participant-type `author`) and the
///   node (`custodian`);
/// - `signature`: the author's signature (ASTM E1762 "Author's Signature"),
///   or for versions written through FHIR the custodian node's signature
///   over the `record` transaction ("Verification Signature", see [`Signer`]),
///   `data` holding its 64 bytes in standard base64. It is a bare Ed25519
///   signature over the statement described on [`VersionView::signature`],
///   not a JWS or XML-DSig over this resource, so `sigFormat` is
///   `application/octet-stream`: a verifier rebuilds the statement from the
///   record and checks the bytes with the author's key. A signature that is
///   not valid base64url is left out rather than shown corrupted;
/// - the ledger extensions of the `record` entry.
pub fn provenance(id: &str, view: &VersionView) -> Value {
    let mut target = json!({ "reference": view.target });
    if let Some(identifier) = record_reference(&view.commitment).get("identifier") {
        target["identifier"] = identifier.clone();
    }
    let recorded = clamped_instant(view.recorded);

    let mut resource = Map::new();
    resource.insert("resourceType".into(), json!("Provenance"));
    resource.insert("id".into(), json!(id));
    resource.insert("extension".into(), ledger_extensions(&view.ledger));
    resource.insert("target".into(), json!([target]));
    resource.insert("recorded".into(), json!(recorded));
    let activity = match view.activity.as_str() {
        "create" => Some(("CREATE", "create")),
        "update" => Some(("UPDATE", "revise")),
        "delete" => Some(("DELETE", "remove")),
        _ => None,
    };
    if let Some((code, display)) = activity {
        resource.insert(
            "activity".into(),
            concept(DATA_OPERATION_SYSTEM, code, display),
        );
    }
    resource.insert(
        "agent".into(),
        json!([
            {
                "type": concept(PARTICIPANT_TYPE_SYSTEM, "author", "Author"),
                "who": did_reference(&view.author),
            },
            {
                "type": concept(PARTICIPANT_TYPE_SYSTEM, "custodian", "Custodian"),
                "who": did_reference(&view.node),
            },
        ]),
    );
    let (code, display, who) = match view.signer {
        Signer::Author => (AUTHOR_SIGNATURE_CODE, "Author's Signature", &view.author),
        Signer::Custodian => (
            VERIFICATION_SIGNATURE_CODE,
            "Verification Signature",
            &view.node,
        ),
    };
    if let Some(data) = base64url_to_base64(&view.signature) {
        resource.insert(
            "signature".into(),
            json!([{
                "type": [coding(SIGNATURE_TYPE_SYSTEM, code, display)],
                "when": recorded,
                "who": did_reference(who),
                "sigFormat": "application/octet-stream",
                "data": data,
            }]),
        );
    }
    Value::Object(resource)
}

/// Standard padded base64 (FHIR's base64Binary) of unpadded base64url
/// text, or `None` if it is not base64url. Both alphabets encode the same
/// six bits per character, so the conversion is a character map and
/// padding, with no decoding.
fn base64url_to_base64(text: &str) -> Option<String> {
    let text = text.trim_end_matches('=');
    if text.is_empty() || text.len() % 4 == 1 {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 3);
    for c in text.chars() {
        out.push(match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' => c,
            '-' => '+',
            '_' => '/',
            _ => return None,
        });
    }
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::RECORD_IDENTIFIER_SYSTEM;

    const PATIENT: &str = "did:key:z6MkqBCqMwNoeMgTBQ8sMFnsk86AJq3Jq3QjDtBLmM8rSdUs";
    const CLINICIAN: &str = "did:key:z6MkfihynfNmjGKrZDir3qT9AZ5ZVpsa33KsEgfy8AztxDCF";
    const NODE: &str = "did:key:z6MkfghLVSsjRdjjzbGQaZYjsfDpELjWM8FwEUm2teg9omPP";
    const RECORD: &str = "9e728862c635e8c3468f6dfbb70024e3c5f91d244632466af63c1e7ac462a1d0";
    const GRANT: &str = "25ced39419e63254e5ff6df0059fb6c64d7d09c973139297b5718dca65290877";

    fn permit() -> AccessView {
        AccessView {
            index: 8,
            proof_url: "https://node.example/v1/transactions/8/proof".into(),
            requester: CLINICIAN.into(),
            patient: PATIENT.into(),
            action: Action::Read,
            interaction: "read".into(),
            purpose: "TREAT".into(),
            permitted: true,
            break_glass: false,
            justified: false,
            reasons: vec!["consent-grant".into()],
            grants: vec![GRANT.into()],
            records: vec![RECORD.into()],
            node: NODE.into(),
            time: 1_795_295_658,
        }
    }

    fn codes(concepts: &Value) -> Vec<String> {
        concepts
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["coding"][0]["code"].as_str().map(str::to_owned))
            .collect()
    }

    #[test]
    fn a_permitted_read_has_the_balp_shape() {
        let e = audit_event("8", &permit());
        assert_eq!(e["resourceType"], "AuditEvent");
        assert_eq!(e["id"], "8");
        assert_eq!(codes(&e["category"]), ["rest", "110110"]);
        assert_eq!(e["code"]["coding"][0]["system"], RESTFUL_INTERACTION_SYSTEM);
        assert_eq!(e["code"]["coding"][0]["code"], "read");
        assert_eq!(e["action"], "R");
        assert_eq!(e["recorded"], "2026-11-21T21:14:18Z");
        assert_eq!(e["outcome"]["code"]["code"], "0");
        assert_eq!(
            e["outcome"]["detail"][0]["coding"][0]["code"],
            "consent-grant"
        );
        assert_eq!(codes(&e["authorization"]), ["TREAT"]);
        assert_eq!(e["patient"], did_reference(PATIENT));
        let requester = &e["agent"][0];
        assert_eq!(requester["who"], did_reference(CLINICIAN));
        assert_eq!(requester["requestor"], true);
        assert_eq!(requester["type"]["coding"][0]["code"], "110153");
        assert_eq!(codes(&requester["authorization"]), ["TREAT"]);
        assert_eq!(e["agent"][1]["who"], did_reference(NODE));
        assert_eq!(e["agent"][1]["requestor"], false);
        assert_eq!(e["source"]["observer"], did_reference(NODE));
        let entity = e["entity"].as_array().expect("entities");
        assert_eq!(entity.len(), 3);
        assert_eq!(entity[0]["what"], did_reference(PATIENT));
        assert_eq!(entity[0]["role"]["coding"][0]["code"], "1");
        assert_eq!(
            entity[1]["what"]["identifier"]["system"],
            RECORD_IDENTIFIER_SYSTEM
        );
        assert_eq!(entity[1]["what"]["identifier"]["value"], RECORD);
        assert_eq!(entity[2]["what"]["reference"], format!("Consent/{GRANT}"));
        assert_eq!(
            ledger_link_of(&e),
            Some(LedgerLink {
                index: 8,
                proof_url: "https://node.example/v1/transactions/8/proof".into()
            })
        );
        assert_eq!(e["extension"][0]["valueInteger64"], "8");
    }

    #[test]
    fn a_deny_is_a_minor_failure_naming_its_policies() {
        let deny = AccessView {
            permitted: false,
            reasons: vec!["forbid-suspended-requester".into()],
            grants: vec![],
            ..permit()
        };
        let e = audit_event("20", &deny);
        assert_eq!(e["outcome"]["code"]["code"], "4");
        assert_eq!(
            e["outcome"]["detail"][0]["coding"][0]["code"],
            "forbid-suspended-requester"
        );
        assert_eq!(e["entity"].as_array().map(Vec::len), Some(2));
        let by_default = AccessView {
            reasons: vec![],
            ..deny
        };
        let e = audit_event("6", &by_default);
        assert!(e["outcome"]["detail"][0]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("deny by default")));
    }

    #[test]
    fn break_glass_is_flagged() {
        let view = AccessView {
            purpose: "ETREAT".into(),
            break_glass: true,
            justified: true,
            reasons: vec!["break-glass-emergency-read".into()],
            grants: vec![],
            ..permit()
        };
        let e = audit_event("12", &view);
        assert_eq!(codes(&e["category"]), ["rest", "110110", "110113"]);
        assert_eq!(codes(&e["authorization"]), ["ETREAT", "BTG"]);
        assert_eq!(codes(&e["agent"][0]["authorization"]), ["ETREAT", "BTG"]);
        assert_eq!(
            e["authorization"][1]["coding"][0]["system"],
            PURPOSE_OF_USE_SYSTEM
        );
        let details = e["outcome"]["detail"].as_array().expect("details");
        assert!(details.iter().any(|d| d["text"]
            .as_str()
            .is_some_and(|t| t.contains("justification was given"))));
        let window = audit_event(
            "13",
            &AccessView {
                justified: false,
                ..view
            },
        );
        assert!(window["outcome"]["detail"][1]["text"]
            .as_str()
            .is_some_and(|t| t.contains("window")));
    }

    #[test]
    fn interactions_map_to_balp_actions() {
        for (interaction, action, crud) in [
            ("read", Action::Read, "R"),
            ("vread", Action::Read, "R"),
            ("history-instance", Action::Read, "R"),
            ("search-type", Action::Read, "E"),
            ("create", Action::Write, "C"),
            ("update", Action::Write, "U"),
            ("delete", Action::Write, "D"),
            ("transaction", Action::Write, "E"),
            ("operation", Action::Read, "E"),
            ("something-else", Action::Read, "R"),
            ("something-else", Action::Write, "U"),
        ] {
            let view = AccessView {
                interaction: interaction.into(),
                action,
                ..permit()
            };
            let e = audit_event("1", &view);
            assert_eq!(e["action"], crud, "{interaction}");
            assert_eq!(e["code"]["coding"][0]["code"], interaction);
        }
    }

    fn version() -> VersionView {
        VersionView {
            target: "Observation/123/_history/2".into(),
            recorded: 1_795_295_655,
            author: PATIENT.into(),
            node: NODE.into(),
            signature: "SV_PD_y7MTmtXKZqdXepnQv4AhEUDcMaQPnqzmuXjhYhsoBSolepudhYNLk6LKjnxFmeQPeOmWzlvqXCKnn1Bw".into(),
            signer: Signer::Author,
        commitment: RECORD.into(),
            ledger: LedgerLink {
                index: 3,
                proof_url: "https://node.example/v1/transactions/3/proof".into(),
            },
            activity: "update".into(),
        }
    }

    #[test]
    fn provenance_shape() {
        let p = provenance("3", &version());
        assert_eq!(p["resourceType"], "Provenance");
        assert_eq!(p["target"][0]["reference"], "Observation/123/_history/2");
        assert_eq!(p["target"][0]["identifier"]["value"], RECORD);
        assert_eq!(p["recorded"], "2026-11-21T21:14:15Z");
        assert_eq!(p["activity"]["coding"][0]["system"], DATA_OPERATION_SYSTEM);
        assert_eq!(p["activity"]["coding"][0]["code"], "UPDATE");
        assert_eq!(p["agent"][0]["type"]["coding"][0]["code"], "author");
        assert_eq!(p["agent"][0]["who"], did_reference(PATIENT));
        assert_eq!(p["agent"][1]["type"]["coding"][0]["code"], "custodian");
        assert_eq!(p["agent"][1]["who"], did_reference(NODE));
        let sig = &p["signature"][0];
        assert_eq!(sig["type"][0]["code"], AUTHOR_SIGNATURE_CODE);
        assert_eq!(sig["when"], p["recorded"]);
        assert_eq!(sig["who"], did_reference(PATIENT));
        assert_eq!(sig["sigFormat"], "application/octet-stream");
        assert_eq!(
            sig["data"],
            "SV/PD/y7MTmtXKZqdXepnQv4AhEUDcMaQPnqzmuXjhYhsoBSolepudhYNLk6LKjnxFmeQPeOmWzlvqXCKnn1Bw=="
        );
        assert_eq!(ledger_link_of(&p).map(|l| l.index), Some(3));
        for (activity, code) in [("create", "CREATE"), ("delete", "DELETE")] {
            let p = provenance(
                "3",
                &VersionView {
                    activity: activity.into(),
                    ..version()
                },
            );
            assert_eq!(p["activity"]["coding"][0]["code"], code);
        }
        let other = provenance(
            "3",
            &VersionView {
                activity: "move".into(),
                ..version()
            },
        );
        assert!(other.get("activity").is_none());
        let unsigned = provenance(
            "3",
            &VersionView {
                signature: "not base64!".into(),
                ..version()
            },
        );
        assert!(unsigned.get("signature").is_none());
    }

    #[test]
    fn base64url_becomes_standard_base64() {
        assert_eq!(base64url_to_base64("-_8").as_deref(), Some("+/8="));
        assert_eq!(base64url_to_base64("AAAA").as_deref(), Some("AAAA"));
        assert_eq!(base64url_to_base64("AA").as_deref(), Some("AA=="));
        assert_eq!(base64url_to_base64("AA==").as_deref(), Some("AA=="));
        assert_eq!(base64url_to_base64("A"), None);
        assert_eq!(base64url_to_base64(""), None);
        assert_eq!(base64url_to_base64("A+B/"), None);
    }

    #[test]
    fn ledger_extensions_round_trip() {
        let link = LedgerLink {
            index: u64::try_from(i64::MAX).unwrap_or(0),
            proof_url: "https://n/p".into(),
        };
        assert_eq!(
            ledger_link_of(&json!({"extension": ledger_extensions(&link)})),
            Some(link)
        );
        let too_big = LedgerLink {
            index: u64::MAX,
            proof_url: "https://n/p".into(),
        };
        let ext = ledger_extensions(&too_big);
        assert_eq!(ext.as_array().map(Vec::len), Some(1));
        assert_eq!(ext[0]["url"], LEDGER_PROOF_EXTENSION);
    }

    #[test]
    fn times_are_clamped_to_what_fhir_writes() {
        assert_eq!(clamped_instant(0), "1970-01-01T00:00:00Z");
        assert_eq!(clamped_instant(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(clamped_instant(i64::MIN), "0001-01-01T00:00:00Z");
    }
}
