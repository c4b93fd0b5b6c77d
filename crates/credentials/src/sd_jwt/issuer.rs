//! Issuing an SD-JWT VC: the issuer marks which object members and array
//! elements are selectively disclosable, by claim path; marks may nest
//! (recursive disclosure: an address that is disclosable as a whole and
//! whose street is disclosable on its own).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::disclosure::{digest, fresh_salt, Disclosure};
use super::path::{ClaimPath, PathSegment};
use super::{IssueError, ARRAY_ELEMENT_KEY, NOT_DISCLOSABLE, SD_ALG, SD_ALG_KEY, SD_KEY, TYP};
use crate::jws::{sign_compact, SigningKey, VerifyingKey};

/// Builds and signs an SD-JWT VC.
///
/// ```
/// use hygeia_credentials::jws::SigningKey;
/// use hygeia_credentials::sd_jwt::{ClaimPath, SdJwtBuilder};
/// use serde_json::json;
///
/// let issuer = SigningKey::generate_ed25519();
/// let claims = json!({"iss": "https://board.example", "vct": "https://example/vct",
///     "licence_number": "A-1", "jurisdiction": "DE"});
/// let issued = SdJwtBuilder::new(claims.as_object().unwrap().clone())
///     .disclosable(ClaimPath::keys(&["licence_number"]))
///     .issue(&issuer)
///     .unwrap();
/// assert!(issued.ends_with('~'));
/// ```
#[derive(Clone, Debug)]
pub struct SdJwtBuilder {
    claims: Map<String, Value>,
    disclosable: Vec<ClaimPath>,
    decoys_per_object: usize,
    holder_key: Option<VerifyingKey>,
    header: Map<String, Value>,
}

impl SdJwtBuilder {
    /// Starts from the full claim set, `iss` and `vct` included; `_sd_alg`
    /// and `cnf` are added by the builder.
    pub fn new(claims: Map<String, Value>) -> Self {
        SdJwtBuilder {
            claims,
            disclosable: Vec::new(),
            decoys_per_object: 0,
            holder_key: None,
            header: Map::new(),
        }
    }

    /// Marks the member or element at `path` selectively disclosable
    /// (`AnyIndex` marks every element of an array).
    pub fn disclosable(mut self, path: ClaimPath) -> Self {
        self.disclosable.push(path);
        self
    }

    /// Adds `count` decoy digests to every object that has disclosable
    /// members (and to the top level), so the number of hidden claims
    /// does not show.
    pub fn decoys_per_object(mut self, count: usize) -> Self {
        self.decoys_per_object = count;
        self
    }

    /// Binds the credential to the holder's key (`cnf.jwk`), so that
    /// presenting it needs a KB-JWT signed with that key.
    pub fn holder_key(mut self, key: &VerifyingKey) -> Self {
        self.holder_key = Some(key.clone());
        self
    }

    /// Adds a JOSE header member (e.g. `kid`). `alg` and `typ` are set by
    /// the builder.
    pub fn header(mut self, name: impl Into<String>, value: Value) -> Self {
        self.header.insert(name.into(), value);
        self
    }

    /// Signs the SD-JWT; returns its compact issuance form
    /// `<JWT>~<D1>~…~<Dn>~`, every disclosure included.
    pub fn issue(self, key: &SigningKey) -> Result<String, IssueError> {
        for name in ["iss", "vct"] {
            if !self.claims.get(name).is_some_and(Value::is_string) {
                return Err(IssueError::MissingClaim(name));
            }
        }
        check_reserved_names(&Value::Object(self.claims.clone()))?;
        let all_claims = Value::Object(self.claims.clone());
        let mut marks = HashSet::new();
        for path in &self.disclosable {
            if let [PathSegment::Key(name)] = path.segments() {
                if NOT_DISCLOSABLE.contains(&name.as_str()) {
                    return Err(IssueError::ClaimNotDisclosable(name.clone()));
                }
            }
            let mut found = HashSet::new();
            expand(&all_claims, path.segments(), &mut Vec::new(), &mut found);
            if found.is_empty() {
                return Err(IssueError::NoSuchClaim(path.to_string()));
            }
            marks.extend(found);
        }
        let mut build = Build {
            marks: &marks,
            decoys: self.decoys_per_object,
            disclosures: Vec::new(),
        };
        let mut payload = build.object(self.claims, &mut Vec::new(), true);
        payload.insert(SD_ALG_KEY.into(), Value::String(SD_ALG.into()));
        if let Some(holder) = &self.holder_key {
            payload.insert("cnf".into(), serde_json::json!({ "jwk": holder.to_jwk() }));
        }
        let mut header = self.header;
        header.insert("typ".into(), Value::String(TYP.into()));
        let jwt = sign_compact(header, Value::Object(payload).to_string().as_bytes(), key);
        let mut out = jwt;
        out.push('~');
        for d in build.disclosures {
            out.push_str(&d.encoded);
            out.push('~');
        }
        Ok(out)
    }
}

