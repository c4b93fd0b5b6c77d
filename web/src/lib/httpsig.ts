// RFC 9421 HTTP Message Signatures exactly as the CLI makes them
// (docs/auth.md; crates/auth/src/sign.rs): covered components "@method",
// "@path", "@query" and, with a body, "content-digest" (RFC 9530 sha-256);
// parameters created, nonce, keyid in that order; label sig1.

import { randomBase64url, sha256, toBase64, utf8 } from "./bytes";
import { sign } from "./keys";

export interface SignedHeaders {
  "signature-input": string;
  signature: string;
  "content-digest"?: string;
}

export interface SignatureInput {
  method: string;
  /** The absolute path as it will be sent (percent-encoded). */
  path: string;
  /** The query without "?" as it will be sent; "" when none. */
  query: string;
  bodySha256?: Uint8Array;
  created: number;
  nonce: string;
  keyid: string;
}

export function contentDigest(bodySha256: Uint8Array): string {
  return `sha-256=:${toBase64(bodySha256)}:`;
}

/** The signature base (RFC 9421 §2.5) and the Signature-Input value. */
export function signatureBase(input: SignatureInput): { base: string; params: string } {
  const components = ['"@method"', '"@path"', '"@query"'];
  const lines = [`"@method": ${input.method}`, `"@path": ${input.path}`, `"@query": ?${input.query}`];
  if (input.bodySha256) {
    components.push('"content-digest"');
    lines.push(`"content-digest": ${contentDigest(input.bodySha256)}`);
  }
  const params = `(${components.join(" ")});created=${input.created};nonce="${input.nonce}";keyid="${input.keyid}"`;
  lines.push(`"@signature-params": ${params}`);
  return { base: lines.join("\n"), params };
}

/**
 * Where the browser will send `target` (a path with an optional query):
 * the path and query exactly as fetch will serialize them, which is what
 * the signature must cover.
 */
export function resolveTarget(target: string): { url: string; path: string; query: string } {
  const url = new URL(target, location.origin);
  return { url: url.href, path: url.pathname, query: url.search.replace(/^\?/, "") };
}

export async function signRequest(
  privateKey: CryptoKey,
  keyid: string,
  method: string,
  target: string,
  body?: Uint8Array,
  now: number = Date.now(),
): Promise<{ url: string; headers: SignedHeaders }> {
  const { url, path, query } = resolveTarget(target);
  const bodySha256 = body && body.length > 0 ? await sha256(body) : undefined;
  const { base, params } = signatureBase({
    method,
    path,
    query,
    bodySha256,
    created: Math.floor(now / 1000),
    nonce: randomBase64url(16),
    keyid,
  });
  const signature = await sign(privateKey, utf8(base));
  const headers: SignedHeaders = {
    "signature-input": `sig1=${params}`,
    signature: `sig1=:${toBase64(signature)}:`,
  };
  if (bodySha256) headers["content-digest"] = contentDigest(bodySha256);
  return { url, headers };
}
