//! RFC 9162 (RFC 6962) Merkle tree hashing, from `tlog_tiles`.

pub use tlog_tiles::{node_hash, record_hash as leaf_hash, Hash, HASH_SIZE};

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    use sha2::{Digest, Sha256};
    Hash(Sha256::digest([]).into())
}

/// Computes tree roots from a stream of leaf hashes while holding only one
/// hash per level (the right edge), so a verifier can recompute a log of any
/// size in constant memory.
#[derive(Default, Clone)]
pub struct RootBuilder {
    size: u64,
    /// Roots of the perfect subtrees that make up the tree, largest first.
    edge: Vec<Hash>,
}

impl RootBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        // Each trailing one bit of the old size is a subtree that the new
        // leaf completes.
        let mut merges = self.size.trailing_ones();
        while merges > 0 {
            let left = self
                .edge
                .pop()
                .expect("edge holds one hash per set bit of size");
            hash = node_hash(left, hash);
            merges -= 1;
        }
        self.edge.push(hash);
        self.size += 1;
    }

    /// The root of the tree of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut hashes = self.edge.iter().rev();
        let Some(&last) = hashes.next() else {
            return empty_root();
        };
        hashes.fold(last, |right, &left| node_hash(left, right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const REFERENCE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/vectors/merkle/rfc6962-reference-tree.json"
    );

    fn reference() -> Value {
        serde_json::from_str(&std::fs::read_to_string(REFERENCE).unwrap()).unwrap()
    }

    fn hex_hash(v: &Value) -> Hash {
        Hash(
            hex::decode(v.as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        )
    }

    #[test]
    fn rfc6962_hasher_vectors() {
        let r = reference();
        for v in r["hasher_vectors"].as_array().unwrap() {
            let want = hex_hash(&v["want"]);
            match v["function"].as_str().unwrap() {
                "empty_root" => assert_eq!(empty_root(), want),
                "hash_leaf" => {
                    let input = hex::decode(v["input_hex"].as_str().unwrap()).unwrap();
                    assert_eq!(leaf_hash(&input), want);
                }
                "hash_children" => {
                    let l = hex::decode(v["left_hex"].as_str().unwrap()).unwrap();
                    let rr = hex::decode(v["right_hex"].as_str().unwrap()).unwrap();
                    // RFC 6962 node hash over arbitrary byte strings.
                    use sha2::{Digest, Sha256};
                    let mut h = Sha256::new();
                    h.update([1u8]);
                    h.update(&l);
                    h.update(&rr);
                    assert_eq!(Hash(h.finalize().into()), want);
                }
                other => panic!("unknown vector function {other}"),
            }
        }
    }

    #[test]
    fn reference_tree_roots_for_every_size() {
        let r = reference();
        let tree = &r["reference_tree"];
        let leaves: Vec<Vec<u8>> = tree["leaf_inputs_hex"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| hex::decode(l.as_str().unwrap()).unwrap())
            .collect();
        let roots = tree["root_hashes_by_tree_size"]["roots"]
            .as_array()
            .unwrap();
        let mut builder = RootBuilder::new();
        assert_eq!(builder.root(), hex_hash(&roots[0]));
        for (i, leaf) in leaves.iter().enumerate() {
            builder.push(leaf_hash(leaf));
            assert_eq!(builder.root(), hex_hash(&roots[i + 1]), "size {}", i + 1);
        }
    }
}
