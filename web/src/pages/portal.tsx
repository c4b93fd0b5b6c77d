import { useState } from "preact/hooks";
import { ErrorBox, Loading, Mark, NeedKey, Notice, Page, SubNav, useAction, useLoad, useSession } from "../components";
import { ApiError, getJson, getText, signedJson, signedRead, verifierKey } from "../lib/api";
import { fromUtf8 } from "../lib/bytes";
import { shortDid } from "../lib/did";
import { fhir, fhirToken } from "../lib/fhir";
import { StoredKey } from "../lib/keys";
import { custodianHistory, custodiansAt } from "../lib/custodians";
import { checkEntry, verifyCheckpoint } from "../lib/verify";
import { capitalize, category, Grant, localDate, localDateTime, orgName, purpose, scopeWords } from "../lib/words";
import { Licences } from "./wallet";

const SECTIONS: [string, string][] = [
  ["#/portal", "My patients"],
  ["#/portal/record", "Open a record"],
  ["#/portal/break-glass", "Emergency access"],
  ["#/portal/licence", "My licence"],
];

interface RecordView {
  commitment: string;
  patient: string;
  author: string;
  category: string;
  resource_type: string;
  index: number;
  erased_at: number | null;
}

interface Access {
  me: string;
  orgs: string[];
  grants: { grant: Grant & { index: number; revoked_at: number | null }; state: string; via_org: boolean; records: RecordView[] }[];
}

export function PortalPage({ path, params }: { path: string; params: URLSearchParams }) {
  const { key, identity } = useSession();
  const current = "#" + path;
  const known = SECTIONS.some(([h]) => h === current);
  const title = SECTIONS.find(([h]) => h === current)?.[1] ?? "Clinician portal";
  if (!key) {
    return (
      <Page title="Clinician portal">
        <NeedKey role="clinician portal" />
      </Page>
    );
  }
  let body;
  if (current === "#/portal/record") body = <RecordViewer me={key} id={params.get("id") ?? ""} />;
  else if (current === "#/portal/break-glass") body = <BreakGlass me={key} id={params.get("id") ?? ""} />;
  else if (current === "#/portal/licence") body = <Licences did={identity ?? key.did} />;
  else body = <Patients me={key} />;
  return (
    <Page title={title} lead="Patients' records with their consent, every look logged and shown to them.">
      <SubNav items={SECTIONS} current={known ? current : "#/portal"} />
      {body}
    </Page>
  );
}

