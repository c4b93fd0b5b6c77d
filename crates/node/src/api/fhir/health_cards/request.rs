//! The `$health-cards-issue` request: a FHIR `Parameters` naming the kinds
//! of card wanted (`credentialType`, one or more) and optionally `_since`.

use axum::http::StatusCode;
use hygeia_fhir::outcome::Issue;
use hygeia_fhir::types::ResourceType;
use serde_json::Value;

use crate::api::fhir::FhirError;

pub const IMMUNIZATION_TYPE: &str = "https://smarthealth.cards#immunization";
pub const LABORATORY_TYPE: &str = "https://smarthealth.cards#laboratory";
pub const COVID19_TYPE: &str = "https://smarthealth.cards#covid19";

/// What a card can hold besides the Patient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Immunization resources.
    Immunization,
    /// Observations with category `laboratory`.
    Laboratory,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Immunization, Kind::Laboratory];

    /// The `vc.type` entry a card holding this kind carries.
    pub fn type_uri(self) -> &'static str {
        match self {
            Kind::Immunization => IMMUNIZATION_TYPE,
            Kind::Laboratory => LABORATORY_TYPE,
        }
    }

    pub fn resource_type(self) -> ResourceType {
        match self {
            Kind::Immunization => ResourceType::Immunization,
            Kind::Laboratory => ResourceType::Observation,
        }
    }
}

/// A parsed `$health-cards-issue` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRequest {
    /// Kinds the card must all hold (several `credentialType`s are a
    /// logical AND). Empty when only `#covid19` or `#health-card` was
    /// asked for: the card then holds whichever kinds there are.
    pub required: Vec<Kind>,
    /// Only COVID-19 vaccines and tests.
    pub covid19: bool,
    /// Only resources updated at or after this FHIR dateTime.
    pub since: Option<String>,
}

impl IssueRequest {
    /// The kinds to look for.
    pub fn kinds(&self) -> Vec<Kind> {
        if self.required.is_empty() {
            Kind::ALL.to_vec()
        } else {
            self.required.clone()
        }
    }
}

fn bad(code: &'static str, at: String, message: String) -> FhirError {
    FhirError::new(StatusCode::BAD_REQUEST, Issue::error(code, message).at(at))
}

const SUPPORTED: &str = "Immunization or https://smarthealth.cards#immunization, Observation or https://smarthealth.cards#laboratory (lab results), https://smarthealth.cards#covid19 (COVID-19 vaccines and tests only), https://smarthealth.cards#health-card";

