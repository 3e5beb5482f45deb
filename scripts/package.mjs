// `npm run package [-- --target linux-x64]`: builds the bundles and packs a platform-specific VSIX with
// @vscode/vsce. Only the target's native binaries go in: onnxruntime-node ships every platform (~290 MB),
// the VSIX carries one (ONNX Runtime's shared library and its binding, and tokenizers' .node file).
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { target: { type: "string", default: `${process.platform}-${process.arch}` } } });
const target = values.target;
const [platform, arch] = target.split("-");
const TOKENIZERS = {
  "linux-x64": "linux-x64-gnu",
  "linux-arm64": "linux-arm64-gnu",
  "darwin-arm64": "darwin-arm64",
  "darwin-x64": "darwin-x64",
  "win32-x64": "win32-x64-msvc",
  "win32-arm64": "win32-arm64-msvc",
};
if (!TOKENIZERS[target]) throw new Error(`unsupported target ${target}; one of ${Object.keys(TOKENIZERS).join(", ")}`);

// Everything is left out, then what the extension needs at run time is taken back in.
writeFileSync(
  ".vscodeignore",
  [
    "**",
    "!package.json",
    "!README.md",
    "!LICENSE",
    "!dist/extension.js",
    "!dist/server.js",
    "!dist/job.js",
    "!dist/cli.js",
    "!dist/media/**",
    "!media/bert.svg",
    "!media/walkthrough/**",
    "!syntaxes/**",
    "!node_modules/onnxruntime-common/package.json",
    "!node_modules/onnxruntime-common/dist/cjs/**",
    "!node_modules/onnxruntime-node/package.json",
    "!node_modules/onnxruntime-node/dist/**",
    `!node_modules/onnxruntime-node/bin/napi-v6/${platform}/${arch}/**`,
    "!node_modules/tokenizers/package.json",
    "!node_modules/tokenizers/index.js",
    `!node_modules/tokenizers/tokenizers.${TOKENIZERS[target]}.node`,
    "**/*.map",
    "",
  ].join("\n"),
);
execFileSync("node", ["scripts/build.mjs"], { stdio: "inherit" });
const out = `bert-studio-${target}.vsix`;
execFileSync("npx", ["vsce", "package", "--target", target, "--allow-missing-repository", "--skip-license", "-o", out], { stdio: "inherit" });
console.log(`packed ${out}`);
