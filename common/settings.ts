// Every default of BERT Studio, defined once. SETTINGS are the editor settings (`bertStudio.*`), with the type,
// default, bounds and description that package.json's contributes.configuration repeats
// (test/unit/settings.test.ts fails when the two differ); pretrainDefaults and finetuneDefaults add the engine
// defaults that are no editor setting (seed, held-out share, warmup, cadences). The extension's config reader
// (client/config.ts), the command line (server/cli) and the BERT server (server/main.ts) take them from here,
// so a run started in the editor and `bert-studio pretrain` without flags train the same way.
//
// Imports nothing: the extension and the server both bundle this file.

/** The configuration section: the settings are `bertStudio.<key>`. */
export const SECTION = "bertStudio";

export const PRESET_NAMES = ["tiny", "small", "base"] as const;
export const SCHEDULE_NAMES = ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"] as const;
export const DEVICE_NAMES = ["cpu", "webgpu", "cuda", "auto"] as const;

/** Share of the steps that warm the learning rate up, unless --warmup says how many. */
const PRETRAIN_WARMUP = 0.06;
/** BERT's fine-tuning recipe (`warmup_proportion` 0.1 in run_classifier.py). */
const FINETUNE_WARMUP = 0.1;
/** Question answering reads a question and a window of context: `run_qa`'s max_seq_length. */
const QA_MAX_LENGTH = 384;

/**
 * Held-out evaluation and checkpoints of pretraining, one rule for the editor and the command line: every
 * tenth of the run, at least 10 and at most 1,000 steps apart (200 steps: every 20; the default 1,000: every
 * 100; 100,000: every 1,000).
 *
 * Why a tenth: a 1,000-step run (minutes on a laptop) then has a held-out curve of 10 points and loses at
 * most 100 steps to a crash, where the command line's old fixed 100/500 gave a 200-step run two evaluations
 * and no checkpoint before the end. Evaluation is 8 held-out batches forward, about 3 training steps, so 10
 * of them cost under 3% of any run of 1,000 steps or more. Why the cap: at a tenth, a 100,000-step run (the
 * editor's old rule) would checkpoint every 10,000 steps: a kill would lose 40 minutes of the tiny preset on
 * two cores (a quarter of a second a step), hours of base; every 1,000 it loses at most 1% of the run and still
 * has 100 evaluations. Why the floor: a run of a few dozen steps is a smoke test, and evaluating or writing
 * a checkpoint (weights plus two Adam moments) every few steps would outweigh it.
 * Every run also evaluates and checkpoints at its last step.
 */
export function pretrainCadence(steps: number): number {
  return Math.min(1000, Math.max(10, Math.round(steps / 10)));
}

/**
 * Steps between metrics rows (metrics.jsonl, TensorBoard, the progress view), for both trainers. Fixed, not
 * a share of the run: resuming often raises --steps, and a cadence that moved with it would sample one curve
 * at two rates (and the resumed rows would not line up with the killed run's). 100,000 steps give 10,000 rows
 * (a few MB), which metrics.jsonl and the progress view take in their stride. The last step is always logged.
 */
const LOG_EVERY = 10;

/** Seed of everything random in a run: initialisation, example order, masks, dropout. */
const SEED = 42;

const percent = (f: number) => `${Math.round(f * 100)}%`;

