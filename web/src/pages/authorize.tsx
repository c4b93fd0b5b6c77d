// The SMART App Launch consent page (docs/smart.md): an app sent the
// person here from the node's /authorize; they see which app asks for what,
// sign in with their key, and approve or decline. The decision is a request
// signed with their key (RFC 9421); the node answers where to send the
// browser back to the app (with a one-time code, or access_denied).

import { ErrorBox, Loading, NeedKey, Page, useAction, useLoad, useSession } from "../components";
import { ApiError, explain, getJson, signedFetch } from "../lib/api";
import { shortDid } from "../lib/did";

interface AuthRequest {
  client_id: string;
  client_name: string;
  redirect_uri: string;
  purpose_of_use: string;
  scopes: string[];
  expires_at: number;
}

const INTERACTIONS: Record<string, string> = { c: "add", r: "read", u: "change", d: "delete", s: "search" };
const V1: Record<string, string> = { read: "rs", write: "cud", "*": "cruds" };

/** A SMART scope in everyday words: "read and search your Observation records". */
export function scopeSentence(scope: string): string {
  if (scope === "launch/patient") return "know which patient record is yours";
  if (scope === "openid" || scope === "fhirUser" || scope === "profile") return "know who you are";
  const m = /^(patient|user|system)\/([A-Za-z*]+)\.([a-z*]+)$/.exec(scope);
  if (!m) return scope;
  const [, context, type, perms] = m;
  const letters = V1[perms] ?? perms;
  const verbs = [...letters].map((l) => INTERACTIONS[l] ?? l);
  const what = type === "*" ? "all kinds of records" : `${type} records`;
  const whose =
    context === "patient"
      ? `your own ${what}`
      : `${what} of any patient who gave you access (what consent allows, nothing more)`;
  const joined = verbs.length > 1 ? `${verbs.slice(0, -1).join(", ")} and ${verbs[verbs.length - 1]}` : verbs[0];
  return `${joined} ${whose}`;
}

async function decide(key: NonNullable<ReturnType<typeof useSession>["key"]>, id: string, decision: "approve" | "deny") {
  const response = await signedFetch(key, "POST", `/v1/smart/requests/${encodeURIComponent(id)}/${decision}`, undefined, {
    accept: "application/json",
  });
  const body = (await response.json().catch(() => null)) as { redirect?: string; error?: { code: string; message: string } } | null;
  if (!response.ok || !body?.redirect) {
    const code = body?.error?.code ?? `http_${response.status}`;
    throw new ApiError(response.status, code, explain(code, body?.error?.message ?? "The node refused", response.status));
  }
  location.assign(body.redirect);
  return body.redirect;
}

export function AuthorizePage({ path }: { path: string }) {
  const { key } = useSession();
  const id = path.split("/")[2] ?? "";
  const request = useLoad(() => getJson<AuthRequest>(`/v1/smart/requests/${encodeURIComponent(id)}`), [id]);
  const act = useAction((decision: "approve" | "deny") => decide(key!, id, decision));
  let body;
  if (request.loading) body = <Loading what="the app's request" />;
  else if (request.error) body = <ErrorBox error={request.error} />;
  else if (request.data) {
    const r = request.data;
    const back = new URL(r.redirect_uri);
    body = (
      <>
        <p data-testid="smart-app">
          <strong>{r.client_name}</strong> (sends you back to <span class="mono">{back.origin}</span>) asks to:
        </p>
        <ul data-testid="smart-scopes">
          {r.scopes.map((s) => (
            <li key={s}>
              {scopeSentence(s)} <span class="mono">({s})</span>
            </li>
          ))}
        </ul>
        <p>
          Approving does not widen anyone's access: the app can only ever see what your consents already allow, and
          every read is logged in "Who looked at my data". You can decline.
        </p>
        {!key ? (
          <NeedKey role="app sign-in" />
        ) : (
          <>
            <p>
              You approve as <span class="mono">{shortDid(key.did)}</span>.
            </p>
            <div class="actions">
              <button type="button" onClick={() => act.act("approve")} disabled={act.busy}>
                Approve
              </button>{" "}
              <button type="button" class="secondary" onClick={() => act.act("deny")} disabled={act.busy}>
                Decline
              </button>
            </div>
            {act.busy && <p role="status">Sending you back to the app…</p>}
          </>
        )}
        <ErrorBox error={act.error} />
      </>
    );
  }
  return (
    <Page title="An app asks for access" lead="A health app wants to use your records on this node.">
      {body}
    </Page>
  );
}
