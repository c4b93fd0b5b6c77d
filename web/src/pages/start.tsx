import { useState } from "preact/hooks";
import { ErrorBox, Loading, Notice, Page, useAction, useLoad, useSession } from "../components";
import { nodeInfo, pinVerifierKey, verifierKey } from "../lib/api";
import { shortDid } from "../lib/did";
import { createKey, deleteKey, ed25519Supported, importKeyFile, setActiveDid } from "../lib/keys";

export function StartPage() {
  const session = useSession();
  const [label, setLabel] = useState("");
  const support = useLoad(ed25519Supported, []);
  const info = useLoad(async () => ({ info: await nodeInfo(), pinned: await verifierKey() }), []);
  const done = async (did: string) => {
    setActiveDid(did);
    await session.reload();
    setLabel("");
  };
  const create = useAction(async () => {
    const key = await createKey(label.trim() || "My key");
    await done(key.did);
    return `Created a new key in this browser: ${shortDid(key.did)}. It cannot be copied out of the browser; set up guardians (Recovery) so you can recover if this device is lost.`;
  });
  const imported = useAction(async (file: File) => {
    if (file.size > 16 * 1024) {
      throw new Error("This file is too large to be a key file. Choose the .key file that `hygeia key new` wrote");
    }
    const key = await importKeyFile(await file.text(), label.trim() || file.name.replace(/\.(key|pem)$/, ""));
    await done(key.did);
    return `Imported ${file.name}: you are signed in as ${shortDid(key.did)}.`;
  });
  const [pinText, setPinText] = useState("");
  const pin = useAction(async () => {
    if (!/^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/.test(pinText.trim())) {
      throw new Error("That is not a verifier key (name+8 hex digits+base64). Copy it exactly as the node's operator published it");
    }
    pinVerifierKey(pinText.trim());
    info.reload();
    return "Pinned. Proofs are now checked against this key.";
  });
  return (
    <Page title="Start" lead="Your key stays in this browser. It signs everything you do, and nobody else can use it.">
      {support.data === false && (
        <div class="alert error" role="alert">
          This browser cannot sign with Ed25519 keys (WebCrypto). Open this page in a current Chromium, Chrome, Edge,
          Firefox or Safari.
        </div>
      )}
      <h2>Your keys in this browser</h2>
      {session.keys.length === 0 ? (
        <p>No key yet. Create one, or import the key file you already have.</p>
      ) : (
        <ul class="plain">
          {session.keys.map((k) => (
            <li key={k.did} class="card">
              <div class="row">
                <strong>{k.label}</strong>
                <span class="mono">{k.did}</span>
              </div>
              <p class="hint">
                {k.origin === "browser" ? "Created in this browser" : "Imported from a key file"}; the private key cannot
                be read back out of the browser.
              </p>
              <div class="row">
                {session.key?.did === k.did ? (
                  <strong>In use</strong>
                ) : (
                  <button
                    type="button"
                    onClick={async () => {
                      setActiveDid(k.did);
                      await session.reload();
                    }}
                  >
                    Use this key
                  </button>
                )}
                <button
                  type="button"
                  class="secondary"
                  onClick={async () => {
                    if (!confirm(`Remove ${k.label} from this browser? Without a copy elsewhere or guardians, it is gone.`)) return;
                    await deleteKey(k.did);
                    if (session.key?.did === k.did) setActiveDid(null);
                    await session.reload();
                  }}
                >
                  Remove from this browser
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
      <h2>Add a key</h2>
      <div class="field">
        <label for="key-label">A name for the key (only you see it)</label>
        <input id="key-label" type="text" value={label} onInput={(e) => setLabel(e.currentTarget.value)} placeholder="For example: Me, or Dr Martin" />
      </div>
      <div class="row">
        <button type="button" onClick={() => create.act()} disabled={create.busy}>
          Create a new key in this browser
        </button>
      </div>
      <div class="field spaced">
        <label for="key-file">Or import a key file</label>
        <input
          id="key-file"
          type="file"
          accept=".key,.pem,text/plain"
          onChange={(e) => {
            const file = e.currentTarget.files?.[0];
            if (file) imported.act(file);
            e.currentTarget.value = "";
          }}
        />
        <p class="hint">
          The PKCS#8 PEM file that <code>hygeia key new</code> writes. The demo's keys are in
          <code> hygeia-demo/demo-keys/</code> (patient.key, clinician.key).
        </p>
      </div>
      <ErrorBox error={create.error ?? imported.error} />
      {(create.result || imported.result) && <Notice>{create.result ?? imported.result}</Notice>}
      <h2>This node</h2>
      {info.loading && <Loading what="the node's details" />}
      <ErrorBox error={info.error} />
      {info.data && (
        <div class="card">
          <p>
            Network <strong>{info.data.info.network}</strong>, {info.data.info.tree_size} entries on its ledger.
          </p>
          <p>
            Proofs are checked in this browser against the checkpoint key{" "}
            <span class="mono" data-testid="pinned-key">{info.data.pinned.key}</span>, pinned when this browser first
            talked to the node.
          </p>
          {info.data.pinned.changed && (
            <div class="alert error" role="alert">
              The node now announces another checkpoint key ({info.data.info.checkpoint_verifier_key}). Proofs will fail
              until you pin the right key: ask the node's operator for it and pin it below.
            </div>
          )}
          <details>
            <summary>Pin the key the operator published</summary>
            <div class="field">
              <label for="pin">Checkpoint verifier key</label>
              <input id="pin" type="text" value={pinText} onInput={(e) => setPinText(e.currentTarget.value)} />
            </div>
            <button type="button" onClick={() => pin.act()}>
              Pin this key
            </button>
            <ErrorBox error={pin.error} />
            {pin.result && <Notice>{pin.result}</Notice>}
          </details>
        </div>
      )}
      <h2>Where to go</h2>
      <ul>
        <li>
          <a href="#/wallet">My wallet</a>: who may see your records, who looked at them, your records and health cards.
        </li>
        <li>
          <a href="#/portal">Clinician portal</a>: patients who gave you access, their records, emergency access.
        </li>
        <li>
          <a href="#/dashboard">Dashboards</a> and the <a href="#/ledger">ledger explorer</a>: open to anyone.
        </li>
      </ul>
    </Page>
  );
}
