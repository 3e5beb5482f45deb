// Bundles the command-line entry point with esbuild. Native modules stay external.
import { build } from "esbuild";

await build({
  entryPoints: { cli: "server/cli.ts" },
  outdir: "dist",
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  sourcemap: true,
  external: ["onnxruntime-node", "tokenizers"],
  logLevel: "warning",
});
