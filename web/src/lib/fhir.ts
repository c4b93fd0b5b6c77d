// FHIR from the browser: a bearer token from POST /auth/token with an
// RFC 7523 client assertion (a JWT signed with the person's Ed25519 key,
// alg EdDSA; docs/auth.md "Bearer tokens for FHIR clients"), then FHIR
// calls with Authorization: Bearer.

import { ApiError, explain, nodeInfo } from "./api";
import { randomBase64url, toBase64url, utf8 } from "./bytes";
import { sign, StoredKey } from "./keys";

export async function clientAssertion(key: StoredKey, audience: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const header = toBase64url(utf8(JSON.stringify({ alg: "EdDSA", typ: "JWT" })));
  const payload = toBase64url(utf8(JSON.stringify({ iss: key.did, sub: key.did, aud: audience, iat: now, exp: now + 120, jti: randomBase64url(16) })));
  const signature = await sign(key.privateKey, utf8(`${header}.${payload}`));
  return `${header}.${payload}.${toBase64url(signature)}`;
}

export async function fhirToken(key: StoredKey, purposeOfUse: string): Promise<string> {
  const { node_did } = await nodeInfo();
  const form = new URLSearchParams({
    grant_type: "client_credentials",
    client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    client_assertion: await clientAssertion(key, node_did),
    purpose_of_use: purposeOfUse,
  });
  const response = await fetch("/auth/token", { cache: "no-store", method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: form });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const code = String(body.error ?? `http_${response.status}`);
    throw new ApiError(response.status, code, explain(code, String(body.error_description ?? "the node refused a FHIR access token"), response.status));
  }
  return String(body.access_token);
}

export async function fhir<T>(token: string, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(path, {
    cache: "no-store",
    method,
    headers: { authorization: `Bearer ${token}`, accept: "application/fhir+json", ...(body ? { "content-type": "application/fhir+json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const text = answer?.issue?.[0]?.diagnostics ?? `the FHIR server answered ${response.status}`;
    throw new ApiError(response.status, `fhir_${response.status}`, explain(`fhir_${response.status}`, text, response.status), answer);
  }
  return answer as T;
}
