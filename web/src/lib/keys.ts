// The person's Ed25519 key, kept in the browser: created with WebCrypto as
// a non-extractable key, or imported from a `hygeia key` file (PKCS#8 PEM,
// RFC 8410). Keys live in IndexedDB; the private key never leaves
// WebCrypto (a CryptoKey is stored by structured clone, not as bytes).

import { concat, equalBytes, fromBase64, fromBase64url, utf8 } from "./bytes";
import { didFromPublicKey } from "./did";

export interface StoredKey {
  did: string;
  label: string;
  privateKey: CryptoKey;
  publicKey: Uint8Array;
  created: number;
  /** "browser" (made here) or "file" (imported). */
  origin: "browser" | "file";
}

const DB = "hygeia-keys";
const STORE = "keys";
const ACTIVE = "hygeia.activeKey";

function db(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(DB, 1);
    open.onupgradeneeded = () => open.result.createObjectStore(STORE, { keyPath: "did" });
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function run<T>(mode: IDBTransactionMode, act: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const database = await db();
  return new Promise((resolve, reject) => {
    const request = act(database.transaction(STORE, mode).objectStore(STORE));
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

export const listKeys = (): Promise<StoredKey[]> => run("readonly", (s) => s.getAll() as IDBRequest<StoredKey[]>);
export const saveKey = (key: StoredKey): Promise<IDBValidKey> => run("readwrite", (s) => s.put(key));
export const deleteKey = (did: string): Promise<undefined> => run("readwrite", (s) => s.delete(did));

export function activeDid(): string | null {
  return localStorage.getItem(ACTIVE);
}
export function setActiveDid(did: string | null): void {
  if (did) localStorage.setItem(ACTIVE, did);
  else localStorage.removeItem(ACTIVE);
}

export async function activeKey(): Promise<StoredKey | null> {
  const did = activeDid();
  if (!did) return null;
  const keys = await listKeys();
  return keys.find((k) => k.did === did) ?? null;
}

/** Whether this browser's WebCrypto signs with Ed25519. */
export async function ed25519Supported(): Promise<boolean> {
  try {
    await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    return true;
  } catch {
    return false;
  }
}

/** A new key made here; its private half cannot be exported. */
export async function createKey(label: string): Promise<StoredKey> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"])) as CryptoKeyPair;
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const key: StoredKey = {
    did: didFromPublicKey(publicKey),
    label,
    privateKey: pair.privateKey,
    publicKey,
    created: Date.now(),
    origin: "browser",
  };
  await saveKey(key);
  return key;
}

export class KeyFileError extends Error {}

const NOT_A_KEY =
  "This file is not a Hygeia key file. A key file is the PKCS#8 PEM Ed25519 private key " +
  "that `hygeia key new` writes (it starts with -----BEGIN PRIVATE KEY-----). " +
  "Choose that .key file, or create a new key in this browser instead.";

// PKCS#8 v1 (RFC 8410 §7) and v2 with the public key, as ed25519-dalek and
// OpenSSL write them: fixed layouts around the 32-byte seed.
const V1_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const V2_PREFIX = Uint8Array.from([0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const V2_PUBLIC = Uint8Array.from([0x81, 0x21, 0x00]);

/** The 32-byte seed and, for v2, the public key of a PKCS#8 PEM text. */
export function parseKeyFile(text: string): { seed: Uint8Array; publicKey?: Uint8Array } {
  const match = /^\s*-----BEGIN PRIVATE KEY-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END PRIVATE KEY-----\s*$/.exec(text);
  if (!match) throw new KeyFileError(NOT_A_KEY);
  let der: Uint8Array;
  try {
    der = fromBase64(match[1].replace(/[\r\n]/g, ""));
  } catch {
    throw new KeyFileError(NOT_A_KEY);
  }
  if (der.length === 48 && equalBytes(der.slice(0, 16), V1_PREFIX)) {
    return { seed: der.slice(16) };
  }
  if (der.length === 83 && equalBytes(der.slice(0, 16), V2_PREFIX) && equalBytes(der.slice(48, 51), V2_PUBLIC)) {
    return { seed: der.slice(16, 48), publicKey: der.slice(51) };
  }
  throw new KeyFileError(NOT_A_KEY);
}

/** Imports a `hygeia key` file; the stored private key is non-extractable. */
export async function importKeyFile(text: string, label: string): Promise<StoredKey> {
  const { seed, publicKey: stated } = parseKeyFile(text);
  const der = concat(V1_PREFIX, seed);
  let publicKey: Uint8Array;
  let privateKey: CryptoKey;
  try {
    // Once extractable, to learn the public key; then kept non-extractable.
    const probe = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
    const jwk = await crypto.subtle.exportKey("jwk", probe);
    publicKey = fromBase64url(jwk.x ?? "");
    privateKey = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
  } catch {
    throw new KeyFileError(NOT_A_KEY);
  } finally {
    seed.fill(0);
    der.fill(0);
  }
  if (publicKey.length !== 32 || (stated && !equalBytes(stated, publicKey))) {
    throw new KeyFileError("This key file is damaged: its public key does not match its private key. Use another copy of the file.");
  }
  const key: StoredKey = { did: didFromPublicKey(publicKey), label, privateKey, publicKey, created: Date.now(), origin: "file" };
  await saveKey(key);
  return key;
}

export async function sign(key: CryptoKey, message: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, message));
}

/** Ed25519 verification with a raw 32-byte public key. */
export async function verifySignature(publicKey: Uint8Array, signature: Uint8Array, message: Uint8Array): Promise<boolean> {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}

export const textBytes = utf8;
