#!/usr/bin/env python3
"""Reads a safetensors file written by `slm convert` with the official `safetensors` package.

Usage: check_safetensors.py FILE
Prints JSON: {"metadata": {...}, "tensors": {name: {"dtype", "shape", "first", "sum"}}}. Values
("first": up to 5 numbers, "sum": float64 sum) come from numpy and are null for BF16 (numpy has
no bfloat16) or when numpy is absent. Used by crates/slm-cli/tests/cli/convert.rs; the package is
pinned in scripts/test.sh.
"""
import json
import sys

from safetensors import safe_open

try:
    import numpy as np
except ImportError:  # metadata checks still run
    np = None


def main():
    path = sys.argv[1]
    out = {"tensors": {}}
    with safe_open(path, framework="numpy" if np is not None else "pt") as f:
        out["metadata"] = f.metadata()
        for name in f.keys():
            s = f.get_slice(name)
            entry = {"dtype": s.get_dtype(), "shape": list(s.get_shape()), "first": None, "sum": None}
            if np is not None and entry["dtype"] in ("F32", "F16"):
                t = f.get_tensor(name).astype(np.float64)
                entry["first"] = [float(x) for x in t.reshape(-1)[:5]]
                entry["sum"] = float(t.sum())
            out["tensors"][name] = entry
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
