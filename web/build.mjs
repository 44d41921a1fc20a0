// Builds the page into dist/ (served by the edge as static assets) and, with --tests, the unit
// tests into .test-build/ for `node --test`. esbuild only: no dev server, no framework.
import { build } from "esbuild";
import { copyFile, mkdir, readdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: [join(root, "src/app.ts")],
  outfile: join(dist, "app.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["chrome100", "safari15", "firefox100"],
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});
for (const file of ["index.html", "styles.css"]) {
  await copyFile(join(root, "src", file), join(dist, file));
}
// The shared rules in wasm (scripts/build-web-wasm), loaded next to app.js.
await copyFile(join(root, "wasm", "dodolens_bg.wasm"), join(dist, "dodolens_bg.wasm"));

if (process.argv.includes("--tests")) {
  const out = join(root, ".test-build");
  await rm(out, { recursive: true, force: true });
  const tests = (await readdir(join(root, "test"))).filter((f) => f.endsWith(".test.ts"));
  await build({
    entryPoints: tests.map((f) => join(root, "test", f)),
    outdir: out,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    logLevel: "warning",
  });
}
