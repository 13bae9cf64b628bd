// The JavaScript budget of the architecture document (section 14.2): under 500 KB of JS in all,
// main chunk plus every route chunk, counted as shipped over the wire (gzip). Raw sizes are printed
// beside it. Run after `npm run build`; exits 1 over budget so `make test` fails.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const BUDGET_GZIP_BYTES = 500 * 1024;
const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(here, "../../src/triggers_api/dashboard/static");
const assets = path.join(outDir, "assets");

let files;
try {
  files = readdirSync(assets).filter((f) => f.endsWith(".js"));
} catch {
  console.error(`no build at ${outDir}: run npm run build first`);
  process.exit(1);
}

const index = readFileSync(path.join(outDir, "index.html"), "utf8");
const rows = files
  .map((name) => {
    const data = readFileSync(path.join(assets, name));
    return { name, raw: data.length, gzip: gzipSync(data, { level: 9 }).length, initial: index.includes(name) };
  })
  .sort((a, b) => b.gzip - a.gzip);

const kb = (n) => `${(n / 1024).toFixed(1).padStart(7)} KB`;
const total = rows.reduce((t, r) => ({ raw: t.raw + r.raw, gzip: t.gzip + r.gzip }), { raw: 0, gzip: 0 });
const initial = rows.filter((r) => r.initial).reduce((t, r) => t + r.gzip, 0);

console.log(`dashboard JS: ${rows.length} chunks`);
for (const r of rows.slice(0, 6)) console.log(`  ${r.name.padEnd(40)} ${kb(r.raw)} raw ${kb(r.gzip)} gzip${r.initial ? "  (entry)" : ""}`);
console.log(`  total                                    ${kb(total.raw)} raw ${kb(total.gzip)} gzip`);
console.log(`  entry chunk (loaded on every page)       ${" ".repeat(15)}${kb(initial)} gzip`);
if (total.gzip > BUDGET_GZIP_BYTES) {
  console.error(`over budget: ${kb(total.gzip)} gzip > ${kb(BUDGET_GZIP_BYTES)}`);
  process.exit(1);
}
console.log(`within budget: ${kb(total.gzip).trim()} of ${kb(BUDGET_GZIP_BYTES).trim()} gzip`);