/// Reads the request body (already parsed as a JSON object).
pub fn parse_request(body: &Value) -> Result<IssueRequest, FhirError> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(bad(
            "invalid",
            "resourceType".into(),
            "$health-cards-issue takes a Parameters resource".into(),
        ));
    }
    let parameters = match body.get("parameter") {
        None => &[][..],
        Some(Value::Array(list)) => list.as_slice(),
        Some(_) => {
            return Err(bad(
                "structure",
                "Parameters.parameter".into(),
                "Parameters.parameter must be a list".into(),
            ))
        }
    };
    let mut request = IssueRequest {
        required: Vec::new(),
        covid19: false,
        since: None,
    };
    let mut any_type = false;
    for (index, parameter) in parameters.iter().enumerate() {
        let at = format!("Parameters.parameter[{index}]");
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("required", at.clone(), "every parameter has a name".into()))?;
        match name {
            "credentialType" => {
                let uri = parameter
                    .get("valueUri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad(
                            "value",
                            format!("{at}.valueUri"),
                            "credentialType takes a valueUri".into(),
                        )
                    })?;
                any_type = true;
                let kind = match uri {
                    "Immunization" | IMMUNIZATION_TYPE => Some(Kind::Immunization),
                    "Observation" | LABORATORY_TYPE => Some(Kind::Laboratory),
                    COVID19_TYPE => {
                        request.covid19 = true;
                        None
                    }
                    hygeia_credentials::shc::HEALTH_CARD_TYPE => None,
                    other => {
                        return Err(bad(
                            "not-supported",
                            format!("{at}.valueUri"),
                            format!(
                                "credentialType {:?} is not a kind of health card this server issues; supported: {SUPPORTED}",
                                other.chars().take(100).collect::<String>()
                            ),
                        ))
                    }
                };
                if let Some(kind) = kind {
                    if !request.required.contains(&kind) {
                        request.required.push(kind);
                    }
                }
            }
            "_since" => {
                if request.since.is_some() {
                    return Err(bad(
                        "value",
                        at,
                        "_since may be given only once".into(),
                    ));
                }
                let since = parameter
                    .get("valueDateTime")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad(
                            "value",
                            format!("{at}.valueDateTime"),
                            "_since takes a valueDateTime".into(),
                        )
                    })?;
                hygeia_fhir::date::parse_date(since).map_err(|e| {
                    bad(
                        "value",
                        format!("{at}.valueDateTime"),
                        format!("_since is not a FHIR dateTime: {e}"),
                    )
                })?;
                request.since = Some(since.to_owned());
            }
            // The specification lets servers ignore these two: cards here
            // always carry the same minimal identity (name, birth date),
            // and value sets other than #covid19 are not offered.
            "credentialValueSet" | "includeIdentityClaim" => {}
            other => {
                return Err(bad(
                    "not-supported",
                    at,
                    format!(
                        "parameter {:?} is not one $health-cards-issue takes (credentialType, _since, credentialValueSet, includeIdentityClaim)",
                        other.chars().take(64).collect::<String>()
                    ),
                ))
            }
        }
    }
    if !any_type {
        return Err(bad(
            "required",
            "Parameters.parameter".into(),
            format!("at least one credentialType is required; supported: {SUPPORTED}"),
        ));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(list: Value) -> Value {
        json!({"resourceType": "Parameters", "parameter": list})
    }

    fn code(body: Value) -> String {
        parse_request(&body).unwrap_err().issues[0].code.to_owned()
    }

    #[test]
    fn types_old_and_new() {
        let request = parse_request(&params(json!([
            {"name": "credentialType", "valueUri": IMMUNIZATION_TYPE},
            {"name": "credentialType", "valueUri": "Immunization"},
            {"name": "credentialType", "valueUri": "Observation"},
            {"name": "_since", "valueDateTime": "2021-03"},
            {"name": "includeIdentityClaim", "valueString": "Patient.name"},
        ])))
        .unwrap();
        assert_eq!(
            request,
            IssueRequest {
                required: vec![Kind::Immunization, Kind::Laboratory],
                covid19: false,
                since: Some("2021-03".into()),
            }
        );
        let request = parse_request(&params(json!([
            {"name": "credentialType", "valueUri": COVID19_TYPE},
        ])))
        .unwrap();
        assert!(request.covid19);
        assert!(request.required.is_empty());
        assert_eq!(request.kinds(), Kind::ALL);
    }

    #[test]
    fn bad_requests() {
        assert_eq!(code(json!({"resourceType": "Patient"})), "invalid");
        assert_eq!(code(json!({"resourceType": "Parameters"})), "required");
        assert_eq!(code(params(json!([]))), "required");
        assert_eq!(
            code(json!({"resourceType": "Parameters", "parameter": {}})),
            "structure"
        );
        assert_eq!(
            code(params(
                json!([{"name": "credentialType", "valueUri": "https://smarthealth.cards#dog"}])
            )),
            "not-supported"
        );
        assert_eq!(
            code(params(
                json!([{"name": "credentialType", "valueString": "Immunization"}])
            )),
            "value"
        );
        assert_eq!(
            code(params(json!([
                {"name": "credentialType", "valueUri": "Immunization"},
                {"name": "_since", "valueDateTime": "March 2021"},
            ]))),
            "value"
        );
        assert_eq!(
            code(params(json!([
                {"name": "credentialType", "valueUri": "Immunization"},
                {"name": "_since", "valueDateTime": "2021"},
                {"name": "_since", "valueDateTime": "2022"},
            ]))),
            "value"
        );
        assert_eq!(
            code(params(json!([
                {"name": "credentialType", "valueUri": "Immunization"},
                {"name": "format", "valueString": "qr"},
            ]))),
            "not-supported"
        );
        assert_eq!(
            code(params(json!([{"valueUri": "Immunization"}]))),
            "required"
        );
    }

    #[test]
    fn an_unknown_type_is_named_in_the_message() {
        let err = parse_request(&params(
            json!([{"name": "credentialType", "valueUri": "https://smarthealth.cards#dog"}]),
        ))
        .unwrap_err();
        assert!(err.issues[0].diagnostics.contains("#dog"));
        assert!(err.issues[0].diagnostics.contains(IMMUNIZATION_TYPE));
    }
}
