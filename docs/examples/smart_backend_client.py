"""A SMART Backend Services client built only on PyJWT and cryptography
(from PyPI), against a Hygeia node: an independent check of the ES384
client assertion flow (docs/smart.md, "Backend Services").

    python3 docs/examples/smart_backend_client.py keygen KEY.pem > JWK.json

makes a P-384 key and prints its public JWK, to register with
`hygeia smart bind-client --jwk JWK.json ...`.

    HYGEIA_URL=http://127.0.0.1:7000 HYGEIA_CLIENT_ID=lab-sync \
    HYGEIA_KEY=KEY.pem HYGEIA_PATIENT_DID=did:key:... \
    python3 docs/examples/smart_backend_client.py run

reads the node's SMART configuration, checks it offers ES384 client
assertions, signs one with PyJWT (aud: the node's DID from /v1/node, or
the advertised token endpoint when HYGEIA_AUD=endpoint), exchanges it for
a token, then creates and searches FHIR resources with it. Run by the test
suite (crates/cli/tests/e2e/fhir.rs).
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm


def keygen(path: str) -> int:
    key = ec.generate_private_key(ec.SECP384R1())
    with open(path, "wb") as f:
        f.write(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
    public = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    public["kid"] = "backend-1"
    print(json.dumps(public))
    return 0


def call(method: str, url: str, body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def run() -> int:
    base = os.environ["HYGEIA_URL"].rstrip("/")
    client_id = os.environ["HYGEIA_CLIENT_ID"]
    did = os.environ["HYGEIA_PATIENT_DID"]
    with open(os.environ["HYGEIA_KEY"], "rb") as f:
        key = f.read()

    status, config = call("GET", f"{base}/.well-known/smart-configuration")
    assert status == 200, config
    assert "client_credentials" in config["grant_types_supported"], config
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"], config
    assert "ES384" in config["token_endpoint_auth_signing_alg_values_supported"], config
    token_endpoint = config["token_endpoint"]
    if os.environ.get("HYGEIA_AUD") == "endpoint":
        audience = token_endpoint
    else:
        status, info = call("GET", f"{base}/v1/node")
        assert status == 200, info
        audience = info["node_did"]

    def assertion() -> str:
        now = int(time.time())
        return jwt.encode(
            {"iss": client_id, "sub": client_id, "aud": audience,
             "exp": now + 240, "iat": now, "jti": str(uuid.uuid4())},
            key,
            algorithm="ES384",
            headers={"kid": "backend-1"},
        )

    def token_request(extra: dict) -> tuple:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion(),
            "scope": "system/Patient.cruds system/Observation.cruds",
            **extra,
        }
        return call(
            "POST", token_endpoint if token_endpoint.startswith("http") else base + "/auth/token",
            urllib.parse.urlencode(form).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )

    status, answer = token_request({})
    assert status == 200, answer
    assert answer["token_type"].lower() == "bearer", answer
    token = answer["access_token"]

    # A forged assertion (another P-384 key) is refused as invalid_client.
    other = ec.generate_private_key(ec.SECP384R1())
    forged = jwt.encode(
        {"iss": client_id, "sub": client_id, "aud": audience,
         "exp": int(time.time()) + 60, "jti": str(uuid.uuid4())},
        other, algorithm="ES384",
    )
    status, answer = call(
        "POST", base + "/auth/token",
        urllib.parse.urlencode({
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": forged,
        }).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 401 and answer["error"] == "invalid_client", (status, answer)

    fhir = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    status, patient = call("POST", f"{base}/fhir/Patient", json.dumps({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": did}],
        "name": [{"family": "Okafor", "given": ["Ada"]}],
    }).encode(), fhir)
    assert status == 201, (status, patient)
    status, observation = call("POST", f"{base}/fhir/Observation", json.dumps({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": f"Patient/{patient['id']}"},
        "effectiveDateTime": "2025-06-01T08:00:00Z",
        "valueQuantity": {"value": 6.4, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    }).encode(), fhir)
    assert status == 201, (status, observation)
    status, bundle = call(
        "GET", f"{base}/fhir/Observation?patient={patient['id']}&code=http://loinc.org|4548-4",
        None, fhir,
    )
    assert status == 200, (status, bundle)
    ids = [e["resource"]["id"] for e in bundle.get("entry", [])]
    assert ids == [observation["id"]], bundle
    print(f"backend services: token from an ES384 assertion, {len(ids)} Observation found")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "keygen":
        sys.exit(keygen(sys.argv[2]))
    if len(sys.argv) == 2 and sys.argv[1] == "run":
        sys.exit(run())
    print(__doc__, file=sys.stderr)
    sys.exit(2)
