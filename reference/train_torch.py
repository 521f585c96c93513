#!/usr/bin/env python3
"""End-to-end PyTorch + transformers reference for `swift-petl train`.

Fine-tunes all-MiniLM-L6-v2 (BertForSequenceClassification) on one GLUE task (or the embedded
`rt-vader` task) with only a chosen set of modules trainable, with the same recipe as
Sources/PETLTraining/CellTrainer.swift:

  * head: classifier N(0, 0.02), bias 0, drawn from --seed (num_labels 2; 1 + MSE for stsb);
  * trainable set: the same names as TrainableSet.swift; the classifier always trains, the
    pooler only for `full` / `pooler`;
  * AdamW (0.9, 0.999, eps 1e-8, weight decay 0.01 on weights and embedding tables only, never
    on biases or LayerNorm parameters), linear warmup over round(0.06 * total) steps (half away
    from zero, as Swift's `.rounded()`), then linear decay to 0 (get_linear_schedule_with_warmup);
  * gradient-norm clipping at 1.0 over the trainable parameters;
  * mean loss over the batch, seeded shuffle each epoch (not the same permutation as Swift);
  * dropout from the config (0.1) unless --dropout;
  * `--max-train N` / `--max-eval N`: the first N rows in reader order (GLUEReader.swift, RTVader.swift);
  * dev evaluation after every epoch with GLUE's metrics (Metrics.swift).

Prints one JSON line per epoch and a final JSON line
  {"task", "modules", "layers", "seed", "lr", "dev": {...}, "seconds", ...}

Example (from the repository root):
  HF_HUB_OFFLINE=1 /work/venv/bin/python reference/train_torch.py --task rte --modules layernorm \
      --lr 5e-3 --epochs 3 --seed 1 --data-dir /work/shared/data/glue --model models/all-MiniLM-L6-v2
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup
from transformers.utils import logging as hf_logging

# ---------------------------------------------------------------- tasks (TaskDescriptor.swift)

# name -> (folder, label names in class-index order (None: regression), metrics,
#          implicit header (None: first line is the header), textA, textB, label column)
TASKS = {
    "cola": ("CoLA", ["0", "1"], ["mcc"], ["source", "label", "original_label", "sentence"], "sentence", None, "label"),
    "sst2": ("SST-2", ["0", "1"], ["accuracy"], None, "sentence", None, "label"),
    "mrpc": ("MRPC", ["0", "1"], ["f1", "accuracy"], None, "#1 String", "#2 String", "Quality"),
    "stsb": ("STS-B", None, ["pearson", "spearman"], None, "sentence1", "sentence2", "score"),
    "qqp": ("QQP", ["0", "1"], ["f1", "accuracy"], None, "question1", "question2", "is_duplicate"),
    "qnli": ("QNLI", ["entailment", "not_entailment"], ["accuracy"], None, "question", "sentence", "label"),
    "rte": ("RTE", ["entailment", "not_entailment"], ["accuracy"], None, "sentence1", "sentence2", "label"),
    "wnli": ("WNLI", ["0", "1"], ["accuracy"], None, "sentence1", "sentence2", "label"),
    "rt-vader": ("rt-vader", ["negative", "positive"], ["accuracy"], None, None, None, None),
}


def read_lines(path):
    """Lines as DelimitedText.swift cuts them: BOM dropped, LF or CRLF, no final empty line."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [l[:-1] if l.endswith("\r") else l for l in lines]


def load_glue(task, data_dir, split):
    folder, labels, _, implicit, ca, cb, cl = TASKS[task]
    lines = read_lines(os.path.join(data_dir, folder, split + ".tsv"))
    if implicit is None:
        header, lines = lines[0].split("\t"), lines[1:]
    else:
        header = implicit
    ia, il = header.index(ca), header.index(cl)
    ib = header.index(cb) if cb else None
    out = []
    for n, line in enumerate(lines):
        f = line.split("\t")
        if len(f) != len(header):
            raise SystemExit(f"{folder}/{split}.tsv row {n + 1}: {len(f)} columns, expected {len(header)}")
        y = float(f[il]) if labels is None else labels.index(f[il])
        out.append((f[ia], f[ib] if ib is not None else None, y))
    return out


