// `bert-studio import | export`: model folders in and out, with the code the editor's Import and Export use.
// The CLI writes where it is told, but never over a model or a run: such a folder is named and nothing is
// written.
import * as path from "node:path";
import { parseArgs } from "node:util";
import { UsageError } from "./args.js";
import type { AnyExportFormat } from "../inference/trainer-export.js";

export const MODELS_HELP = `  bert-studio import DIR --out RUN
      Checks the HF BERT folder DIR by loading it (config.json, tokenizer, sizes, every tensor of its
      architecture) and copies its model files into RUN (an HF Trainer's output/ or checkpoint-N too).
      Refused when RUN holds a model or a run.
  bert-studio export RUN --format hf|onnx|trainer --out DIR [--int8] [--corpus CORPUS] [--task-data FILE]
      hf: the model's HF files; onnx: model.onnx (the eval-mode graph of its head, the masked LM for a
      pretrained model, weights inside) plus config.json and the tokenizer files; with --int8 its dense
      layers' weights are int8 (ONNX Runtime's DynamicQuantizeMatMul: for ONNX Runtime only). Refused into
      the model itself and over another model or run.
      trainer: a new folder DIR in which Hugging Face's Trainer continues the run (python DIR/train.py,
      torchrun --nproc_per_node N DIR/train.py, accelerate launch): model/, the Adam moments, data/
      (train.jsonl and held_out.jsonl, made by the pretraining pipeline from CORPUS, default the run's
      corpus; for a classify or pair run the rows of FILE, default its labelled file), recipe.json,
      train.py, requirements.txt, README.md. DIR must not exist or be empty. Back again:
      bert-studio import DIR/output --out RUN.
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
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { format: { type: "string" }, out: { type: "string" }, corpus: { type: "string" }, "task-data": { type: "string" }, int8: { type: "boolean" } } });
  if (positionals.length !== 1) throw new UsageError("export needs one model folder (a run or an HF folder)");
  if (!values.out) throw new UsageError("export needs --out DIR (the folder to write into)");
  const { ALL_EXPORT_FORMATS, exportAs } = await import("../inference/trainer-export.js");
  const format = values.format as AnyExportFormat | undefined;
  if (!format || !ALL_EXPORT_FORMATS.includes(format)) throw new UsageError(`export needs --format ${ALL_EXPORT_FORMATS.slice(0, -1).join(", ")} or ${ALL_EXPORT_FORMATS.at(-1)}, got ${values.format ?? "none"}`);
  if (format !== "trainer" && (values.corpus || values["task-data"])) throw new UsageError("--corpus and --task-data are for --format trainer");
  if (values.int8 && format !== "onnx") throw new UsageError("--int8 is for --format onnx");
  const model = positionals[0];
  if (path.resolve(values.out) === path.resolve(model)) throw new Error(`cannot export into ${values.out}: it is the model itself; choose another --out (nothing was written)`);
  if (format !== "trainer") await requireFree("export", values.out); // a trainer folder is a new one: exportTrainer refuses any other
  const say = (m: string) => process.stderr.write(`${m}\n`);
  const { files } = await exportAs(model, format, values.out, { corpus: values.corpus, taskData: values["task-data"], int8: values.int8, onMessage: say });
  for (const file of files) process.stdout.write(`${file}\n`);
  if (format === "trainer") say(`next: python ${path.join(values.out, "train.py")}, or torchrun --nproc_per_node N ${path.join(values.out, "train.py")} (its README.md says more)`);
  return 0;
}
