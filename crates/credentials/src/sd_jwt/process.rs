//! Replacing digests by the disclosed claims (RFC 9901 §7.1, steps 3–5),
//! shared by holder and verifier.
//!
//! Every rule that stops one presentation from being read two ways is
//! enforced here: each digest occurs once in the whole credential, each
//! disclosure is used exactly once, a disclosed name never shadows a plain
//! claim, and reserved names (`_sd`, `...`, `_sd_alg`) never become claims.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::disclosure::Disclosure;
use super::path::{ClaimPath, PathSegment};
use super::{SdJwtError, ARRAY_ELEMENT_KEY, SD_ALG_KEY, SD_KEY};

/// Deepest nesting of objects and arrays, counting through disclosures.
const MAX_DEPTH: usize = 64;

pub(crate) struct Processed {
    /// The payload with disclosed claims in place, without `_sd`/`_sd_alg`.
    pub(crate) claims: Map<String, Value>,
    /// Where each disclosure (by position) put its claim.
    pub(crate) paths: Vec<ClaimPath>,
}

pub(crate) fn process(
    payload: &Map<String, Value>,
    disclosures: &[Disclosure],
) -> Result<Processed, SdJwtError> {
    let mut by_digest = HashMap::with_capacity(disclosures.len());
    for (i, d) in disclosures.iter().enumerate() {
        if by_digest.insert(d.digest.as_str(), i).is_some() {
            return Err(SdJwtError::DisclosureDuplicate);
        }
    }
    let mut walk = Walk {
        disclosures,
        by_digest,
        seen: HashSet::new(),
        paths: vec![None; disclosures.len()],
    };
    let claims = walk.object(payload, &ClaimPath::root(), 0)?;
    let paths = walk
        .paths
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or(SdJwtError::DisclosureUnreferenced)?;
    Ok(Processed { claims, paths })
}

struct Walk<'a> {
    disclosures: &'a [Disclosure],
    by_digest: HashMap<&'a str, usize>,
    seen: HashSet<&'a str>,
    paths: Vec<Option<ClaimPath>>,
}

impl<'a> Walk<'a> {
    /// The disclosure a digest names, if presented; refuses a digest seen
    /// before anywhere in the credential.
    fn lookup(&mut self, digest: &'a str) -> Result<Option<usize>, SdJwtError> {
        if !self.seen.insert(digest) {
            return Err(SdJwtError::DigestDuplicate);
        }
        Ok(self.by_digest.get(digest).copied())
    }

    fn value(
        &mut self,
        value: &'a Value,
        path: &ClaimPath,
        depth: usize,
    ) -> Result<Value, SdJwtError> {
        if depth > MAX_DEPTH {
            return Err(SdJwtError::TooDeep);
        }
        Ok(match value {
            Value::Object(map) => Value::Object(self.object(map, path, depth + 1)?),
            Value::Array(items) => Value::Array(self.array(items, path, depth + 1)?),
            other => other.clone(),
        })
    }

    fn object(
        &mut self,
        map: &'a Map<String, Value>,
        path: &ClaimPath,
        depth: usize,
    ) -> Result<Map<String, Value>, SdJwtError> {
        let mut out = Map::new();
        for (name, value) in map {
            let top_level_alg = name == SD_ALG_KEY && depth == 0;
            if name == SD_KEY || top_level_alg {
                continue;
            }
            if name == ARRAY_ELEMENT_KEY || name == SD_ALG_KEY {
                return Err(SdJwtError::ReservedClaimName(name.clone()));
            }
            let child = self.value(value, &path.child(PathSegment::Key(name.clone())), depth)?;
            out.insert(name.clone(), child);
        }
        let digests = match map.get(SD_KEY) {
            None => return Ok(out),
            Some(Value::Array(digests)) => digests,
            Some(_) => return Err(SdJwtError::Malformed("_sd is not an array of digests")),
        };
        for digest in digests {
            let Value::String(digest) = digest else {
                return Err(SdJwtError::Malformed(
                    "_sd holds something other than a digest string",
                ));
            };
            let Some(index) = self.lookup(digest)? else {
                continue; // withheld, or a decoy
            };
            let disclosure = &self.disclosures[index];
            let Some(name) = &disclosure.name else {
                return Err(SdJwtError::DigestMismatch);
            };
            if out.contains_key(name) {
                return Err(SdJwtError::ClaimCollision(name.clone()));
            }
            let child_path = path.child(PathSegment::Key(name.clone()));
            let child = self.value(&disclosure.value, &child_path, depth)?;
            self.paths[index] = Some(child_path);
            out.insert(name.clone(), child);
        }
        Ok(out)
    }

