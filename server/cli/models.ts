// `bert-studio import | export`: model folders in and out, with the code the editor's Import and Export use.
// The CLI writes where it is told, but never over a model or a run: such a folder is named and nothing is
// written.
import * as path from "node:path";
import { parseArgs } from "node:util";
import { UsageError } from "./args.js";
import type { ExportFormat } from "../inference/models.js";

export const MODELS_HELP = `  bert-studio import DIR --out RUN
      Checks the HF BERT folder DIR by loading it (config.json, tokenizer, sizes, every tensor of its
      architecture) and copies its model files into RUN. Refused when RUN holds a model or a run.
  bert-studio export RUN --format hf|onnx --out DIR
      hf: the model's HF files; onnx: model.onnx (the eval-mode graph of its head, the masked LM for a
      pretrained model, weights inside) plus config.json and the tokenizer files. Refused into the model
      itself and over another model or run.
`;

/** Refuses to write model files into `dir` when it holds a model or a run (or a trainer holds it). */
async function requireFree(what: string, dir: string): Promise<void> {
  const { heldBy } = await import("../inference/models.js");
  const why = await heldBy(dir);
  if (why) throw new Error(`cannot ${what} into ${dir}: ${why}; choose another --out (nothing was written)`);
}

export async function importCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: "string" } } });
  if (positionals.length !== 1) throw new UsageError("import needs one model folder (config.json, model.safetensors, vocab.txt or tokenizer.json)");
  if (!values.out) throw new UsageError("import needs --out RUN (the folder to copy the model into)");
  await requireFree("import", values.out);
  const { importModel } = await import("../inference/models.js");
  const info = await importModel(positionals[0], values.out);
  process.stdout.write(`${info.dir}: ${info.architecture}${info.task ? ` (${info.task})` : ""}, imported from ${positionals[0]}\n`);
  return 0;
}

export async function exportCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { format: { type: "string" }, out: { type: "string" } } });
  if (positionals.length !== 1) throw new UsageError("export needs one model folder (a run or an HF folder)");
  if (!values.out) throw new UsageError("export needs --out DIR (the folder to write into)");
  const { EXPORT_FORMATS, exportModel } = await import("../inference/models.js");
  const format = values.format as ExportFormat | undefined;
  if (!format || !EXPORT_FORMATS.includes(format)) throw new UsageError(`export needs --format ${EXPORT_FORMATS.join(" or ")}, got ${values.format ?? "none"}`);
  const model = positionals[0];
  if (path.resolve(values.out) === path.resolve(model)) throw new Error(`cannot export into ${values.out}: it is the model itself; choose another --out (nothing was written)`);
  await requireFree("export", values.out);
  for (const file of await exportModel(model, format, values.out)) process.stdout.write(`${file}\n`);
  return 0;
}
