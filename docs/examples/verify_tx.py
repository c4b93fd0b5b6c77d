#!/usr/bin/env python3
"""Verify Hygeia transactions with nothing but JCS and Ed25519.

    pip install jcs base58 cryptography
    python3 verify_tx.py FILE [FILE...]

Each FILE holds one transaction, exactly as logged (a trailing newline is
tolerated). For each, prints the leaf hash (the transaction id) and OK, or
the error code and reason; exits 1 if any transaction fails.
See docs/transactions.md.
"""

import base64
import hashlib
import json
import re
import sys

import base58
import jcs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNING_DOMAIN = b"hygeia.tx.v1\x00"
MAX_TX_BYTES = 65535
MEMBERS = {"body", "network", "nonce", "sig", "signer", "type", "v"}
NONCE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
LABEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
SUBJECT = re.compile(r"sha256:[0-9a-f]{64}")


class Invalid(Exception):
    def __init__(self, code, reason):
        super().__init__(f"{code}: {reason}")


def did_key_public_key(did):
    """did:key:z<base58btc(0xed 0x01 || 32-byte Ed25519 key)> -> the key."""
    if not did.startswith("did:key:z"):
        raise Invalid("bad_signer", "signer must start with did:key:z")
    try:
        raw = base58.b58decode(did[len("did:key:z"):])
    except ValueError:
        raise Invalid("bad_signer", "signer is not base58btc")
    if raw[:2] != b"\xed\x01" or len(raw) != 34:
        raise Invalid("bad_signer", "signer is not an Ed25519 did:key (multicodec 0xed01)")
    if "did:key:z" + base58.b58encode(raw).decode() != did:
        raise Invalid("bad_signer", "signer is not in its canonical encoding")
    return raw[2:]


def verify(raw):
    """Checks one transaction; returns its leaf hash."""
    if len(raw) > MAX_TX_BYTES:
        raise Invalid("tx_too_large", f"{len(raw)} bytes; the limit is {MAX_TX_BYTES}")
    try:
        tx = json.loads(raw.decode("utf-8"))
        canonical = jcs.canonicalize(tx)
    except (UnicodeDecodeError, ValueError) as e:
        raise Invalid("malformed_json", str(e))
    # The bytes must be exactly the RFC 8785 form: the log entry, the leaf
    # hash and the signature are all over these bytes and no others.
    if canonical != raw:
        raise Invalid("non_canonical", "not in RFC 8785 (JCS) canonical form")
    if not isinstance(tx, dict) or set(tx) != MEMBERS:
        raise Invalid("schema_violation", f"members must be exactly {sorted(MEMBERS)}")
    if type(tx["v"]) is not int or tx["v"] != 1:
        raise Invalid("unsupported_version", f"v is {tx['v']!r}, expected 1")
    if not all(isinstance(tx[k], str) for k in ("type", "network", "signer", "nonce", "sig")):
        raise Invalid("schema_violation", "type, network, signer, nonce and sig are strings")
    if not NONCE.fullmatch(tx["nonce"]):
        raise Invalid("schema_violation", "nonce must be 1 to 64 characters from [A-Za-z0-9._:-]")
    public_key = did_key_public_key(tx["signer"])
    if tx["type"] == "attest":
        body = tx["body"]
        if (not isinstance(body, dict) or set(body) != {"label", "subject"}
                or not isinstance(body["label"], str) or not LABEL.fullmatch(body["label"])
                or not isinstance(body["subject"], str) or not SUBJECT.fullmatch(body["subject"])):
            raise Invalid("schema_violation", 'attest body must be {"label": code, "subject": "sha256:<hex>"}')

    # sig: unpadded base64url of 64 bytes, in its one canonical spelling.
    sig_text = tx.pop("sig")
    try:
        sig = base64.urlsafe_b64decode(sig_text + "=" * (-len(sig_text) % 4))
    except ValueError:
        raise Invalid("bad_signature", "sig is not base64url")
    if len(sig) != 64 or base64.urlsafe_b64encode(sig).rstrip(b"=").decode() != sig_text:
        raise Invalid("bad_signature", "sig must be 86 characters of unpadded base64url")
    message = SIGNING_DOMAIN + jcs.canonicalize(tx)  # tx without sig
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, message)
    except (InvalidSignature, ValueError):
        raise Invalid("bad_signature", "signature does not verify with the signer's key")

    # RFC 9162 leaf hash of the log entry: the transaction's id.
    return hashlib.sha256(b"\x00" + raw).hexdigest()


def main(paths):
    if not paths:
        sys.exit(__doc__)
    failed = False
    for path in paths:
        with open(path, "rb") as f:
            raw = f.read()
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        try:
            print(f"{path}: {verify(raw)} OK")
        except Invalid as e:
            print(f"{path}: {e}", file=sys.stderr)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
