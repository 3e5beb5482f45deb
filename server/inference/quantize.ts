// int8 weights for inference (dynamic quantization, as ONNX Runtime's quantize_dynamic does it): each
// nn.Linear weight W [out, in] becomes int8 [in, out] with one scale per output feature, max |W[o]| /
// INT8_RANGE, symmetric (zero point 0); the activations are quantized per call by DynamicQuantizeMatMul.
// (ORT constant-folding QuantizeLinear and Transpose ops on the float weights instead took 2.3 s more
// for BERT-Base than this.)

/**
 * The largest magnitude of a quantized weight: 7 bits, not 8 ("reduce_range"). Without VNNI, x86's
 * uint8 × int8 products are summed in pairs into int16 (VPMADDUBSW), which 255 · 127 · 2 overflows;
 * 255 · 63 · 2 does not, so the same weights are exact on every x86 CPU.
 */
export const INT8_RANGE = 63;

/** The scale of an all-zero row (any positive number: its weights quantize to 0). */
export const MIN_SCALE = 1e-30;

/**
 * W [out, in] row-major (PyTorch's nn.Linear) → int8 [out, in] and a scale per output feature:
 * W[o][i] ≈ weight[o][i] · scale[o], rounded to nearest (ties up), |weight| ≤ INT8_RANGE. (Not transposed
 * to DynamicQuantizeMatMul's [in, out] here: a transpose in JavaScript took 0.9 s for BERT-Base's encoder;
 * the graph's Transpose nodes on these initializers are folded by ONNX Runtime, whose int8 BERT-Base
 * session is then made in 0.4 s against the fp32 one's 0.85 s.)
 */
export function quantizeLinearWeight(w: Float32Array, outFeatures: number, inFeatures: number): { weight: Int8Array; scale: Float32Array } {
  if (w.length !== outFeatures * inFeatures) throw new Error(`a [${outFeatures}, ${inFeatures}] weight has ${outFeatures * inFeatures} values, not ${w.length}`);
  const weight = new Int8Array(outFeatures * inFeatures);
  const scale = new Float32Array(outFeatures);
  for (let o = 0; o < outFeatures; o++) {
    const [start, end] = [o * inFeatures, (o + 1) * inFeatures];
    let max = 0;
    for (let i = start; i < end; i++) max = Math.max(max, Math.abs(w[i]));
    if (!Number.isFinite(max)) throw new Error(`row ${o} of the weight is not finite`);
    scale[o] = max > 0 ? max / INT8_RANGE : MIN_SCALE;
    const inv = max > 0 ? INT8_RANGE / max : 0;
    // A store into an Int8Array truncates and wraps modulo 256, so storing v + 256.5 (positive, as
    // |v| ≤ 63) stores floor(v + 0.5): round half up without Math.round or a branch on the sign, which
    // took 2 to 3 times as long.
    for (let i = start; i < end; i++) weight[i] = w[i] * inv + 256.5;
  }
  return { weight, scale };
}
