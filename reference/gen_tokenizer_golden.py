#!/usr/bin/env python3
"""Golden token ids for SmolLM2-135M-Instruct's tokenizer, produced by llama.cpp.

Pinned peer: llama-cpp-python==0.3.36 (vendors llama.cpp commit 0c1e57098).
Install:     pip install llama-cpp-python==0.3.36
Run:         python3 reference/gen_tokenizer_golden.py [--model PATH] [--out tests/golden/tokenizer_smollm2.json]
             (default model: /tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf; it must have the sha256 below)

The model is loaded with vocab_only=True (no weights). For every case the ids are
`llm.tokenize(text.encode(), add_bos=False, special=parse_special)` (the model's
tokenizer.ggml.add_bos_token is false anyway) and `detok` is `llm.detokenize(ids, special=True)`
decoded as UTF-8 (what llama.cpp prints for those ids, control tokens included).

Also stored: the vocabulary size, BOS/EOS ids and the end-of-generation ids (llama_vocab_is_eog
over the whole vocabulary), so the Rust side can check its special-token bookkeeping.

Consumed by crates/slm-runtime/tests/tokenizer_golden.rs (runs when SLM_TEST_MODEL points to the
model file).
"""

import argparse
import hashlib
import json
import sys

PINNED_VERSION = "0.3.36"
LLAMA_CPP_COMMIT = "0c1e57098"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT_MODEL = "/tmp/assets/" + MODEL_FILE
APACHE_LICENSE = "/usr/share/common-licenses/Apache-2.0"

PYTHON_CODE = '''def fib(n: int) -> int:
    """Return the n-th Fibonacci number."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


if __name__ == "__main__":
    print([fib(i) for i in range(10)])  # [0, 1, 1, 2, ...]
'''

RUST_CODE = '''impl<T: Ord + Copy> Heap<T> {
    pub fn push(&mut self, x: T) -> Result<(), Error> {
        self.items.push(x);
        let mut i = self.items.len() - 1;
        while i > 0 && self.items[(i - 1) / 2] < self.items[i] {
            self.items.swap(i, (i - 1) / 2);
            i = (i - 1) / 2;
        }
        Ok(())
    }
}
'''

JSON_TEXT = '{"model": "smollm2", "params": {"temperature": 0.7, "top_p": 0.95, "stop": ["\\n\\n", "</s>"]}, "ok": true, "n": null}'

PROSE = ("The quick brown fox jumps over the lazy dog. Meanwhile, in a small village far away, "
         "an old clockmaker repaired watches that nobody had wound for decades; each one, he said, "
         "remembered the hour its owner had left.")


def apache_paragraph() -> str:
    """Section 2 of the Apache License 2.0, as laid out in the file (indentation and newlines kept)."""
    with open(APACHE_LICENSE, encoding="utf-8") as f:
        text = f.read()
    start = text.index("   2. Grant of Copyright License.")
    end = text.index("   3. Grant of Patent License.")
    return text[start:end]