    fn array(
        &mut self,
        items: &'a [Value],
        path: &ClaimPath,
        depth: usize,
    ) -> Result<Vec<Value>, SdJwtError> {
        let mut out = Vec::with_capacity(items.len());
        // Positions count the elements as issued; a withheld element (or a
        // decoy) is unknown here, so positions are exact for the holder,
        // who has every disclosure.
        let mut position = 0;
        for item in items {
            let placeholder = match item {
                Value::Object(map) if map.contains_key(ARRAY_ELEMENT_KEY) => {
                    match (map.len(), map.get(ARRAY_ELEMENT_KEY)) {
                        (1, Some(Value::String(digest))) => Some(digest),
                        _ => {
                            return Err(SdJwtError::Malformed(
                                "an array element placeholder is not {\"...\": digest}",
                            ))
                        }
                    }
                }
                _ => None,
            };
            let child_path = path.child(PathSegment::Index(position));
            match placeholder {
                None => {
                    out.push(self.value(item, &child_path, depth)?);
                    position += 1;
                }
                Some(digest) => {
                    let Some(index) = self.lookup(digest)? else {
                        continue;
                    };
                    let disclosure = &self.disclosures[index];
                    if disclosure.name.is_some() {
                        return Err(SdJwtError::DigestMismatch);
                    }
                    out.push(self.value(&disclosure.value, &child_path, depth)?);
                    self.paths[index] = Some(child_path);
                    position += 1;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn replaces_digests_recursively_and_records_paths() {
        let street = Disclosure::new(Some("street"), json!("Main St"));
        let address = Disclosure::new(
            Some("address"),
            json!({"_sd": [street.digest], "city": "X"}),
        );
        let second = Disclosure::new(None, json!("CA"));
        let payload = object(json!({
            "_sd": [address.digest, "decoy-digest"],
            "_sd_alg": "sha-256",
            "nationalities": ["US", {"...": second.digest}, {"...": "withheld"}],
        }));
        let disclosures = [street.clone(), address.clone(), second.clone()];
        let processed = process(&payload, &disclosures).unwrap();
        assert_eq!(
            Value::Object(processed.claims),
            json!({"address": {"street": "Main St", "city": "X"}, "nationalities": ["US", "CA"]})
        );
        assert_eq!(processed.paths[0], ClaimPath::keys(&["address", "street"]));
        assert_eq!(processed.paths[1], ClaimPath::keys(&["address"]));
        assert_eq!(
            processed.paths[2],
            ClaimPath::root().key("nationalities").index(1)
        );
    }

    #[test]
    fn refuses_ambiguous_credentials() {
        let a = Disclosure::new(Some("a"), json!(1));
        let e = Disclosure::new(None, json!(1));
        let cases: Vec<(Value, Vec<Disclosure>, &str)> = vec![
            (
                json!({"_sd": [a.digest]}),
                vec![a.clone(), a.clone()],
                "sd-jwt-disclosure-duplicate",
            ),
            (
                json!({"_sd": [a.digest, a.digest]}),
                vec![a.clone()],
                "sd-jwt-digest-duplicate",
            ),
            (
                json!({"_sd": [a.digest], "x": {"_sd": [a.digest]}}),
                vec![],
                "sd-jwt-digest-duplicate",
            ),
            (
                json!({"_sd": []}),
                vec![a.clone()],
                "sd-jwt-disclosure-unreferenced",
            ),
            (
                json!({"_sd": [a.digest], "a": 2}),
                vec![a.clone()],
                "sd-jwt-claim-collision",
            ),
            (
                json!({"_sd": [e.digest]}),
                vec![e.clone()],
                "sd-jwt-digest-mismatch",
            ),
            (
                json!({"x": [{"...": a.digest}]}),
                vec![a.clone()],
                "sd-jwt-digest-mismatch",
            ),
            (
                json!({"x": [{"...": e.digest, "y": 1}]}),
                vec![e.clone()],
                "sd-jwt-malformed",
            ),
            (json!({"x": [{"...": 1}]}), vec![], "sd-jwt-malformed"),
            (json!({"_sd": "abc"}), vec![], "sd-jwt-malformed"),
            (json!({"_sd": [1]}), vec![], "sd-jwt-malformed"),
            (json!({"...": 1}), vec![], "sd-jwt-reserved-claim-name"),
            (
                json!({"x": {"_sd_alg": "sha-256"}}),
                vec![],
                "sd-jwt-reserved-claim-name",
            ),
        ];
        for (payload, disclosures, code) in cases {
            let err = process(&object(payload.clone()), &disclosures)
                .err()
                .map(|e| e.code());
            assert_eq!(err, Some(code), "{payload}");
        }
    }

    #[test]
    fn depth_is_bounded_through_disclosures() {
        let mut disclosures = Vec::new();
        let mut value = json!(1);
        for _ in 0..(MAX_DEPTH + 2) {
            let d = Disclosure::new(None, value);
            value = json!([{"...": d.digest}]);
            disclosures.push(d);
        }
        let payload = object(json!({ "deep": value }));
        assert_eq!(
            process(&payload, &disclosures).err().map(|e| e.code()),
            Some("sd-jwt-too-deep")
        );
    }
}
