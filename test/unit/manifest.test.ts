// The extension's manifest (package.json contributes) against the code: every contributed command is
// registered by the client, every command a menu, view or walkthrough names is contributed (or is VS
// Code's), every file the walkthrough shows exists, and the explorer's menu is only offered on files that
// can be fine-tuned on.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

const root = process.cwd();
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
const contributes = pkg.contributes;
const contributed = new Set<string>(contributes.commands.map((c: { command: string }) => c.command));
const clientSource = readdirSync(path.join(root, "client"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => readFileSync(path.join(root, "client", f), "utf8"))
  .join("\n");

test("every contributed command is registered by the extension", () => {
  for (const id of contributed) {
    const short = id.replace(/^bertStudio\.(runs\.)?/, "");
    const registered = clientSource.includes(`"${id}"`) || (id.startsWith("bertStudio.runs.") && clientSource.includes(`reg("${short}"`)) || clientSource.includes(`reg("${id}"`);
    assert.ok(registered, `${id} is contributed but not registered in client/`);
  }
});

test("menus, the walkthrough and the views' welcome name contributed commands only", () => {
  const named: string[] = Object.values(contributes.menus as Record<string, { command: string }[]>).flatMap((items) => items.map((i) => i.command));
  const links = JSON.stringify([contributes.walkthroughs, contributes.viewsWelcome]).match(/command:[a-zA-Z.]+/g) ?? [];
  for (const id of [...named, ...links.map((l) => l.slice("command:".length))]) {
    assert.ok(contributed.has(id) || id.startsWith("workbench."), `${id} is named but not contributed`);
  }
});

test("the manifest contributes a walkthrough with existing media, a Runs view and a predict command", () => {
  const [walk] = contributes.walkthroughs;
  assert.ok(walk.steps.length >= 5, "pretrain, curves, [MASK], fine-tune, predict");
  for (const step of walk.steps) {
    assert.ok(existsSync(path.join(root, step.media.markdown)), step.media.markdown);
    assert.ok(step.completionEvents.length > 0, step.id);
  }
  assert.ok(existsSync(path.join(root, contributes.viewsContainers.activitybar[0].icon)));
  assert.deepEqual(contributes.views.bertStudio.map((v: { id: string }) => v.id), ["bertStudio.runs"]);
  assert.ok(contributed.has("bertStudio.predict") && contributed.has("bertStudio.showSurprise"));
  // What the VSIX carries: the walkthrough's files and the icon are packed (scripts/package.mjs).
  const packing = readFileSync(path.join(root, "scripts/package.mjs"), "utf8");
  assert.ok(packing.includes("!media/walkthrough/**") && packing.includes("!media/bert.svg"));
});

test("Fine-tune on Labeled File is in the explorer's menu of labelled-file types only, never of folders", () => {
  const items = contributes.menus["explorer/context"].filter((i: { command: string }) => i.command === "bertStudio.finetune");
  assert.equal(items.length, 1);
  const when: string = items[0].when;
  assert.match(when, /!explorerResourceIsFolder/);
  const ext = new RegExp(when.match(/resourceExtname =~ \/(.+)\/$/)![1]);
  for (const ok of [".tsv", ".csv", ".jsonl", ".json", ".conll", ".bio"]) assert.ok(ext.test(ok), ok);
  for (const no of [".md", ".txt", ".ts", ".py"]) assert.ok(!ext.test(no), no);
});
