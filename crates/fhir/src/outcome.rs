//! OperationOutcome: how every FHIR error is told.

use serde_json::{json, Value};

/// One issue. `code` is from the FHIR IssueType value set (`invalid`,
/// `structure`, `required`, `value`, `not-found`, `not-supported`,
/// `conflict`, `forbidden`, `too-costly`, `processing`, `exception`...);
/// `expression` names the element (FHIRPath, e.g. `Observation.status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    pub code: &'static str,
    pub diagnostics: String,
    pub expression: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Fatal,
    Error,
    Warning,
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

impl Issue {
    pub fn error(code: &'static str, diagnostics: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression: None,
        }
    }

    pub fn at(mut self, expression: impl Into<String>) -> Issue {
        self.expression = Some(expression.into());
        self
    }

    pub fn warning(code: &'static str, diagnostics: impl Into<String>) -> Issue {
        Issue {
            severity: Severity::Warning,
            ..Issue::error(code, diagnostics)
        }
    }

    pub fn to_json(&self) -> Value {
        let mut issue = json!({
            "severity": self.severity.as_str(),
            "code": self.code,
            "diagnostics": self.diagnostics,
        });
        if let Some(expression) = &self.expression {
            issue["expression"] = json!([expression]);
        }
        issue
    }
}

/// An OperationOutcome resource holding `issues`.
pub fn operation_outcome(issues: &[Issue]) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": issues.iter().map(Issue::to_json).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        let o = operation_outcome(&[
            Issue::error("required", "Observation.status is required").at("Observation.status")
        ]);
        assert_eq!(o["resourceType"], "OperationOutcome");
        assert_eq!(o["issue"][0]["severity"], "error");
        assert_eq!(o["issue"][0]["expression"][0], "Observation.status");
    }
}
