// Builds the web map into api/static/map/: app.js, app.css, Leaflet's marker images, index.html.
// Run by `npm run build` (make maps-assets). Everything comes from maps/node_modules: no CDN.
import * as esbuild from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "..", "api", "static", "map");

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await esbuild.build({
  entryPoints: { app: join(here, "src", "main.js"), style: join(here, "style.css") },
  bundle: true,
  minify: true,
  sourcemap: true,
  target: ["es2020"],
  format: "iife",
  outdir: out,
  // Leaflet's CSS refers to its PNGs: copied next to the bundle under their own names
  loader: { ".png": "file", ".svg": "file" },
  assetNames: "images/[name]",
  legalComments: "linked",
  logLevel: "warning",
});
await copyFile(join(here, "index.html"), join(out, "index.html"));
console.log(`web map built into ${out}`);
