// Bundles with esbuild: the command line (dist/cli.js, and dist/malloc.js for bin/), the BERT server
// (dist/server.js) and the process it forks for each training job (dist/job.js), the extension
// (dist/extension.js, `vscode` external) and the progress webview (dist/media/). Native modules stay external.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { build } from "esbuild";

// The token cache's key includes the sources of the modules that shape the token stream
// (server/text/token-cache.ts says which); a bundle has no sources, so it gets their hashes.
const text = "server/text";
const sourceHashes = Object.fromEntries(
  readdirSync(text)
    .filter((f) => f.endsWith(".ts"))
    .map((f) => [f, createHash("sha256").update(readFileSync(`${text}/${f}`)).digest("hex")]),
);
const node = { bundle: true, platform: "node", target: "node20", format: "cjs", sourcemap: true, logLevel: "warning" };
await Promise.all([
  build({
    ...node,
    entryPoints: { cli: "server/cli/cli.ts", server: "server/main.ts", job: "server/job-process.ts", malloc: "common/malloc.ts" },
    outdir: "dist",
    external: ["onnxruntime-node", "tokenizers"],
    define: { BERT_STUDIO_SOURCE_SHA256: JSON.stringify(sourceHashes) },
  }),
  build({ ...node, entryPoints: { extension: "client/extension.ts" }, outdir: "dist", external: ["vscode"] }),
  build({ entryPoints: { progress: "media/progress.ts" }, outdir: "dist/media", bundle: true, platform: "browser", target: "es2022", format: "iife", minify: true, logLevel: "warning" }),
]);
mkdirSync("dist/media", { recursive: true });
copyFileSync("node_modules/uplot/dist/uPlot.min.css", "dist/media/uPlot.min.css");
copyFileSync("media/progress.css", "dist/media/progress.css");
