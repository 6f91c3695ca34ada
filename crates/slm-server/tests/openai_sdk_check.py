"""Drives an slm server with the official `openai` Python SDK (pinned in scripts/test.sh).

Usage: python3 openai_sdk_check.py BASE_URL API_KEY
Run by tests/openai_sdk.rs against a server on 127.0.0.1; exits non-zero on the first failure.
"""
import json
import math
import sys

import openai
from openai import OpenAI

base_url, api_key = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base_url + "/v1", api_key=api_key, max_retries=0, timeout=120)
checks = 0


def check(cond, what):
    global checks
    if not cond:
        raise AssertionError(what)
    checks += 1


# Models.
models = client.models.list()
ids = [m.id for m in models.data]
check(len(ids) == 1, f"one model listed: {ids}")
model = ids[0]
check(client.models.retrieve(model).id == model, "models.retrieve")
try:
    client.models.retrieve("no-such-model")
    check(False, "an unknown model must fail")
except openai.NotFoundError as e:
    check(e.status_code == 404 and model in e.message, e.message)

# Chat, non-streamed, greedy.
messages = [{"role": "user", "content": "What is the capital of France?"}]
r = client.chat.completions.create(model=model, messages=messages, max_tokens=16, temperature=0)
check(r.object == "chat.completion", r.object)
check(r.model == model, r.model)
check(r.id.startswith("chatcmpl-"), r.id)
text = r.choices[0].message.content
check(isinstance(text, str) and text, f"content: {text!r}")
check(r.choices[0].message.role == "assistant", "role")
check(r.choices[0].finish_reason in ("stop", "length"), r.choices[0].finish_reason)
check(r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, str(r.usage))

# Same request streamed, with a usage chunk: the same text.
stream = client.chat.completions.create(
    model=model, messages=messages, max_tokens=16, temperature=0, stream=True, stream_options={"include_usage": True}
)
parts, usage, finish = [], None, None
for chunk in stream:
    check(chunk.object == "chat.completion.chunk", chunk.object)
    if chunk.usage is not None:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.content:
            parts.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
check("".join(parts) == text, f"streamed {''.join(parts)!r} != {text!r}")
check(usage is not None and usage.completion_tokens == r.usage.completion_tokens, f"stream usage {usage}")
check(finish == r.choices[0].finish_reason, f"stream finish {finish}")

# Log-probabilities.
r = client.chat.completions.create(
    model=model, messages=messages, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3
)
content = r.choices[0].logprobs.content
check(len(content) > 0, "logprobs content")
for t in content:
    check(t.logprob <= 0, f"logprob {t.logprob}")
    check(len(t.top_logprobs) == 3, "3 alternatives")
    check(t.top_logprobs[0].token == t.token, f"greedy token {t.token!r} is the top one")
    check(sum(math.exp(a.logprob) for a in t.top_logprobs) <= 1.0001, "a distribution")
check("".join(t.token for t in content) == r.choices[0].message.content, "tokens spell the text")

# Legacy completions, with logprobs, and streamed.
r = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0, logprobs=2)
check(r.object == "text_completion", r.object)
check(r.choices[0].text, "completion text")
check(len(r.choices[0].logprobs.tokens) == len(r.choices[0].logprobs.token_logprobs), "logprob arrays")
streamed = "".join(
    c.choices[0].text
    for c in client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0, stream=True)
    if c.choices
)
check(streamed == r.choices[0].text, f"streamed completion {streamed!r}")

# Seeded sampling is reproducible.
kw = dict(model=model, messages=[{"role": "user", "content": "Tell me a story."}], max_tokens=12, temperature=1.0, seed=42)
a = client.chat.completions.create(**kw).choices[0].message.content
b = client.chat.completions.create(**kw).choices[0].message.content
check(a == b, f"same seed, different text: {a!r} vs {b!r}")

