// `npm test`'s unit tests (node:test, every test/unit/*.test.ts) with TMPDIR set to a folder of their own,
// removed when they end: the tests' temporary run folders, corpora and caches (many of them, a few hundred
// MB a run) never pile up in the system's /tmp. Exits with the test runner's status.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..");
const dir = path.join(root, "test", "unit");
const files = readdirSync(dir).filter((f) => f.endsWith(".test.ts")).sort().map((f) => path.join("test", "unit", f));
const tmp = mkdtempSync(path.join(os.tmpdir(), "bert-studio-tests-"));
let status = 1;
try {
  const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", ...process.argv.slice(2), ...files], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, TMPDIR: tmp },
  });
  status = r.status ?? 1;
  if (r.error) console.error(r.error);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(status);
