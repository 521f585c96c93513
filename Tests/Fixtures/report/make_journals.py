"""Writes journal-a.jsonl and journal-b.jsonl, the ReportTests fixtures (python3 make_journals.py).

Scores are chosen so means and sample stds are round numbers (ReportTests asserts them):
journal-a alone is partial (random(9984) seed 3 and value@[0] seed 3 absent, value@[0] seed 2 failed);
journal-b completes it, retries the failed cell successfully and repeats an ok cell as failed (ok stays).
"""
import json

TOTAL = 22_713_986
CLASSIFIER = 770


def options(lr, seed):
    return {"epochs": 3, "learningRate": lr, "batchSize": 32, "maxLength": 128, "optimizer": "adamw",
            "weightDecay": 0.01, "warmupRatio": 0.06, "maxGradNorm": 1, "shuffle": True, "seed": seed}


def fnv(text):
    h = 0xcbf29ce484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def record(task, modules, layers, lr, seed, score, trainable, status="ok", reason=None, random_count=None):
    spec = {"task": task, "modules": modules, "layers": layers, "model": "all-MiniLM-L6-v2", "options": options(lr, seed)}
    if random_count is not None:
        spec["randomCount"] = random_count
    metric = {"cola": "mcc", "rte": "accuracy"}[task]
    r = {"spec": spec, "spec_hash": fnv(json.dumps(spec, sort_keys=True, separators=(",", ":"))), "status": status}
    if status == "ok":
        r["dev"] = {metric: score, "accuracy": 0.8} if task == "cola" else {"accuracy": score}
        r["epochs"] = [{"epoch": 1, "train_loss": 0.6, "dev": r["dev"], "seconds": 4.0}]
    else:
        r["reason"] = reason
        r["dev"] = {}
        r["epochs"] = []
    r.update({"trainable_parameters": trainable, "total_parameters": TOTAL, "wall_seconds": 12.5, "ranks": 2,
              "allreduce_bytes_per_step": trainable * 4, "steps": 234, "worker": 1, "finished_at": "2026-11-29T03:00:00Z"})
    return r


LN = 9984 + CLASSIFIER
QUERY = 6 * (384 * 384 + 384) + CLASSIFIER
QUERY1 = 384 * 384 + 384 + CLASSIFIER
a = []
for lr, scores in [(1e-4, [0.70, 0.72, 0.71]), (1e-3, [0.60, 0.65, 0.62])]:
    a += [record("rte", ["full"], "all", lr, s + 1, v, TOTAL) for s, v in enumerate(scores)]
for lr, scores in [(1e-3, [0.70, 0.705, 0.71]), (1e-2, [0.68, 0.69, 0.60])]:
    a += [record("rte", ["layernorm"], "all", lr, s + 1, v, LN) for s, v in enumerate(scores)]
a += [record("rte", ["query"], "all", 1e-3, s + 1, v, QUERY) for s, v in enumerate([0.60, 0.64, 0.62])]
a += [record("rte", ["random"], "all", 1e-3, s + 1, v, LN, random_count=9984) for s, v in enumerate([0.55, 0.57])]
a += [record("rte", ["query"], [0], 1e-3, s + 1, v, QUERY1) for s, v in enumerate([0.58, 0.60, 0.62])]
a += [record("rte", ["query"], [1], 1e-3, s + 1, v, QUERY1) for s, v in enumerate([0.64, 0.66, 0.65])]
a += [record("rte", ["value"], [0], 1e-3, 1, 0.61, QUERY1),
      record("rte", ["value"], [0], 1e-3, 2, None, QUERY1, status="failed", reason="loss became NaN at step 12")]
a += [record("rte", ["value"], [1], 1e-3, s + 1, v, QUERY1) for s, v in enumerate([0.66, 0.68, 0.67])]
a += [record("cola", ["full"], "all", 1e-4, s + 1, v, TOTAL) for s, v in enumerate([0.40, 0.42, 0.44])]
a += [record("cola", ["bias"], "all", 1e-3, s + 1, v, 41_472 + CLASSIFIER) for s, v in enumerate([0.30, 0.32, 0.34])]

b = [record("rte", ["random"], "all", 1e-3, 3, 0.56, LN, random_count=9984),
     record("rte", ["value"], [0], 1e-3, 2, 0.63, QUERY1),
     record("rte", ["value"], [0], 1e-3, 3, 0.62, QUERY1),
     record("rte", ["full"], "all", 1e-4, 1, None, TOTAL, status="failed", reason="rank 1 died")]

for name, records in [("journal-a.jsonl", a), ("journal-b.jsonl", b)]:
    with open(name, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
