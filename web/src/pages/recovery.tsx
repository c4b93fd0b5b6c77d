import { useState } from "preact/hooks";
import { ErrorBox, NeedKey, Notice, Page, SubNav, useAction, useSession } from "../components";
import { getJson, submit } from "../lib/api";
import { publicKeyFromDid, shortDid } from "../lib/did";
import { createKey, setActiveDid, StoredKey } from "../lib/keys";
import { rotationProof } from "../lib/tx";

const SECTIONS: [string, string][] = [
  ["#/recovery", "Set up guardians"],
  ["#/recovery/recover", "Recover on this device"],
];

// The recovery code (P-256 arithmetic) loads only on this page.
const recovery = () => import("../lib/recovery");

const download = (text: string) => `data:application/json;charset=utf-8,${encodeURIComponent(text)}`;

export function RecoveryPage({ path }: { path: string }) {
  const current = "#" + path;
  return (
    <Page title="Key recovery" lead="Guardians you trust can together move your identity to a new key if your device is lost. No one guardian, and not the node, can do it alone.">
      <SubNav items={SECTIONS} current={current === "#/recovery/recover" ? current : "#/recovery"} />
      {current === "#/recovery/recover" ? <Recover /> : <Setup />}
    </Page>
  );
}

function Setup() {
  const { key, identity } = useSession();
  const [guardians, setGuardians] = useState("");
  const [threshold, setThreshold] = useState(2);
  const setup = useAction(async (me: StoredKey, subject: string) => {
    const dids = guardians
      .split(/\s+/)
      .map((d) => d.trim())
      .filter(Boolean);
    for (const d of dids) {
      try {
        publicKeyFromDid(d);
      } catch {
        throw new Error(`${d.slice(0, 60)} is not a did:key. Ask each guardian for their did:key (hygeia key new prints it)`);
      }
    }
    if (new Set(dids).size !== dids.length) throw new Error("A guardian is listed twice. List each guardian once");
    if (dids.includes(subject)) throw new Error("You cannot be your own guardian. List people or organizations you trust");
    const r = await recovery();
    let made;
    try {
      made = await r.split(threshold, dids.length);
    } catch (e) {
      throw new Error((e as Error).message);
    }
    const files = made.shares.map((s, i) => ({ guardian: dids[i], name: `share-${s.index}.json`, text: r.shareToJson(s) }));
    const verifier = r.verifierToJson(made.verifier);
    const body = { recovery_key: made.recoveryDid, threshold, guardians: dids, split: r.toHexBytes(made.verifier.split) };
    return { files, verifier, body, recoveryDid: made.recoveryDid };
  });
  // The files exist before the ledger names their recovery key: a key
  // whose shares were never saved could not recover anything.
  const register = useAction(async (me: StoredKey) => {
    if (!setup.result) return null;
    const receipt = await submit(me, "identity.recovery", setup.result.body);
    return `Recovery registered on the ledger at entry ${receipt.index}. Now delete the share files from this device.`;
  });
  if (!key) return <NeedKey role="recovery set-up" />;
  return (
    <section aria-labelledby="setup-h">
      <h2 id="setup-h">Set up guardians</h2>
      <p>
        Choose people or organizations you trust. Each gets one share; any {threshold} of them together can move your
        identity to a new key. Fewer learn nothing.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setup.act(key, identity ?? key.did);
        }}
      >
        <div class="field">
          <label for="guardians">Guardians' did:keys, one per line</label>
          <textarea id="guardians" value={guardians} onInput={(e) => setGuardians(e.currentTarget.value)} spellcheck={false} />
        </div>
        <div class="field">
          <label for="threshold">How many guardians are needed to recover</label>
          <input id="threshold" type="number" min={2} max={255} value={threshold} onInput={(e) => setThreshold(Number(e.currentTarget.value))} />
        </div>
        <ErrorBox error={setup.error} />
        <button type="submit" disabled={setup.busy}>
          Create the shares and register recovery
        </button>
      </form>
      {setup.result && (
        <div class="card spaced">
          <p>
            Download each file now: they are not kept here. Give each guardian, privately, their share, and every
            guardian the verifier. Then register the recovery key {shortDid(setup.result.recoveryDid)} on the ledger.
          </p>
          <ul>
            {setup.result.files.map((f) => (
              <li key={f.name}>
                <a href={download(f.text)} download={f.name} data-testid="share-file">
                  {f.name}
                </a>{" "}
                for <span class="mono">{shortDid(f.guardian)}</span>
              </li>
            ))}
            <li>
              <a href={download(setup.result.verifier)} download="verifier.json" data-testid="verifier-file">
                verifier.json
              </a>{" "}
              for every guardian
            </li>
          </ul>
          <ErrorBox error={register.error} />
          {register.result ? (
            <Notice>{register.result}</Notice>
          ) : (
            <button type="button" disabled={register.busy} onClick={() => register.act(key)}>
              I saved the files: register recovery
            </button>
          )}
        </div>
      )}
    </section>
  );
}