fn check_reserved_names(value: &Value) -> Result<(), IssueError> {
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                if name == SD_KEY || name == ARRAY_ELEMENT_KEY || name == SD_ALG_KEY {
                    return Err(IssueError::ReservedClaimName(name.clone()));
                }
                check_reserved_names(child)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(check_reserved_names),
        _ => Ok(()),
    }
}

/// A concrete path: member names and positions only.
type Concrete = Vec<PathSegment>;

/// Adds to `marks` every concrete path in `value` that `pattern` names.
fn expand(
    value: &Value,
    pattern: &[PathSegment],
    prefix: &mut Concrete,
    marks: &mut HashSet<Concrete>,
) {
    let Some((first, rest)) = pattern.split_first() else {
        if !prefix.is_empty() {
            marks.insert(prefix.clone());
        }
        return;
    };
    match (first, value) {
        (PathSegment::Key(name), Value::Object(map)) => {
            if let Some(child) = map.get(name) {
                prefix.push(first.clone());
                expand(child, rest, prefix, marks);
                prefix.pop();
            }
        }
        (PathSegment::Index(i), Value::Array(items)) => {
            if let Some(child) = items.get(*i) {
                prefix.push(first.clone());
                expand(child, rest, prefix, marks);
                prefix.pop();
            }
        }
        (PathSegment::AnyIndex, Value::Array(items)) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(PathSegment::Index(i));
                expand(child, rest, prefix, marks);
                prefix.pop();
            }
        }
        _ => {}
    }
}

struct Build<'m> {
    marks: &'m HashSet<Concrete>,
    decoys: usize,
    disclosures: Vec<Disclosure>,
}

impl Build<'_> {
    fn value(&mut self, value: Value, path: &mut Concrete) -> Value {
        match value {
            Value::Object(map) => Value::Object(self.object(map, path, false)),
            Value::Array(items) => Value::Array(self.array(items, path)),
            other => other,
        }
    }

    fn object(
        &mut self,
        map: Map<String, Value>,
        path: &mut Concrete,
        top_level: bool,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        let mut digests = Vec::new();
        for (name, value) in map {
            path.push(PathSegment::Key(name.clone()));
            let child = self.value(value, path);
            if self.marks.contains(path) {
                let d = Disclosure::new(Some(&name), child);
                digests.push(d.digest.clone());
                self.disclosures.push(d);
            } else {
                out.insert(name, child);
            }
            path.pop();
        }
        if !digests.is_empty() || top_level {
            digests.extend((0..self.decoys).map(|_| digest(&fresh_salt())));
        }
        if !digests.is_empty() {
            // Sorted, so the order does not tell which claim is which.
            digests.sort();
            out.insert(
                SD_KEY.into(),
                Value::Array(digests.into_iter().map(Value::String).collect()),
            );
        }
        out
    }

    fn array(&mut self, items: Vec<Value>, path: &mut Concrete) -> Vec<Value> {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            path.push(PathSegment::Index(i));
            let child = self.value(item, path);
            if self.marks.contains(path) {
                let d = Disclosure::new(None, child);
                out.push(serde_json::json!({ ARRAY_ELEMENT_KEY: d.digest }));
                self.disclosures.push(d);
            } else {
                out.push(child);
            }
            path.pop();
        }
        out
    }
}