M64 = (1 << 64) - 1


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & M64
    return h


def splitmix_final(x):
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def counter_key(*parts):
    """CounterRNG.key (Sources/PETLKernels/RNG.swift)."""
    h = 0x243F6A8885A308D3
    for x in parts:
        h = splitmix_final(h ^ x)
    return h


def swift_epoch_order(n, seed, epoch):
    """The permutation CellTrainer uses for `epoch` (1-based): SeededGenerator (SplitMix64) seeded
    with CounterRNG.key(seed, 0x53485546, epoch), then the Swift standard library's
    `shuffle(using:)` (forward Fisher-Yates, Lemire's nearly-divisionless bounded draw)."""
    state = counter_key(seed, 0x53485546, epoch)

    def nxt():
        nonlocal state
        r = splitmix_final(state)
        state = (state + 0x9E3779B97F4A7C15) & M64
        return r

    def below(ub):
        m = nxt() * ub
        if (m & M64) < ub:
            t = ((1 << 64) - ub) % ub
            while (m & M64) < t:
                m = nxt() * ub
        return m >> 64

    order = list(range(n))
    amount, cur = n, 0
    while amount > 1:
        r = below(amount)
        amount -= 1
        order[cur], order[cur + r] = order[cur + r], order[cur]
        cur += 1
    return order


def load_rt_vader(data_dir, split):
    lines = read_lines(os.path.join(data_dir, "rt-vader", "movieReviewSnippets_GroundTruth.txt"))
    want_dev = split == "dev"
    rows = []
    for line in lines:
        i, score, text = line.split("\t")
        score = float(score)
        if score == 0 or ((fnv1a64("rt-vader:" + i) % 10 == 0) != want_dev):
            continue
        rows.append((splitmix_final(fnv1a64("rt-vader-order:" + i)), (text, None, 1 if score > 0 else 0)))
    rows.sort(key=lambda r: r[0])
    return [r[1] for r in rows]


def load_split(task, data_dir, split):
    return load_rt_vader(data_dir, split) if task == "rt-vader" else load_glue(task, data_dir, split)


# ---------------------------------------------------------------- metrics (Metrics.swift)

