// Which node keys may sign `record` and `access` entries at each point of
// the log (docs/log.md, "The custodian set"), read from the log itself:
// the genesis entry (leaf 0) founds the set, each `network.custodian`
// entry after it adds, removes or rotates a key. Every one of those
// entries is checked like the entries it vouches for (leaf hash, inclusion
// proof to the verified checkpoint, signature) before it counts, so an
// entry signed by a key that was a custodian when it was logged verifies
// even after that key was rotated away, and the node's word (its current
// `node_did`) is not needed.

import { getJson } from "./api";
import { Checkpoint, VerifiedTx, checkEntry } from "./verify";

export interface CustodianChange {
  index: number;
  op: string;
  key: string;
  newKey?: string;
}

export interface CustodianHistory {
  /** The set the genesis entry names. */
  founding: string[];
  /** A migrated log's old node, which signed leaves 1 to `entries`. */
  legacy?: { entries: number; node: string };
  /** The `network.custodian` entries below the checkpoint, oldest first. */
  changes: CustodianChange[];
}

interface LedgerPage {
  entries: { index: number; type: string; leaf_hash: string; entry: string }[];
}

/** The node's largest ledger page. */
const PAGE = 100;

/** One entry of the ledger page, checked against `checkpoint`; throws why not. */
async function checked(entry: LedgerPage["entries"][number], checkpoint: Checkpoint): Promise<VerifiedTx> {
  const { proof } = await getJson<{ proof: string[] }>(`/v1/proofs/inclusion?index=${entry.index}&size=${checkpoint.size}`);
  const check = await checkEntry(entry.entry, entry.index, entry.leaf_hash, proof, checkpoint);
  if (!check.ok || !check.tx) throw new Error(`entry ${entry.index}: ${check.problem}`);
  return check.tx;
}

const isKeys = (value: unknown): value is string[] => Array.isArray(value) && value.every((k) => typeof k === "string");

/** Reads and checks the custodian history of the log up to `checkpoint`; throws why it cannot. */
export async function custodianHistory(checkpoint: Checkpoint): Promise<CustodianHistory> {
  const first = await getJson<LedgerPage>("/v1/app/ledger?before=1&limit=1");
  const genesisEntry = first.entries[0];
  if (!genesisEntry || genesisEntry.index !== 0) throw new Error("the log has no genesis entry");
  const genesis = await checked(genesisEntry, checkpoint);
  const founding = genesis.body.custodians;
  if (genesis.type !== "genesis" || !isKeys(founding)) throw new Error("leaf 0 is not a genesis entry");
  if (!founding.includes(genesis.signer)) throw new Error("the genesis entry is not signed by a founding node");
  const old = genesis.body.legacy as { entries?: unknown; node?: unknown } | undefined;
  const legacy =
    old && typeof old.entries === "number" && typeof old.node === "string" ? { entries: old.entries, node: old.node } : undefined;

  const changes: CustodianChange[] = [];
  let before = checkpoint.size;
  for (;;) {
    const page = await getJson<LedgerPage>(`/v1/app/ledger?type=network.custodian&before=${before}&limit=${PAGE}`);
    for (const entry of page.entries) {
      const tx = await checked(entry, checkpoint);
      const { op, key, new_key } = tx.body;
      if (tx.type !== "network.custodian" || typeof op !== "string" || typeof key !== "string") {
        throw new Error(`entry ${entry.index} is not a custodian change`);
      }
      changes.push({ index: entry.index, op, key, newKey: typeof new_key === "string" ? new_key : undefined });
    }
    if (page.entries.length < PAGE) break;
    before = page.entries[page.entries.length - 1].index;
  }
  changes.sort((a, b) => a.index - b.index);
  return { founding, legacy, changes };
}

/** The keys that could sign a `record` or `access` entry at leaf `index`. */
export function custodiansAt(history: CustodianHistory, index: number): Set<string> {
  const { legacy } = history;
  if (legacy && index >= 1 && index <= legacy.entries) return new Set([legacy.node]);
  const set = new Set(history.founding);
  for (const change of history.changes) {
    if (change.index >= index) break;
    if (change.op === "add") set.add(change.key);
    else if (change.op === "remove") set.delete(change.key);
    else if (change.op === "rotate" && change.newKey) {
      set.delete(change.key);
      set.add(change.newKey);
    }
  }
  return set;
}
