// Every setting is defined once, in common/settings.ts: package.json's contributes.configuration says the
// same, the names it offers are the engine's, the extension reads the configuration in one file, and the
// README states the defaults the command line and the editor run with.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import {
  configurationProperties,
  finetuneDefaults,
  pretrainCadence,
  pretrainDefaults,
  PRESET_NAMES,
  SCHEDULE_NAMES,
  SETTINGS,
  validSetting,
  type SettingKey,
} from "../../common/settings.js";
import { shown } from "../../server/cli/args.js";
import { PRESETS } from "../../server/model/config.js";
import { getScheduler } from "../../server/training/schedules.js";

const read = (file: string) => readFileSync(file, "utf8");
const sorted = (xs: readonly string[]) => [...xs].sort();

test("package.json contributes exactly the settings of common/settings.ts: keys, types, defaults, choices, bounds, descriptions", () => {
  const contributed = (JSON.parse(read("package.json")) as { contributes: { configuration: { properties: Record<string, unknown> } } }).contributes.configuration.properties;
  const expected = configurationProperties();
  assert.deepEqual(sorted(Object.keys(contributed)), sorted(Object.keys(expected)), "the same settings");
  for (const [key, spec] of Object.entries(expected)) assert.deepEqual(contributed[key], JSON.parse(JSON.stringify(spec)), `${key} in package.json`);
});

test("the presets and schedules a setting offers are the ones the engine knows", () => {
  assert.deepEqual(sorted(PRESET_NAMES), sorted(Object.keys(PRESETS)));
  for (const name of SCHEDULE_NAMES) assert.equal(typeof getScheduler(name, 1e-3, { warmupSteps: 1, trainingSteps: 10 })(5), "number", name);
});

test("every default is a value its setting allows; a value of the wrong type, out of bounds or not a choice is not", () => {
  for (const key of Object.keys(SETTINGS) as SettingKey[]) assert.ok(validSetting(key, SETTINGS[key].default), key);
  const refused: [SettingKey, unknown][] = [
    ["steps", 0],
    ["steps", 2.5],
    ["steps", "1000"],
    ["seq", 513],
    ["lr", 0],
    ["lr", Number.NaN],
    ["preset", "huge"],
    ["include", ["*.md", 3]],
    ["inline.enabled", "yes"],
    ["inline.topK", 21],
  ];
  for (const [key, value] of refused) assert.equal(validSetting(key, value), false, `${key}: ${JSON.stringify(value)}`);
  assert.ok(validSetting("finetune.lr", 1e-5) && validSetting("include", ["docs/**"]) && validSetting("schedule", "cosine"));
});

test("pretraining evaluates and checkpoints every tenth of the run, 10 to 1,000 steps apart, from the editor and the CLI alike", () => {
  assert.equal(pretrainDefaults.evalEvery, pretrainCadence);
  assert.equal(pretrainDefaults.checkpointEvery, pretrainCadence);
  assert.equal(pretrainCadence(pretrainDefaults.steps), 100); // the default run: 10 points on the held-out curve
  assert.equal(pretrainCadence(200), 20); // the extension test kills its 200-step run after the first checkpoint, at 20
  assert.equal(pretrainCadence(100_000), 1000);
  assert.equal(pretrainCadence(30), 10);
  assert.equal(pretrainCadence(1), 10);
  assert.equal(pretrainDefaults.warmupSteps(1000), 60);
  assert.equal(finetuneDefaults.warmupSteps(1000), 100);
  assert.equal(finetuneDefaults.evalEvery(125), 125); // once per epoch
  assert.equal(finetuneDefaults.maxLengthFor("qa"), 384);
  assert.equal(finetuneDefaults.maxLengthFor("classify"), SETTINGS["finetune.maxLength"].default);
});

test("only client/config.ts reads the configuration", () => {
  const readers = readdirSync("client").filter((f) => f.endsWith(".ts") && /getConfiguration/.test(read(path.join("client", f))));
  assert.deepEqual(readers, ["config.ts"]);
});

test("common/ imports neither server/ nor client/, and settings.ts imports nothing", () => {
  for (const f of readdirSync("common").filter((f) => f.endsWith(".ts"))) assert.doesNotMatch(read(path.join("common", f)), /from\s+["']\.\.\/(server|client)\//, f);
  assert.doesNotMatch(read("common/settings.ts"), /^\s*import\b/m);
});

test("the README states the defaults the command line runs with", () => {
  const readme = read("README.md");
  const f = finetuneDefaults;
  const p = pretrainDefaults;
  const stated = [
    `\`--epochs ${f.epochs} | --steps N\``,
    `\`--batch ${f.batch}\``,
    `\`--max-length ${f.maxLength}\` (${f.qaMaxLength} for qa)`,
    `\`--lr\` (by the model's hidden size: BERT's ${shown(f.lrFor(768))} at 768, ${shown(f.lrFor(128))} at the tiny preset's 128`,
    `\`--schedule ${f.schedule}\``,
    `\`--warmup N\` (default ${f.warmupFraction * 100}% of the steps)`,
    `\`--seed\` (${f.seed})`,
    `\`--preset\`, default \`${p.preset}\``,
    `\`--steps\` (default ${p.steps})`,
    `\`--batch\` (${p.batch})`,
    `\`--seq\` (${p.seq})`,
    `\`--lr\` (${shown(p.lr)})`,
    `\`--schedule\` (default \`${p.schedule}\`)`,
    `\`--warmup\` (default ${p.warmupFraction * 100}% of the steps)`,
    `(\`--seed\`, default ${p.seed})`,
    `${p.heldOut * 100}% of the documents`,
    `\`--max-file-mb\` (${p.maxFileMb})`,
    `\`metrics.jsonl\` (every ${p.logEvery} steps`,
    `every tenth of the run, at least ${pretrainCadence(0)} and at most ${pretrainCadence(Infinity).toLocaleString("en")} steps apart`,
  ];
  for (const s of stated) assert.ok(readme.replace(/\s+/g, " ").includes(s), `README says ${s}`);
});
