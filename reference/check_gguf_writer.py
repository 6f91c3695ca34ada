#!/usr/bin/env python3
"""Cross-check slm's GGUF writer and reader against gguf-py (the llama.cpp project's Python package).

Pinned peer: gguf==0.19.0 (PyPI).
Install:     pip install gguf==0.19.0 numpy
Run:         python3 reference/check_gguf_writer.py [--model /tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf]
             (from the repository root; builds two slm-format examples with cargo; not run by CI)

Checks, each by comparing a canonical JSON view (version, alignment, data offset, every metadata key
with its GGUF type and value, every tensor's name, ggml dims, type id, absolute offset, byte size and
SHA-256 of its bytes):
  1. files written by slm's GgufWriter (examples/gguf_write_sample.rs; default alignment and 64),
     read by gguf-py's GGUFReader   vs   read by slm's GgufFile (examples/gguf_dump.rs);
     plus explicit expectations on names, dims and types;
  2. a file written by gguf-py's GGUFWriter, read by both;
  3. the real model (if --model exists), read by both;
  4. the real model rewritten by slm (examples/gguf_rewrite.rs: GgufFile -> GgufWriter): gguf-py sees
     the same metadata and tensor bytes as in the original, and llama.cpp (llama-cpp-python, if
     installed) loads it and computes the same logits for a short prompt.
Exits non-zero on the first difference, printing it.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

try:
    import gguf
except ImportError:
    sys.exit("gguf-py is not installed: pip install gguf==0.19.0")

PINNED_GGUF = "0.19.0"
EXAMPLE_ARGS = ["cargo", "run", "-q", "-p", "slm-format", "--example"]


def py_value(field):
    """Canonical JSON for one metadata field as gguf-py reads it."""
    types = field.types
    main = types[0]
    if main != gguf.GGUFValueType.ARRAY:
        return {"type": main.name, "value": field.contents()}
    # parts = [key_len, key, value_type, elem_type, count, ...]; an empty array has no element
    # type in `types`, so take it from the raw part.
    elem = gguf.GGUFValueType(int(field.parts[3][0]))
    if elem == gguf.GGUFValueType.ARRAY:
        # gguf-py flattens nested arrays (its FIXME): compare the flattened leaves.
        return {"type": "ARRAY", "elem": "ARRAY",
                "flat": [v for i in field.data for v in field.parts[i].tolist()]}
    return {"type": "ARRAY", "elem": elem.name, "value": field.contents()}


def py_dump(path):
    r = gguf.GGUFReader(path)
    metadata = [[name, py_value(f)] for name, f in r.fields.items() if not name.startswith("GGUF.")]
    tensors = [{
        "name": t.name,
        "dims": [int(d) for d in t.shape],
        "type": int(t.tensor_type),
        "abs_offset": int(t.data_offset),
        "n_bytes": int(t.n_bytes),
        "sha256": hashlib.sha256(t.data.tobytes()).hexdigest(),
    } for t in r.tensors]
    return {
        "version": int(r.fields["GGUF.version"].parts[0][0]),
        "alignment": int(r.alignment),
        "data_offset": int(r.data_offset),
        "metadata": metadata,
        "tensors": tensors,
    }


def flatten(items):
    """Leaves of slm's nested-array JSON, in order."""
    out = []
    for it in items:
        if it["elem"] == "ARRAY":
            out += flatten(it["items"])
        else:
            out += it["items"]
    return out


def rust_dump(path):
    out = subprocess.run(EXAMPLE_ARGS + ["gguf_dump", "--", path], check=True, capture_output=True, text=True)
    d = json.loads(out.stdout)
    for _, v in d["metadata"]:
        if v["type"] == "ARRAY" and v["elem"] == "ARRAY":
            v["flat"] = flatten(v.pop("value"))
    return d


def compare(label, py, rs):
    for key in ("version", "alignment", "data_offset"):
        if py[key] != rs[key]:
            sys.exit(f"[{label}] {key}: gguf-py {py[key]} != slm {rs[key]}")
    pk = [k for k, _ in py["metadata"]]
    rk = [k for k, _ in rs["metadata"]]
    if pk != rk:
        sys.exit(f"[{label}] metadata keys differ:\n gguf-py {pk}\n slm     {rk}")
    for (k, pv), (_, rv) in zip(py["metadata"], rs["metadata"]):
        if pv != rv:
            sys.exit(f"[{label}] metadata `{k}`:\n gguf-py {str(pv)[:300]}\n slm     {str(rv)[:300]}")
    if len(py["tensors"]) != len(rs["tensors"]):
        sys.exit(f"[{label}] tensor count: gguf-py {len(py['tensors'])} != slm {len(rs['tensors'])}")
    for pt, rt in zip(py["tensors"], rs["tensors"]):
        if pt != rt:
            sys.exit(f"[{label}] tensor differs:\n gguf-py {pt}\n slm     {rt}")
    print(f"[{label}] identical: {len(pk)} metadata keys, {len(py['tensors'])} tensors, "
          f"alignment {py['alignment']}, data offset {py['data_offset']}")


