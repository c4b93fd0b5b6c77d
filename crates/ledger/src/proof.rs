//! Checking RFC 9162 inclusion and consistency proofs (client side).

use crate::merkle::Hash;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("the inclusion proof does not lead from leaf {index} to the root of the tree of size {size}")]
    Inclusion { index: u64, size: u64 },
    #[error("the consistency proof does not show that the tree of size {old_size} is a prefix of the tree of size {new_size}")]
    Consistency { old_size: u64, new_size: u64 },
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose
/// root is `root`.
pub fn verify_inclusion(
    leaf: Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: Hash,
) -> Result<(), ProofError> {
    let fail = ProofError::Inclusion { index, size };
    if index >= size {
        return Err(fail);
    }
    tlog_tiles::check_record(&proof.to_vec(), size, root, index, leaf).map_err(|_| fail)
}

/// Checks that the tree of `old_size` leaves with root `old_root` is a
/// prefix of the tree of `new_size` leaves with root `new_root`.
pub fn verify_consistency(
    old_size: u64,
    old_root: Hash,
    new_size: u64,
    new_root: Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let fail = ProofError::Consistency { old_size, new_size };
    if old_size == 0 || old_size > new_size {
        // RFC 9162 defines no proof from the empty tree; like the reference
        // verifier we refuse the question rather than answer it vacuously.
        return Err(fail);
    }
    if old_size == new_size {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            Err(fail)
        };
    }
    tlog_tiles::check_tree(&proof.to_vec(), new_size, new_root, old_size, old_root)
        .map_err(|_| fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde_json::Value;
    use std::path::{Path, PathBuf};

    const PROBES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/merkle"
    );

    fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                json_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }

    /// A probe hash; a value that is not 32 bytes cannot be a hash, so the
    /// probe must fail.
    fn hash(v: &Value) -> Option<Hash> {
        let bytes = STANDARD.decode(v.as_str().unwrap_or("")).ok()?;
        Some(Hash(bytes.try_into().ok()?))
    }

    /// A probe root. Some "sizes are equal" probes use short placeholder
    /// roots where only equality matters; those map to a stand-in hash that
    /// keeps equality.
    fn root(v: &Value) -> Option<Hash> {
        use sha2::{Digest, Sha256};
        let bytes = STANDARD.decode(v.as_str().unwrap_or("")).ok()?;
        match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(h) => Some(Hash(h)),
            Err(_) => Some(Hash(Sha256::digest(&bytes).into())),
        }
    }

    fn hashes(v: &Value) -> Option<Vec<Hash>> {
        v.as_array()
            .map_or(Some(vec![]), |a| a.iter().map(hash).collect())
    }

    #[test]
    fn transparency_dev_inclusion_probes() {
        let mut files = Vec::new();
        json_files(&Path::new(PROBES).join("inclusion"), &mut files);
        assert!(files.len() > 50, "probes present");
        for file in files {
            let p: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let want_err = p["wantErr"].as_bool().unwrap();
            let result = (|| {
                let leaf = hash(&p["leafHash"])?;
                let root = hash(&p["root"])?;
                let proof = hashes(&p["proof"])?;
                let index = p["leafIdx"].as_i64().and_then(|i| u64::try_from(i).ok())?;
                let size = p["treeSize"].as_i64().and_then(|i| u64::try_from(i).ok())?;
                verify_inclusion(leaf, index, size, &proof, root).ok()
            })();
            assert_eq!(result.is_none(), want_err, "{}", file.display());
        }
    }

    #[test]
    fn transparency_dev_consistency_probes() {
        let mut files = Vec::new();
        json_files(&Path::new(PROBES).join("consistency"), &mut files);
        assert!(files.len() > 50, "probes present");
        for file in files {
            let p: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let want_err = p["wantErr"].as_bool().unwrap();
            let result = (|| {
                let root1 = root(&p["root1"])?;
                let root2 = root(&p["root2"])?;
                let proof = hashes(&p["proof"])?;
                let size1 = p["size1"].as_i64().and_then(|i| u64::try_from(i).ok())?;
                let size2 = p["size2"].as_i64().and_then(|i| u64::try_from(i).ok())?;
                verify_consistency(size1, root1, size2, root2, &proof).ok()
            })();
            assert_eq!(result.is_none(), want_err, "{}", file.display());
        }
    }
}
