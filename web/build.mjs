// Builds the web apps into web/dist (committed: the node embeds it at
// compile time, so running a node needs no Node.js). Deterministic: the
// same sources give the same bytes; `bash scripts/test` rebuilds and
// checks that the committed dist is current.
//
//   node build.mjs            build
//   node build.mjs --sizes    build and print the first-load size

import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const result = await build({
  entryPoints: { app: join(here, "src/main.tsx") },
  bundle: true,
  splitting: true,
  format: "esm",
  minify: true,
  target: ["chrome120", "firefox128", "safari17"],
  jsx: "automatic",
  jsxImportSource: "preact",
  outdir: dist,
  entryNames: "[name]-[hash]",
  chunkNames: "chunks/[name]-[hash]",
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
  absWorkingDir: here,
});

const outputs = result.metafile.outputs;
const name = (path) => path.slice(path.indexOf("dist/") + "dist/".length);
const entry = Object.keys(outputs).find((p) => outputs[p].entryPoint && p.endsWith(".js"));
const css = Object.keys(outputs).find((p) => p.endsWith(".css") && !p.includes("chunks/"));
const html = readFileSync(join(here, "src/index.html"), "utf8")
  .replace("%APP_JS%", `./${name(entry)}`)
  .replace("%APP_CSS%", `./${name(css)}`);
writeFileSync(join(dist, "index.html"), html);

if (process.argv.includes("--sizes")) {
  // First load: the page, the entry script, its static imports, the CSS.
  const first = new Set([entry, css]);
  for (const imp of outputs[entry].imports) if (imp.kind === "import-statement") first.add(imp.path);
  let raw = 0;
  let gz = 0;
  const rows = [];
  for (const path of [...first, "dist/index.html"]) {
    const bytes = readFileSync(join(here, path));
    const z = gzipSync(bytes, { level: 9 }).length;
    raw += bytes.length;
    gz += z;
    rows.push(`${name(path).padEnd(36)} ${String(bytes.length).padStart(8)} B raw ${String(z).padStart(8)} B gzip`);
  }
  const lazy = Object.keys(outputs).filter((p) => !first.has(p) && !p.endsWith(".map") && !p.endsWith(".txt"));
  for (const path of lazy) {
    const bytes = readFileSync(join(here, path));
    rows.push(`${name(path).padEnd(36)} ${String(bytes.length).padStart(8)} B raw ${String(gzipSync(bytes, { level: 9 }).length).padStart(8)} B gzip (loaded on demand)`);
  }
  console.log(rows.join("\n"));
  console.log(`first load (HTML + JS + CSS): ${raw} B raw, ${gz} B gzip`);
}
