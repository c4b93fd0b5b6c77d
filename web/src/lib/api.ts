// Talking to the node that serves these pages: public reads, requests
// signed with the person's key (RFC 9421), and signed transactions. Every
// refusal becomes an ApiError whose text says what to do next.

import { utf8 } from "./bytes";
import { StoredKey } from "./keys";
import { signRequest } from "./httpsig";
import { signTx } from "./tx";

export interface NodeInfo {
  network: string;
  node_did: string;
  checkpoint_verifier_key: string;
  tree_size: number;
  governance: string | null;
}

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public body: unknown = null,
  ) {
    super(message);
  }
}

/** What a person should do about a refusal, by its stable code. */
const NEXT_STEP: Record<string, string> = {
  auth_expired:
    "Your device's clock and the node's disagree, so the node refused the signed request. Set this device's clock to the correct time, then try again.",
  auth_replay: "The same signed request reached the node twice. Try again.",
  auth_bad_signature: "The node could not verify this browser's signature. Remove the key from this browser and import your key file again.",
  auth_missing: "This page needs your key. Sign in on the Start page, then try again.",
  auth_malformed: "This browser sent a request the node could not read. Reload the page and try again.",
  "identity.key_retired":
    "This key no longer acts for your identity: it was replaced during a key recovery. Sign in with your new key, or recover your identity on this device (Recovery page).",
  not_patient: "Only the patient (or their delegate) can see this. Sign in with the patient's key.",
  record_erased: "This record was erased: its keys are destroyed and nobody can read it any more.",
  record_not_found: "There is no such record on this node. Check the record id.",
  "consent.invalid_period": "The end of the access period must be after its start. Change the dates and grant again.",
  "consent.already_revoked": "This access was already withdrawn. Nothing more to do.",
  "consent.unknown_grant": "This grant is not on the ledger. Reload your consent cards.",
  "consent.not_patient_or_delegate": "Only the patient or their delegate can grant access to these records. Sign in with the patient's key.",
  "record.already_erased": "This record was already erased. Nothing more to do.",
  overloaded: "The node is busy. Wait a few seconds and try again.",
  storage_unavailable: "The node could not save this. Wait a few seconds and try again; if it persists, tell the node's operator.",
  schema_violation: "The node refused the request as malformed. Check what you entered and try again.",
  unknown_purpose: "Choose a reason from the list and try again.",
  invalid_parameter: "Shorten the text (at most 1,000 characters) and try again.",
};

export function explain(code: string, message: string, status: number): string {
  message = message.charAt(0).toUpperCase() + message.slice(1);
  if (code === "access_denied") {
    return `${message}. You need the patient's consent: ask them to grant you access from their wallet. In an emergency, a licensed clinician can use break-glass.`;
  }
  const next = NEXT_STEP[code];
  if (next) return `${message}. ${next}`;
  if (status >= 500) return `${message}. The node failed; try again in a moment, and if it persists tell the node's operator (error ${code}).`;
  return `${message} (error ${code}). Check what you entered and try again.`;
}

async function answer(response: Response): Promise<unknown> {
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* plain text */
  }
  if (response.ok) return body;
  const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
  const code = error?.code ?? `http_${response.status}`;
  const message = error?.message ?? (typeof body === "string" && body ? body : `The node answered ${response.status}`);
  throw new ApiError(response.status, code, explain(code, message.replace(/\.$/, ""), response.status), body);
}

async function send(url: string, init: RequestInit): Promise<Response> {
  try {
    // Never from or into the browser's cache: answers to signed requests
    // hold health data, and a cached "410 Gone" (which browsers keep for
    // good unless told otherwise) would hide what the node says now.
    return await fetch(url, { ...init, cache: "no-store" });
  } catch {
    throw new ApiError(0, "unreachable", `The node at ${location.origin} did not answer. Check that it is running (for example \`hygeia demo\`), then reload this page.`);
  }
}

export async function getJson<T>(target: string): Promise<T> {
  return (await answer(await send(target, { headers: { accept: "application/json" } }))) as T;
}

export async function getText(target: string): Promise<string> {
  const response = await send(target, {});
  if (!response.ok) await answer(response);
  return response.text();
}

/** Clock offset for tests of an expired signature (never set in normal use). */
export const clock = { skewMs: 0 };

export async function signedFetch(
  key: StoredKey,
  method: string,
  target: string,
  body?: Uint8Array,
  extra: Record<string, string> = {},
): Promise<Response> {
  const { url, headers } = await signRequest(key.privateKey, key.did, method, target, body, Date.now() + clock.skewMs);
  return send(url, { method, headers: { ...extra, ...headers }, body });
}

export async function signedJson<T>(key: StoredKey, target: string): Promise<T> {
  return (await answer(await signedFetch(key, "GET", target, undefined, { accept: "application/json" }))) as T;
}

/** A signed GET whose answer may be a record (any media type). */
export async function signedRead(key: StoredKey, target: string): Promise<{ bytes: Uint8Array; headers: Headers }> {
  const response = await signedFetch(key, "GET", target);
  if (!response.ok) await answer(response);
  return { bytes: new Uint8Array(await response.arrayBuffer()), headers: response.headers };
}

export async function signedPost<T>(key: StoredKey, target: string, body: Uint8Array, extra: Record<string, string>): Promise<T> {
  return (await answer(await signedFetch(key, "POST", target, body, extra))) as T;
}

let info: Promise<NodeInfo> | null = null;
export function nodeInfo(): Promise<NodeInfo> {
  info ??= getJson<NodeInfo>("/v1/node").catch((e) => {
    info = null;
    throw e;
  });
  return info;
}

export interface Receipt {
  index: number;
  leaf_hash: string;
  tree_size: number;
  checkpoint: string;
}

/** Signs a transaction with the person's key and submits it. */
export async function submit(key: StoredKey, type: string, body: unknown): Promise<Receipt> {
  const { network } = await nodeInfo();
  const tx = await signTx(key.privateKey, key.did, network, type, body);
  const receipt = (await answer(
    await send("/v1/transactions", { method: "POST", headers: { "content-type": "application/json" }, body: tx.bytes }),
  )) as Receipt;
  return { ...receipt, leaf_hash: tx.leafHash };
}

export const jsonBytes = (value: unknown): Uint8Array => utf8(JSON.stringify(value));

const PINNED = "hygeia.verifierKey";

/**
 * The checkpoint verifier key this browser trusts: pinned the first time
 * it talks to the node (or set by hand from the operator's published
 * key), and compared with what the node says afterwards.
 */
export async function verifierKey(): Promise<{ key: string; changed: boolean }> {
  const served = (await nodeInfo()).checkpoint_verifier_key;
  const pinned = localStorage.getItem(PINNED);
  if (!pinned) {
    localStorage.setItem(PINNED, served);
    return { key: served, changed: false };
  }
  return { key: pinned, changed: pinned !== served };
}

export function pinVerifierKey(key: string): void {
  localStorage.setItem(PINNED, key);
}
