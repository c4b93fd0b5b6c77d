// The patient's access log (GET /v1/audit), checked in the browser: the
// checkpoint against the pinned key, then each event's leaf hash,
// inclusion proof and signature by a custodian of its time (read from the
// log, custodians.ts: an entry signed before a node key rotation still
// verifies). What is shown of an event
// comes from the verified entry itself, never from the unsigned summary.

import { StoredKey } from "./keys";
import { signedJson, verifierKey } from "./api";
import { CustodianHistory, custodianHistory, custodiansAt } from "./custodians";
import { Checkpoint, checkEntry, verifyCheckpoint } from "./verify";

export interface AuditEvent {
  index: number;
  leaf_hash: string;
  break_glass: boolean;
  event: AccessBody;
  entry: string;
  inclusion_proof: string[];
  justification: string | null;
}

export interface AccessBody {
  requester: string;
  patient: string;
  action: string;
  purpose: string;
  records: string[];
  decision: string;
  break_glass: boolean;
  justified: boolean;
  reasons: string[];
  grants: string[];
  time: number;
}

export interface AuditFeed {
  patient: string;
  total: number;
  tree_size: number;
  checkpoint: string;
  events: AuditEvent[];
}

export interface CheckedEvent {
  served: AuditEvent;
  /** The body to show: the verified entry's, or the served one marked failing. */
  body: AccessBody;
  ok: boolean;
  problem?: string;
}

export async function loadAudit(key: StoredKey, patient: string): Promise<{ feed: AuditFeed; checkpoint: Checkpoint | null; checkpointProblem?: string; events: CheckedEvent[] }> {
  const feed = await signedJson<AuditFeed>(key, `/v1/audit?patient=${encodeURIComponent(patient)}&limit=200`);
  return checkAudit(feed);
}

export async function checkAudit(feed: AuditFeed) {
  const { key: vkey } = await verifierKey();
  let checkpoint: Checkpoint | null = null;
  let checkpointProblem: string | undefined;
  let history: CustodianHistory | null = null;
  let historyProblem = "";
  try {
    checkpoint = await verifyCheckpoint(feed.checkpoint, vkey);
    if (checkpoint.size !== feed.tree_size) checkpointProblem = "the checkpoint is not of the tree the proofs are for";
  } catch (e) {
    checkpointProblem = (e as Error).message;
  }
  if (checkpoint && !checkpointProblem && feed.events.length > 0) {
    try {
      history = await custodianHistory(checkpoint);
    } catch (e) {
      historyProblem = `the network's custodian set could not be checked: ${(e as Error).message}`;
    }
  }
  const events: CheckedEvent[] = [];
  for (const served of feed.events) {
    if (!checkpoint || checkpointProblem) {
      events.push({ served, body: served.event, ok: false, problem: checkpointProblem });
      continue;
    }
    if (!history) {
      events.push({ served, body: served.event, ok: false, problem: historyProblem });
      continue;
    }
    const signers = custodiansAt(history, served.index);
    const check = await checkEntry(served.entry, served.index, served.leaf_hash, served.inclusion_proof, checkpoint, signers);
    const body = check.ok && check.tx?.type === "access" ? (check.tx.body as unknown as AccessBody) : served.event;
    let problem = check.problem;
    let ok = check.ok;
    if (ok && check.tx?.type !== "access") {
      ok = false;
      problem = "the entry is not an access event";
    }
    if (ok && body.patient !== feed.patient) {
      ok = false;
      problem = "the event is about someone else";
    }
    if (ok && body.break_glass !== served.break_glass) {
      ok = false;
      problem = "the served summary differs from the signed entry";
    }
    events.push({ served, body, ok, problem });
  }
  return { feed, checkpoint, checkpointProblem, events };
}
