"""Makes the folder transformers.js loads for a BERT masked-LM model folder, as Optimum exports one:
config.json, tokenizer.json and tokenizer_config.json, onnx/model.onnx (torch.onnx.export of
BertForMaskedLM: input_ids, attention_mask, token_type_ids -> logits) and onnx/model_quantized.onnx
(onnxruntime's quantize_dynamic, per channel, int8 weights: what transformers.js's dtype "q8" loads).

    python bench/transformers_js_model.py MODEL_DIR OUT_DIR

For bench/transformers-js.mjs (the side-by-side fill-mask benchmark). Needs torch, transformers, onnx,
onnxscript and onnxruntime (pip).
"""
import os
import shutil
import sys

import torch
from transformers import AutoTokenizer, BertForMaskedLM


def main(src: str, out: str) -> None:
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    model = BertForMaskedLM.from_pretrained(src).eval()
    model.config.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)  # writes tokenizer.json from vocab.txt
    ids = torch.tensor([[101, 1996, 103, 1997, 102]])
    args = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    dynamic = {name: {0: "batch_size", 1: "sequence_length"} for name in ("input_ids", "attention_mask", "token_type_ids")}
    fp32 = os.path.join(out, "onnx", "model.onnx")
    with torch.no_grad():
        torch.onnx.export(
            model, args, fp32, input_names=list(dynamic), output_names=["logits"],
            dynamic_axes={**dynamic, "logits": {0: "batch_size", 1: "sequence_length"}}, opset_version=17, dynamo=False,
        )
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(fp32, os.path.join(out, "onnx", "model_quantized.onnx"), per_channel=True, weight_type=QuantType.QInt8)
    for f in os.listdir(src):
        if f == "vocab.txt":
            shutil.copy(os.path.join(src, f), out)
    print(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
