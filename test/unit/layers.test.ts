// The layout is the architecture (docs/ARCHITECTURE.md): each folder is a stage of the data flow and
// imports only the stages below it; the extension (client/) and the webview page (media/) import only
// common/. This test reads every import of the sources and fails on one that points up or sideways.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";

/** Lower numbers are lower layers; folders of one number may not import each other. */
const LAYERS: Record<string, number> = {
  common: 0,
  "server/util": 1,
  "server/model": 2,
  "server/text": 3,
  "server/training": 4,
  "server/pretraining": 5,
  "server/tasks": 5,
  "server/inference": 6,
  "server/dev": 7,
  "server/cli": 8,
  server: 8,
  client: 9,
  media: 9,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const f = path.join(dir, e.name);
    return e.isDirectory() ? sources(f) : f.endsWith(".ts") ? [f] : [];
  });
}

const layerOf = (file: string): string => {
  for (let d = path.dirname(file); d !== "."; d = path.dirname(d)) if (d in LAYERS) return d;
  throw new Error(`${file} is in no layer: add its folder to LAYERS (and to docs/ARCHITECTURE.md)`);
};

test("every import points to the same folder or a lower layer; client/ and media/ import only common/", () => {
  const wrong: string[] = [];
  for (const file of ["common", "server", "client", "media"].flatMap(sources)) {
    const from = layerOf(file);
    for (const [, spec] of readFileSync(file, "utf8").matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
      const to = layerOf(path.normalize(path.join(path.dirname(file), spec)));
      if (to === from) continue;
      const upOrSideways = LAYERS[to] >= LAYERS[from];
      const clientIntoServer = (from === "client" || from === "media") && to !== "common";
      if (upOrSideways || clientIntoServer) wrong.push(`${file} (${from}) imports ${spec} (${to})`);
    }
  }
  assert.deepEqual(wrong, []);
});