def pearson(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy = (dx * dx).sum(), (dy * dy).sum()
    if sxx <= 0 or syy <= 0:
        return 0.0
    return float(min(1.0, max(-1.0, (dx * dy).sum() / math.sqrt(sxx) / math.sqrt(syy))))


def avg_ranks(v):
    from scipy.stats import rankdata
    return rankdata(v, method="average")


def metrics(task, outputs, labels):
    names = TASKS[task][2]
    if TASKS[task][1] is None:
        p = outputs[:, 0]
        return {"pearson": pearson(p, labels), "spearman": pearson(avg_ranks(p), avg_ranks(labels))}
    pred = outputs.argmax(axis=1)
    gold = np.asarray(labels, np.int64)
    res = {}
    if "accuracy" in names:
        res["accuracy"] = float((pred == gold).mean())
    if "f1" in names:
        tp = int(((pred == 1) & (gold == 1)).sum())
        fp = int(((pred == 1) & (gold != 1)).sum())
        fn = int(((pred != 1) & (gold == 1)).sum())
        res["f1"] = 0.0 if 2 * tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    if "mcc" in names:
        k = outputs.shape[1]
        pc = np.bincount(pred, minlength=k).astype(np.float64)
        gc = np.bincount(gold, minlength=k).astype(np.float64)
        n, c = float(len(gold)), float((pred == gold).sum())
        cov_pg = c * n - (pc * gc).sum()
        cov_pp, cov_gg = n * n - (pc * pc).sum(), n * n - (gc * gc).sum()
        res["mcc"] = 0.0 if cov_pp <= 0 or cov_gg <= 0 else float(cov_pg / math.sqrt(cov_pp * cov_gg))
    return res


# ---------------------------------------------------------------- trainable set (TrainableSet.swift)

PER_LAYER = {
    "query": ["attention.self.query."],
    "key": ["attention.self.key."],
    "value": ["attention.self.value."],
    "attn_out": ["attention.output.dense."],
    "intermediate": ["intermediate.dense."],
    "output": ["output.dense."],
    "ln_attn": ["attention.output.LayerNorm."],
    "ln_out": ["output.LayerNorm."],
    "layernorm": ["attention.output.LayerNorm.", "output.LayerNorm."],
}


def trainable_names(model, modules, layers, num_layers):
    """HF parameter names (with the `bert.` prefix) that train."""
    layer_set = set(range(num_layers)) if layers == "all" else set(layers)
    chosen = set()
    for name, p in model.named_parameters():
        short = name[len("bert."):] if name.startswith("bert.") else name
        layer, rest = None, short
        if short.startswith("encoder.layer."):
            parts = short.split(".", 3)
            layer, rest = int(parts[2]), parts[3]
        for m in modules:
            if m in PER_LAYER:
                if layer in layer_set and any(rest.startswith(pfx) for pfx in PER_LAYER[m]):
                    chosen.add(name)
            elif m == "bias":
                if layer in layer_set and rest.endswith(".bias"):
                    chosen.add(name)
                if layers == "all" and short == "embeddings.LayerNorm.bias":
                    chosen.add(name)
            elif m == "embeddings":
                if short.startswith("embeddings."):
                    chosen.add(name)
            elif m == "pooler":
                if short.startswith("pooler."):
                    chosen.add(name)
            elif m == "full":
                chosen.add(name)
            elif m == "classifier":
                pass
            else:
                raise SystemExit(f"--modules: unknown or unsupported set '{m}'")
        if short.startswith("classifier."):
            chosen.add(name)
    return chosen


def decays(name):
    """AdamW decay on Linear weights and embedding tables; never biases or LayerNorm parameters."""
    return not (name.endswith(".bias") or "LayerNorm" in name)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", required=True, choices=sorted(TASKS))
    ap.add_argument("--modules", default="full")
    ap.add_argument("--layers", default="all")
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--max-train", type=int)
    ap.add_argument("--max-eval", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dropout", type=float)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--warmup-ratio", type=float, default=0.06)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--model", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    # Controls for a deterministic comparison with `swift-petl train --no-shuffle --dropout 0
    # --adapter HEAD`: train in reader order, and/or start from a head saved in a safetensors file.
    ap.add_argument("--no-shuffle", action="store_true", help="train in reader order")
    ap.add_argument("--swift-order", action="store_true", help="shuffle with swift-petl's permutation")
    ap.add_argument("--save-head", help="write the initial classifier.{weight,bias} to this safetensors file")
    ap.add_argument("--load-head", help="initial classifier.{weight,bias} from this safetensors file")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    hf_logging.set_verbosity_error()
    modules = [m.strip() for m in a.modules.split(",") if m.strip()]
    layers = "all" if a.layers == "all" else [int(x) for x in a.layers.split(",")]
    regression = TASKS[a.task][1] is None
    num_labels = 1 if regression else len(TASKS[a.task][1])

    # Data, tokenized once (as TaskData.swift), outside the timed part like Swift's `train`.
    tok = AutoTokenizer.from_pretrained(a.model)
    train = load_split(a.task, a.data_dir, "train")
    dev = load_split(a.task, a.data_dir, "dev")
    if a.max_train:
        train = train[: a.max_train]
    if a.max_eval:
        dev = dev[: a.max_eval]

    def encode(rows):
        A = [r[0] for r in rows]
        B = [r[1] for r in rows]
        enc = tok(A, B, truncation=True, max_length=a.max_length) if B[0] is not None else \
            tok(A, truncation=True, max_length=a.max_length)
        return [(enc["input_ids"][i], enc["token_type_ids"][i], rows[i][2]) for i in range(len(rows))]

    train_enc, dev_enc = encode(train), encode(dev)

    def collate(items):
        L = max(len(x[0]) for x in items)
        ids = torch.zeros(len(items), L, dtype=torch.long)
        tt = torch.zeros(len(items), L, dtype=torch.long)
        mask = torch.zeros(len(items), L, dtype=torch.long)
        for i, (x, t, _) in enumerate(items):
            ids[i, : len(x)] = torch.tensor(x)
            tt[i, : len(t)] = torch.tensor(t)
            mask[i, : len(x)] = 1
        y = torch.tensor([x[2] for x in items], dtype=torch.float32 if regression else torch.long)
        return ids, tt, mask, y

    start = time.time()
    kw = {}
    if a.dropout is not None:
        kw = dict(hidden_dropout_prob=a.dropout, attention_probs_dropout_prob=a.dropout, classifier_dropout=a.dropout)
    model = BertForSequenceClassification.from_pretrained(a.model, num_labels=num_labels,
                                                          attn_implementation=a.attn, **kw)
    torch.manual_seed(a.seed)
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 0.02)
        model.classifier.bias.zero_()
        if a.load_head:
            from safetensors.torch import load_file
            h = load_file(a.load_head)
            model.classifier.weight.copy_(h["classifier.weight"])
            model.classifier.bias.copy_(h["classifier.bias"])
    if a.save_head:
        from safetensors.torch import save_file
        save_file({"classifier.weight": model.classifier.weight.detach().clone().contiguous(),
                   "classifier.bias": model.classifier.bias.detach().clone().contiguous()}, a.save_head)

    names = trainable_names(model, modules, layers, model.config.num_hidden_layers)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
        if n in names:
            (decay if decays(n) else no_decay).append(p)
    params = decay + no_decay
    n_trainable = sum(p.numel() for p in params)
    n_total = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    n = len(train_enc)
    steps_per_epoch = (n + a.batch_size - 1) // a.batch_size
    total = a.epochs * steps_per_epoch
    warmup = int(math.floor(a.warmup_ratio * total + 0.5))
    sched = get_linear_schedule_with_warmup(opt, warmup, total)

    def evaluate():
        model.eval()
        order = sorted(range(len(dev_enc)), key=lambda i: len(dev_enc[i][0]))
        out = np.zeros((len(dev_enc), num_labels), np.float32)
        with torch.no_grad():
            for s in range(0, len(order), a.batch_size):
                idx = order[s: s + a.batch_size]
                ids, tt, mask, _ = collate([dev_enc[i] for i in idx])
                logits = model(input_ids=ids, token_type_ids=tt, attention_mask=mask).logits
                out[idx] = logits.float().numpy()
        model.train()
        if not np.isfinite(out).all():
            return {"nonfinite": 1.0}
        return metrics(a.task, out, np.array([x[2] for x in dev_enc]))

    gen = torch.Generator().manual_seed(a.seed)
    model.train()
    dev_metrics, step, losses, status = {}, 0, [], "ok"
    for epoch in range(1, a.epochs + 1):
        t0 = time.time()
        if a.no_shuffle:
            order = list(range(n))
        elif a.swift_order:
            order = swift_epoch_order(n, a.seed, epoch)
        else:
            order = torch.randperm(n, generator=gen).tolist()
        loss_sum, batches = 0.0, 0
        for s in range(0, n, a.batch_size):
            ids, tt, mask, y = collate([train_enc[i] for i in order[s: s + a.batch_size]])
            logits = model(input_ids=ids, token_type_ids=tt, attention_mask=mask).logits
            if regression:
                loss = torch.nn.functional.mse_loss(logits.squeeze(-1), y)
            else:
                loss = torch.nn.functional.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(params, a.max_grad_norm)
            if not torch.isfinite(gn):
                status = f"diverged: gradient norm {gn.item()} at step {step + 1}"
                break
            opt.step()
            sched.step()
            step += 1
            loss_sum += loss.item()
            batches += 1
        train_loss = loss_sum / max(batches, 1)
        losses.append(train_loss)
        dev_metrics = evaluate()
        print(json.dumps({"epoch": epoch, "train_loss": train_loss, "dev": dev_metrics,
                          "seconds": round(time.time() - t0, 2)}), flush=True)
        if status != "ok":
            break
    print(json.dumps({"task": a.task, "modules": modules, "layers": a.layers, "seed": a.seed, "lr": a.lr,
                      "dev": dev_metrics, "seconds": round(time.time() - start, 2), "steps": step,
                      "warmup_steps": warmup, "train_losses": losses, "trainable_parameters": n_trainable,
                      "total_parameters": n_total, "train_examples": n, "dev_examples": len(dev_enc),
                      "status": status, "threads": a.threads}), flush=True)


if __name__ == "__main__":
    main()
