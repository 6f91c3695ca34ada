#!/usr/bin/env python3
"""Golden logits and greedy continuations for SmolLM2-135M-Instruct Q4_1, produced by llama.cpp.

Pinned peer: llama-cpp-python==0.3.36 (vendors llama.cpp commit 0c1e57098, see its CHANGELOG).
Install:     pip install llama-cpp-python==0.3.36 numpy
Run:         python3 reference/gen_logits_golden.py [--model PATH] [--out-dir tests/golden]
             (default model: /tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf; it must have the sha256 below)

Produces, in --out-dir:
  logits_smollm2.json          metadata: per case the text, token ids, greedy continuation, logits file name
  logits_smollm2_<case>.f16    raw little-endian IEEE float16, shape [n_tokens][n_vocab] row-major: row i holds
                               the logits after feeding ids[0..=i] (teacher forcing, one llm.eval per case after
                               llm.reset(), so the whole prompt goes through llama.cpp as one batch)

How the cases are built: each text is tokenized with add_bos=False (the model's tokenizer.ggml.add_bos_token is
false; llama.cpp inserts no BOS for it), the chat case with special=True (so <|im_start|>/<|im_end|> become single
control tokens), the others with special=False. Cases may be cut to a token cap so that the sum of
positions over all cases is <= 100 (caps in CASES); the stored text is the cut text and re-tokenizes to exactly the stored ids.

Greedy continuation: after the teacher-forced eval, GREEDY_TOKENS steps of argmax over llm.scores (no sampler),
each new token fed back with llm.eval([tok]); stops early after an end-of-generation token (which is kept).
Also stored per step: the margin between the top-1 and top-2 logit, so a consumer can tell fragile steps.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np

PINNED_VERSION = "0.3.36"
LLAMA_CPP_COMMIT = "0c1e57098"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT_MODEL = "/tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf"
N_VOCAB = 49152
MAX_TOTAL_POSITIONS = 100
GREEDY_TOKENS = 24

CHAT_TEXT = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
)
PROSE_TEXT = (
    "The old lighthouse stood at the edge of the cliff, its white paint peeling in long strips. "
    "Every evening the keeper climbed the spiral stairs to light the lamp, although no ship had "
    "passed that way in years."
)
CODE_TEXT = 'def add(a, b):\n    """Return the sum."""\n    return a + b\n'
# CJK and the emoji are split into byte-level tokens; "ü" and "×" are single tokens.
MIXED_TEXT = "Zürich, 東京: 3 × 7 = 21 😀"

# (name, text, parse_special, max positions or None for all). Caps chosen so the total is exactly 100:
# chat 37 (whole), prose cut to 23, code 19 (whole), mixed 21 (whole).
CASES = [
    ("chat", CHAT_TEXT, True, None),
    ("prose", PROSE_TEXT, False, 23),
    ("code", CODE_TEXT, False, 19),
    ("mixed", MIXED_TEXT, False, 21),
]


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cut_to_budget(llm, text, special, budget):
    """Return (text, ids) where ids = tokenize(text) and len(ids) <= budget.

    The cut text is the detokenized id prefix; if that does not re-tokenize to the same prefix (a merge across the
    cut), the prefix is shortened until it does.
    """
    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)
    if len(ids) <= budget:
        return text, ids
    n = budget
    while n > 0:
        piece = llm.detokenize(ids[:n], special=special)
        try:
            cut = piece.decode("utf-8")
        except UnicodeDecodeError:
            n -= 1
            continue
        if llm.tokenize(cut.encode("utf-8"), add_bos=False, special=special) == ids[:n]:
            return cut, ids[:n]
        n -= 1
    raise SystemExit(f"cannot cut {text!r} to {budget} tokens")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "..", "tests", "golden"))
    args = ap.parse_args()

    import llama_cpp

    if llama_cpp.__version__ != PINNED_VERSION:
        sys.exit(f"llama-cpp-python {llama_cpp.__version__} found, {PINNED_VERSION} required")
    digest = sha256_of(args.model)
    if digest != MODEL_SHA256:
        sys.exit(f"model sha256 {digest} != expected {MODEL_SHA256}")

    llm = llama_cpp.Llama(
        model_path=args.model, logits_all=True, n_ctx=512, n_threads=2, seed=0, verbose=False
    )
    if llm.n_vocab() != N_VOCAB:
        sys.exit(f"n_vocab {llm.n_vocab()} != {N_VOCAB}")
    vocab = llm._model.vocab
    eog = {t for t in range(N_VOCAB) if llama_cpp.llama_vocab_is_eog(vocab, t)}

    os.makedirs(args.out_dir, exist_ok=True)
    cases_out = []
    for name, text, special, cap in CASES:
        text, ids = cut_to_budget(llm, text, special, cap if cap is not None else MAX_TOTAL_POSITIONS)

        llm.reset()
        llm.eval(ids)
        logits = np.array(llm.scores[: len(ids), :], dtype=np.float32)
        if not np.all(np.isfinite(logits)):
            sys.exit(f"{name}: non-finite logits")
        logits_file = f"logits_smollm2_{name}.f16"
        logits.astype("<f2").tofile(os.path.join(args.out_dir, logits_file))

        greedy, margins = [], []
        for _ in range(GREEDY_TOKENS):
            row = np.array(llm.scores[llm.n_tokens - 1, :], dtype=np.float32)
            top2 = np.argsort(row)[-2:]
            tok = int(top2[1])
            greedy.append(tok)
            margins.append(round(float(row[top2[1]] - row[top2[0]]), 4))
            if tok in eog:
                break
            llm.eval([tok])
        greedy_text = llm.detokenize(greedy, special=True).decode("utf-8", errors="replace")

        print(f"{name}: {len(ids)} positions, greedy: {greedy_text!r}")
        cases_out.append(
            {
                "name": name,
                "text": text,
                "parse_special": special,
                "ids": [int(t) for t in ids],
                "logits_file": logits_file,
                "argmax": [int(t) for t in logits.argmax(axis=1)],
                "greedy_ids": greedy,
                "greedy_text": greedy_text,
                "greedy_top2_margin": margins,
            }
        )

    meta = {
        "generator": f"reference/gen_logits_golden.py (llama-cpp-python {PINNED_VERSION}, llama.cpp {LLAMA_CPP_COMMIT})",
        "model_file": os.path.basename(args.model),
        "model_sha256": MODEL_SHA256,
        "n_vocab": N_VOCAB,
        "logits_dtype": "float16 little-endian, [n_tokens][n_vocab] row-major",
        "settings": "n_ctx=512 n_threads=2 seed=0 logits_all=True, flash_attn off, KV cache f16, add_bos=False",
        "cases": cases_out,
    }
    with open(os.path.join(args.out_dir, "logits_smollm2.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")
    total = sum(len(c["ids"]) for c in cases_out)
    print(f"total positions: {total}")
    if total > MAX_TOTAL_POSITIONS:
        sys.exit(f"total positions {total} > {MAX_TOTAL_POSITIONS}: lower the caps in CASES")


if __name__ == "__main__":
    main()
