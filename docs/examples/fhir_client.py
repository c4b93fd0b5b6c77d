"""A standard FHIR client (fhirpy, from PyPI) against a Hygeia node.

Creates a Patient and an Observation, searches, updates with versioning,
and reads the history, all through fhirpy's ordinary API with a bearer
token. Run by the test suite (crates/cli/tests/e2e/fhir.rs) with:

    HYGEIA_FHIR_URL=http://127.0.0.1:7000/fhir HYGEIA_TOKEN=... \
    HYGEIA_PATIENT_DID=did:key:... python3 docs/examples/fhir_client.py
"""

import os
import sys

from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound


def main() -> int:
    url = os.environ["HYGEIA_FHIR_URL"]
    token = os.environ["HYGEIA_TOKEN"]
    did = os.environ["HYGEIA_PATIENT_DID"]
    client = SyncFHIRClient(url, authorization=f"Bearer {token}")

    patient = client.resource(
        "Patient",
        identifier=[{"system": "urn:ietf:rfc:3986", "value": did}],
        name=[{"family": "Okafor", "given": ["Ada"]}],
        gender="female",
        birthDate="1980-02-03",
    )
    patient.save()
    assert patient.id, "the server assigned an id"

    observation = client.resource(
        "Observation",
        status="final",
        category=[{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "laboratory",
        }]}],
        code={"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        subject=patient.to_reference(),
        effectiveDateTime="2025-06-01T08:00:00Z",
        valueQuantity={"value": 6.4, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
    )
    observation.save()

    found = (
        client.resources("Observation")
        .search(patient=patient.id, code="http://loinc.org|4548-4")
        .fetch_all()
    )
    assert [o.id for o in found] == [observation.id], found
    assert client.resources("Patient").search(birthdate="1980-02-03").count() == 1

    observation["valueQuantity"]["value"] = 6.9
    observation.save()
    again = client.reference("Observation", observation.id).to_resource()
    assert again["valueQuantity"]["value"] == 6.9
    assert again["meta"]["versionId"] == "2", again["meta"]

    # A resource that does not exist is a ResourceNotFound, as with any server.
    try:
        client.reference("Observation", "does-not-exist").to_resource()
        raise AssertionError("expected a 404")
    except ResourceNotFound:
        pass

    # Bad input comes back as an OperationOutcome.
    try:
        client.resource("Observation", status="final", subject=patient.to_reference()).save()
        raise AssertionError("expected a refusal: Observation.code is required")
    except OperationOutcome as outcome:
        assert "Observation.code" in str(outcome), outcome

    print(f"fhirpy: created Patient/{patient.id} and Observation/{observation.id}, searched, updated to version 2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
