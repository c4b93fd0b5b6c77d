// Key recovery with guardians in the browser (docs/recovery.md), byte for
// byte the scheme of hygeia-identity: Pedersen verifiable secret sharing
// over P-256 (group arithmetic and RFC 9380 hash-to-curve from
// @noble/curves), split ids and file formats as the Rust crate writes and
// reads them, and the recovery key SHA-256("hygeia-recovery-key-v1" || s)
// used as an Ed25519 seed in WebCrypto. Loaded only by the recovery page.

import { p256, p256_hasher } from "@noble/curves/nist.js";
import { concat, fromBase64url, sha256, toBase64url, utf8 } from "./bytes";
import { didFromPublicKey } from "./did";

const Point = p256.Point;
const Fn = Point.Fn;
const ORDER = Fn.ORDER;
const DST = "HYGEIA-RECOVERY-V1-P256_XMD:SHA-256_SSWU_RO_";
const SPLIT_DOMAIN = utf8("hygeia-recovery-split-v1");
const KEY_DOMAIN = utf8("hygeia-recovery-key-v1");

type P = InstanceType<typeof Point>;

export class RecoveryError extends Error {
  constructor(
    public code: string,
    message: string,
  ) {
    super(message);
  }
}

/** h: hashed to the curve, so that nobody knows log_g h. */
export function blinderGenerator(): P {
  return p256_hasher.hashToCurve(utf8("pedersen-blinder-generator"), { DST }) as unknown as P;
}

function scalarToBytes(s: bigint): Uint8Array {
  const out = new Uint8Array(32);
  let v = s;
  for (let i = 31; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

function scalarFromBytes(bytes: Uint8Array, what: string): bigint {
  if (bytes.length !== 32) throw new RecoveryError("recovery-malformed", `${what} is not a 32-byte scalar`);
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  if (v >= ORDER) throw new RecoveryError("recovery-malformed", `${what} is not a canonical scalar`);
  return v;
}

function randomScalar(): bigint {
  return scalarFromBytes(p256.utils.randomSecretKey(), "a random scalar");
}

function pointFromBytes(bytes: Uint8Array, what: string): P {
  if (bytes.length !== 33) throw new RecoveryError("recovery-malformed", `${what} is not a compressed point`);
  try {
    const point = Point.fromBytes(bytes);
    if (point.equals(Point.ZERO)) throw new Error("identity");
    return point;
  } catch {
    throw new RecoveryError("recovery-malformed", `${what} is not a point of P-256`);
  }
}

const mul = (point: P, s: bigint): P => (s === 0n ? Point.ZERO : point.multiply(s));

async function splitId(threshold: number, guardians: number, set: P[]): Promise<Uint8Array> {
  return sha256(concat(SPLIT_DOMAIN, Uint8Array.of(threshold, guardians), ...set.map((p) => p.toBytes(true))));
}

export interface Verifier {
  threshold: number;
  guardians: number;
  commitments: P[];
  split: Uint8Array;
}

export interface Share {
  split: Uint8Array;
  index: number;
  value: bigint;
  blinder: bigint;
}

/** The Ed25519 seed and did:key of the recovery key of secret `s`. */
export async function recoveryKey(secret: bigint): Promise<{ seed: Uint8Array; did: string; privateKey: CryptoKey }> {
  const seed = await sha256(concat(KEY_DOMAIN, scalarToBytes(secret)));
  const der = concat(Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]), seed);
  const probe = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", probe);
  const privateKey = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
  der.fill(0);
  return { seed, did: didFromPublicKey(fromBase64url(jwk.x ?? "")), privateKey };
}

/** A new split of a fresh secret among `guardians`, any `threshold` of whom recover it. */
export async function split(threshold: number, guardians: number): Promise<{ verifier: Verifier; shares: Share[]; recoveryDid: string }> {
  if (!(Number.isInteger(threshold) && Number.isInteger(guardians) && threshold >= 2 && threshold <= guardians && guardians <= 255)) {
    throw new RecoveryError("recovery-threshold-invalid", "Choose at least 2 guardians needed, and no more than the number of guardians (at most 255)");
  }
  const a = Array.from({ length: threshold }, randomScalar);
  const b = Array.from({ length: threshold }, randomScalar);
  const h = blinderGenerator();
  const commitments = a.map((aj, j) => Point.BASE.multiply(aj).add(h.multiply(b[j])));
  const id = await splitId(threshold, guardians, [Point.BASE, h, ...commitments]);
  const evaluate = (coefficients: bigint[], x: bigint) => coefficients.reduceRight((acc, c) => Fn.add(Fn.mul(acc, x), c), 0n);
  const shares: Share[] = [];
  for (let i = 1; i <= guardians; i++) {
    shares.push({ split: id, index: i, value: evaluate(a, BigInt(i)), blinder: evaluate(b, BigInt(i)) });
  }
  const { did } = await recoveryKey(a[0]);
  a.fill(0n);
  b.fill(0n);
  return { verifier: { threshold, guardians, commitments, split: id }, shares, recoveryDid: did };
}

export function verifierToJson(v: Verifier): string {
  return (
    JSON.stringify(
      {
        format: "hygeia-recovery-verifier",
        version: 1,
        split: toBase64url(v.split),
        threshold: v.threshold,
        guardians: v.guardians,
        commitments: v.commitments.map((c) => toBase64url(c.toBytes(true))),
      },
      null,
      2,
    ) + "\n"
  );
}

export function shareToJson(s: Share): string {
  return (
    JSON.stringify(
      {
        format: "hygeia-recovery-share",
        version: 1,
        split: toBase64url(s.split),
        index: s.index,
        value: toBase64url(scalarToBytes(s.value)),
        blinder: toBase64url(scalarToBytes(s.blinder)),
      },
      null,
      2,
    ) + "\n"
  );
}

