#!/usr/bin/env python3
"""Prints {tensor name: [type name, dims, sha256 of the data]} of a GGUF file as gguf-py (llama.cpp's own
Python package) reads it. Used by cli/quantize.rs to check files written by `slm quantize`."""
import hashlib, json, sys
from gguf import GGUFReader

r = GGUFReader(sys.argv[1])
out = {t.name: [t.tensor_type.name, [int(d) for d in t.shape], hashlib.sha256(t.data.tobytes()).hexdigest()] for t in r.tensors}
fields = {k: f.parts[f.data[0]].tolist() for k, f in r.fields.items() if k == "general.file_type"}
print(json.dumps({"tensors": out, "file_type": fields.get("general.file_type", [None])[0]}))
