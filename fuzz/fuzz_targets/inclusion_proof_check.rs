//! Inclusion and consistency proofs as a client receives them. The input is
//! read as little-endian `index: u64`, `size: u64`, then 32-byte hashes:
//! a leaf (or old root), a root (or new root), and the proof; missing bytes
//! count as zero. Checking must never panic, whatever the numbers.
#![no_main]

use hygeia_ledger::proof::{verify_consistency, verify_inclusion};
use hygeia_ledger::Hash;
use libfuzzer_sys::fuzz_target;

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    if let Some(src) = data.get(at..) {
        let n = src.len().min(8);
        bytes[..n].copy_from_slice(&src[..n]);
    }
    u64::from_le_bytes(bytes)
}

fn hash_at(data: &[u8], at: usize) -> Hash {
    let mut bytes = [0u8; 32];
    if let Some(src) = data.get(at..) {
        let n = src.len().min(32);
        bytes[..n].copy_from_slice(&src[..n]);
    }
    Hash(bytes)
}

fuzz_target!(|data: &[u8]| {
    let index = u64_at(data, 0);
    let size = u64_at(data, 8);
    let leaf = hash_at(data, 16);
    let root = hash_at(data, 48);
    let proof: Vec<Hash> = data
        .get(80..)
        .unwrap_or_default()
        .chunks_exact(32)
        .map(|c| Hash(c.try_into().unwrap()))
        .collect();

    let inclusion = verify_inclusion(leaf, index, size, &proof, root);
    if inclusion.is_ok() {
        assert!(index < size);
    }
    if size == 1 && index == 0 && proof.is_empty() {
        assert_eq!(inclusion.is_ok(), leaf == root);
    }

    let consistency = verify_consistency(index, leaf, size, root, &proof);
    if consistency.is_ok() {
        assert!(0 < index && index <= size);
    }
    if index == size && index > 0 {
        assert_eq!(consistency.is_ok(), proof.is_empty() && leaf == root);
    }
});
