import { ErrorBox, Loading, Page, useLoad } from "../components";
import { getJson } from "../lib/api";

export interface Bar {
  label: string;
  value: number;
}

export interface Figure {
  id: string;
  title: string;
  value: number | null;
  unit: string;
  summary: string;
  method: string;
  chart_title: string;
  bars: Bar[];
}

/** A duration in words: "45 seconds", "3 minutes", "2.5 hours", "4 days". */
export function duration(seconds: number): string {
  const units: [number, string][] = [
    [86_400, "day"],
    [3600, "hour"],
    [60, "minute"],
    [1, "second"],
  ];
  for (const [size, name] of units) {
    if (seconds >= size || size === 1) {
      const n = Math.round((seconds / size) * 10) / 10;
      return `${n} ${name}${n === 1 ? "" : "s"}`;
    }
  }
  return `${seconds} seconds`;
}

function headline(f: Figure): string {
  if (f.value === null) return "—";
  if (f.unit === "seconds") return duration(f.value);
  if (f.unit === "percent") return `${Math.round(f.value)} %`;
  return f.value.toLocaleString();
}

/** A horizontal bar chart in SVG, labelled for screen readers by a table. */
export function BarChart({ title, bars, format = (v: number) => v.toLocaleString() }: { title: string; bars: Bar[]; format?: (v: number) => string }) {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const row = 26;
  const labelWidth = 118;
  const width = 320;
  const height = bars.length * row + 8;
  return (
    <figure>
      <figcaption>{title}</figcaption>
      <svg class="chart" viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`${title}: ${bars.map((b) => `${b.label} ${format(b.value)}`).join(", ")}`}>
        {bars.map((b, i) => {
          const w = ((width - labelWidth - 44) * b.value) / max;
          return (
            <g key={b.label} transform={`translate(0 ${i * row + 4})`}>
              <text x={labelWidth - 8} y={17} text-anchor="end">
                {b.label.length > 17 ? `${b.label.slice(0, 16)}…` : b.label}
              </text>
              <rect class="bar" x={labelWidth} y={5} width={Math.max(w, b.value > 0 ? 2 : 0)} height={row - 10} rx={3} />
              <text x={labelWidth + w + 6} y={17}>
                {format(b.value)}
              </text>
            </g>
          );
        })}
      </svg>
    </figure>
  );
}

/**
 * Views by figure id. A figure without its own view gets the default
 * (headline and bar chart); a new workflow's figure (claims, trials, cold
 * chain) adds its view here when it needs more than that.
 */
const VIEWS: Record<string, (f: Figure) => preact.JSX.Element> = {};

function DefaultView(f: Figure) {
  return (
    <>
      <p class="figure-value" data-testid={`figure-${f.id}`}>
        {headline(f)}
      </p>
      <p>{f.summary}</p>
      {f.bars.length > 0 && <BarChart title={f.chart_title} bars={f.bars} />}
      <details>
        <summary>How this is computed</summary>
        <p>{f.method}.</p>
      </details>
    </>
  );
}

export function DashboardPage() {
  const loaded = useLoad(() => getJson<{ tree_size: number; figures: Figure[] }>("/v1/app/kpis"), []);
  return (
    <Page title="Dashboards" lead="Figures computed from the public ledger. Anyone can recompute them from the log.">
      {loaded.loading && <Loading what="the figures" />}
      <ErrorBox error={loaded.error} />
      {loaded.data && loaded.data.figures.length === 0 && <p>The ledger has nothing to count yet. Use the wallet and the portal, then come back.</p>}
      {loaded.data && (
        <>
          <p class="hint">From {loaded.data.tree_size.toLocaleString()} ledger entries.</p>
          <div class="cards">
            {loaded.data.figures.map((f) => (
              <section key={f.id} class="card" aria-labelledby={`fig-${f.id}`}>
                <h2 id={`fig-${f.id}`}>{f.title}</h2>
                {(VIEWS[f.id] ?? DefaultView)(f)}
              </section>
            ))}
          </div>
        </>
      )}
    </Page>
  );
}
