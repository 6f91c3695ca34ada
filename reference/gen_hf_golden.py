#!/usr/bin/env python3
"""Golden logits of the SmolLM2 Hugging Face export, computed by PyTorch/transformers.

Pinned peer: torch 2.5.1 (CPU), transformers 4.46.3, tokenizers 0.20.3, safetensors 0.8.0.
Run by hand (CI has no torch); the output is committed as tests/golden/hf_smollm2_logits.json.

    target/release/slm convert $SLM_TEST_MODEL /tmp/smollm2-hf          # F32 export of the Q4_1 model
    python reference/gen_hf_golden.py /tmp/smollm2-hf $SLM_TEST_MODEL tests/golden/hf_smollm2_logits.json

What it checks, through `crates/slm-cli/tests/cli/convert.rs`:
- transformers loads slm's export (config.json, model.safetensors, tokenizer.json/_config) as a
  LlamaForCausalLM, i.e. names, shapes and the inverse Q/K permutation are what HF expects;
- slm's logits on the re-imported GGUF equal PyTorch's on the export (tolerance in the test);
- the exported tokenizer.json tokenizes like slm (ids recorded per prompt).

Stored per prompt: the token ids (HF tokenizer, special tokens parsed), the argmax at every
position, the top-20 (id, logit) of the last position, and the logits of 16 fixed vocabulary
ids at every position. Logits are rounded to 5 decimals.
"""
import hashlib
import json
import sys

import safetensors
import tokenizers
import torch
import transformers
from safetensors import safe_open

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "<|im_start|>user\nWhat is 17 * 23?<|im_end|>\n<|im_start|>assistant\n",
    "Ünïcödé and emoji 🚀 in 2024: 12345 tokens!",
]
FIXED_IDS = list(range(0, 49152, 3072))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    hf_dir, gguf_path, out_path = sys.argv[1:4]
    torch.manual_seed(0)
    torch.set_num_threads(2)
    # The file is readable by the official safetensors package (names and dtypes listed).
    with safe_open(f"{hf_dir}/model.safetensors", framework="pt") as f:
        n_tensors = len(list(f.keys()))
    tok = transformers.AutoTokenizer.from_pretrained(hf_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32)
    model.eval()
    cases = []
    for text in PROMPTS:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double()
        last = logits[-1]
        top = torch.topk(last, 20)
        cases.append({
            "text": text,
            "ids": ids,
            "argmax": [int(i) for i in logits.argmax(-1)],
            "last_top20": [[int(i), round(float(v), 5)] for v, i in zip(top.values, top.indices)],
            "fixed_ids_logits": [[round(float(v), 5) for v in row[FIXED_IDS]] for row in logits],
            "max_abs_logit": round(float(logits.abs().max()), 5),
        })
    golden = {
        "generator": "reference/gen_hf_golden.py",
        "peer": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
        },
        "source_gguf_sha256": sha256(gguf_path),
        "export": "slm convert SOURCE DIR (F32)",
        "n_tensors": n_tensors,
        "fixed_ids": FIXED_IDS,
        "cases": cases,
    }
    with open(out_path, "w") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
