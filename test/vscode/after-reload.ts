// The window after a reload (test-vscode.mjs opens the workbench again on the same workspace and browser
// storage once suite.ts has passed): the models the user had selected are selected again, without a
// word from the user, and the training-progress panel that was open is back with its curves (its page
// says what it drew).
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { StatusResult } from "../../common/protocol.js";

/** Where suite.ts leaves the selection it ended with (in the fixture workspace's .vscode folder). */
export const SELECTION_FILE = path.join(".vscode", "bert-studio-test-selection.json");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function run(): Promise<void> {
  const ws = vscode.workspace.workspaceFolders![0].uri.fsPath;
  const file = path.join(ws, SELECTION_FILE);
  assert.ok(existsSync(file), `${file}: the main suite records the selection it ended with`);
  const expected = JSON.parse(readFileSync(file, "utf8")) as Pick<StatusResult, "model" | "taskModel">;
  assert.ok(expected.model && expected.taskModel, JSON.stringify(expected));
  const t = Date.now();
  await vscode.extensions.getExtension("bert-studio.bert-studio")!.activate();
  let s: StatusResult | undefined;
  for (let i = 0; i < 300; i++) {
    s = await vscode.commands.executeCommand<StatusResult>("bertStudio.status");
    if (s.model === expected.model && s.taskModel === expected.taskModel) break;
    await sleep(200);
  }
  assert.deepEqual({ model: s?.model, taskModel: s?.taskModel }, expected, "the selection came back after the reload");
  console.log(`ok - the selected models came back after a window reload (${Date.now() - t} ms after activation began): ${path.basename(expected.model)}, ${path.basename(expected.taskModel)}`);
  // Fill-mask answers with the restored model at once.
  const r = await vscode.commands.executeCommand<{ model: string; masks: unknown[][] }>("bertStudio.request", "bert/fillMask", { text: "the history of the [MASK] is long .", topK: 3 });
  assert.equal(r.model, expected.model);
  assert.equal(r.masks[0].length, 3);
  console.log("ok - fill-mask answers with the restored model");
  // The workbench restores its editors as it starts, the webview's after the extension's serializer is there.
  let tab: vscode.Tab | undefined;
  for (let i = 0; i < 100 && !tab; i++, await sleep(200)) tab = vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((x) => x.label === "BERT Training Progress");
  assert.ok(tab, "the progress panel open before the reload is restored");
  // Its page drew the curves of the workspace's runs (it says what it drew), without being closed and reopened.
  let drawn: { runs: number; charts: number } | undefined;
  for (let i = 0; i < 150 && !(drawn && drawn.runs > 0 && drawn.charts > 0); i++) {
    await sleep(200);
    drawn = await vscode.commands.executeCommand<typeof drawn>("bertStudio.progressDrawn");
  }
  assert.ok(drawn && drawn.runs >= 5 && drawn.charts > 0, `the restored panel draws the runs: ${JSON.stringify(drawn)}`);
  const shots = process.env.BERT_STUDIO_TEST_SHOTS;
  if (shots) {
    await sleep(800);
    writeFileSync(path.join(shots, "curves-after-reload.request"), "");
    for (let i = 0; i < 100 && !existsSync(path.join(shots, "curves-after-reload.png")); i++) await sleep(200);
  }
  console.log(`ok - the training-progress panel is restored with its curves (${drawn.runs} runs, ${drawn.charts} charts)`);
  console.log("3/3 passed");
}
