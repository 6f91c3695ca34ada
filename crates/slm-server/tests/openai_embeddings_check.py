"""Drives `POST /v1/embeddings` of an slm server with the official `openai` Python SDK.

Usage: python3 openai_embeddings_check.py BASE_URL API_KEY GOLDEN_JSON
Run by tests/embeddings_sdk.rs against a server on 127.0.0.1 serving all-MiniLM-L6-v2; GOLDEN_JSON is
tests/golden/minilm_embeddings.json (sentence-transformers' vectors). Exits non-zero on the first failure.
"""
import base64
import json
import math
import struct
import sys

import openai
from openai import OpenAI

base_url, api_key, golden_path = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=0, timeout=120)
golden = json.load(open(golden_path))["texts"]
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


def cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


ids = [m.id for m in client.models.list().data]
check(len(ids) == 1, f"the encoder is listed: {ids}")
model = ids[0]

# Default request: the SDK asks for base64 and decodes it to floats.
r = client.embeddings.create(model=model, input=golden[0]["text"])
check(r.object == "list" and r.model == model, (r.object, r.model))
check(len(r.data) == 1 and r.data[0].index == 0 and r.data[0].object == "embedding", r.data)
v = r.data[0].embedding
check(len(v) == 384, len(v))
check(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4, "normalised")
check(cos(v, golden[0]["embedding"]) >= 0.9999, "matches sentence-transformers")
check(r.usage.prompt_tokens == len(golden[0]["ids"]) == r.usage.total_tokens, r.usage)

# A batch, as floats; the same numbers as base64.
texts = [g["text"] for g in golden[:8]]
rf = client.embeddings.create(model=model, input=texts, encoding_format="float")
check([d.index for d in rf.data] == list(range(8)), "indices in order")
for d, g in zip(rf.data, golden[:8]):
    check(cos(d.embedding, g["embedding"]) >= 0.9999, f"batch vector of {g['text'][:30]!r}")
raw = client.embeddings.with_raw_response.create(model=model, input=texts[:2], encoding_format="base64")
body = json.loads(raw.text)
for d, f in zip(body["data"], rf.data[:2]):
    floats = struct.unpack(f"<{384}f", base64.b64decode(d["embedding"]))
    check(max(abs(a - b) for a, b in zip(floats, f.embedding)) < 1e-6, "base64 == float")

# Errors come back as the SDK's typed exceptions.
for kwargs, exc, what in [
    (dict(model=model, input=""), openai.BadRequestError, "empty input"),
    (dict(model=model, input=[]), openai.BadRequestError, "empty list"),
    (dict(model=model, input=[101, 2023, 102]), openai.BadRequestError, "token ids"),
    (dict(model=model, input="x", dimensions=100), openai.BadRequestError, "dimensions"),
    (dict(model=model, input="x", encoding_format="int8"), openai.BadRequestError, "format"),
    (dict(model="no-such-model", input="x"), openai.NotFoundError, "unknown model"),
]:
    try:
        client.embeddings.create(**kwargs)
        check(False, f"{what} must fail")
    except exc as e:
        check(400 <= e.status_code < 500, f"{what}: {e.status_code}")
try:
    OpenAI(base_url=base_url + "/v1", api_key="wrong", max_retries=0).embeddings.create(model=model, input="x")
    check(False, "a wrong key must fail")
except openai.AuthenticationError:
    checks += 1

print(json.dumps({"ok": True, "checks": checks}))