function Patients({ me }: { me: StoredKey }) {
  const loaded = useLoad(() => signedJson<Access>(me, "/v1/app/access"), [me.did]);
  if (loaded.loading) return <Loading what="the patients who gave you access" />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const data = loaded.data!;
  const active = data.grants.filter((g) => g.state === "active");
  const other = data.grants.filter((g) => g.state !== "active");
  return (
    <section aria-labelledby="patients-h">
      <h2 id="patients-h">Patients who gave me access</h2>
      {data.orgs.length > 0 && <p class="hint">You work at {data.orgs.map(orgName).join(", ")}; grants to these organizations count for you too.</p>}
      {active.length === 0 && <p>No patient has given you access right now. A patient gives access from their wallet.</p>}
      <ul class="cards">
        {active.map(({ grant, via_org, records }) => (
          <li key={grant.id} class="card" data-testid="patient-grant">
            <h3>Patient {shortDid(grant.patient)}</h3>
            <p>
              You may see {scopeWords(grant.scope, "their")}, {purpose(grant.purpose).replace("your", "their")}, until {localDate(grant.not_after)}
              {via_org ? ` (given to ${orgName(grant.grantee)})` : ""}.
            </p>
            {records.length === 0 ? (
              <p class="hint">No record of theirs falls under this permission yet.</p>
            ) : (
              <ul>
                {records.map((r) => (
                  <li key={r.commitment}>
                    <a href={`#/portal/record?id=${r.commitment}`}>
                      {capitalize(category(r.category))} ({r.resource_type}), entry {r.index}
                    </a>
                  </li>
                ))}
              </ul>
            )}
          </li>
        ))}
      </ul>
      {other.length > 0 && (
        <details class="spaced">
          <summary>Ended, withdrawn or future permissions ({other.length})</summary>
          <ul>
            {other.map(({ grant, state }) => (
              <li key={grant.id}>
                Patient {shortDid(grant.patient)}: {scopeWords(grant.scope, "their")} —{" "}
                {state === "revoked" ? "withdrawn by the patient" : state === "expired" ? `ended ${localDate(grant.not_after)}` : `starts ${localDate(grant.not_before)}`}
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}

interface Opened {
  id: string;
  content: string;
  decision: string;
  auditIndex: string;
  json: Record<string, unknown> | null;
}

/** The record's anchor on the ledger, checked against the pinned checkpoint key. */
async function anchor(id: string) {
  const { record } = await getJson<{ record: RecordView }>(`/v1/app/records/${id}`);
  const page = await getJson<{ entries: { index: number; entry: string; leaf_hash: string }[] }>(`/v1/app/ledger?before=${record.index + 1}&limit=1`);
  const entry = page.entries[0];
  const note = await getText("/checkpoint");
  const { key } = await verifierKey();
  const checkpoint = await verifyCheckpoint(note, key);
  const proof = await getJson<{ proof: string[] }>(`/v1/proofs/inclusion?index=${entry.index}&size=${checkpoint.size}`);
  let signers: Set<string>;
  try {
    signers = custodiansAt(await custodianHistory(checkpoint), entry.index);
  } catch (e) {
    return { index: entry.index, author: record.author, check: { ok: false, problem: `the network's custodian set could not be checked: ${(e as Error).message}` } };
  }
  const check = await checkEntry(entry.entry, entry.index, entry.leaf_hash, proof.proof, checkpoint, signers);
  const body = check.tx?.body as { commitment?: string } | undefined;
  if (check.ok && (check.tx?.type !== "record" || body?.commitment !== id)) {
    return { index: entry.index, author: record.author, check: { ok: false, problem: "the ledger entry is not this record's anchor" } };
  }
  return { index: entry.index, author: record.author, check };
}

function Provenance({ id }: { id: string }) {
  const loaded = useLoad(() => anchor(id), [id]);
  if (loaded.loading) return <Mark state="wait" />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  const { index, author, check } = loaded.data!;
  return (
    <p>
      Added by <span class="mono">{shortDid(author)}</span>; anchored by the node at ledger entry {index}.{" "}
      <Mark state={check.ok ? "ok" : "bad"} problem={check.problem} />
    </p>
  );
}

function History({ me, json }: { me: StoredKey; json: Record<string, unknown> }) {
  const type = String(json.resourceType ?? "");
  const id = String(json.id ?? "");
  const loaded = useLoad(async () => {
    const token = await fhirToken(me, "TREAT");
    return fhir<{ entry?: { resource: { meta?: { versionId?: string; lastUpdated?: string } }; request?: { method?: string } }[] }>(
      token,
      "GET",
      `/fhir/${encodeURIComponent(type)}/${encodeURIComponent(id)}/_history`,
    );
  }, [type, id]);
  if (loaded.loading) return <Loading what="the version history" />;
  if (loaded.error) return <ErrorBox error={loaded.error} />;
  return (
    <ol>
      {(loaded.data?.entry ?? []).map((e, i) => (
        <li key={i}>
          Version {e.resource.meta?.versionId ?? "?"}
          {e.resource.meta?.lastUpdated ? `, ${new Date(e.resource.meta.lastUpdated).toLocaleString()}` : ""}
        </li>
      ))}
    </ol>
  );
}

function RecordViewer({ me, id: initial }: { me: StoredKey; id: string }) {
  const [id, setId] = useState(initial);
  const [why, setWhy] = useState("TREAT");
  const open = useAction(async (): Promise<Opened> => {
    const target = id.trim();
    if (!/^[0-9a-f]{64}$/.test(target)) throw new Error("A record id is 64 characters, 0-9 and a-f. Copy it from the patient's list or your patients page");
    const { bytes, headers } = await signedRead(me, `/v1/records/${target}?purpose=${why}`);
    const text = fromUtf8(bytes);
    let json: Record<string, unknown> | null = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return {
      id: target,
      content: json ? JSON.stringify(json, null, 2) : text,
      decision: headers.get("hygeia-decision") ?? "permit",
      auditIndex: headers.get("hygeia-audit-index") ?? "?",
      json,
    };
  });
  const denied = open.error instanceof ApiError && open.error.code === "access_denied";
  return (
    <section aria-labelledby="viewer-h">
      <h2 id="viewer-h">Open a record</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          open.act();
        }}
      >
        <div class="field">
          <label for="record-id">Record id</label>
          <input id="record-id" type="text" class="mono" value={id} onInput={(e) => setId(e.currentTarget.value)} autoComplete="off" spellcheck={false} />
        </div>
        <div class="field">
          <label for="why">Why you need it</label>
          <select id="why" value={why} onChange={(e) => setWhy(e.currentTarget.value)}>
            {["TREAT", "HPAYMT", "HOPERAT", "HRESCH", "PUBHLTH", "COVERAGE"].map((p) => (
              <option key={p} value={p}>
                {capitalize(purpose(p).replace("your", "the patient's"))}
              </option>
            ))}
          </select>
        </div>
        <p class="hint">Opening a record is decided against the patient's consent and logged; the patient sees it.</p>
        <button type="submit" disabled={open.busy}>
          Open the record
        </button>
      </form>
      <div class="spaced">
        <ErrorBox error={open.error} />
        {denied && (
          <p>
            If this is an emergency and the patient cannot consent:{" "}
            <a href={`#/portal/break-glass?id=${id.trim()}`}>use emergency access (break-glass)</a>.
          </p>
        )}
      </div>
      {open.result && (
        <div class="card spaced" data-testid="record-content">
          <h3>Record {open.result.id.slice(0, 12)}…</h3>
          {open.result.decision.includes("break-glass") ? (
            <div class="alert warn" role="status">
              Opened as an emergency (break-glass). This look is logged at entry {open.result.auditIndex} and shown first to the patient.
            </div>
          ) : (
            <Notice>Allowed by the patient's consent; logged at entry {open.result.auditIndex}.</Notice>
          )}
          <h4>Provenance</h4>
          <Provenance id={open.result.id} />
          {open.result.json?.resourceType && open.result.json?.id ? (
            <details>
              <summary>Version history</summary>
              <History me={me} json={open.result.json} />
            </details>
          ) : (
            <p class="hint">Version history: this record was uploaded directly and has one version.</p>
          )}
          <h4>Content</h4>
          <pre>{open.result.content}</pre>
        </div>
      )}
    </section>
  );
}

function BreakGlass({ me, id: initial }: { me: StoredKey; id: string }) {
  const [id, setId] = useState(initial);
  const [reason, setReason] = useState("");
  const [understood, setUnderstood] = useState(false);
  const [formError, setFormError] = useState<string | null>(null);
  const open = useAction(async () => {
    const { bytes, headers } = await signedRead(me, `/v1/records/${id.trim()}?purpose=ETREAT&break_glass=${encodeURIComponent(reason.trim())}`);
    let content = fromUtf8(bytes);
    try {
      content = JSON.stringify(JSON.parse(content), null, 2);
    } catch {
      /* as is */
    }
    return { content, decision: headers.get("hygeia-decision") ?? "", index: headers.get("hygeia-audit-index") ?? "?", at: Math.floor(Date.now() / 1000) };
  });
  return (
    <section aria-labelledby="bg-h">
      <h2 id="bg-h">Emergency access (break-glass)</h2>
      <div class="alert warn" role="note">
        <strong>Use only in an emergency, when the patient cannot consent.</strong> Break-glass is audited: the access, the
        time and your written reason are recorded, and the patient sees it <strong>first</strong> in their access log.
        It needs a valid licence and the clinician role. For the next hour, your emergency reads of this patient's
        records are logged the same way.
      </div>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setFormError(null);
          if (!/^[0-9a-f]{64}$/.test(id.trim())) return setFormError("Enter the record id (64 characters, 0-9 and a-f).");
          if (!reason.trim()) return setFormError("Write why this is an emergency: the patient will read it.");
          if (reason.trim().length > 1000) return setFormError("Shorten the reason to at most 1,000 characters.");
          if (!understood) return setFormError("Confirm that you understand this access is audited and shown to the patient.");
          open.act();
        }}
        noValidate
      >
        <div class="field">
          <label for="bg-id">Record id</label>
          <input id="bg-id" type="text" class="mono" value={id} onInput={(e) => setId(e.currentTarget.value)} autoComplete="off" spellcheck={false} />
        </div>
        <p class="field">
          <strong>Purpose:</strong> emergency treatment
        </p>
        <div class="field">
          <label for="bg-reason">Why is this an emergency? (the patient will read this)</label>
          <textarea id="bg-reason" value={reason} maxLength={1000} onInput={(e) => setReason(e.currentTarget.value)} />
        </div>
        <label class="row">
          <input type="checkbox" checked={understood} onChange={(e) => setUnderstood(e.currentTarget.checked)} />I understand
          this access is audited and shown to the patient first.
        </label>
        {formError && (
          <div class="alert error" role="alert">
            {formError}
          </div>
        )}
        <ErrorBox error={open.error} />
        <button type="submit" class="danger" disabled={open.busy}>
          Open the record in an emergency
        </button>
      </form>
      {open.result && (
        <div class="card spaced" data-testid="record-content">
          <div class="alert warn" role="status">
            {open.result.decision.includes("break-glass")
              ? `Emergency access granted at ${localDateTime(open.result.at)}, logged at entry ${open.result.index}. The patient will see it first.`
              : `Opened under the patient's consent (no emergency needed); logged at entry ${open.result.index}.`}
          </div>
          <pre>{open.result.content}</pre>
        </div>
      )}
    </section>
  );
}
