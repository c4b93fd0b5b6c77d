//! Claim paths: where a claim sits in a credential, as a list of object
//! member names and array positions (the form OpenID4VP's DCQL uses:
//! `["address", "street"]`, `["nationalities", 1]`, `["degrees", null]`).

use std::fmt;

use serde_json::Value;

/// One step of a [`ClaimPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// An object member.
    Key(String),
    /// An array element, counted in the credential as issued (before any
    /// element is withheld).
    Index(usize),
    /// Every element of an array.
    AnyIndex,
}

/// A path to a claim, from the top of the credential.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ClaimPath(Vec<PathSegment>);

impl ClaimPath {
    /// The empty path (the whole credential).
    pub fn root() -> Self {
        ClaimPath(Vec::new())
    }

    /// A path of object member names only.
    pub fn keys<S: AsRef<str>>(names: &[S]) -> Self {
        ClaimPath(
            names
                .iter()
                .map(|n| PathSegment::Key(n.as_ref().to_owned()))
                .collect(),
        )
    }

    pub fn key(mut self, name: impl Into<String>) -> Self {
        self.0.push(PathSegment::Key(name.into()));
        self
    }

    pub fn index(mut self, index: usize) -> Self {
        self.0.push(PathSegment::Index(index));
        self
    }

    pub fn any_index(mut self) -> Self {
        self.0.push(PathSegment::AnyIndex);
        self
    }

    pub fn segments(&self) -> &[PathSegment] {
        &self.0
    }

    /// Reads the JSON array form: strings are member names, non-negative
    /// integers positions and `null` every element.
    pub fn from_json(value: &Value) -> Option<Self> {
        let items = value.as_array()?;
        let mut path = ClaimPath::root();
        for item in items {
            path.0.push(match item {
                Value::String(name) => PathSegment::Key(name.clone()),
                Value::Number(n) => PathSegment::Index(usize::try_from(n.as_u64()?).ok()?),
                Value::Null => PathSegment::AnyIndex,
                _ => return None,
            });
        }
        Some(path)
    }

    pub fn to_json(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|s| match s {
                    PathSegment::Key(name) => Value::String(name.clone()),
                    PathSegment::Index(i) => Value::from(*i),
                    PathSegment::AnyIndex => Value::Null,
                })
                .collect(),
        )
    }

    pub(crate) fn child(&self, segment: PathSegment) -> Self {
        let mut segments = Vec::with_capacity(self.0.len() + 1);
        segments.extend_from_slice(&self.0);
        segments.push(segment);
        ClaimPath(segments)
    }

    /// Whether the two paths lie on one branch: one is a prefix of the
    /// other, reading `AnyIndex` as matching every position.
    pub(crate) fn on_same_branch(&self, other: &ClaimPath) -> bool {
        self.0.iter().zip(&other.0).all(|pair| match pair {
            (PathSegment::Key(a), PathSegment::Key(b)) => a == b,
            (PathSegment::Index(a), PathSegment::Index(b)) => a == b,
            (PathSegment::AnyIndex, PathSegment::Index(_) | PathSegment::AnyIndex)
            | (PathSegment::Index(_), PathSegment::AnyIndex) => true,
            _ => false,
        })
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_form_round_trips() {
        let path = ClaimPath::root().key("a").index(2).any_index();
        assert_eq!(path.to_json(), json!(["a", 2, null]));
        assert_eq!(ClaimPath::from_json(&json!(["a", 2, null])), Some(path));
        assert_eq!(ClaimPath::from_json(&json!(["a", -1])), None);
        assert_eq!(ClaimPath::from_json(&json!(["a", true])), None);
        assert_eq!(ClaimPath::from_json(&json!("a")), None);
    }

    #[test]
    fn branches() {
        let address = ClaimPath::keys(&["address"]);
        let street = ClaimPath::keys(&["address", "street"]);
        assert!(address.on_same_branch(&street));
        assert!(street.on_same_branch(&address));
        assert!(!street.on_same_branch(&ClaimPath::keys(&["address", "city"])));
        let all = ClaimPath::root().key("n").any_index();
        assert!(all.on_same_branch(&ClaimPath::root().key("n").index(3)));
        assert!(!all.on_same_branch(&ClaimPath::keys(&["n", "3"])));
    }
}
