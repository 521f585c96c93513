#!/usr/bin/env python3
"""PyTorch reference fixtures for the Swift BERT engine and trainer.

Usage (from the repository root):
    HF_HUB_OFFLINE=1 /work/venv/bin/python reference/model_fixtures.py \
        --model models/all-MiniLM-L6-v2 --glue /work/shared/data/glue --out Tests/Fixtures/model

Everything runs on the CPU in float32 with dropout off and the plain ("eager")
attention implementation. The exact file formats are documented in
reference/README.md; keep that file in sync with this script.
"""

import argparse
import json
import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file as load_torch_file
from transformers import (
    AutoTokenizer,
    BertForSequenceClassification,
    BertModel,
    get_linear_schedule_with_warmup,
)

NUM_LABELS = 2
BATCH = 8
EMBED_N = 16
MAX_LEN = 128
SAMPLE = 512
RTE_LABELS = {"entailment": 0, "not_entailment": 1}


# ---------------------------------------------------------------- data

def read_tsv(path):
    """GLUE tsv: split on tabs, no quoting. Returns (header, rows)."""
    with open(path, encoding="utf-8-sig") as f:
        lines = f.read().split("\n")
    lines = [l.rstrip("\r") for l in lines if l.strip() != ""]
    header = lines[0].split("\t")
    rows = [l.split("\t") for l in lines[1:]]
    return header, rows


def rte_batch(glue):
    header, rows = read_tsv(os.path.join(glue, "RTE", "train.tsv"))
    i1, i2, il = header.index("sentence1"), header.index("sentence2"), header.index("label")
    out = []
    for r in rows[:BATCH]:
        out.append({"index": int(r[0]), "sentence1": r[i1], "sentence2": r[i2],
                    "label_text": r[il], "label": RTE_LABELS[r[il]]})
    return out


def stsb_sentences(glue):
    header, rows = read_tsv(os.path.join(glue, "STS-B", "dev.tsv"))
    i1 = header.index("sentence1")
    return [r[i1] for r in rows[:EMBED_N]]


# ---------------------------------------------------------------- helpers

def strip(name):
    return name[len("bert."):] if name.startswith("bert.") else name


def sample_indices(numel):
    """Fresh generator with seed 0 for every tensor, sorted flat indices."""
    idx = np.random.default_rng(0).choice(numel, min(SAMPLE, numel), replace=False)
    return np.sort(idx).astype(np.int64)


def at(t, idx):
    return t.detach().reshape(-1).cpu().numpy()[idx].astype(np.float32)


def load_classifier(model_dir, head):
    model = BertForSequenceClassification.from_pretrained(
        model_dir, num_labels=NUM_LABELS, local_files_only=True, attn_implementation="eager")
    model.eval()  # dropout off
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(head["classifier.weight"]))
        model.classifier.bias.copy_(torch.from_numpy(head["classifier.bias"]))
    return model


def make_head():
    torch.manual_seed(0)
    w = torch.empty(NUM_LABELS, 384)
    torch.nn.init.normal_(w, mean=0.0, std=0.02)
    return {"classifier.weight": w.numpy().astype(np.float32),
            "classifier.bias": np.zeros(NUM_LABELS, dtype=np.float32)}


def loss_of(model, enc, labels):
    out = model(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"],
                attention_mask=enc["attention_mask"], output_hidden_states=True)
    loss = torch.nn.functional.cross_entropy(out.logits, labels)
    return loss, out


def trainable_names(set_name, all_names):
    if set_name == "full":
        return list(all_names)
    if set_name == "layernorm_all":
        return [n for n in all_names
                if n.startswith("encoder.layer.") and ".LayerNorm." in n] + \
               ["classifier.weight", "classifier.bias"]
    if set_name == "query_l3":
        return ["encoder.layer.3.attention.self.query.weight",
                "encoder.layer.3.attention.self.query.bias",
                "classifier.weight", "classifier.bias"]
    raise ValueError(set_name)


