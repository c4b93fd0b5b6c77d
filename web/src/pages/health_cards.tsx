import { useState } from "preact/hooks";
import { ErrorBox, Loading, useAction, useLoad } from "../components";
import { StoredKey } from "../lib/keys";
import { fhir, fhirToken } from "../lib/fhir";

interface Bundle {
  entry?: { resource: { id: string; resourceType: string } }[];
}

interface Parameters {
  parameter?: { name: string; valueString?: string }[];
}

const KINDS: [string, string][] = [
  ["https://smarthealth.cards#immunization", "Vaccinations"],
  ["https://smarthealth.cards#laboratory", "Lab results"],
];

/** A SMART Health Card's QR payload: "shc:/" then two digits per JWS character (spec: "Encoding Chunks as QR codes"). */
export function qrPayload(jws: string): string {
  return Array.from(jws, (c) => String(c.charCodeAt(0) - 45).padStart(2, "0")).join("");
}

export function HealthCards({ me, patient: identity }: { me: StoredKey; patient: string }) {
  const patient = useLoad(async () => {
    const token = await fhirToken(me, "PATRQT");
    const found = await fhir<Bundle>(token, "GET", `/fhir/Patient?identifier=${encodeURIComponent(`urn:ietf:rfc:3986|${identity}`)}`);
    return { token, id: found.entry?.[0]?.resource.id ?? null };
  }, [me.did, identity]);
  const [cards, setCards] = useState<{ kind: string; jws: string; qr: string | null; tooLarge: boolean }[]>([]);
  const issue = useAction(async (kind: string, label: string) => {
    if (!patient.data?.id) return null;
    const token = await fhirToken(me, "PATRQT");
    const answer = await fhir<Parameters>(token, "POST", `/fhir/Patient/${patient.data.id}/$health-cards-issue`, {
      resourceType: "Parameters",
      parameter: [{ name: "credentialType", valueUri: kind }],
    });
    const jws = answer.parameter?.find((p) => p.name === "verifiableCredential")?.valueString;
    if (!jws) throw new Error(`You have no ${label.toLowerCase()} that can go on a card`);
    const { default: qrcode } = await import("qrcode-generator");
    let qr: string | null = null;
    let tooLarge = false;
    try {
      const code = qrcode(0, "L");
      code.addData("shc:/", "Byte");
      code.addData(qrPayload(jws), "Numeric");
      code.make();
      qr = code.createDataURL(4, 4);
    } catch {
      tooLarge = true;
    }
    setCards((all) => [...all.filter((c) => c.kind !== label), { kind: label, jws, qr, tooLarge }]);
    return label;
  });
  if (patient.loading) return <Loading what="your health records on this node" />;
  if (patient.error) return <ErrorBox error={patient.error} />;
  if (!patient.data?.id) {
    return (
      <p>
        No FHIR Patient on this node names your key, so there is nothing to put on a health card yet. (In the demo, the
        FHIR patients' keys are in <code>hygeia-demo/demo-keys/patients/</code>.)
      </p>
    );
  }
  return (
    <>
      <p>A SMART Health Card is a signed summary you can show from your phone. Anyone can check it offline.</p>
      <div class="row">
        {KINDS.map(([kind, label]) => (
          <button key={kind} type="button" class="secondary" disabled={issue.busy} onClick={() => issue.act(kind, label)}>
            Make a card: {label.toLowerCase()}
          </button>
        ))}
      </div>
      <ErrorBox error={issue.error} />
      {cards.map((c) => (
        <div class="card spaced" key={c.kind} data-testid="health-card">
          <h3>{c.kind}</h3>
          {c.qr ? (
            <div class="qr">
              <img src={c.qr} alt={`QR code of your SMART Health Card: ${c.kind.toLowerCase()}`} />
            </div>
          ) : (
            <p>This card is too large for one QR code. Download the file and share it instead.</p>
          )}
          <details>
            <summary>The QR code's content, as text</summary>
            <p class="mono" data-testid="qr-text">shc:/{qrPayload(c.jws)}</p>
          </details>
          <p>
            <a download="card.smart-health-card" href={`data:application/smart-health-card;charset=utf-8,${encodeURIComponent(JSON.stringify({ verifiableCredential: [c.jws] }))}`}>
              Download the card file
            </a>
          </p>
        </div>
      ))}
    </>
  );
}
