// Imported first by every test file that tokenizes a corpus (tokenizeCorpus, pretrain) or loads a model for
// inference (the session cache): its caches go to a fresh temporary folder, never the user's ~/.cache/bert-studio. Node's test runner runs each
// test file in its own process, and CLI processes the tests spawn inherit the variable.
import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const dir = mkdtempSync(path.join(os.tmpdir(), "bert-studio-cache-"));
process.env.BERT_STUDIO_CACHE = dir;
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
