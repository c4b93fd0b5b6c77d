import { useState } from "preact/hooks";
import { ErrorBox, Loading, Mark, Page, useAction, useLoad } from "../components";
import { getJson, getText, verifierKey } from "../lib/api";
import { shortDid } from "../lib/did";
import { fromBase64, fromHex, toBase64 } from "../lib/bytes";
import { Checkpoint, checkEntry, verifyCheckpoint, verifyConsistency } from "../lib/verify";

const LAST_SEEN = "hygeia.lastCheckpoint";

/**
 * Whether the log only grew since the checkpoint this browser last
 * verified: an RFC 9162 consistency proof between the two, checked here.
 * The new checkpoint is remembered only when it is consistent.
 */
async function grewSince(current: Checkpoint): Promise<{ from: number; ok: boolean; problem?: string } | null> {
  const text = localStorage.getItem(LAST_SEEN);
  const remember = () => localStorage.setItem(LAST_SEEN, JSON.stringify({ origin: current.origin, size: current.size, root: toBase64(current.root) }));
  let last: { origin: string; size: number; root: string } | null = null;
  try {
    last = text ? JSON.parse(text) : null;
  } catch {
    last = null;
  }
  if (!last || last.origin !== current.origin || last.size === 0) {
    remember();
    return null;
  }
  const root = fromBase64(last.root);
  if (last.size > current.size) return { from: last.size, ok: false, problem: `the log shrank from ${last.size} to ${current.size} entries` };
  let proof: Uint8Array[] = [];
  if (last.size < current.size) {
    const answer = await getJson<{ proof: string[] }>(`/v1/proofs/consistency?from=${last.size}&to=${current.size}`);
    try {
      proof = answer.proof.map(fromHex);
    } catch {
      return { from: last.size, ok: false, problem: "the consistency proof is malformed" };
    }
  }
  const ok = await verifyConsistency(last.size, current.size, proof, root, current.root);
  if (ok) remember();
  return ok
    ? { from: last.size, ok }
    : { from: last.size, ok, problem: last.size === current.size ? "the same size now has another root: the log was rewritten" : "the consistency proof does not hold: the log was rewritten, not extended" };
}

interface LedgerPage {
  tree_size: number;
  types: Record<string, number>;
  entries: { index: number; type: string; signer: string; leaf_hash: string; entry: string }[];
}

function EntryRow({ e, checkpoint }: { e: LedgerPage["entries"][number]; checkpoint: Checkpoint }) {
  const check = useAction(async () => {
    const proof = await getJson<{ proof: string[] }>(`/v1/proofs/inclusion?index=${e.index}&size=${checkpoint.size}`);
    return checkEntry(e.entry, e.index, e.leaf_hash, proof.proof, checkpoint);
  });
  let pretty = e.entry;
  try {
    pretty = JSON.stringify(JSON.parse(e.entry), null, 2);
  } catch {
    /* as is */
  }
  return (
    <tr data-testid="ledger-entry">
      <td>{e.index}</td>
      <td>{e.type}</td>
      <td class="mono">{shortDid(e.signer)}</td>
      <td>
        {check.result ? (
          <Mark state={check.result.ok ? "ok" : "bad"} problem={check.result.problem} />
        ) : (
          <button type="button" class="secondary" onClick={() => check.act()} disabled={check.busy}>
            Check proof
          </button>
        )}
        <ErrorBox error={check.error} />
        <details>
          <summary>Entry</summary>
          <p class="mono">leaf hash {e.leaf_hash}</p>
          <pre>{pretty}</pre>
        </details>
      </td>
    </tr>
  );
}

export function ExplorerPage({ params }: { params: URLSearchParams }) {
  const [type, setType] = useState(params.get("type") ?? "");
  const [before, setBefore] = useState<number | null>(null);
  const checkpoint = useLoad(async () => {
    const note = await getText("/checkpoint");
    const { key } = await verifierKey();
    const checkpoint = await verifyCheckpoint(note, key);
    return { note, checkpoint, key, grew: await grewSince(checkpoint) };
  }, []);
  const page = useLoad(
    () => getJson<LedgerPage>(`/v1/app/ledger?limit=25${type ? `&type=${encodeURIComponent(type)}` : ""}${before !== null ? `&before=${before}` : ""}`),
    [type, before],
  );
  const last = page.data?.entries[page.data.entries.length - 1];
  return (
    <Page title="Ledger explorer" lead="Every entry of the public log, each provable against the signed checkpoint, in your browser.">
      <h2>Checkpoint</h2>
      {checkpoint.loading && <Loading what="the checkpoint" />}
      {checkpoint.error ? (
        <div class="alert error" role="alert">
          The checkpoint did not verify: {(checkpoint.error as Error).message}. Check the pinned key on the Start page, then reload.
        </div>
      ) : null}
      {checkpoint.data && (
        <div class="card">
          <p>
            Tree size <strong>{checkpoint.data.checkpoint.size.toLocaleString()}</strong> <Mark state="ok" />
          </p>
          {checkpoint.data.grew && (
            <p data-testid="consistency">
              {checkpoint.data.grew.ok
                ? `Since this browser last looked (${checkpoint.data.grew.from.toLocaleString()} entries), the log only grew:`
                : `Since this browser last looked (${checkpoint.data.grew.from.toLocaleString()} entries):`}{" "}
              <Mark state={checkpoint.data.grew.ok ? "ok" : "bad"} problem={checkpoint.data.grew.problem} />
            </p>
          )}
          {checkpoint.data.grew && !checkpoint.data.grew.ok && (
            <div class="alert error" role="alert">
              This node's log is not an extension of the one you saw before. Do not trust it; report it to the
              network's governance with both checkpoints.
            </div>
          )}
          <pre class="mono">{checkpoint.data.note}</pre>
          <p class="hint">
            Signed by the node's key <span class="mono">{checkpoint.data.key}</span>.
          </p>
        </div>
      )}
      <h2>Entries</h2>
      <div class="field">
        <label for="type">Type</label>
        <select
          id="type"
          value={type}
          onChange={(e) => {
            setType(e.currentTarget.value);
            setBefore(null);
          }}
        >
          <option value="">All types</option>
          {Object.entries(page.data?.types ?? {})
            .sort()
            .map(([t, n]) => (
              <option key={t} value={t}>
                {t} ({n})
              </option>
            ))}
        </select>
      </div>
      {page.loading && <Loading what="entries" />}
      <ErrorBox error={page.error} />
      {page.data && checkpoint.data && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Ledger entries, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Index</th>
                <th scope="col">Type</th>
                <th scope="col">Signer</th>
                <th scope="col">Proof</th>
              </tr>
            </thead>
            <tbody>
              {page.data.entries.map((e) => (
                <EntryRow key={e.index} e={e} checkpoint={checkpoint.data!.checkpoint} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div class="row spaced">
        {before !== null && (
          <button type="button" class="secondary" onClick={() => setBefore(null)}>
            Newest
          </button>
        )}
        {last && last.index > 0 && page.data!.entries.length === 25 && (
          <button type="button" class="secondary" onClick={() => setBefore(last.index)}>
            Older entries
          </button>
        )}
      </div>
    </Page>
  );
}