function parseObject(text: string, format: string, what: string, maxLen: number, fields: string[]): Record<string, unknown> {
  if (text.length > maxLen) throw new RecoveryError("recovery-malformed", `This ${what} file is too large`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new RecoveryError("recovery-malformed", `This is not a ${what} file (not JSON)`);
  }
  const object = value as Record<string, unknown>;
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new RecoveryError("recovery-malformed", `This is not a ${what} file`);
  if (object.format !== format) throw new RecoveryError("recovery-malformed", `This is not a ${what} file (its format is ${JSON.stringify(object.format)})`);
  if (object.version !== 1) throw new RecoveryError("recovery-malformed", `This ${what} file has version ${JSON.stringify(object.version)}; this page reads version 1`);
  const unknown = Object.keys(object).filter((k) => !fields.includes(k));
  if (unknown.length) throw new RecoveryError("recovery-malformed", `This ${what} file has unknown members: ${unknown.join(", ")}`);
  return object;
}

function bytesField(object: Record<string, unknown>, name: string, length: number, what: string): Uint8Array {
  try {
    const bytes = fromBase64url(String(object[name] ?? ""));
    if (bytes.length !== length) throw new Error();
    return bytes;
  } catch {
    throw new RecoveryError("recovery-malformed", `The ${name} of this ${what} file is not ${length} bytes of base64url`);
  }
}

export async function parseVerifier(text: string): Promise<Verifier> {
  const what = "share verifier";
  const o = parseObject(text, "hygeia-recovery-verifier", what, 32 * 1024, ["format", "version", "split", "threshold", "guardians", "commitments"]);
  const threshold = Number(o.threshold);
  const guardians = Number(o.guardians);
  if (!Number.isInteger(threshold) || !Number.isInteger(guardians) || threshold < 2 || threshold > guardians || guardians > 255) {
    throw new RecoveryError("recovery-malformed", "This share verifier's threshold and guardian count are not valid");
  }
  if (!Array.isArray(o.commitments) || o.commitments.length !== threshold) {
    throw new RecoveryError("recovery-malformed", "This share verifier does not have one commitment per needed guardian");
  }
  const commitments = o.commitments.map((c, j) => {
    let bytes: Uint8Array;
    try {
      bytes = fromBase64url(String(c));
    } catch {
      throw new RecoveryError("recovery-malformed", `Commitment ${j} is not base64url`);
    }
    return pointFromBytes(bytes, `commitment ${j}`);
  });
  const split = bytesField(o, "split", 32, what);
  const expected = await splitId(threshold, guardians, [Point.BASE, blinderGenerator(), ...commitments]);
  if (toBase64url(expected) !== toBase64url(split)) throw new RecoveryError("recovery-malformed", "This share verifier's split id does not match its commitments");
  return { threshold, guardians, commitments, split };
}

export function parseShare(text: string): Share {
  const what = "guardian share";
  const o = parseObject(text, "hygeia-recovery-share", what, 1024, ["format", "version", "split", "index", "value", "blinder"]);
  const index = Number(o.index);
  if (!Number.isInteger(index) || index < 1 || index > 255) throw new RecoveryError("recovery-malformed", "This guardian share's index is not 1 to 255");
  return {
    split: bytesField(o, "split", 32, what),
    index,
    value: scalarFromBytes(bytesField(o, "value", 32, what), "the share's value"),
    blinder: scalarFromBytes(bytesField(o, "blinder", 32, what), "the share's blinder"),
  };
}

/** Whether a share lies on the committed polynomials: g^a(i) h^b(i) = prod C_j^(i^j). */
export function verifyShare(share: Share, verifier: Verifier): boolean {
  if (share.index > verifier.guardians) return false;
  const h = blinderGenerator();
  const left = mul(Point.BASE, share.value).add(mul(h, share.blinder));
  let right = Point.ZERO;
  let power = 1n;
  for (const c of verifier.commitments) {
    right = right.add(c.multiplyUnsafe(power));
    power = Fn.mul(power, BigInt(share.index));
  }
  return left.equals(right);
}

/** The secret from `threshold` verified shares (Lagrange at 0), refusing as hygeia-identity does. */
export function recover(shares: Share[], verifier: Verifier): bigint {
  const id = toBase64url(verifier.split);
  for (const s of shares) {
    if (toBase64url(s.split) !== id) throw new RecoveryError("recovery-wrong-split", `Guardian ${s.index}'s share belongs to another split (an earlier set-up, or another person)`);
  }
  const seen = new Set<number>();
  for (const s of shares) {
    if (seen.has(s.index)) throw new RecoveryError("recovery-duplicate-share", `Guardian ${s.index}'s share was given twice; use shares of different guardians`);
    seen.add(s.index);
  }
  for (const s of shares) {
    if (!verifyShare(s, verifier)) throw new RecoveryError("recovery-share-invalid", `Guardian ${s.index}'s share does not match the verifier: it is damaged or forged`);
  }
  if (shares.length < verifier.threshold) {
    const more = verifier.threshold - shares.length;
    throw new RecoveryError("recovery-not-enough-shares", `${more} more guardian share${more === 1 ? " is" : "s are"} needed (${verifier.threshold} in all)`);
  }
  const used = shares.slice(0, verifier.threshold);
  let secret = 0n;
  for (const s of used) {
    let num = 1n;
    let den = 1n;
    for (const t of used) {
      if (t.index === s.index) continue;
      num = Fn.mul(num, BigInt(t.index));
      den = Fn.mul(den, Fn.sub(BigInt(t.index), BigInt(s.index)));
    }
    secret = Fn.add(secret, Fn.mul(s.value, Fn.div(num, den)));
  }
  return secret;
}

export const toHexBytes = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
