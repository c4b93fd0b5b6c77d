import { ComponentChildren, createContext } from "preact";
import { useCallback, useContext, useEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./lib/api";
import { StoredKey } from "./lib/keys";

export interface Session {
  key: StoredKey | null;
  /** The identity the key acts for (itself, or after a recovery the identity it took over). */
  identity: string | null;
  /** Why the node refused this key (a retired key, a clock far off), if it did. */
  sessionError: unknown;
  keys: StoredKey[];
  reload: () => Promise<void>;
}

export const SessionContext = createContext<Session>({ key: null, identity: null, sessionError: null, keys: [], reload: async () => {} });
export const useSession = () => useContext(SessionContext);

/** The message a person sees for an error: what happened and what to do. */
export function message(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return `${error.message}. Reload the page and try again.`;
  return "Something went wrong. Reload the page and try again.";
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <div class="alert error" role="alert">
      {message(error)}
    </div>
  );
}

export function Notice({ kind = "ok", children }: { kind?: "ok" | "warn"; children: ComponentChildren }) {
  return (
    <div class={`alert ${kind}`} role="status">
      {children}
    </div>
  );
}

export interface Loaded<T> {
  data: T | null;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Loads `load()` now and whenever `deps` change. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: unknown; loading: boolean }>({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { ...state, reload: useCallback(() => setTick((t) => t + 1), []) };
}

/** An action button's state: busy while running, its error, its result. */
export function useAction<A extends unknown[], T>(run: (...args: A) => Promise<T>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [result, setResult] = useState<T | null>(null);
  const act = async (...args: A) => {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const value = await run(...args);
      setResult(value);
      return value;
    } catch (e) {
      setError(e);
      return null;
    } finally {
      setBusy(false);
    }
  };
  return { act, busy, error, result, setError };
}

export function Loading({ what }: { what: string }) {
  return <p role="status">Loading {what}…</p>;
}

let firstPage = true;

/**
 * Sets the document title and, after a navigation within the app (not on
 * the first load, where the skip link comes first), moves focus to the
 * page's heading so screen readers announce the new page.
 */
export function Page({ title, lead, children }: { title: string; lead?: string; children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · Hygeia`;
    if (firstPage) firstPage = false;
    else heading.current?.focus();
  }, [title]);
  return (
    <>
      <h1 tabIndex={-1} ref={heading}>
        {title}
      </h1>
      {lead && <p class="lead">{lead}</p>}
      {children}
    </>
  );
}

export function NeedKey({ role }: { role: string }) {
  return (
    <div class="alert warn" role="status">
      You are not signed in. To use the {role}, go to <a href="#/">Start</a> and create a key in this browser or import
      your key file.
    </div>
  );
}

export function SubNav({ items, current }: { items: [string, string][]; current: string }) {
  return (
    <nav aria-label="Sections">
      <ul class="sub">
        {items.map(([href, label]) => (
          <li key={href}>
            <a href={href} aria-current={current === href ? "page" : undefined}>
              {label}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}

export function Mark({ state, problem }: { state: "ok" | "bad" | "wait"; problem?: string }) {
  if (state === "wait") return <span class="mark wait">Checking…</span>;
  if (state === "ok")
    return (
      <span class="mark ok" data-verified="true">
        <span aria-hidden="true">✓</span> Verified
      </span>
    );
  return (
    <span class="mark bad" data-verified="false">
      <span aria-hidden="true">✗</span> Verification failed{problem ? `: ${problem}` : ""}
    </span>
  );
}