/** What package.json's contributes.configuration says of one setting (a subset of JSON Schema). */
export interface SettingSpec {
  type: "string" | "integer" | "number" | "boolean" | "array";
  default: unknown;
  description: string;
  enum?: readonly string[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  items?: { type: "string" };
}

export const SETTINGS = {
  preset: {
    type: "string",
    enum: PRESET_NAMES,
    default: "tiny",
    description: "Model size for BERT: Pretrain on Workspace (tiny L2 H128, small L4 H256, base L12 H768).",
  },
  steps: {
    type: "integer",
    default: 1000,
    minimum: 1,
    description: "Pretraining steps. Held-out evaluation and checkpoints come every tenth of them (at least 10, at most 1,000 steps apart) and at the end.",
  },
  minutes: {
    type: "number",
    default: 0,
    minimum: 0,
    description: "A pretraining budget in minutes instead of bertStudio.steps (0: use the steps). Warmup and decay follow the elapsed time; evaluations and checkpoints come every tenth of it; the run ends on time with a checkpoint.",
  },
  batch: { type: "integer", default: 32, minimum: 1, description: "Batch size (sequences per step), for pretraining and fine-tuning." },
  seq: { type: "integer", default: 128, minimum: 8, maximum: 512, description: "Pretraining sequence length in tokens." },
  lr: { type: "number", default: 2e-3, exclusiveMinimum: 0, description: "Pretraining peak learning rate (continuing a trained model: 1e-4 unless this is set)." },
  schedule: {
    type: "string",
    enum: SCHEDULE_NAMES,
    default: "linear",
    description: `Learning-rate schedule (with ${percent(PRETRAIN_WARMUP)} warmup for pretraining, ${percent(FINETUNE_WARMUP)} for fine-tuning).`,
  },
  device: {
    type: "string",
    enum: DEVICE_NAMES,
    default: "cpu",
    description: "ONNX Runtime execution provider; one that cannot start falls back to CPU.",
  },
  vocab: {
    type: "string",
    default: "",
    description: "A WordPiece vocab.txt to pretrain with; empty: train a vocabulary of bertStudio.vocabSize tokens on the workspace.",
  },
  vocabSize: { type: "integer", default: 8000, minimum: 100, description: "Size of the WordPiece vocabulary trained on the workspace." },
  include: {
    type: "array",
    items: { type: "string" },
    default: [],
    description: "Globs (gitignore syntax) of the files to pretrain on; empty: all text files.",
  },
  exclude: { type: "array", items: { type: "string" }, default: [], description: "Globs of files to leave out of pretraining." },
  maxFileMb: { type: "integer", default: 50, minimum: 1, description: "Files larger than this (MB) are skipped." },
  "finetune.epochs": { type: "integer", default: 3, minimum: 1, description: "Fine-tuning epochs." },
  "finetune.lr": { type: "number", default: 5e-5, exclusiveMinimum: 0, description: "Fine-tuning peak learning rate. Unset: chosen by the model's hidden size (5e-5 at BERT-Base's 768, 5e-4 at the tiny preset's 128)." },
  "finetune.maxLength": {
    type: "integer",
    default: 128,
    minimum: 16,
    maximum: 512,
    description: `Fine-tuning maximum sequence length in tokens; question answering uses ${QA_MAX_LENGTH} unless this is set.`,
  },
  "inline.enabled": { type: "boolean", default: true, description: "Ghost-text predictions at [MASK]." },
  int8: {
    type: "boolean",
    default: false,
    description:
      "int8 weights in the dense layers of the models the editor runs (fill-mask, surprising tokens, Predict): ONNX Runtime's dynamic quantization, measured 2.2× as fast for BERT-Base's fill-mask on a 2-core AMD EPYC (AVX-512 VNNI), no faster for the tiny and small presets. Off by default: its accuracy was measured only on a trained tiny model (the same masked-token accuracy, 97.9% of top-1 predictions unchanged); `bert-studio bench fill-mask --int8 --text FILE` measures a model.",
  },
  "inline.topK": { type: "integer", default: 5, minimum: 1, maximum: 20, description: "Predictions offered per [MASK] (inline alternatives, hover, Fill Mask)." },
} as const satisfies Record<string, SettingSpec>;

export type SettingKey = keyof typeof SETTINGS;

type ValueOf<S> = S extends { enum: readonly (infer E)[] }
  ? E
  : S extends { type: "integer" | "number" }
    ? number
    : S extends { type: "boolean" }
      ? boolean
      : S extends { type: "array" }
        ? string[]
        : string;

/** The value type of each setting: a preset name, a number, a list of globs, ... */
export type Settings = { [K in SettingKey]: ValueOf<(typeof SETTINGS)[K]> };
export type Preset = (typeof PRESET_NAMES)[number];
export type ScheduleName = (typeof SCHEDULE_NAMES)[number];
export type Device = (typeof DEVICE_NAMES)[number];
export type DeviceName = (typeof DEVICE_NAMES)[number];

/**
 * Whether `value` is one the setting allows: its type, bounds and choices. settings.json takes any JSON (the
 * Settings editor only marks what does not fit), so a reader checks before it trusts a value.
 */
export function validSetting<K extends SettingKey>(key: K, value: unknown): value is Settings[K] {
  const spec: SettingSpec = SETTINGS[key];
  switch (spec.type) {
    case "boolean":
      return typeof value === "boolean";
    case "array":
      return Array.isArray(value) && value.every((v) => typeof v === "string");
    case "string":
      return typeof value === "string" && (!spec.enum || spec.enum.includes(value));
    default:
      return (
        typeof value === "number" &&
        Number.isFinite(value) &&
        (spec.type === "number" || Number.isInteger(value)) &&
        !(spec.minimum !== undefined && value < spec.minimum) &&
        !(spec.maximum !== undefined && value > spec.maximum) &&
        !(spec.exclusiveMinimum !== undefined && value <= spec.exclusiveMinimum)
      );
  }
}

/** The setting's default, typed. */
export function settingDefault<K extends SettingKey>(key: K): Settings[K] {
  return SETTINGS[key].default as Settings[K];
}

/** package.json's `contributes.configuration.properties`, as SETTINGS describes them. */
export function configurationProperties(): Record<string, SettingSpec> {
  return Object.fromEntries(Object.entries(SETTINGS).map(([key, spec]) => [`${SECTION}.${key}`, spec]));
}

/** Bytes in the MB of `maxFileMb` and `--max-file-mb`. */
export const MB = 1024 * 1024;

/**
 * Pretraining (server/pretraining/pretrain.ts), as the editor's BERT: Pretrain on Workspace and
 * `bert-studio pretrain` run it when no setting or flag says otherwise. The cadences and the warmup are
 * functions of the run's final number of steps (after --epochs is turned into steps).
 */
export const pretrainDefaults = {
  preset: settingDefault("preset"),
  steps: settingDefault("steps"),
  batch: settingDefault("batch"),
  seq: settingDefault("seq"),
  lr: settingDefault("lr"),
  schedule: settingDefault("schedule"),
  device: settingDefault("device"),
  /** Vocabulary size trained on the corpus when no vocab.txt is given (the editor; the CLI asks for one of the two). */
  trainVocab: settingDefault("vocabSize"),
  maxFileMb: settingDefault("maxFileMb"),
  seed: SEED,
  /** Share of the documents held out for evaluation (at least 2). */
  heldOut: 0.05,
  cased: false,
  accumulationSteps: 1,
  // The recipe of docs/RECIPES.md, chosen by measurement (bench/recipe-study.mjs): on two cores these, with
  // a peak learning rate of 2e-3 and no NSP, took WikiText-2's held-out top-1 at 10 minutes to 37%, mostly
  // by leaving the unigram plateau in ~450 steps instead of ~900-1,000. Each keeps the model an HF BERT.
  /** Share of the tokens predicted (BERT's masked_lm_prob is 0.15; MosaicBERT's 0.3). */
  maskRate: 0.3,
  /** Dropout while pretraining a new model (BERT's 0.1; Cramming's 0). Fine-tuning such a model uses 0.1. */
  dropout: 0,
  /** Standard deviation of a new model's initial weights (HF's initializer_range; BERT's 0.02). */
  initStd: 0.05,
  /** How a new model's position embeddings start: sinusoids (scaled to initStd), not BERT's random normal. */
  positionInit: "sinusoidal" as "normal" | "sinusoidal",
  /**
   * Next-sentence prediction for a new model: off (RoBERTa's and Cramming's choice). BERT's NSP head costs a
   * tiny model masked-LM accuracy at a fixed budget; a model without it is a BertForMaskedLM.
   */
  nsp: false,
  /** AdamW's beta2. */
  beta2: 0.999,
  /**
   * Peak learning rate when continuing a trained model (--from) and none is given: the new-model rate would
   * undo what a bert-base learned (HF's run_mlm uses 5e-5; domain-adaptive pretraining, Gururangan et al.
   * 2020, 1e-4).
   */
  continueLr: 1e-4,
  logEvery: LOG_EVERY,
  warmupFraction: PRETRAIN_WARMUP,
  /** Warmup steps of a run of `steps`: `ratio` of them (--warmup-ratio), 6% by default. */
  warmupSteps: (steps: number, ratio = PRETRAIN_WARMUP): number => Math.round(steps * ratio),
  evalEvery: pretrainCadence,
  checkpointEvery: pretrainCadence,
};

/**
 * Fine-tuning (server/tasks/finetune.ts), as the editor's BERT: Fine-tune on Labeled File and
 * `bert-studio finetune` run it. Evaluation and checkpoints come once per epoch, as in BERT's and HF's
 * fine-tuning recipes: a run is a few epochs, and RUN/best is chosen among models that have each seen all of
 * the data once more (the cadence takes the steps of an epoch, which only the trainer knows).
 */
export const finetuneDefaults = {
  epochs: settingDefault("finetune.epochs"),
  /** The editor has one batch setting for pretraining and fine-tuning. */
  batch: settingDefault("batch"),
  /** The setting's default: BERT's fine-tuning rate for BERT-Base; unset, a run takes lrFor its model. */
  lr: settingDefault("finetune.lr"),
  /**
   * The peak learning rate for a model of this hidden size when none is given: BERT's 5e-5 at 768, more for
   * smaller models, 5e-5 · (768 / hidden)^1.3 to one significant digit (128: 5e-4, 256: 2e-4, 1024: 3e-5).
   * Measured on the tiny preset (H128, pretrained 4.5 min by npm start), SST-2 train (4,000 rows, 3 epochs),
   * scored on SST-2 dev (1,000 rows, majority class 56.3%): accuracy 62.4% at 5e-5, 71.2% at 2e-4, 75.5% at
   * 5e-4, 75.1% at 1e-3, 74.0% at 2e-3. The larger sizes follow the rule, not a measurement.
   */
  lrFor: (hidden: number): number => Number(Math.min(1e-3, 5e-5 * (768 / hidden) ** 1.3).toPrecision(1)),
  /** Tokens per example (`finetune.maxLength`); question answering has its own, see maxLengthFor. */
  maxLength: settingDefault("finetune.maxLength"),
  qaMaxLength: QA_MAX_LENGTH,
  maxLengthFor: (task: string): number => (task === "qa" ? QA_MAX_LENGTH : settingDefault("finetune.maxLength")),
  schedule: settingDefault("schedule"),
  device: settingDefault("device"),
  seed: SEED,
  /**
   * Without an eval file: the share of the labelled examples held out (a seeded split) to evaluate on, so
   * that every run has a score; HF's `train_test_split(test_size=0.1)` habit. 0 trains on every example.
   */
  evalSplit: 0.1,
  accumulationSteps: 1,
  logEvery: LOG_EVERY,
  warmupFraction: FINETUNE_WARMUP,
  warmupSteps: (steps: number): number => Math.round(steps * FINETUNE_WARMUP),
  evalEvery: (stepsPerEpoch: number): number => stepsPerEpoch,
  checkpointEvery: (stepsPerEpoch: number): number => stepsPerEpoch,
};

/** Fill-mask, the hover and the inline completions: predictions per [MASK]. */
export const fillMaskDefaults = {
  topK: settingDefault("inline.topK"),
};
