// Hygeia's web apps: the patient wallet, the clinician portal, the
// dashboards and the ledger explorer, in one small single-page app routed
// by the URL's fragment (#/wallet, #/portal, …) so the node serves one page.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import "./app.css";
import { ErrorBox, Session, SessionContext } from "./components";
import { activeDid, listKeys, StoredKey } from "./lib/keys";
import { shortDid } from "./lib/did";
import { StartPage } from "./pages/start";
import { WalletPage } from "./pages/wallet";
import { PortalPage } from "./pages/portal";
import { DashboardPage } from "./pages/dashboard";
import { ExplorerPage } from "./pages/explorer";
import { RecoveryPage } from "./pages/recovery";
import { AuthorizePage } from "./pages/authorize";
import { clock, signedJson } from "./lib/api";

function useHash(): string {
  const [hash, setHash] = useState(location.hash || "#/");
  useEffect(() => {
    const on = () => setHash(location.hash || "#/");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

const SECTIONS: [string, string][] = [
  ["#/", "Start"],
  ["#/wallet", "My wallet"],
  ["#/portal", "Clinician portal"],
  ["#/dashboard", "Dashboards"],
  ["#/ledger", "Ledger"],
  ["#/recovery", "Recovery"],
];

function App() {
  const hash = useHash();
  const [keys, setKeys] = useState<StoredKey[]>([]);
  const [key, setKey] = useState<StoredKey | null>(null);
  const [identity, setIdentity] = useState<string | null>(null);
  const [sessionError, setSessionError] = useState<unknown>(null);
  const [ready, setReady] = useState(false);
  const reload = async () => {
    const all = await listKeys();
    const active = all.find((k) => k.did === activeDid()) ?? null;
    setKeys(all);
    setKey(active);
    setSessionError(null);
    setIdentity(active?.did ?? null);
    if (active) {
      try {
        setIdentity((await signedJson<{ identity: string }>(active, "/v1/app/whoami")).identity);
      } catch (e) {
        setSessionError(e);
      }
    }
    setReady(true);
  };
  useEffect(() => {
    reload();
  }, []);
  const session: Session = { key, identity, sessionError, keys, reload };
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query ?? "");
  const section = "#/" + (path.split("/")[1] ?? "");
  let page;
  if (!ready) page = <p role="status">Opening your keys…</p>;
  else if (section === "#/wallet") page = <WalletPage path={path} params={params} />;
  else if (section === "#/portal") page = <PortalPage path={path} params={params} />;
  else if (section === "#/dashboard") page = <DashboardPage />;
  else if (section === "#/ledger") page = <ExplorerPage params={params} />;
  else if (section === "#/recovery") page = <RecoveryPage path={path} />;
  else if (section === "#/authorize") page = <AuthorizePage path={path} />;
  else page = <StartPage />;
  return (
    <SessionContext.Provider value={session}>
      <a class="skip" href="#content" onClick={(e) => { e.preventDefault(); document.getElementById("content")?.focus(); }}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="#/">
          Hygeia
        </a>
        <nav class="main" aria-label="Main">
          <ul>
            {SECTIONS.map(([href, label]) => (
              <li key={href}>
                <a href={href} aria-current={section === href ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="whoami" data-testid="whoami">
          {key ? (
            <>
              Signed in as <strong>{key.label}</strong> <span class="mono">{shortDid(key.did)}</span>
            </>
          ) : (
            "Not signed in"
          )}
        </span>
      </header>
      <main id="content" tabIndex={-1}>
        <ErrorBox error={sessionError} />
        {page}
      </main>
    </SessionContext.Provider>
  );
}

// Tests shift the signing clock to check the expired-signature message.
(globalThis as { hygeiaClock?: typeof clock }).hygeiaClock = clock;

render(<App />, document.getElementById("root")!);
