// Signed transactions (docs/transactions.md): the JCS (RFC 8785) form of
// {body, network, nonce, signer, type, v} signed with Ed25519 over
// "hygeia.tx.v1" 0x00 || JCS(without sig); the grant id and every
// transaction id is SHA-256(0x00 || canonical bytes) in hex.

import canonicalize from "canonicalize";
import { concat, randomBase64url, sha256, toBase64url, toHex, utf8 } from "./bytes";
import { sign } from "./keys";

export const SIGNING_DOMAIN = utf8("hygeia.tx.v1\u0000");

export function jcs(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error("cannot canonicalize");
  return text;
}

export async function leafHash(entry: Uint8Array): Promise<Uint8Array> {
  return sha256(concat(Uint8Array.of(0), entry));
}

export interface Signed {
  bytes: Uint8Array;
  leafHash: string;
}

export async function signTx(
  privateKey: CryptoKey,
  signer: string,
  network: string,
  type: string,
  body: unknown,
): Promise<Signed> {
  const unsigned = { body, network, nonce: `web-${randomBase64url(16)}`, signer, type, v: 1 };
  const signature = await sign(privateKey, concat(SIGNING_DOMAIN, utf8(jcs(unsigned))));
  const bytes = utf8(jcs({ ...unsigned, sig: toBase64url(signature) }));
  return { bytes, leafHash: toHex(await leafHash(bytes)) };
}

// An `identity.rotate` names a new key only with that key's acceptance
// (docs/recovery.md): its Ed25519 signature over "hygeia.identity.rotate.v1"
// 0x00 || JCS({new_key, subject}), unpadded base64url.
export const ROTATE_PROOF_DOMAIN = utf8("hygeia.identity.rotate.v1\u0000");

export async function rotationProof(newKey: CryptoKey, subject: string, newKeyDid: string): Promise<string> {
  const message = concat(ROTATE_PROOF_DOMAIN, utf8(jcs({ new_key: newKeyDid, subject })));
  return toBase64url(await sign(newKey, message));
}