def check_slm_writer(tmp):
    for alignment in (None, 64):
        path = os.path.join(tmp, f"slm_sample_{alignment}.gguf")
        subprocess.run(EXAMPLE_ARGS + ["gguf_write_sample", "--", path] + ([str(alignment)] if alignment else []),
                       check=True)
        py = py_dump(path)
        compare(f"slm writer, alignment {alignment or 'default'}", py, rust_dump(path))
        # Expectations independent of slm's reader.
        want = {
            "output_norm.weight": ([3, 2], gguf.GGMLQuantizationType.F32),
            "blk.0.attn_q.weight": ([64, 2], gguf.GGMLQuantizationType.Q4_1),
            "token_embd.weight": ([32, 3], gguf.GGMLQuantizationType.Q8_0),
            "t.f16": ([5], gguf.GGMLQuantizationType.F16),
            "t.q4k": ([256], gguf.GGMLQuantizationType.Q4_K),
        }
        got = {t["name"]: (t["dims"], t["type"]) for t in py["tensors"]}
        assert got == {k: (d, int(ty)) for k, (d, ty) in want.items()}, got
        meta = dict(py["metadata"])
        assert meta["general.architecture"] == {"type": "STRING", "value": "llama"}, meta["general.architecture"]
        assert meta["t.u64"]["value"] == 2**64 - 1 and meta["t.i64"]["value"] == -(2**63) + 1
        assert meta["tokenizer.ggml.tokens"]["value"] == ["<s>", "</s>", "Ġhello", "日本"]
        assert meta["t.nested"]["flat"] == [1, 2, 3]
        assert py["alignment"] == (alignment or 32) and py["data_offset"] % py["alignment"] == 0
        r = gguf.GGUFReader(path)
        norm = next(t for t in r.tensors if t.name == "output_norm.weight")
        assert norm.data.tolist() == [[-1.0, -0.5, 0.0], [0.5, 1.0, 1.5]], norm.data


def check_gguf_py_writer(tmp):
    path = os.path.join(tmp, "ggufpy.gguf")
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_uint8("p.u8", 7)
    w.add_int8("p.i8", -7)
    w.add_uint16("p.u16", 700)
    w.add_int16("p.i16", -700)
    w.add_uint32("llama.block_count", 3)
    w.add_int32("p.i32", -70000)
    w.add_float32("p.f32", 0.1)
    w.add_uint64("p.u64", 2**63)
    w.add_int64("p.i64", -(2**40))
    w.add_float64("p.f64", 0.1)
    w.add_bool("p.bool", False)
    w.add_string("p.str", "héllo\n{{ template }}")
    w.add_array("p.strs", ["a", "", "ß"])
    w.add_array("p.floats", [0.5, -2.0])
    w.add_array("p.ints", [1, -2, 3])
    w.add_array("p.bools", [True, False])
    w.add_tensor("f32", np.arange(6, dtype=np.float32).reshape(2, 3))
    w.add_tensor("f16", np.array([1.0, -2.0, 0.5], dtype=np.float16))
    w.add_tensor("i8", np.arange(-4, 4, dtype=np.int8).reshape(2, 2, 2))
    q8 = np.arange(3 * 34, dtype=np.uint8).reshape(3, 34)
    w.add_tensor("q8", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    compare("gguf-py writer", py_dump(path), rust_dump(path))


def check_rewrite(model, original, out):
    subprocess.run(EXAMPLE_ARGS + ["gguf_rewrite", "--", model, out], check=True)
    rewritten = py_dump(out)
    strip = lambda ts: [{k: v for k, v in t.items() if k != "abs_offset"} for t in ts]  # noqa: E731
    if rewritten["metadata"] != original["metadata"] or strip(rewritten["tensors"]) != strip(original["tensors"]):
        sys.exit("[rewrite] gguf-py sees different metadata or tensors after the slm rewrite")
    same_bytes = open(model, "rb").read() == open(out, "rb").read()
    print(f"[rewrite] gguf-py sees identical metadata and tensor bytes (file byte-identical: {same_bytes})")
    try:
        from llama_cpp import Llama
    except ImportError:
        print("(skipping the llama.cpp load: llama-cpp-python not installed)")
        return
    logits = []
    for path in (model, out):
        llm = Llama(model_path=path, n_ctx=64, n_threads=2, logits_all=True, verbose=False)
        ids = llm.tokenize(b"The capital of France is", add_bos=False)
        llm.eval(ids)
        logits.append(np.array(llm.scores[len(ids) - 1]))
        del llm
    if not np.array_equal(logits[0], logits[1]):
        sys.exit(f"[rewrite] llama.cpp logits differ: max |diff| {np.abs(logits[0] - logits[1]).max()}")
    print(f"[rewrite] llama.cpp loads the rewritten file; last-position logits identical (argmax {logits[0].argmax()})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="/tmp/assets/SmolLM2-135M-Instruct.Q4_1.gguf")
    args = ap.parse_args()
    from importlib.metadata import version
    if version("gguf") != PINNED_GGUF:
        print(f"warning: gguf {version('gguf')} installed, the check was written against {PINNED_GGUF}")
    with tempfile.TemporaryDirectory() as tmp:
        check_slm_writer(tmp)
        check_gguf_py_writer(tmp)
    if os.path.exists(args.model):
        original = py_dump(args.model)
        compare("real model", original, rust_dump(args.model))
        with tempfile.TemporaryDirectory() as tmp:
            check_rewrite(args.model, original, os.path.join(tmp, "rewritten.gguf"))
    else:
        print(f"(skipping the real model: {args.model} not found)")
    print("OK")


if __name__ == "__main__":
    main()
