// "Import Hugging Face Model" lists the BERT models a user already has in the Hugging Face cache: found where
// huggingface_hub puts it, read through the cache's links into blobs/, and whatever is not an importable
// BERT is left out (or, for PyTorch-only weights, shown with the reason) without an error.
import assert from "node:assert/strict";
import { copyFileSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import { huggingFaceCache, huggingFaceCacheModels, importModel } from "../../server/inference/models.js";
import { SPECIAL_TOKENS } from "../../server/text/tokenizer.js";

const tmp = mkdtempSync(path.join(os.tmpdir(), "hf-cache-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A BertForPreTraining made by HF (test/fixtures/hf/README.md); it has no tokenizer of its own. */
const FIXTURE = "test/fixtures/hf/pretraining";
const CONFIG = readFileSync(path.join(FIXTURE, "config.json"), "utf8");
const VOCAB_SIZE = (JSON.parse(CONFIG) as { vocab_size: number }).vocab_size;
const VOCAB = [...SPECIAL_TOKENS, ...Array.from({ length: VOCAB_SIZE - SPECIAL_TOKENS.length }, (_, i) => `w${i}`)].join("\n") + "\n";
const REV = "0123456789abcdef0123456789abcdef01234567";

/**
 * One snapshot of `models--ORG--NAME` as huggingface_hub writes it: each file in blobs/ (named by its hash),
 * linked from snapshots/<revision>/ by a relative link; a null content is a link whose blob is missing.
 */
function snapshot(hub: string, repo: string, revision: string, files: Record<string, string | Buffer | null>, ref?: string): string {
  const root = path.join(hub, `models--${repo.replace("/", "--")}`);
  const dir = path.join(root, "snapshots", revision);
  mkdirSync(dir, { recursive: true });
  mkdirSync(path.join(root, "blobs"), { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    const blob = `${revision.slice(0, 8)}-${name}`;
    if (content !== null) writeFileSync(path.join(root, "blobs", blob), content);
    symlinkSync(path.join("..", "..", "blobs", blob), path.join(dir, name));
  }
  if (ref) {
    mkdirSync(path.join(root, "refs"), { recursive: true });
    writeFileSync(path.join(root, "refs", ref), revision);
  }
  return dir;
}

const weights = readFileSync(path.join(FIXTURE, "model.safetensors"));
const bert = (extra: Record<string, string | Buffer | null> = {}) => ({ "config.json": CONFIG, "model.safetensors": weights, "vocab.txt": VOCAB, ...extra });

test("the BERT snapshots of the cache are listed; other models, partial downloads and broken configs are left out", async () => {
  const hub = path.join(tmp, "hub");
  const good = snapshot(hub, "acme/tiny-bert", REV, bert(), "main");
  const older = snapshot(hub, "acme/tiny-bert", "fedcba9876543210fedcba9876543210fedcba98", bert());
  const pytorch = snapshot(hub, "acme/old-bert", REV, { "config.json": CONFIG, "pytorch_model.bin": "pickle", "tokenizer.json": "{}" }, "main");
  snapshot(hub, "openai-community/gpt2", REV, { "config.json": JSON.stringify({ model_type: "gpt2", architectures: ["GPT2LMHeadModel"] }), "model.safetensors": weights, "tokenizer.json": "{}" });
  snapshot(hub, "acme/no-tokenizer", REV, { "config.json": CONFIG, "model.safetensors": weights });
  snapshot(hub, "acme/vocab-not-downloaded", REV, bert({ "vocab.txt": null }));
  snapshot(hub, "acme/broken", REV, bert({ "config.json": "{ not json" }));
  snapshot(hub, "acme/null-config", REV, bert({ "config.json": "null" }));
  mkdirSync(path.join(hub, "datasets--acme--text", "snapshots", REV), { recursive: true });
  mkdirSync(path.join(hub, ".locks"));
  writeFileSync(path.join(hub, "version.txt"), "1");
  mkdirSync(path.join(hub, "models--acme--no-snapshots"));
  assert.ok(lstatSync(path.join(good, "config.json")).isSymbolicLink(), "the files are links, as in the real cache");

  const found = await huggingFaceCacheModels({ HF_HUB_CACHE: hub });
  assert.deepEqual(
    found.map((m) => [m.repo, m.revision.slice(0, 7), m.refs, m.architecture, m.problem ?? "importable"]),
    [
      ["acme/old-bert", "0123456", ["main"], "BertForPreTraining", "its weights are only pytorch_model.bin (PyTorch's pickle format); BERT Studio reads model.safetensors"],
      ["acme/tiny-bert", "0123456", ["main"], "BertForPreTraining", "importable"],
      ["acme/tiny-bert", "fedcba9", [], "BertForPreTraining", "importable"],
    ],
  );
  assert.deepEqual(found.map((m) => m.dir), [pytorch, good, older]);

  // The listed folder imports: the copy holds the blobs' contents, not links into the cache.
  const dest = path.join(tmp, "runs", "imported-tiny-bert");
  const info = await importModel(good, dest);
  assert.equal(info.architecture, "BertForPreTraining");
  assert.ok(!lstatSync(path.join(dest, "model.safetensors")).isSymbolicLink());
  assert.deepEqual(readFileSync(path.join(dest, "model.safetensors")), weights);
});

test("no cache, or an unreadable one, is an empty list", async () => {
  assert.deepEqual(await huggingFaceCacheModels({ HF_HUB_CACHE: path.join(tmp, "nowhere") }), []);
  const file = path.join(tmp, "a-file");
  copyFileSync(path.join(FIXTURE, "config.json"), file);
  assert.deepEqual(await huggingFaceCacheModels({ HF_HUB_CACHE: file }), []);
});

test("the cache is where huggingface_hub looks: HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME, then ~/.cache", () => {
  const home = "/home/ada";
  const at = (env: NodeJS.ProcessEnv) => huggingFaceCache(env, home);
  assert.equal(at({}), "/home/ada/.cache/huggingface/hub");
  assert.equal(at({ XDG_CACHE_HOME: "/xdg" }), "/xdg/huggingface/hub");
  assert.equal(at({ XDG_CACHE_HOME: "/xdg", HF_HOME: "/hf" }), "/hf/hub", "HF_HOME before XDG_CACHE_HOME");
  assert.equal(at({ HF_HOME: "/hf", HUGGINGFACE_HUB_CACHE: "/legacy" }), "/legacy", "the legacy variable before HF_HOME");
  assert.equal(at({ HF_HOME: "/hf", HUGGINGFACE_HUB_CACHE: "/legacy", HF_HUB_CACHE: "/hub" }), "/hub");
  assert.equal(at({ HF_HOME: "~/hf" }), "/home/ada/hf/hub", "~ is the home folder");
  assert.equal(at({ HF_HUB_CACHE: "~" }), "/home/ada");
  assert.equal(at({ HF_HUB_CACHE: "~other/hub" }), "~other/hub", "only a ~ alone is the user's home");
  assert.equal(at({ HF_HUB_CACHE: "", HF_HOME: "" }), "/home/ada/.cache/huggingface/hub", "an empty variable is unset");
});
