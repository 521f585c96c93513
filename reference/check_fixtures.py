#!/usr/bin/env python3
"""Self-consistency checks of Tests/Fixtures/model (numpy + safetensors only).

Usage: /work/venv/bin/python reference/check_fixtures.py \
           [--fixtures Tests/Fixtures/model] [--model models/all-MiniLM-L6-v2]

Checks that the files follow the format in reference/README.md and agree with
each other: param.N equals the checkpoint at index.N, every SGD 'after' equals
param - lr * clip_coef * grad, embeddings are unit vectors, and so on.
"""

import argparse
import json
import math
import os

import numpy as np
from safetensors.numpy import load_file


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default="Tests/Fixtures/model")
    ap.add_argument("--model", default="models/all-MiniLM-L6-v2")
    a = ap.parse_args()
    F = lambda n: os.path.join(a.fixtures, n)  # noqa: E731
    J = lambda n: json.load(open(F(n)))  # noqa: E731

    head = load_file(F("head.safetensors"))
    fw = load_file(F("forward.safetensors"))
    gr = load_file(F("grads.safetensors"))
    norms = J("grad_norms.json")
    ckpt = load_file(os.path.join(a.model, "model.safetensors"))
    batch = J("batch.json")

    B, T = batch["shape"]
    for k in ["input_ids", "token_type_ids", "attention_mask"]:
        assert fw[k].dtype == np.int64 and fw[k].shape == (B, T), k
    assert fw["labels"].tolist() == [e["label"] for e in batch["examples"]]
    assert fw["logits"].shape == (B, 2) and fw["loss"].shape == (1,)
    # loss = mean cross-entropy of the stored logits
    lg = fw["logits"].astype(np.float64)
    lse = np.log(np.exp(lg - lg.max(1, keepdims=True)).sum(1)) + lg.max(1)
    ce = np.mean(lse - lg[np.arange(B), fw["labels"]])
    assert abs(ce - fw["loss"][0]) < 1e-6, (ce, fw["loss"])
    # logits = pooled @ W^T + b
    lg2 = fw["pooled"] @ head["classifier.weight"].T + head["classifier.bias"]
    assert np.abs(lg2 - fw["logits"]).max() < 1e-5

    names = [k[len("index."):] for k in gr if k.startswith("index.")]
    assert len(names) == 105 and set(names) == set(norms["norms"]), len(names)
    for n in names:
        idx = gr["index." + n]
        assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
        src = head[n] if n.startswith("classifier.") else ckpt[n]
        assert np.array_equal(src.reshape(-1)[idx], gr["param." + n]), n
        assert len(idx) == min(512, src.size)
    tot = math.sqrt(sum(v * v for v in norms["norms"].values()))
    assert abs(tot - norms["total"]) < 1e-9

    sgd = J("sgd.json")
    for s, info in sgd["sets"].items():
        t = load_file(F(f"sgd_{s}.safetensors"))
        assert sorted(k[6:] for k in t if k.startswith("after.")) == sorted(info["trainable"])
        coef = min(1.0, info["max_norm"] / (info["grad_norm_pre_clip"] + 1e-6))
        worst = 0.0
        for n in info["trainable"]:
            assert np.array_equal(t["index." + n], gr["index." + n])
            want = gr["param." + n] - sgd["lr"] * coef * gr["grad." + n]
            worst = max(worst, float(np.abs(want - t["after." + n]).max()))
        print(f"sgd {s}: coef {coef:.6f} max|after - (param - lr*coef*grad)| {worst:.2e}")
        assert worst < 1e-5, s
    if "full" in sgd["sets"]:
        assert abs(sgd["sets"]["full"]["grad_norm_pre_clip"] - norms["total"]) < 1e-5

    ad = J("adamw.json")
    t = load_file(F("adamw_layernorm_all.safetensors"))
    for n in ad["trainable"]:
        assert np.array_equal(t["index." + n], gr["index." + n])
        assert t["after." + n].shape == gr["param." + n].shape
    moved = max(float(np.abs(t["after." + n] - gr["param." + n]).max()) for n in ad["trainable"])
    print(f"adamw: lrs {ad['lrs']} losses {ad['losses']} max|after-param| {moved:.4e}")

    em = load_file(F("embed.safetensors"))
    assert em["embeddings"].shape == (16, 384)
    assert np.abs(np.linalg.norm(em["embeddings"], axis=1) - 1).max() < 1e-5
    size = sum(os.path.getsize(F(f)) for f in os.listdir(a.fixtures))
    print(f"all checks passed; {len(os.listdir(a.fixtures))} files, {size} bytes")
    assert size < 2_000_000


if __name__ == "__main__":
    main()
