#!/usr/bin/env python3
"""PyTorch side of the training-step benchmark.

Usage:
    HF_HUB_OFFLINE=1 /work/venv/bin/python reference/bench_torch.py \
        [--model models/all-MiniLM-L6-v2] [--steps 5] [--threads 1] [--rows full,head,...]

One JSON object per row on stdout, e.g.
    {"row": "full", "ms": 1234.5, "threads": 1, "steps": 5, "batch": 32, "seq": 128, "times_ms": [...]}
Everything else (transformers' load report, warnings) goes to stderr.

Setup: all-MiniLM-L6-v2 + a fresh 2-label classifier head, batch 32 x 128 tokens
of random ids (seed 0, ids drawn from [1000, vocab), all attention-mask ones,
token_type_ids 0, random labels), dropout 0.1 (train mode), CPU float32, eager
attention. A training step = zero_grad, forward, mean cross-entropy, backward,
clip_grad_norm_(trainable, 1.0), AdamW.step (lr 2e-5, wd 0.01). Only the
row's tensors have requires_grad, so autograd skips what it does not need.
"ms" is the median over --steps timed steps after 2 untimed warmup steps.

--precision bf16 runs forward and loss under torch.autocast("cpu", dtype=torch.bfloat16) (PyTorch's
CPU mixed precision: linear/matmul in bf16 with fp32 accumulation; parameters, gradients and AdamW
state stay fp32), backward and the optimizer outside it, as autocast is meant to be used.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

ROWS = ["full", "layernorm_all", "query_l0", "query_l5", "layernorm_l5", "head", "inference",
        "lora_qv_all", "lora_qv_l5"]
# LoRA rows: PEFT (0.21.2) LoraConfig on query and value, in all layers or layer 5, r 8, alpha 8,
# lora_dropout 0, the head as modules_to_save (what `swift-petl bench` times for the same rows)
LORA = {"lora_qv_all": None, "lora_qv_l5": [5]}
HEAD = ["classifier.weight", "classifier.bias"]


def trainable(row, names):
    if row == "full":
        return list(names)
    if row == "layernorm_all":  # every encoder LayerNorm (not embeddings) + head
        return [n for n in names if n.startswith("encoder.layer.") and ".LayerNorm." in n] + HEAD
    if row in ("query_l0", "query_l5"):
        l = row[-1]
        return [f"encoder.layer.{l}.attention.self.query.weight",
                f"encoder.layer.{l}.attention.self.query.bias"] + HEAD
    if row == "layernorm_l5":
        return [n for n in names if n.startswith("encoder.layer.5.") and ".LayerNorm." in n] + HEAD
    if row == "head":
        return list(HEAD)
    raise ValueError(row)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)

    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()

    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(
        a.model, num_labels=2, local_files_only=True, attn_implementation="eager",
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, vocab, (a.batch, a.seq), generator=g, dtype=torch.int64)
    mask = torch.ones_like(ids)
    tt = torch.zeros_like(ids)
    labels = torch.randint(0, 2, (a.batch,), generator=g, dtype=torch.int64)
    named = {n[len("bert."):] if n.startswith("bert.") else n: p
             for n, p in model.named_parameters()}

    def autocast():
        if a.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def lora_model(layers):
        from peft import LoraConfig, get_peft_model
        torch.manual_seed(0)
        base = BertForSequenceClassification.from_pretrained(
            a.model, num_labels=2, local_files_only=True, attn_implementation="eager",
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
        cfg = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value"],
                         layers_to_transform=layers, modules_to_save=["classifier"])
        return get_peft_model(base, cfg)

    def train_times(m, decay, nodecay):
        """Milliseconds of each timed AdamW step (after 2 warm-up steps) of `m` on the batch: weight
        decay 0.01 on `decay`, none on `nodecay`, gradients clipped to norm 1, as the engine's step."""
        groups = [g for g in ({"params": decay, "weight_decay": 0.01},
                              {"params": nodecay, "weight_decay": 0.0}) if g["params"]]
        opt = torch.optim.AdamW(groups, lr=2e-5, betas=(0.9, 0.999), eps=1e-8)
        times = []
        for i in range(2 + a.steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with autocast():
                logits = m(input_ids=ids, attention_mask=mask, token_type_ids=tt).logits
                loss = torch.nn.functional.cross_entropy(logits, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(decay + nodecay, 1.0)
            opt.step()
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1000)
        return times

    for row in a.rows.split(","):
        times = []
        if row in LORA:
            pm = lora_model(LORA[row])
            pm.train()
            train = [(n, p) for n, p in pm.named_parameters() if p.requires_grad]
            times = train_times(pm, [p for n, p in train if not n.endswith(".bias")],
                                [p for n, p in train if n.endswith(".bias")])
            del pm
        elif row == "inference":
            model.eval()
            with torch.inference_mode():
                for i in range(2 + a.steps):
                    t0 = time.perf_counter()
                    with autocast():
                        out = model(input_ids=ids, attention_mask=mask, token_type_ids=tt).logits
                    out.float().sum().item()
                    if i >= 2:
                        times.append((time.perf_counter() - t0) * 1000)
        else:
            model.train()
            names = trainable(row, named.keys())
            for n, p in named.items():
                p.requires_grad_(n in names)
                p.grad = None
            times = train_times(model, [named[n] for n in names if not (n.endswith(".bias") or "LayerNorm" in n)],
                                [named[n] for n in names if n.endswith(".bias") or "LayerNorm" in n])
        print(json.dumps({"row": row, "ms": round(statistics.median(times), 3), "precision": a.precision,
                          "threads": a.threads, "steps": a.steps, "batch": a.batch,
                          "seq": a.seq, "times_ms": [round(t, 3) for t in times]}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