function Recover() {
  const session = useSession();
  const [identity, setIdentity] = useState("");
  const [verifierText, setVerifierText] = useState<string | null>(null);
  const [shareTexts, setShareTexts] = useState<string[]>([]);
  const run = useAction(async () => {
    try {
      publicKeyFromDid(identity.trim());
    } catch {
      throw new Error("Enter your identity: the did:key you used first (it is on your guardians' files and your old device)");
    }
    if (!verifierText) throw new Error("Choose the verifier.json file a guardian gave you");
    const r = await recovery();
    let secret: bigint;
    try {
      const verifier = await r.parseVerifier(verifierText);
      const shares = shareTexts.map((t) => r.parseShare(t));
      secret = r.recover(shares, verifier);
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new Error(`${(e as Error).message}${code ? ` (${code})` : ""}. Ask your guardians for their share files and try again`);
    }
    const recoveryKey = await r.recoveryKey(secret);
    secret = 0n;
    const history = await getJson<{ entries: { type: string; recovery_key?: string }[] }>(`/v1/dids/${encodeURIComponent(identity.trim())}/history`).catch(() => ({ entries: [] }));
    const registered = [...history.entries].reverse().find((e) => e.type === "identity.recovery")?.recovery_key;
    if (registered && registered !== recoveryKey.did) {
      throw new Error("These shares recover a key this identity no longer uses: they belong to an earlier set-up or to someone else. Ask your guardians for the shares of your latest set-up");
    }
    // The new key is kept before the ledger points at it.
    const fresh = await createKey("Recovered key");
    // The recovery key signs the rotation, and nothing else.
    const signer = { did: recoveryKey.did, privateKey: recoveryKey.privateKey } as StoredKey;
    // The new key accepts acting for the identity.
    const proof = await rotationProof(fresh.privateKey, identity.trim(), fresh.did);
    const receipt = await submit(signer, "identity.rotate", { new_key: fresh.did, proof, subject: identity.trim() });
    setActiveDid(fresh.did);
    await session.reload();
    return `Recovered. ${shortDid(identity.trim())} now acts through a new key made in this browser (${shortDid(fresh.did)}); the old key is retired (ledger entry ${receipt.index}). Set up guardians again: those who helped now know this recovery key.`;
  });
  const read = async (files: FileList | null) => Promise.all(Array.from(files ?? []).map((f) => (f.size > 64 * 1024 ? Promise.resolve("") : f.text())));
  return (
    <section aria-labelledby="recover-h">
      <h2 id="recover-h">Recover your identity on this device</h2>
      <p>With the share files of enough of your guardians, make a new key here and move your identity to it.</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          run.act();
        }}
      >
        <div class="field">
          <label for="identity">Your identity (the did:key you used first)</label>
          <input id="identity" type="text" class="mono" value={identity} onInput={(e) => setIdentity(e.currentTarget.value)} spellcheck={false} />
        </div>
        <div class="field">
          <label for="verifier">The verifier file (verifier.json)</label>
          <input id="verifier" type="file" accept=".json,application/json" onChange={async (e) => setVerifierText((await read(e.currentTarget.files))[0] ?? null)} />
        </div>
        <div class="field">
          <label for="shares">Your guardians' share files</label>
          <input id="shares" type="file" multiple accept=".json,application/json" onChange={async (e) => setShareTexts(await read(e.currentTarget.files))} />
        </div>
        <ErrorBox error={run.error} />
        {run.result && <Notice>{run.result}</Notice>}
        <button type="submit" disabled={run.busy}>
          Recover my identity
        </button>
      </form>
    </section>
  );
}
