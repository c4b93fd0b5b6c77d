#!/usr/bin/env python3
"""SD-JWT VC interoperability with an independent implementation.

Uses the `sd-jwt` package from PyPI (openwallet-foundation-labs/sd-jwt-python,
the SD-JWT reference implementation) with `jwcrypto` keys.

  verify  --presentation FILE --issuer-jwk JSON --aud AUD --nonce NONCE
      Verifies an SD-JWT+KB issued by Hygeia (issuer signature, disclosures,
      KB-JWT with the holder key from `cnf.jwk`, `aud`, `nonce`, `sd_hash`)
      and prints the verified claims as JSON. Exits 1 if it is refused.

  issue
      Issues an SD-JWT VC signed with EdDSA (Ed25519) for a fresh Ed25519
      holder key, presents some of its claims with an EdDSA KB-JWT, checks
      the presentation with the same package, and prints JSON:
      {"presentation", "issuer_jwk", "aud", "nonce", "verified_claims"}.

The package's verifier checks a KB-JWT with the algorithm its caller names
and defaults to ES256; `KeyBoundVerifier` names the algorithm that belongs
to the holder key's type (EdDSA for OKP/Ed25519, ES256 for EC/P-256), so an
EdDSA KB-JWT can be checked. Nothing else of the package is changed.
"""

import argparse
import json
import sys
import time

from jwcrypto.jwk import JWK
from sd_jwt.common import SDObj
from sd_jwt.holder import SDJWTHolder
from sd_jwt.issuer import SDJWTIssuer
from sd_jwt.verifier import SDJWTVerifier

VCT_CLINICIAN_LICENCE = "https://hygeia.health/vct/clinician-licence/v1"
ALG_FOR_KEY = {("OKP", "Ed25519"): "EdDSA", ("EC", "P-256"): "ES256"}


def alg_for_jwk(jwk):
    alg = ALG_FOR_KEY.get((jwk.get("kty"), jwk.get("crv")))
    if alg is None:
        raise ValueError(f"unsupported key type {jwk.get('kty')}/{jwk.get('crv')}")
    return alg


class KeyBoundVerifier(SDJWTVerifier):
    def _verify_key_binding_jwt(self, expected_aud=None, expected_nonce=None, sign_alg=None):
        holder_jwk = (self._holder_public_key_payload or {}).get("jwk", {})
        return super()._verify_key_binding_jwt(
            expected_aud, expected_nonce, sign_alg=alg_for_jwk(holder_jwk)
        )


def verify(presentation, issuer_jwk, aud, nonce):
    if not presentation.rsplit("~", 1)[-1]:
        raise ValueError("the presentation has no KB-JWT")
    issuer_key = JWK.from_json(json.dumps(issuer_jwk))
    verifier = KeyBoundVerifier(
        presentation,
        lambda iss, header: issuer_key,
        expected_aud=aud,
        expected_nonce=nonce,
    )
    return verifier.get_verified_payload()


def cmd_verify(args):
    with open(args.presentation, encoding="ascii") as f:
        presentation = f.read().strip()
    try:
        claims = verify(presentation, json.loads(args.issuer_jwk), args.aud, args.nonce)
    except Exception as e:  # any refusal: report and fail
        print(f"refused: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(claims, sort_keys=True))
    return 0


def cmd_issue(_args):
    issuer_key = JWK.generate(kty="OKP", crv="Ed25519")
    holder_key = JWK.generate(kty="OKP", crv="Ed25519")
    now = int(time.time())
    user_claims = {
        "iss": "did:web:board.example",
        "vct": VCT_CLINICIAN_LICENCE,
        "iat": now,
        "exp": now + 3600,
        "sub": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        "profession": "physician",
        "jurisdiction": "FR",
        SDObj("licence_number"): "FR-10003456789",
        SDObj("specialty"): "nephrologie",
        "languages": [SDObj("fr"), SDObj("en"), "de"],
        SDObj("practice"): {SDObj("city"): "Lyon", "country": "FR"},
    }
    issuer = SDJWTIssuer(
        user_claims,
        issuer_key,
        holder_key,
        sign_alg="EdDSA",
        add_decoy_claims=True,
        extra_header_parameters={"typ": "dc+sd-jwt"},
    )
    aud = "did:web:clinic.example"
    nonce = "interop-" + str(now)
    holder = SDJWTHolder(issuer.sd_jwt_issuance)
    holder.create_presentation(
        {"specialty": True, "languages": [False, True], "practice": {"city": True}},
        nonce=nonce,
        aud=aud,
        holder_key=holder_key,
        sign_alg="EdDSA",
    )
    presentation = holder.sd_jwt_presentation
    issuer_public = json.loads(issuer_key.export_public())
    verified = verify(presentation, issuer_public, aud, nonce)
    print(
        json.dumps(
            {
                "presentation": presentation,
                "issuer_jwk": issuer_public,
                "aud": aud,
                "nonce": nonce,
                "verified_claims": verified,
            },
            sort_keys=True,
        )
    )
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--presentation", required=True, help="file holding the compact SD-JWT+KB")
    v.add_argument("--issuer-jwk", required=True, help="the issuer's public JWK, as JSON")
    v.add_argument("--aud", required=True)
    v.add_argument("--nonce", required=True)
    v.set_defaults(run=cmd_verify)
    i = sub.add_parser("issue")
    i.set_defaults(run=cmd_issue)
    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