# Constrained output (response_format): the answer parses and matches the schema.
person = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
ask = [{"role": "user", "content": "Invent a person. Answer in JSON with their name and age."}]
schema_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": person, "strict": True}}
for temperature in (0, 1.0):
    r = client.chat.completions.create(
        model=model, messages=ask, max_tokens=200, temperature=temperature, seed=7, response_format=schema_format
    )
    check(r.choices[0].finish_reason == "stop", f"finish {r.choices[0].finish_reason}: {r.choices[0].message.content!r}")
    obj = json.loads(r.choices[0].message.content)
    check(set(obj) == {"name", "age"}, f"keys of {obj}")
    check(isinstance(obj["name"], str) and isinstance(obj["age"], int), f"types of {obj}")
greedy = client.chat.completions.create(
    model=model, messages=ask, max_tokens=200, temperature=0, response_format=schema_format
).choices[0].message.content
streamed = "".join(
    c.choices[0].delta.content or ""
    for c in client.chat.completions.create(
        model=model, messages=ask, max_tokens=200, temperature=0, response_format=schema_format, stream=True
    )
    if c.choices
)
check(streamed == greedy, f"streamed {streamed!r} != {greedy!r}")
# The SDK's own structured-output helper (schema built from a pydantic model, answer parsed by it).
try:
    import pydantic

    class Person(pydantic.BaseModel):
        name: str
        age: int

    parsed = client.chat.completions.parse(model=model, messages=ask, max_tokens=200, temperature=0, response_format=Person)
    p = parsed.choices[0].message.parsed
    check(isinstance(p, Person) and isinstance(p.age, int), f"parsed {p!r}")
except ImportError:
    pass
r = client.chat.completions.create(
    model=model, messages=ask, max_tokens=200, temperature=0, response_format={"type": "json_object"}
)
check(isinstance(json.loads(r.choices[0].message.content), dict), f"json_object: {r.choices[0].message.content!r}")
check(r.choices[0].finish_reason == "stop", f"json_object finish {r.choices[0].finish_reason}")
# Out of tokens mid-JSON: the text is cut and says so, as with OpenAI.
r = client.chat.completions.create(model=model, messages=ask, max_tokens=3, temperature=0, response_format=schema_format)
check(r.choices[0].finish_reason == "length", f"cut finish {r.choices[0].finish_reason}")
check(r.usage.completion_tokens == 3, f"cut usage {r.usage}")

# Errors arrive as the SDK's typed exceptions.
try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "word " * 2000}], max_tokens=4)
    check(False, "context overflow must fail")
except openai.BadRequestError as e:
    check(e.status_code == 400, str(e))
    check(e.code == "context_length_exceeded", f"code {e.code}")
try:
    client.chat.completions.create(model=model, messages=messages, n=2)
    check(False, "n=2 must fail")
except openai.BadRequestError as e:
    check(e.param == "n", f"param {e.param}")
try:
    client.chat.completions.create(model=model, messages=messages, temperature=7)
    check(False, "temperature=7 must fail")
except openai.BadRequestError as e:
    check("temperature" in e.message, e.message)
try:
    client.chat.completions.create(
        model=model,
        messages=messages,
        response_format={"type": "json_schema", "json_schema": {"name": "bad", "schema": {"type": "no-such-type"}}},
    )
    check(False, "an invalid JSON schema must fail")
except openai.BadRequestError as e:
    check(e.param == "response_format.json_schema.schema", f"param {e.param}")
wrong = OpenAI(base_url=base_url + "/v1", api_key="wrong-key", max_retries=0)
try:
    wrong.chat.completions.create(model=model, messages=messages, max_tokens=2)
    check(False, "a wrong key must fail")
except openai.AuthenticationError as e:
    check(e.status_code == 401, str(e))
try:
    client.get("/nothing", cast_to=object)
    check(False, "unknown path must fail")
except openai.NotFoundError as e:
    check(e.status_code == 404, str(e))

print(json.dumps({"ok": True, "checks": checks, "openai": openai.__version__, "json_schema_answer": greedy}))