def set_trainable(model, names):
    names = set(names)
    params = []
    for n, p in model.named_parameters():
        p.requires_grad_(strip(n) in names)
        p.grad = None
        if strip(n) in names:
            params.append((strip(n), p))
    assert len(params) == len(names), (len(params), len(names))
    return params


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--glue", default="/work/shared/data/glue")
    ap.add_argument("--out", default="Tests/Fixtures/model")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    torch.use_deterministic_algorithms(True)

    def write_json(name, obj):
        with open(os.path.join(args.out, name), "w") as f:
            json.dump(obj, f, indent=1, ensure_ascii=False)
            f.write("\n")

    # a. head ---------------------------------------------------------------
    head = make_head()
    save_file(head, os.path.join(args.out, "head.safetensors"))
    print(f"head: classifier.weight {head['classifier.weight'].shape} "
          f"std {head['classifier.weight'].std():.5f}")

    tok = AutoTokenizer.from_pretrained(args.model, local_files_only=True)
    model = load_classifier(args.model, head)

    # the loaded encoder weights must be exactly the checkpoint's
    ckpt = load_torch_file(os.path.join(args.model, "model.safetensors"))
    for n, p in model.named_parameters():
        if n.startswith("bert."):
            assert torch.equal(p.detach(), ckpt[strip(n)]), n
    original = {strip(n): p.detach().clone() for n, p in model.named_parameters()}
    all_names = list(original.keys())

    # b. batch --------------------------------------------------------------
    ex = rte_batch(args.glue)
    enc = tok([e["sentence1"] for e in ex], [e["sentence2"] for e in ex],
              truncation=True, max_length=MAX_LEN, padding="longest", return_tensors="pt")
    labels = torch.tensor([e["label"] for e in ex], dtype=torch.int64)
    B, T = enc["input_ids"].shape
    write_json("batch.json", {
        "source": "RTE/train.tsv, first 8 data rows in file order",
        "label_map": RTE_LABELS,
        "max_length": MAX_LEN, "padding": "longest", "truncation": True,
        "shape": [B, T],
        "examples": ex,
        "tokens": [tok.convert_ids_to_tokens(row[row_mask.bool()].tolist())
                   for row, row_mask in zip(enc["input_ids"], enc["attention_mask"])],
    })

    # c. forward ------------------------------------------------------------
    model.zero_grad(set_to_none=True)
    for p in model.parameters():
        p.requires_grad_(True)
    loss, out = loss_of(model, enc, labels)
    pooled = model.bert.pooler(out.hidden_states[-1])
    # sanity: HF's own loss equals plain cross entropy
    with torch.no_grad():
        hf = model(**enc, labels=labels)
        assert torch.allclose(hf.loss, loss), (hf.loss, loss)
        sdpa = BertForSequenceClassification.from_pretrained(
            args.model, num_labels=NUM_LABELS, local_files_only=True, attn_implementation="sdpa")
        sdpa.eval()
        sdpa.classifier.weight.copy_(torch.from_numpy(head["classifier.weight"]))
        sdpa.classifier.bias.zero_()
        sdpa_diff = (sdpa(**enc).logits - out.logits).abs().max().item()
        del sdpa
    save_file({
        "input_ids": enc["input_ids"].numpy().astype(np.int64),
        "token_type_ids": enc["token_type_ids"].numpy().astype(np.int64),
        "attention_mask": enc["attention_mask"].numpy().astype(np.int64),
        "labels": labels.numpy(),
        "logits": out.logits.detach().numpy().astype(np.float32),
        "loss": loss.detach().reshape(1).numpy().astype(np.float32),
        "pooled": pooled.detach().numpy().astype(np.float32),
        "hidden_cls": out.hidden_states[-1][:, 0, :].detach().numpy().astype(np.float32),
    }, os.path.join(args.out, "forward.safetensors"))
    print(f"batch: B={B} T={T} labels={labels.tolist()} "
          f"real tokens/row={enc['attention_mask'].sum(1).tolist()}")
    print(f"forward: loss {loss.item():.6f}  logits[0] {out.logits[0].tolist()}  "
          f"|pooled| {pooled.norm().item():.4f}  eager-vs-sdpa max|dlogit| {sdpa_diff:.2e}")

    # d. gradients ----------------------------------------------------------
    loss.backward()
    gtensors, gnorms = {}, {}
    for n, p in model.named_parameters():
        n = strip(n)
        idx = sample_indices(p.numel())
        gtensors["index." + n] = idx
        gtensors["grad." + n] = at(p.grad, idx)
        gtensors["param." + n] = at(original[n], idx)
        gnorms[n] = p.grad.norm().item()
    # word embeddings: random flat indices almost never hit a used row, so also
    # store full gradient rows for the first 8 distinct token ids of example 0.
    wname = "embeddings.word_embeddings.weight"
    ids0 = []
    for t in enc["input_ids"][0].tolist():
        if t not in ids0:
            ids0.append(t)
    rows = np.array(ids0[:8], dtype=np.int64)
    wgrad = model.bert.embeddings.word_embeddings.weight.grad
    gtensors["rows." + wname] = rows
    gtensors["rowgrad." + wname] = wgrad[torch.from_numpy(rows)].numpy().astype(np.float32)
    save_file(gtensors, os.path.join(args.out, "grads.safetensors"))
    total = math.sqrt(sum(v * v for v in gnorms.values()))
    write_json("grad_norms.json", {"total": total, "norms": gnorms})
    print(f"grads: {len(gnorms)} tensors, total norm {total:.6f}; "
          f"classifier.weight {gnorms['classifier.weight']:.6f}, "
          f"{wname} {gnorms[wname]:.6f}, "
          f"encoder.layer.3.attention.self.query.weight "
          f"{gnorms['encoder.layer.3.attention.self.query.weight']:.6f}")

    def reset():
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(original[strip(n)])
                p.grad = None

    # e. one SGD step per set ----------------------------------------------
    # The brief's max_norm 1.0 never clips at this initial loss (all pre-clip
    # norms are < 1), so one extra case, query_l3_clip, repeats query_l3 with
    # max_norm 0.1 to exercise the clipping path.
    sgd_info = {"lr": 0.5, "weight_decay": 0.0, "momentum": 0.0, "sets": {}}
    for set_name, base, max_norm in [("full", "full", 1.0),
                                     ("layernorm_all", "layernorm_all", 1.0),
                                     ("query_l3", "query_l3", 1.0),
                                     ("query_l3_clip", "query_l3", 0.1)]:
        reset()
        names = trainable_names(base, all_names)
        params = set_trainable(model, names)
        opt = torch.optim.SGD([p for _, p in params], lr=0.5, momentum=0.0, weight_decay=0.0)
        loss, _ = loss_of(model, enc, labels)
        loss.backward()
        pre = torch.nn.utils.clip_grad_norm_([p for _, p in params], max_norm=max_norm).item()
        opt.step()
        t = {}
        for n, p in params:
            idx = sample_indices(p.numel())
            t["index." + n] = idx
            t["after." + n] = at(p, idx)
        save_file(t, os.path.join(args.out, f"sgd_{set_name}.safetensors"))
        with torch.no_grad():
            loss_after, _ = loss_of(model, enc, labels)
        sgd_info["sets"][set_name] = {"trainable": names, "max_norm": max_norm,
                                      "clip_coef": min(1.0, max_norm / (pre + 1e-6)),
                                      "grad_norm_pre_clip": pre,
                                      "loss": loss.item(), "loss_after": loss_after.item()}
        print(f"sgd {set_name}: {len(names)} tensors, loss {loss.item():.6f}, "
              f"pre-clip norm {pre:.6f}, loss after step {loss_after.item():.6f}")
    write_json("sgd.json", sgd_info)

    # g. AdamW, 3 steps, layernorm_all --------------------------------------
    reset()
    names = trainable_names("layernorm_all", all_names)
    params = set_trainable(model, names)
    no_decay = [p for n, p in params if n.endswith(".bias") or ".LayerNorm." in n]
    decay = [p for n, p in params if not (n.endswith(".bias") or ".LayerNorm." in n)]
    decay_names = [n for n, p in params if not (n.endswith(".bias") or ".LayerNorm." in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.999), eps=1e-8,
                            foreach=False, fused=False)
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=2, num_training_steps=6)
    losses, lrs, norms = [], [], []
    for step in range(3):
        opt.zero_grad(set_to_none=True)
        loss, _ = loss_of(model, enc, labels)
        loss.backward()
        norms.append(torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0).item())
        lrs.append(opt.param_groups[0]["lr"])
        losses.append(loss.item())
        opt.step()
        sched.step()
    with torch.no_grad():
        loss_after, _ = loss_of(model, enc, labels)
    t = {}
    for n, p in params:
        idx = sample_indices(p.numel())
        t["index." + n] = idx
        t["after." + n] = at(p, idx)
    save_file(t, os.path.join(args.out, "adamw_layernorm_all.safetensors"))
    write_json("adamw.json", {
        "set": "layernorm_all", "trainable": names, "weight_decay_on": decay_names,
        "lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
        "warmup_steps": 2, "total_steps": 6, "max_norm": 1.0, "steps": 3,
        "losses": losses, "lrs": lrs, "grad_norms_pre_clip": norms,
        "loss_after": loss_after.item(),
    })
    print(f"adamw layernorm_all: losses {[round(x, 6) for x in losses]} lrs {lrs} "
          f"pre-clip norms {[round(x, 4) for x in norms]} loss after {loss_after.item():.6f}")
    del model

    # f. sentence embeddings ------------------------------------------------
    sents = stsb_sentences(args.glue)
    bert = BertModel.from_pretrained(args.model, local_files_only=True,
                                     attn_implementation="eager", add_pooling_layer=False)
    bert.eval()
    e = tok(sents, truncation=True, max_length=MAX_LEN, padding="longest", return_tensors="pt")
    with torch.no_grad():
        h = bert(**e).last_hidden_state
        m = e["attention_mask"].unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        emb = torch.nn.functional.normalize(mean, p=2, dim=1)
    st_check = "sentence_transformers not importable"
    try:
        from sentence_transformers import SentenceTransformer
        try:
            from sentence_transformers.sentence_transformer.modules import (
                Normalize, Pooling, Transformer)
        except ImportError:
            from sentence_transformers.models import Normalize, Pooling, Transformer
        # The model folder here lacks 1_Pooling/config.json, so build the
        # upstream pipeline (modules.json: Transformer -> mean Pooling ->
        # Normalize) explicitly from its modules.
        st = SentenceTransformer(modules=[Transformer(args.model, max_seq_length=MAX_LEN),
                                          Pooling(384, pooling_mode="mean"),
                                          Normalize()], device="cpu")
        ref = torch.from_numpy(np.asarray(st.encode(sents, batch_size=16, convert_to_numpy=True)))
        d = (ref - emb).abs().max().item()
        import sentence_transformers
        st_check = {"sentence_transformers": sentence_transformers.__version__,
                    "max_abs_diff": d, "modules": [type(mod).__name__ for mod in st]}
        print(f"embed: sentence-transformers {sentence_transformers.__version__} max|diff| {d:.2e}")
    except Exception as exc:  # noqa: BLE001 - report why the check did not run
        st_check = f"not checked: {type(exc).__name__}: {exc}"
        print("embed:", st_check)
    save_file({
        "input_ids": e["input_ids"].numpy().astype(np.int64),
        "attention_mask": e["attention_mask"].numpy().astype(np.int64),
        "embeddings": emb.numpy().astype(np.float32),
    }, os.path.join(args.out, "embed.safetensors"))
    write_json("embed.json", {
        "source": "STS-B/dev.tsv, sentence1 of the first 16 data rows",
        "sentences": sents, "max_length": MAX_LEN, "padding": "longest",
        "pooling": "mean over attention_mask, then L2 normalise",
        "cosine_0_1": float(emb[0] @ emb[1]),
        "sentence_transformers_check": st_check,
    })
    print(f"embed: {tuple(emb.shape)} cos(0,1) {float(emb[0] @ emb[1]):.6f}")

    total_bytes = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"fixtures: {sorted(os.listdir(args.out))} total {total_bytes} bytes")


if __name__ == "__main__":
    main()
