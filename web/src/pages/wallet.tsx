import { useMemo, useState } from "preact/hooks";
import { ErrorBox, Loading, Mark, NeedKey, Notice, Page, SubNav, useAction, useLoad, useSession } from "../components";
import { getJson, signedJson, signedPost, signedRead, submit } from "../lib/api";
import { CheckedEvent, loadAudit } from "../lib/audit";
import { fromBase64url, fromUtf8, sha256, toBase64url, toHex, utf8 } from "../lib/bytes";
import { publicKeyFromDid, shortDid } from "../lib/did";
import { sign, StoredKey, verifySignature } from "../lib/keys";
import { jcs } from "../lib/tx";
import {
  capitalize,
  category,
  consentSentence,
  Directory,
  GRANT_CATEGORIES,
  GRANT_PURPOSES,
  Grant,
  KIND_WORDS,
  localDate,
  localDateTime,
  orgName,
  purpose,
  ROLE_WORDS,
  who,
} from "../lib/words";
import { HealthCards } from "./health_cards";

const SECTIONS: [string, string][] = [
  ["#/wallet", "Who may see my records"],
  ["#/wallet/grant", "Give access"],
  ["#/wallet/audit", "Who looked at my data"],
  ["#/wallet/records", "My records"],
  ["#/wallet/credentials", "My credentials and health cards"],
  ["#/wallet/research", "My research answers"],
  ["#/wallet/incentives", "My incentives"],
];

export function WalletPage({ path, params }: { path: string; params: URLSearchParams }) {
  const { key, identity } = useSession();
  const current = "#" + path;
  const title = SECTIONS.find(([h]) => h === current)?.[1] ?? "My wallet";
  if (!key) {
    return (
      <Page title="My wallet">
        <NeedKey role="wallet" />
      </Page>
    );
  }
  let body;
  const patient = identity ?? key.did;
  if (current === "#/wallet/grant") body = <GrantForm me={key} patient={patient} preset={params.get("to")} />;
  else if (current === "#/wallet/audit") body = <Audit me={key} patient={patient} />;
  else if (current === "#/wallet/records") body = <Records me={key} patient={patient} />;
  else if (current === "#/wallet/credentials") body = <Credentials me={key} patient={patient} />;
  else if (current === "#/wallet/research") body = <ResearchAnswers me={key} />;
  else if (current === "#/wallet/incentives") body = <Incentives patient={patient} />;
  else body = <Consents me={key} patient={patient} />;
  return (
    <Page title={title} lead="Your wallet: you decide who sees your health records, and you see every time someone looks.">
      <SubNav items={SECTIONS} current={SECTIONS.some(([h]) => h === current) ? current : "#/wallet"} />
      {body}
    </Page>
  );
}

export const loadDirectory = (q = "") => getJson<Directory>(`/v1/app/directory${q ? `?q=${encodeURIComponent(q)}` : ""}`);

function grantState(g: Grant): "active" | "expired" | "not-yet" {
  const now = Date.now() / 1000;
  if (now < g.not_before) return "not-yet";
  if (now >= g.not_after) return "expired";
  return "active";
}

