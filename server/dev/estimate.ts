// The figures of the editor's preset picker (BERT: Pretrain on Workspace): each preset's size, and the time
// of its training step on this machine. The time is measured, not guessed: a few real steps of the tiny
// preset (bench.ts's step: the engine's graph and Optimizer, at the recipe's mask rate and dropout) at the
// batch and sequence length the user trains with give seconds per useful FLOP, and the other presets take
// their FLOPs (trainFlops) at that rate: tiny's 4 steps take seconds, base's would take minutes. The figure
// is rough ("≈" in the picker) and errs long for the larger presets, which use the cores better: at B32 T128
// on 2 cores (one thread, as a job trains; another process busy), tiny's rate put small at 2.17 s a step,
// small's own steps took 1.68 s.
import { bertConfig, PRESETS, type BertConfig } from "../model/config.js";
import { paramShapes } from "../model/params.js";
import { PRESET_NAMES, pretrainDefaults, type Device } from "../../common/settings.js";
import type { PresetEstimate } from "../../common/protocol.js";
import { benchTrain, predictionsPerSeq, trainFlops } from "./bench.js";

export interface StepShape {
  batch: number;
  seq: number;
  vocabSize: number;
}

/** A new model of `preset` as the engine builds it (server/pretraining/pretrain.ts). */
const presetConfig = (preset: keyof typeof PRESETS, vocabSize: number): BertConfig => bertConfig({ ...PRESETS[preset], vocabSize });

const stepFlops = (cfg: BertConfig, s: StepShape) => trainFlops(cfg, s.batch, s.seq, predictionsPerSeq(s.seq, pretrainDefaults.maskRate));

/**
 * Seconds per useful FLOP of a pretraining step on this machine: 3 steps of the tiny preset after 1 warm-up
 * step, with `threads` as the job will train (jobThreads: on 2 cores a job trains on one).
 */
export async function measureSecondsPerFlop(s: StepShape & { device: Device; threads?: number }): Promise<number> {
  const { step_s } = await benchTrain({
    preset: "tiny",
    vocab: s.vocabSize,
    batch: s.batch,
    seq: s.seq,
    steps: 3,
    warmup: 1,
    device: s.device,
    threads: s.threads,
    maskRate: pretrainDefaults.maskRate,
    dropout: pretrainDefaults.dropout,
  });
  return step_s / stepFlops(presetConfig("tiny", s.vocabSize), s);
}

/** Each preset's shape and parameters (with the recipe's heads: MLM, and NSP when it trains NSP; the decoder tied), and its step time at `secondsPerFlop` when given. */
export function presetEstimates(s: StepShape, secondsPerFlop?: number): PresetEstimate[] {
  return PRESET_NAMES.map((preset) => {
    const cfg = presetConfig(preset, s.vocabSize);
    const parameters = paramShapes(cfg, pretrainDefaults.nsp ? "pretraining" : "masked_lm").reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    const stepSeconds = secondsPerFlop === undefined ? undefined : stepFlops(cfg, s) * secondsPerFlop;
    return { preset, layers: cfg.numHiddenLayers, hidden: cfg.hiddenSize, parameters, stepSeconds };
  });
}