def cases():
    """(name, text, parse_special) triples."""
    plain = [
        ("empty", ""),
        ("hello", "Hello, world!"),
        ("prose", PROSE),
        ("python", PYTHON_CODE),
        ("rust", RUST_CODE),
        ("json", JSON_TEXT),
        ("digits_long", "12345678901234567890"),
        ("decimals", "pi is 3.14159, e is 2.71828 and 0.5 + .25 = 0.75"),
        ("versions_money", "Version 1.2.3-beta costs $1,234.56 (50% off) on 2024-02-29."),
        ("year_and_pi", "The year 2024 had 366 days; \u03c0 \u2248 3.14159265358979"),
        ("accents", "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 fa\u00e7ade S\u00e3o Paulo \u00c5ngstr\u00f6m"),
        ("cjk", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3068\u4e2d\u6587\u6587\u672c\uff0c\u8fd8\u6709\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8."),
        ("arabic", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645\u060c \u0643\u064a\u0641 \u062d\u0627\u0644\u0643\u061f"),
        ("scripts", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac, \u0440\u0443\u0441\u0441\u043a\u0438\u0439, \u05e2\u05d1\u05e8\u05d9\u05ea, \u0939\u093f\u0928\u094d\u0926\u0940"),
        ("emoji", "I love \U0001f980 and \U0001f40d! \U0001f44b\U0001f3fd"),
        ("emoji_zwj", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family, \U0001f469\U0001f3fd\u200d\U0001f4bb coder, \u2764\ufe0f\u200d\U0001f525"),
        ("flags", "\U0001f1eb\U0001f1f7\U0001f1ef\U0001f1f5\U0001f1fa\U0001f1f8 flags"),
        ("math_symbols", "\u2211 x\u00b2 \u2264 \u221e, \u03b1+\u03b2=\u03b3, \u00bd \u00be, \uff11\uff12\uff13 \u216b"),
        ("space_runs", "a  b   c    d     e"),
        ("leading_spaces", "   leading"),
        ("trailing_spaces", "trailing   "),
        ("only_space", " "),
        ("only_newline", "\n"),
        ("tabs", "\tindented\t\ttabs\t"),
        ("newlines", "line1\nline2\n\nline4\n\n\n"),
        ("crlf", "windows\r\nline\r\n\r\nend"),
        ("mixed_ws", " \t \n  x \n\t y  \r\n"),
        ("contractions", "don't can't won't it's I'm you're we've they'll he'd"),
        ("contractions_upper", "I'M SURE YOU'RE RIGHT, DON'T WORRY. It'S mIxEd"),
        ("punct_runs", "Wait... what?!?! (yes) [no] {maybe} --- *** ;;; ~~ ``` @@"),
        ("url_email", "https://example.com/path?q=1&r=2#frag user.name+tag@example.org"),
        ("markdown", "# Title\n\n- item **bold** _it_ `code`\n> quote\n"),
        ("html", "<div class=\"x\" id='y'>Hi &amp; bye</div>"),
        ("invisible", "non\u00a0breaking\u200bzero\u2009thin\u3000ideographic"),
        ("escape_seq", "\x1b[31mred\x1b[0m\x07 bell"),
        ("repeats", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa !!!!!!!!!!!!!!!! 0000000000"),
        ("apache_paragraph", apache_paragraph()),
    ]
    out = [(name, text, False) for name, text in plain]
    chat = "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n"
    for parse_special in (True, False):
        tag = "special" if parse_special else "plain"
        out += [
            ("chat_" + tag, chat, parse_special),
            ("endoftext_" + tag, "<|endoftext|>", parse_special),
            ("glued_" + tag, "a<|im_end|>b<|im_start|>c", parse_special),
            ("jupyter_" + tag, "<jupyter_code>print(1)<jupyter_output>1", parse_special),
            ("spaced_" + tag, "  <|im_start|>  system \n", parse_special),
        ]
    return out


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out", default="tests/golden/tokenizer_smollm2.json")
    args = ap.parse_args()

    import llama_cpp
    from llama_cpp import Llama

    if llama_cpp.__version__ != PINNED_VERSION:
        print(f"llama-cpp-python {llama_cpp.__version__} found, {PINNED_VERSION} pinned", file=sys.stderr)
        return 1
    digest = sha256(args.model)
    if digest != MODEL_SHA256:
        print(f"{args.model}: sha256 {digest}, expected {MODEL_SHA256}", file=sys.stderr)
        return 1

    llm = Llama(model_path=args.model, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    eog = [i for i in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, i)]

    records = []
    for name, text, parse_special in cases():
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=parse_special)
        detok = llm.detokenize(ids, special=True).decode("utf-8", errors="replace")
        records.append({"name": name, "text": text, "parse_special": parse_special, "ids": ids, "detok": detok})

    golden = {
        "generator": f"reference/gen_tokenizer_golden.py with llama-cpp-python=={PINNED_VERSION} (llama.cpp {LLAMA_CPP_COMMIT})",
        "model_file": MODEL_FILE,
        "model_sha256": MODEL_SHA256,
        "n_vocab": n_vocab,
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "eog": eog,
        "cases": records,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(golden, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(records)} cases to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