function Consents({ me, patient }: { me: StoredKey; patient: string }) {
  const loaded = useLoad(async () => {
    const [consents, directory] = await Promise.all([
      signedJson<{ grants: Grant[] }>(me, `/v1/consents?patient=${encodeURIComponent(patient)}`),
      loadDirectory(),
    ]);
    return { grants: consents.grants.sort((a, b) => b.not_after - a.not_after), directory };
  }, [me.did, patient]);
  const revoke = useAction(async (grant: Grant) => {
    const receipt = await submit(me, "consent.revoke", { grant: grant.id });
    loaded.reload();
    return `Access withdrawn at once: ${who(grant.grantee, loaded.data?.directory ?? null)} can no longer see these records. Logged on the ledger at index ${receipt.index}.`;
  });
  return (
    <section aria-labelledby="consents-h">
      <h2 id="consents-h">Consent cards</h2>
      <p>
        Each card is one permission you gave. Stopping it takes effect at once. To give a new one, use{" "}
        <a href="#/wallet/grant">Give access</a>.
      </p>
      <ErrorBox error={revoke.error} />
      {revoke.result && <Notice>{revoke.result}</Notice>}
      {loaded.loading && <Loading what="your consent cards" />}
      <ErrorBox error={loaded.error} />
      {loaded.data && loaded.data.grants.length === 0 && <p>You have not given anyone access. Nobody but you can see your records.</p>}
      {loaded.data && (
        <ul class="cards" aria-label="Consent cards">
          {loaded.data.grants.map((g) => {
            const state = grantState(g);
            return (
              <li key={g.id} class={`card ${state === "active" ? "" : "inactive"}`} data-testid="consent-card">
                <p class="consent-sentence" id={`grant-${g.id}`}>
                  {consentSentence(g, loaded.data!.directory)}
                </p>
                <p class="hint">
                  {state === "active" ? "In force now." : state === "expired" ? `Ended on ${localDate(g.not_after)}.` : `Starts on ${localDate(g.not_before)}.`}{" "}
                  <span class="mono">Grant {g.id.slice(0, 12)}…</span>
                </p>
                {state !== "expired" && (
                  <button type="button" class="danger" disabled={revoke.busy} onClick={() => revoke.act(g)} aria-describedby={`grant-${g.id}`}>
                    Stop this access now
                  </button>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

const DURATIONS: [string, number][] = [
  ["1 day", 1],
  ["1 week", 7],
  ["30 days", 30],
  ["3 months", 91],
  ["1 year", 365],
];

const isoDay = (d: Date) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;

function GrantForm({ me, patient, preset }: { me: StoredKey; patient: string; preset: string | null }) {
  const [query, setQuery] = useState("");
  const [grantee, setGrantee] = useState<string>(preset ?? "");
  const [categories, setCategories] = useState<string[]>(["lab"]);
  const [why, setWhy] = useState("TREAT");
  const today = isoDay(new Date());
  const [start, setStart] = useState(today);
  const [end, setEnd] = useState(isoDay(new Date(Date.now() + 30 * 86_400_000)));
  const [formError, setFormError] = useState<string | null>(null);
  const directory = useLoad(() => loadDirectory(query), [query]);
  const all = useLoad(() => loadDirectory(), []);
  const choices = useMemo(() => {
    const d = directory.data;
    if (!d) return [];
    const orgs = d.orgs.map((o) => ({ did: o.did, label: `${capitalize(KIND_WORDS[o.kind] ?? o.kind)} ${orgName(o.did)} (everyone who works there)` }));
    const people = d.people
      .filter((p) => p.did !== patient)
      .map((p) => {
        const m = p.memberships[0];
        const roles = m ? m.roles.map((r) => ROLE_WORDS[r] ?? r).join(", ") : "member";
        return {
          did: p.did,
          label: `${capitalize(roles)} at ${m ? orgName(m.org) : "?"}${m?.jurisdiction ? `, ${m.jurisdiction}` : ""}${p.licence_registered ? ", licensed" : ""} (${shortDid(p.did)})`,
        };
      });
    return [...orgs, ...people];
  }, [directory.data, me.did]);
  const notBefore = Math.floor(new Date(`${start}T00:00:00`).getTime() / 1000);
  const notAfter = Math.floor(new Date(`${end}T23:59:59`).getTime() / 1000);
  const startNow = start === today ? Math.floor(Date.now() / 1000) - 60 : notBefore;
  const draft: Grant = { id: "", patient, grantee, scope: { categories }, actions: ["read"], purpose: why, not_before: startNow, not_after: notAfter };
  const give = useAction(async () => {
    const receipt = await submit(me, "consent.grant", {
      patient,
      grantee,
      scope: { categories },
      actions: ["read"],
      purpose: why,
      not_before: startNow,
      not_after: notAfter,
    });
    return `Done. ${consentSentence(draft, all.data)} Logged on the ledger at index ${receipt.index}.`;
  });
  const onSubmit = (e: Event) => {
    e.preventDefault();
    setFormError(null);
    if (!grantee) return setFormError("Choose who gets access: search for an organization or a clinician, then select one.");
    if (categories.length === 0) return setFormError("Choose at least one kind of record they may see.");
    if (!start || !end || Number.isNaN(notBefore) || Number.isNaN(notAfter)) return setFormError("Enter a start and an end date.");
    if (notAfter <= startNow) return setFormError("The end date is before the start date. Choose an end date after the start, then grant again.");
    give.act();
  };
  return (
    <section aria-labelledby="grant-h">
      <h2 id="grant-h">Give someone access</h2>
      <form onSubmit={onSubmit} noValidate>
        <fieldset>
          <legend>Who</legend>
          <div class="field">
            <label for="who-search">Search organizations and clinicians</label>
            <input id="who-search" type="search" value={query} onInput={(e) => setQuery(e.currentTarget.value)} placeholder="clinic, lab, clinician…" />
          </div>
          <ErrorBox error={directory.error} />
          {choices.length === 0 && !directory.loading && <p class="hint">Nobody matches. Try another word, or clear the search.</p>}
          <div role="radiogroup" aria-label="Who gets access">
            {choices.map((c) => (
              <label key={c.did}>
                <input type="radio" name="grantee" value={c.did} checked={grantee === c.did} onChange={() => setGrantee(c.did)} />
                {c.label}
              </label>
            ))}
          </div>
        </fieldset>
        <fieldset>
          <legend>What they may see</legend>
          {GRANT_CATEGORIES.map((c) => (
            <label key={c}>
              <input
                type="checkbox"
                name="category"
                value={c}
                checked={categories.includes(c)}
                onChange={(e) => setCategories(e.currentTarget.checked ? [...categories, c] : categories.filter((x) => x !== c))}
              />
              {capitalize(category(c))}
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>Why</legend>
          {GRANT_PURPOSES.map((p) => (
            <label key={p}>
              <input type="radio" name="purpose" value={p} checked={why === p} onChange={() => setWhy(p)} />
              {capitalize(purpose(p))}
              {p === "TREAT" && " (also covers emergencies)"}
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>How long</legend>
          <div class="row">
            {DURATIONS.map(([label, days]) => (
              <button key={label} type="button" class="secondary" onClick={() => { setStart(today); setEnd(isoDay(new Date(Date.now() + days * 86_400_000))); }}>
                {label}
              </button>
            ))}
          </div>
          <div class="field spaced">
            <label for="start">From</label>
            <input id="start" type="date" value={start} onInput={(e) => setStart(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="end">Until (included)</label>
            <input id="end" type="date" value={end} onInput={(e) => setEnd(e.currentTarget.value)} aria-describedby="end-hint" />
            <p class="hint" id="end-hint">You can stop it earlier at any time.</p>
          </div>
        </fieldset>
        {grantee && categories.length > 0 && notAfter > startNow && (
          <div class="card">
            <h3>You are about to allow</h3>
            <p data-testid="grant-preview">{consentSentence(draft, all.data)}</p>
          </div>
        )}
        {formError && (
          <div class="alert error" role="alert">
            {formError}
          </div>
        )}
        <ErrorBox error={give.error} />
        {give.result && <Notice>{give.result}</Notice>}
        <button type="submit" disabled={give.busy}>
          Give access
        </button>
      </form>
    </section>
  );
}

function eventSentence(e: CheckedEvent, directory: Directory | null, me: string): string {
  const b = e.body;
  const whoText = capitalize(who(b.requester, directory, me));
  const what = b.records.length === 0 ? "your records" : b.records.length === 1 ? "one of your records" : `${b.records.length} of your records`;
  const verb =
    b.action === "write"
      ? b.decision === "permit"
        ? "added"
        : "tried to add"
      : b.decision === "permit"
        ? "looked at"
        : "tried to look at";
  const outcome = b.decision === "permit" ? (b.break_glass ? "allowed as an emergency" : "allowed") : "refused";
  const which = b.action === "write" && b.decision === "permit" ? "a record to your file" : what;
  return `${whoText} ${verb} ${which}, ${purpose(b.purpose)}, on ${localDateTime(b.time)}: ${outcome}.`;
}

function Audit({ me, patient }: { me: StoredKey; patient: string }) {
  const loaded = useLoad(async () => {
    const [audit, directory] = await Promise.all([loadAudit(me, patient), loadDirectory()]);
    return { ...audit, directory };
  }, [me.did, patient]);
  const events = loaded.data
    ? [...loaded.data.events.filter((e) => e.body.break_glass), ...loaded.data.events.filter((e) => !e.body.break_glass)]
    : [];
  const failed = events.filter((e) => !e.ok).length;
  return (
    <section aria-labelledby="audit-h">
      <h2 id="audit-h">Who looked at my data</h2>
      <p>
        Every look, refusal and addition is on the ledger. Emergency access comes first. Each entry is checked here, in
        your browser, against the node's signed checkpoint.
      </p>
      {loaded.loading && <Loading what="your access log" />}
      <ErrorBox error={loaded.error} />
      {loaded.data && (
        <>
          {loaded.data.checkpointProblem ? (
            <div class="alert error" role="alert">
              The node's checkpoint could not be verified ({loaded.data.checkpointProblem}). The entries below are not
              proven. Check the pinned key on the Start page, then reload.
            </div>
          ) : failed > 0 ? (
            <div class="alert error" role="alert">
              {failed} {failed === 1 ? "entry" : "entries"} failed verification: what the node served is not what it
              signed. Do not rely on {failed === 1 ? "it" : "them"}; report it to the node's operator.
            </div>
          ) : (
            <Notice>
              All {events.length} entries verified against checkpoint {loaded.data.checkpoint?.size} ({loaded.data.feed.total} in total).
            </Notice>
          )}
          {events.length === 0 && <p>Nobody has accessed your records yet.</p>}
          <ol class="feed" aria-label="Access log">
            {events.map((e) => (
              <li key={e.served.index} class={`card ${e.body.break_glass ? "glass" : ""}`} data-testid="audit-entry" data-index={e.served.index}>
                <div class="row">
                  {e.body.break_glass ? (
                    <span class="badge glass">Emergency access (break-glass)</span>
                  ) : (
                    <span class={`badge ${e.body.decision === "permit" ? "permit" : "deny"}`}>{e.body.decision === "permit" ? "Allowed" : "Refused"}</span>
                  )}
                  <Mark state={e.ok ? "ok" : "bad"} problem={e.problem} />
                </div>
                <p>{eventSentence(e, loaded.data!.directory, patient)}</p>
                {e.served.justification && (
                  <p>
                    <strong>Their reason:</strong> {e.served.justification}
                  </p>
                )}
                {e.body.records.length > 0 && (
                  <p class="hint">
                    {e.body.records.length === 1 ? "Record" : "Records"}:{" "}
                    {e.body.records.map((r) => (
                      <span key={r} class="mono">
                        {r.slice(0, 12)}…{" "}
                      </span>
                    ))}
                  </p>
                )}
                <p class="hint">Ledger entry {e.served.index}</p>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}

interface RecordMeta {
  commitment: string;
  patient: string;
  author: string;
  category: string;
  resource_type: string;
  index: number;
  erased_at: number | null;
}

const PROVENANCE_DOMAIN = utf8("hygeia.record.v1\u0000");

async function provenanceMessage(patient: string, cat: string, resourceType: string, mediaType: string, content: Uint8Array) {
  const statement = jcs({ category: cat, content_sha256: toHex(await sha256(content)), media_type: mediaType, patient, resource_type: resourceType });
  const out = new Uint8Array(PROVENANCE_DOMAIN.length + statement.length);
  const bytes = utf8(statement);
  out.set(PROVENANCE_DOMAIN);
  out.set(bytes, PROVENANCE_DOMAIN.length);
  return out;
}

/** Uploads a record as its author, with the provenance signature (docs/records.md). */
export async function uploadRecord(key: StoredKey, patient: string, cat: string, resourceType: string, mediaType: string, content: Uint8Array) {
  const provenance = await sign(key.privateKey, await provenanceMessage(patient, cat, resourceType, mediaType, content));
  return signedPost<{ record: string; index: number; audit_index: number }>(key, "/v1/records?purpose=TREAT", content, {
    "hygeia-patient": patient,
    "hygeia-category": cat,
    "hygeia-resource-type": resourceType,
    "hygeia-provenance": toBase64url(provenance),
    "content-type": mediaType,
  });
}

const SAMPLE = JSON.stringify({ resourceType: "Observation", status: "final", code: { text: "HbA1c" }, valueQuantity: { value: 6.4, unit: "%" } });

function Records({ me, patient }: { me: StoredKey; patient: string }) {
  const loaded = useLoad(() => signedJson<{ records: RecordMeta[] }>(me, `/v1/records?patient=${encodeURIComponent(patient)}`), [me.did, patient]);
  const [text, setText] = useState(SAMPLE);
  const [cat, setCat] = useState("lab");
  const [type, setType] = useState("Observation");
  const [open, setOpen] = useState<{ id: string; content: string; provenance: string; ok: boolean } | null>(null);
  const upload = useAction(async () => {
    const content = utf8(text);
    if (content.length === 0) throw new Error("The record is empty. Paste or type its content first");
    const answer = await uploadRecord(me, patient, cat, type, "application/fhir+json", content);
    loaded.reload();
    return answer;
  });
  const view = useAction(async (r: RecordMeta) => {
    const { bytes } = await signedRead(me, `/v1/records/${r.commitment}`);
    const prov = await signedJson<{ provenance: string | null; media_type: string | null; signed_by: string | null }>(me, `/v1/app/records/${r.commitment}/provenance`);
    let ok = false;
    try {
      ok =
        !!prov.provenance &&
        (await verifySignature(
          publicKeyFromDid(prov.signed_by ?? r.author),
          fromBase64url(prov.provenance),
          await provenanceMessage(r.patient, r.category, r.resource_type, prov.media_type ?? "", bytes),
        ));
    } catch {
      ok = false;
    }
    let content = fromUtf8(bytes);
    try {
      content = JSON.stringify(JSON.parse(content), null, 2);
    } catch {
      /* not JSON: shown as is */
    }
    setOpen({ id: r.commitment, content, ok, provenance: `Added by ${r.author === patient ? "you" : shortDid(r.author)}; anchored at ledger entry ${r.index}.` });
  });
  const erase = useAction(async (r: RecordMeta) => {
    if (!confirm("Erase this record for good? Its keys are destroyed: nobody, not even you, can read it again. The ledger keeps only a meaningless fingerprint.")) return null;
    const receipt = await submit(me, "record.erase", { record: r.commitment });
    loaded.reload();
    if (open?.id === r.commitment) setOpen(null);
    return `Erased. Logged on the ledger at index ${receipt.index}.`;
  });
  return (
    <section aria-labelledby="records-h">
      <h2 id="records-h">My records</h2>
      <ErrorBox error={view.error ?? erase.error} />
      {erase.result && <Notice>{erase.result}</Notice>}
      {loaded.loading && <Loading what="your records" />}
      <ErrorBox error={loaded.error} />
      {loaded.data && loaded.data.records.length === 0 && <p>No records yet. Add one below.</p>}
      {loaded.data && loaded.data.records.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Your records</caption>
            <thead>
              <tr>
                <th scope="col">What</th>
                <th scope="col">Added by</th>
                <th scope="col">Record id</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {loaded.data.records.map((r) => (
                <tr key={r.commitment} data-testid="record-row" data-record={r.commitment}>
                  <td>
                    {capitalize(category(r.category))} ({r.resource_type})
                  </td>
                  <td>{r.author === patient ? "you" : shortDid(r.author)}</td>
                  <td class="mono">{r.commitment}</td>
                  <td>
                    {r.erased_at !== null ? (
                      <span>Erased (entry {r.erased_at})</span>
                    ) : (
                      <div class="row">
                        <button type="button" class="secondary" onClick={() => view.act(r)} disabled={view.busy}>
                          Open
                        </button>
                        <button type="button" class="danger" onClick={() => erase.act(r)} disabled={erase.busy}>
                          Erase
                        </button>
                      </div>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {open && (
        <div class="card spaced" aria-live="polite">
          <h3>Record {open.id.slice(0, 12)}…</h3>
          <p>
            {open.provenance} <Mark state={open.ok ? "ok" : "bad"} problem={open.ok ? undefined : "the author's signature does not match this content"} />
          </p>
          <pre>{open.content}</pre>
        </div>
      )}
      <h2>Add a record</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          upload.act();
        }}
      >
        <div class="field">
          <label for="rec-cat">Kind of record</label>
          <select id="rec-cat" value={cat} onChange={(e) => setCat(e.currentTarget.value)}>
            {GRANT_CATEGORIES.filter((c) => c !== "patient").map((c) => (
              <option key={c} value={c}>
                {capitalize(category(c))}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="rec-type">FHIR resource type</label>
          <input id="rec-type" type="text" value={type} onInput={(e) => setType(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="rec-text">The record (FHIR JSON)</label>
          <textarea id="rec-text" value={text} onInput={(e) => setText(e.currentTarget.value)} />
          <p class="hint">It is encrypted on the node; only a fingerprint goes on the ledger. Use synthetic data in the demo.</p>
        </div>
        <ErrorBox error={upload.error} />
        {upload.result && (
          <Notice>
            Added. Record id <span class="mono" data-testid="uploaded-record">{upload.result.record}</span> (ledger entry {upload.result.index}).
          </Notice>
        )}
        <button type="submit" disabled={upload.busy}>
          Add this record
        </button>
      </form>
    </section>
  );
}

interface Licence {
  issuer: string;
  jurisdiction: string;
  profession: string;
  standing: string;
  index: number;
}

export function Licences({ did }: { did: string }) {
  const loaded = useLoad(() => getJson<{ licences: Licence[] }>(`/v1/licences/${encodeURIComponent(did)}`), [did]);
  return (
    <>
      {loaded.loading && <Loading what="licences" />}
      <ErrorBox error={loaded.error} />
      {loaded.data && loaded.data.licences.length === 0 && <p>No licence is registered for this key.</p>}
      {loaded.data && loaded.data.licences.length > 0 && (
        <ul class="plain">
          {loaded.data.licences.map((l) => (
            <li key={l.index} class="card" data-testid="licence">
              <p>
                <strong>{capitalize(l.profession)}</strong>, licensed in {l.jurisdiction} by <span class="mono">{shortDid(l.issuer)}</span>
              </p>
              <p>
                Standing now:{" "}
                <span class={`badge ${l.standing === "valid" ? "permit" : "deny"}`} data-testid="licence-standing">
                  {l.standing === "valid" ? "valid" : l.standing.replace(/-/g, " ")}
                </span>{" "}
                (ledger entry {l.index})
              </p>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}

function Credentials({ me, patient }: { me: StoredKey; patient: string }) {
  return (
    <section aria-labelledby="cred-h">
      <h2 id="cred-h">My credentials</h2>
      <Licences did={patient} />
      <h2>My SMART Health Cards</h2>
      <HealthCards me={me} patient={patient} />
    </section>
  );
}

interface ResearchAnswer {
  study_id: string;
  researcher: string;
  attribute: string;
  loinc: string | null;
  range: { min_inclusive?: number | null; max_exclusive?: number | null };
  proved: string;
}

/** What an answer proved, in everyday words (the value itself never left the wallet's proof). */
export function provedSentence(a: ResearchAnswer): string {
  const { min_inclusive: min, max_exclusive: max } = a.range;
  if (a.attribute === "hba1c-percent-x10") {
    const pct = (v: number) => `${(v / 10).toFixed(1)} %`;
    if (min != null && max != null) return `your HbA1c was at least ${pct(min)} and below ${pct(max)}`;
    if (max != null) return `your HbA1c was below ${pct(max)}`;
    if (min != null) return `your HbA1c was at least ${pct(min)}`;
  }
  return `your ${a.attribute} is in the range ${a.proved}`;
}

function ResearchAnswers({ me }: { me: StoredKey }) {
  const loaded = useLoad(() => signedJson<{ answers: ResearchAnswer[] }>(me, "/v1/research/answers"), [me.did]);
  return (
    <section aria-labelledby="research-h">
      <h2 id="research-h">My research answers</h2>
      <p>
        Studies you told, through this node, that you meet their criteria. Each answer is a zero-knowledge proof: the researcher
        learns that you qualify and a pseudonym for this study only, never your name, your key or your value.
      </p>
      {loaded.loading && <Loading what="research answers" />}
      <ErrorBox error={loaded.error} />
      {loaded.data && loaded.data.answers.length === 0 && <p>You have not answered any study yet.</p>}
      {loaded.data && loaded.data.answers.length > 0 && (
        <ul class="plain">
          {loaded.data.answers.map((a) => (
            <li key={a.study_id} class="card" data-testid="research-answer">
              <p>
                <strong>Study {a.study_id}</strong>, run by <span class="mono">{shortDid(a.researcher)}</span>
              </p>
              <p>You proved that {provedSentence(a)}, without showing the result itself.</p>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

interface Escrow {
  id: string;
  funder: string;
  unit: string;
  locked: number;
  beneficiary: string | null;
  condition: { kind: "milestone"; id: string } | { kind: "deadline"; at: number } | { kind: "proof"; program: string };
  status: "locked" | "released" | "refunded";
}

interface Account {
  balances: Record<string, number>;
  escrows: Escrow[];
}

/** When an escrow waiting for me pays, in everyday words. */
export function whenPaid(c: Escrow["condition"]): string {
  if (c.kind === "deadline") return `on ${localDate(c.at)}`;
  if (c.kind === "proof") return "for each health goal you prove to the care program";
  if (c.id.startsWith("adherence/")) return "when your device readings meet the study's adherence rule";
  return "when the program's milestone is recorded on the ledger";
}

function Incentives({ patient }: { patient: string }) {
  const loaded = useLoad(() => getJson<Account>(`/v1/accounts/${encodeURIComponent(patient)}`), [patient]);
  const balances = loaded.data ? Object.entries(loaded.data.balances).filter(([, amount]) => amount > 0) : [];
  const waiting = loaded.data ? loaded.data.escrows.filter((e) => e.beneficiary === patient && e.status === "locked") : [];
  return (
    <section aria-labelledby="incentives-h">
      <h2 id="incentives-h">My incentives</h2>
      <p>
        Rewards paid to you on the ledger: by care programs for health goals you proved (never the result itself), and by studies
        for taking part. Balances on the ledger are public, tied to your key, not to your name.
      </p>
      {loaded.loading && <Loading what="incentives" />}
      <ErrorBox error={loaded.error} />
      {loaded.data && balances.length === 0 && waiting.length === 0 && <p>You have no incentives yet.</p>}
      {balances.length > 0 && (
        <ul class="plain">
          {balances.map(([unit, amount]) => (
            <li key={unit} class="card" data-testid="balance">
              <p>
                <strong>{amount.toLocaleString()}</strong> {unit}
              </p>
            </li>
          ))}
        </ul>
      )}
      {waiting.length > 0 && (
        <>
          <h3>Waiting for you</h3>
          <ul class="plain">
            {waiting.map((e) => (
              <li key={e.id} class="card" data-testid="escrow">
                <p>
                  <strong>{e.locked.toLocaleString()}</strong> {e.unit} set aside by <span class="mono">{shortDid(e.funder)}</span>, paid{" "}
                  {whenPaid(e.condition)}.
                </p>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}
