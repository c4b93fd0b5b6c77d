// Checking what the node serves, in the browser, with nothing but
// WebCrypto: a C2SP signed-note checkpoint (Ed25519, docs/log.md), an
// RFC 9162 inclusion proof (SHA-256), and a transaction's own Ed25519
// signature over its JCS bytes (docs/transactions.md).

import { concat, equalBytes, fromBase64, fromBase64url, fromHex, fromUtf8, sha256, toHex, utf8 } from "./bytes";
import { publicKeyFromDid } from "./did";
import { verifySignature } from "./keys";
import { SIGNING_DOMAIN, jcs, leafHash } from "./tx";

export interface Checkpoint {
  origin: string;
  size: number;
  root: Uint8Array;
}

/** The name, key id and 32-byte key of a verifier key `<name>+<hex id>+<base64(0x01||key)>`. */
export function parseVerifierKey(vkey: string): { name: string; keyId: string; key: Uint8Array } {
  // The base64 part may itself hold "+": split at the first two only.
  const first = vkey.indexOf("+");
  const second = vkey.indexOf("+", first + 1);
  const parts = [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
  if (first <= 0 || second < 0 || !/^[0-9a-f]{8}$/.test(parts[1])) throw new Error("the pinned checkpoint key is not a verifier key");
  let key: Uint8Array;
  try {
    key = fromBase64(parts[2]);
  } catch {
    throw new Error("the pinned checkpoint key is not a verifier key");
  }
  if (key.length !== 33 || key[0] !== 0x01) throw new Error("not an Ed25519 verifier key");
  return { name: parts[0], keyId: parts[1], key: key.slice(1) };
}

/** Verifies a signed note with the pinned verifier key; returns the checkpoint or throws why not. */
export async function verifyCheckpoint(note: string, vkey: string): Promise<Checkpoint> {
  const { name, keyId, key } = parseVerifierKey(vkey);
  const split = note.indexOf("\n\n");
  if (split < 0) throw new Error("the checkpoint is not a signed note");
  const body = note.slice(0, split + 1);
  const lines = body.split("\n");
  if (lines.length !== 4 || lines[3] !== "") throw new Error("the checkpoint body is not origin, size and root");
  const [origin, sizeText, rootText] = lines;
  if (origin !== name) throw new Error(`the checkpoint is for ${origin}, not ${name}`);
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw new Error("the checkpoint size is not a number");
  const root = fromBase64(rootText);
  if (root.length !== 32) throw new Error("the checkpoint root is not a SHA-256 hash");
  for (const line of note.slice(split + 2).split("\n")) {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    let sig: Uint8Array;
    try {
      sig = fromBase64(match[2]);
    } catch {
      continue;
    }
    if (sig.length !== 68 || toHex(sig.slice(0, 4)) !== keyId) continue;
    if (await verifySignature(key, sig.slice(4), utf8(body))) {
      return { origin, size: Number(sizeText), root };
    }
    throw new Error("the checkpoint's signature does not verify with the node's key");
  }
  throw new Error("the checkpoint carries no signature by the node's key");
}

async function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  return sha256(concat(Uint8Array.of(1), left, right));
}

/** RFC 9162 §2.1.3.2. */
export async function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: Uint8Array[], root: Uint8Array): Promise<boolean> {
  if (index >= size || leaf.length !== 32 || root.length !== 32) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== 32 || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(r, root);
}

/** A log entry parsed after its bytes were found canonical and its signature valid. */
export interface VerifiedTx {
  type: string;
  signer: string;
  network: string;
  body: Record<string, unknown>;
}

/** Checks a transaction's JCS form and signature; returns it, or throws why not. */
export async function verifyTx(entry: Uint8Array): Promise<VerifiedTx> {
  let tx: Record<string, unknown>;
  try {
    tx = JSON.parse(fromUtf8(entry));
  } catch {
    throw new Error("the entry is not JSON");
  }
  if (typeof tx !== "object" || tx === null || Array.isArray(tx)) throw new Error("the entry is not a transaction");
  if (jcs(tx) !== fromUtf8(entry)) throw new Error("the entry is not in canonical form");
  const { sig, ...unsigned } = tx;
  if (typeof sig !== "string" || typeof tx.signer !== "string") throw new Error("the entry has no signature");
  let signature: Uint8Array;
  let key: Uint8Array;
  try {
    signature = fromBase64url(sig);
    key = publicKeyFromDid(tx.signer);
  } catch {
    throw new Error("the entry's signature or signer is malformed");
  }
  if (!(await verifySignature(key, signature, concat(SIGNING_DOMAIN, utf8(jcs(unsigned)))))) {
    throw new Error("the entry's signature does not verify");
  }
  return { type: String(tx.type), signer: tx.signer, network: String(tx.network), body: (tx.body ?? {}) as Record<string, unknown> };
}

export interface EntryCheck {
  ok: boolean;
  /** What failed, in words, when not ok. */
  problem?: string;
  tx?: VerifiedTx;
}

/**
 * An entry served with its index, leaf hash and inclusion proof: its bytes
 * hash to the leaf, the proof leads to the verified checkpoint's root, its
 * signature verifies, and (when given) it was signed by one of `signers`
 * (for `record` and `access` entries: the custodian set of its time, see
 * custodians.ts).
 */
export async function checkEntry(
  entryText: string,
  index: number,
  leafHex: string,
  proofHex: string[],
  checkpoint: Checkpoint,
  signers?: ReadonlySet<string>,
): Promise<EntryCheck> {
  const entry = utf8(entryText);
  const leaf = await leafHash(entry);
  if (toHex(leaf) !== leafHex) return { ok: false, problem: "the entry does not match its leaf hash: it was altered" };
  let proof: Uint8Array[];
  try {
    proof = proofHex.map(fromHex);
  } catch {
    return { ok: false, problem: "the inclusion proof is malformed" };
  }
  if (!(await verifyInclusion(leaf, index, checkpoint.size, proof, checkpoint.root))) {
    return { ok: false, problem: "the inclusion proof does not lead to the signed checkpoint" };
  }
  let tx: VerifiedTx;
  try {
    tx = await verifyTx(entry);
  } catch (e) {
    return { ok: false, problem: (e as Error).message };
  }
  if (signers && !signers.has(tx.signer)) {
    return { ok: false, problem: "the entry was not signed by a node of the network's custodian set at its time", tx };
  }
  if (tx.network !== checkpoint.origin) return { ok: false, problem: "the entry belongs to another network", tx };
  return { ok: true, tx };
}

/** RFC 9162 §2.1.4.2: the tree of size `second` extends the tree of size `first`. */
export async function verifyConsistency(first: number, second: number, proof: Uint8Array[], firstRoot: Uint8Array, secondRoot: Uint8Array): Promise<boolean> {
  if (first > second || first === 0) return false;
  if (first === second) return proof.length === 0 && equalBytes(firstRoot, secondRoot);
  if (proof.length === 0 || proof.some((p) => p.length !== 32)) return false;
  const path = (first & (first - 1)) === 0 ? [firstRoot, ...proof] : proof;
  if (path.length === 0) return false;
  let fn = first - 1;
  let sn = second - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(fr, firstRoot) && equalBytes(sr, secondRoot);
}
