// did:key for Ed25519 keys (docs/transactions.md, "signer: did:key"):
// "did:key:z" + base58btc(0xed 0x01 || 32-byte public key).

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

export function base58Encode(bytes: Uint8Array): string {
  const digits: number[] = [];
  for (const byte of bytes) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i] << 8;
      digits[i] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let out = "";
  for (const byte of bytes) {
    if (byte !== 0) break;
    out += "1";
  }
  for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET[digits[i]];
  return out;
}

export function base58Decode(text: string): Uint8Array {
  const bytes: number[] = [];
  for (const char of text) {
    let carry = ALPHABET.indexOf(char);
    if (carry < 0) throw new Error("not base58btc");
    for (let i = 0; i < bytes.length; i++) {
      carry += bytes[i] * 58;
      bytes[i] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (const char of text) {
    if (char !== "1") break;
    bytes.push(0);
  }
  return new Uint8Array(bytes.reverse());
}

export function didFromPublicKey(publicKey: Uint8Array): string {
  const prefixed = new Uint8Array(34);
  prefixed.set([0xed, 0x01]);
  prefixed.set(publicKey, 2);
  return "did:key:z" + base58Encode(prefixed);
}

/** The 32-byte Ed25519 public key of a did:key; throws on anything else. */
export function publicKeyFromDid(did: string): Uint8Array {
  if (!did.startsWith("did:key:z") || did.length > 128) throw new Error("not an Ed25519 did:key");
  const bytes = base58Decode(did.slice("did:key:z".length));
  if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) {
    throw new Error("not an Ed25519 did:key");
  }
  if (didFromPublicKey(bytes.slice(2)) !== did) throw new Error("not a canonical did:key");
  return bytes.slice(2);
}

/** A short form for display: did:key:z6Mk…last6. */
export function shortDid(did: string): string {
  if (did.startsWith("did:key:") && did.length > 24) return `${did.slice(0, 14)}…${did.slice(-6)}`;
  return did;
}
