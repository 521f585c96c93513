#!/usr/bin/env python3
"""PyTorch reference fixtures for the encoder families (BERT, RoBERTa, ELECTRA, DistilBERT).

Usage (from the repository root):
    HF_HUB_OFFLINE=1 /work/venv/bin/python reference/family_fixtures.py --out Tests/Fixtures/families

Options: --glue (default /work/shared/data/glue), --minilm (default models/all-MiniLM-L6-v2,
the source of vocab.txt / tokenizer_config.json), --bpe (default Tests/Fixtures/bpe, the source
of vocab.json / merges.txt), --out.

No model weights are committed. Each tiny model's weights come from a deterministic recipe
(`recipe()` below) keyed by tensor name, which the Swift test reproduces exactly. Per family the
script builds the pre-training class the hub ships (random init), overwrites every saved tensor
with the recipe, `save_pretrained`s it to a temporary folder, reloads it as
`<Family>ForSequenceClassification` (head tensors again from the recipe) and writes into
`<out>/<family>/`:
    config.json            the file save_pretrained wrote, byte for byte
    layout.json            the tensors of model.safetensors (name, shape, dtype) in safe_open order
    fixture.json           tokenizer files needed, head names, recipe check values, loss, AdamW ...
    reference.safetensors  batch ids, logits, loss, gradients, one AdamW step, sentence embeddings

Everything runs on the CPU in float32, one thread, deterministic algorithms, eval mode with every
nn.Dropout at p=0 and attn_implementation="eager". A rerun gives the same bytes. The exact
formats are documented in reference/README.md ("Encoder-family fixtures"); keep it in sync.
"""

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import struct
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import safetensors
import tokenizers
import torch
import transformers
from safetensors import safe_open
from safetensors.numpy import save_file
from safetensors.torch import load_file as load_torch_file
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertTokenizer,
    DistilBertConfig,
    DistilBertForMaskedLM,
    DistilBertForSequenceClassification,
    DistilBertTokenizer,
    ElectraConfig,
    ElectraForPreTraining,
    ElectraForSequenceClassification,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaForSequenceClassification,
    RobertaTokenizer,
)

NUM_LABELS = 2
BATCH = 8
EMBED_N = 8
MAX_LEN = 64
NUM_LAYERS = 2  # every family's config below
RTE_LABELS = {"entailment": 0, "not_entailment": 1}
ADAMW = {"lr": 1e-2, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
         "max_norm": 1.0, "foreach": False, "fused": False}

# ---------------------------------------------------------------- the weight recipe

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
SM_GAMMA = 0x9E3779B97F4A7C15
SM_MUL1 = 0xBF58476D1CE4E5B9
SM_MUL2 = 0x94D049BB133111EB
MASK64 = (1 << 64) - 1

RECIPE_CHECK_NAME = "recipe.check"
# float32 bit patterns of recipe("recipe.check", [4]) = -0.0760799944, -0.0539185517,
# 1.09456842e-05, -0.0733780637 (also reproduced by a stand-alone C program with uint64_t and
# double, -ffp-contract=off); the Swift test checks the same numbers.
RECIPE_CHECK_BITS = ["0xbd9bcfd4", "0xbd5cd9b3", "0x3737a35b", "0xbd96473d"]


def fnv1a64(name):
    """FNV-1a 64 of the UTF-8 bytes of `name` (wrapping mod 2^64)."""
    h = FNV_OFFSET
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * FNV_PRIME) & MASK64
    return h


def recipe_center_scale(name):
    """(center, scale) for a tensor name: LayerNorm gains near 1, biases small, the rest +-0.08."""
    if name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight"):
        return 1.0, 0.2
    if name.endswith(".bias"):
        return 0.0, 0.05
    return 0.0, 0.08


def recipe(name, shape):
    """Deterministic float32 values of the tensor `name` with `shape` (no weights are committed).

    For flat (row-major) index i, 0 <= i < numel, all integer arithmetic wrapping mod 2^64:
        h = FNV-1a 64 of the UTF-8 bytes of name (offset 0xcbf29ce484222325, prime 0x100000001b3)
        z = h + i
        z = z + 0x9E3779B97F4A7C15                       # splitmix64
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB
        z = z ^ (z >> 31)
        u = float64(z >> 11) * 2^-53                      # in [0, 1), exact
        value = float32(center + scale * (2u - 1))        # float64 arithmetic, one rounding
    with (center, scale) = (1.0, 0.2) if name ends with "LayerNorm.weight" or "layer_norm.weight",
    (0.0, 0.05) if it ends with ".bias", else (0.0, 0.08). `name` is the key in model.safetensors
    (prefix included, e.g. "bert.encoder.layer.0.attention.self.query.weight") or, for the
    classification-head tensors, the *ForSequenceClassification parameter name.
    """
    shape = [int(s) for s in shape]
    numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
    center, scale = recipe_center_scale(name)
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a64(name)) + np.arange(numel, dtype=np.uint64)
        z = z + np.uint64(SM_GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(SM_MUL1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(SM_MUL2)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)
    v = center + scale * (2.0 * u - 1.0)
    return v.astype(np.float32).reshape(shape)


def recipe_scalar(name, i):
    """The same recipe for one element with Python integers (independent check of `recipe`)."""
    center, scale = recipe_center_scale(name)
    z = (fnv1a64(name) + i) & MASK64
    z = (z + SM_GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * SM_MUL1) & MASK64
    z = ((z ^ (z >> 27)) * SM_MUL2) & MASK64
    z = z ^ (z >> 31)
    u = (z >> 11) * 2.0 ** -53
    return struct.unpack("<f", struct.pack("<f", center + scale * (2.0 * u - 1.0)))[0]


def f32_bits(x):
    return "0x%08x" % struct.unpack("<I", struct.pack("<f", float(x)))[0]


def check_recipe():
    """Vectorised recipe == scalar recipe on a few names/indices; returns the check values."""
    vals = recipe(RECIPE_CHECK_NAME, [4])
    for name, n in [(RECIPE_CHECK_NAME, 4), ("bert.embeddings.LayerNorm.weight", 32),
                    ("classifier.bias", 2), ("distilbert.transformer.layer.1.sa_layer_norm.weight", 32),
                    ("bert.encoder.layer.0.attention.self.query.weight", 1024)]:
        v = recipe(name, [n])
        for i in list(range(min(n, 8))) + [n - 1]:
            assert v[i] == recipe_scalar(name, i), (name, i, v[i], recipe_scalar(name, i))
    bits = [f32_bits(x) for x in vals]
    assert bits == RECIPE_CHECK_BITS, (bits, RECIPE_CHECK_BITS)
    assert all(-0.08 <= x < 0.08 for x in vals)
    print(f"recipe check: {RECIPE_CHECK_NAME} = {[float(x) for x in vals]} bits {bits} "
          f"(fnv1a64 = 0x{fnv1a64(RECIPE_CHECK_NAME):016x})")
    return vals, bits



# ---------------------------------------------------------------- data


def read_tsv(path):
    """GLUE tsv: split on tabs, no quoting. Returns (header, rows)."""
    with open(path, encoding="utf-8-sig") as f:
        lines = f.read().split("\n")
    lines = [l.rstrip("\r") for l in lines if l.strip() != ""]
    return lines[0].split("\t"), [l.split("\t") for l in lines[1:]]


def rte_batch(glue):
    header, rows = read_tsv(os.path.join(glue, "RTE", "train.tsv"))
    i1, i2, il = header.index("sentence1"), header.index("sentence2"), header.index("label")
    return [{"index": int(r[0]), "sentence1": r[i1], "sentence2": r[i2],
             "label_text": r[il], "label": RTE_LABELS[r[il]]} for r in rows[:BATCH]]


def stsb_sentences(glue):
    header, rows = read_tsv(os.path.join(glue, "STS-B", "dev.tsv"))
    i1 = header.index("sentence1")
    return [r[i1] for r in rows[:EMBED_N]]


# ---------------------------------------------------------------- families

ENCODER_LN = r"^(bert|roberta|electra)\.encoder\.layer\.\d+\.(attention\.output|output)\.LayerNorm\.(weight|bias)$"
DISTIL_LN = r"^distilbert\.transformer\.layer\.\d+\.(sa_layer_norm|output_layer_norm)\.(weight|bias)$"

FAMILIES = {
    "bert": {
        "pretrain_cls": BertForPreTraining,
        "seq_cls": BertForSequenceClassification,
        "config": lambda: BertConfig(
            vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=64, type_vocab_size=2,
            hidden_act="gelu", layer_norm_eps=1e-12),
        "base": "bert",
        "tokenizer": {"class": "BertTokenizer (AutoTokenizer)", "source": "minilm",
                      "files": ["vocab.txt", "tokenizer_config.json"]},
        "layer_ln": ENCODER_LN,
        "head": ["classifier.weight", "classifier.bias"],
    },
    "roberta": {
        "pretrain_cls": RobertaForMaskedLM,
        "seq_cls": RobertaForSequenceClassification,
        "config": None,  # needs the BPE vocabulary size, see main()
        "base": "roberta",
        "tokenizer": {"class": "RobertaTokenizer", "source": "bpe",
                      "files": ["vocab.json", "merges.txt"]},
        "layer_ln": ENCODER_LN,
        "head": ["classifier.dense.weight", "classifier.dense.bias",
                 "classifier.out_proj.weight", "classifier.out_proj.bias"],
    },
    "electra": {
        "pretrain_cls": ElectraForPreTraining,
        "seq_cls": ElectraForSequenceClassification,
        "config": lambda: ElectraConfig(
            vocab_size=30522, embedding_size=16, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
            type_vocab_size=2, layer_norm_eps=1e-12),
        "base": "electra",
        # transformers 5 has no ElectraTokenizer: AutoTokenizer maps model_type "electra" to
        # BertTokenizer, so ELECTRA checkpoints tokenize with BertTokenizer(do_lower_case=True).
        "tokenizer": {"class": "BertTokenizer (transformers 5 maps electra to it)",
                      "source": "minilm", "files": ["vocab.txt", "tokenizer_config.json"]},
        "layer_ln": ENCODER_LN,
        "head": ["classifier.dense.weight", "classifier.dense.bias",
                 "classifier.out_proj.weight", "classifier.out_proj.bias"],
    },
    "distilbert": {
        "pretrain_cls": DistilBertForMaskedLM,
        "seq_cls": DistilBertForSequenceClassification,
        "config": lambda: DistilBertConfig(
            vocab_size=30522, dim=32, n_layers=2, n_heads=4, hidden_dim=37,
            max_position_embeddings=64, activation="gelu"),
        "base": "distilbert",
        "tokenizer": {"class": "DistilBertTokenizer", "source": "minilm",
                      "files": ["vocab.txt", "tokenizer_config.json"]},
        "layer_ln": DISTIL_LN,
        "head": ["pre_classifier.weight", "pre_classifier.bias",
                 "classifier.weight", "classifier.bias"],
    },
}


def make_tokenizer(family, spec, src_dir, tmp):
    """Tokenizer loaded from a folder holding ONLY the files the Swift test copies."""
    d = os.path.join(tmp, "tok_" + family)
    os.makedirs(d)
    for f in spec["files"]:
        shutil.copy(os.path.join(src_dir, f), d)
    if family == "bert":
        tok = AutoTokenizer.from_pretrained(d, local_files_only=True)
    elif family == "electra":
        tok = BertTokenizer.from_pretrained(d, local_files_only=True, do_lower_case=True)
    elif family == "distilbert":
        tok = DistilBertTokenizer.from_pretrained(d, local_files_only=True, do_lower_case=True)
    else:
        tok = RobertaTokenizer.from_pretrained(d, local_files_only=True)
    return tok


def no_dropout(model):
    model.eval()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def tensor_to_np(t, dtype=np.float32):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(dtype))


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


# ---------------------------------------------------------------- one family


def build_checkpoint(family, fam, config, ckpt_dir):
    """Random-init the pre-training class, overwrite every saved tensor with the recipe, save."""
    torch.manual_seed(0)
    model = fam["pretrain_cls"](config)
    buffers = {n for n, _ in model.named_buffers()}
    tied = dict(getattr(model, "all_tied_weights_keys", {}) or {})  # tied name -> source name
    sd = model.state_dict()
    params = dict(model.named_parameters(remove_duplicate=False))
    with torch.no_grad():
        for name, t in sd.items():
            if name in buffers or name in tied:
                continue
            params[name].copy_(torch.from_numpy(recipe(name, list(t.shape))))
        for name, src in tied.items():  # ties share storage: the saved source's values
            assert torch.equal(params[name], params[src]), (name, src)
    model.save_pretrained(ckpt_dir, safe_serialization=True)
    path = os.path.join(ckpt_dir, "model.safetensors")
    layout = []
    raw = hashlib.sha256()
    with safe_open(path, "np") as f:
        saved = list(f.keys())
        for k in saved:
            a = f.get_tensor(k)
            assert a.dtype == np.float32, (k, a.dtype)
            assert np.array_equal(a, recipe(k, list(a.shape))), k
            raw.update(np.ascontiguousarray(a).astype("<f4").tobytes())
            layout.append({"name": k, "shape": list(a.shape), "dtype": "F32"})
    expected = [n for n in sd if n not in buffers and n not in tied]
    assert sorted(saved) == sorted(expected), (set(saved) ^ set(expected))
    with open(path, "rb") as fh:
        file_sha = hashlib.sha256(fh.read()).hexdigest()
    print(f"[{family}] saved {len(saved)} tensors; tied (not saved): {tied}; "
          f"buffers (not saved): {sorted(buffers)}")
    return layout, tied, sorted(buffers), raw.hexdigest(), file_sha


def load_classifier(family, fam, ckpt_dir):
    torch.manual_seed(0)
    model, info = fam["seq_cls"].from_pretrained(
        ckpt_dir, num_labels=NUM_LABELS, attn_implementation="eager",
        local_files_only=True, output_loading_info=True)
    missing = sorted(info.get("missing_keys", []))
    unexpected = sorted(info.get("unexpected_keys", []))
    mismatched = list(info.get("mismatched_keys", []))
    assert not mismatched, mismatched
    pnames = [n for n, _ in model.named_parameters()]
    initialised = [n for n in pnames if n in set(missing)]
    assert sorted(initialised) == sorted(fam["head"]), (initialised, fam["head"])
    assert sorted(missing) == sorted(initialised), (missing, initialised)  # no buffer missing
    ckpt = load_torch_file(os.path.join(ckpt_dir, "model.safetensors"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in initialised:
                p.copy_(torch.from_numpy(recipe(n, list(p.shape))))
            else:
                # the classifier's prefix equals the pre-training class's: same key
                assert n in ckpt, n
                assert torch.equal(p.detach(), ckpt[n]), n
    print(f"[{family}] {type(model).__name__}: initialised from the recipe: {initialised}; "
          f"checkpoint tensors unused: {unexpected}")
    return no_dropout(model), initialised, unexpected


def run_family(family, fam, config, tok, args, tmp, check_values):
    ckpt_dir = os.path.join(tmp, "ckpt_" + family)
    out = os.path.join(args.out, family)
    os.makedirs(out, exist_ok=True)
    layout, tied, buffers, data_sha, file_sha = build_checkpoint(family, fam, config, ckpt_dir)
    shutil.copyfile(os.path.join(ckpt_dir, "config.json"), os.path.join(out, "config.json"))
    write_json(os.path.join(out, "layout.json"), {"tensors": layout})

    model, initialised, unexpected = load_classifier(family, fam, ckpt_dir)
    base = getattr(model, fam["base"])
    word = f"{fam['base']}.embeddings.word_embeddings.weight"
    pnames = [n for n, _ in model.named_parameters()]
    assert word in pnames
    tensors = {}

    # batch ------------------------------------------------------------------
    ex = rte_batch(args.glue)
    enc = tok([e["sentence1"] for e in ex], [e["sentence2"] for e in ex],
              truncation=True, max_length=MAX_LEN, padding="longest", return_tensors="pt")
    enc = {k: enc[k] for k in enc.keys()}
    returned = sorted(enc.keys())
    labels = torch.tensor([e["label"] for e in ex], dtype=torch.int64)
    for k in ["input_ids", "attention_mask", "token_type_ids"]:
        if k in enc:
            tensors[k] = tensor_to_np(enc[k], np.int64)
    tensors["labels"] = labels.numpy().astype(np.int64)
    B, T = enc["input_ids"].shape
    lengths = enc["attention_mask"].sum(1).tolist()

    # forward + gradients (every parameter trainable) ------------------------
    for p in model.parameters():
        p.requires_grad_(True)
        p.grad = None
    out_ = model(**enc)
    loss = torch.nn.functional.cross_entropy(out_.logits, labels)
    with torch.no_grad():
        hf_loss = model(**enc, labels=labels).loss
    assert torch.allclose(hf_loss, loss, rtol=0, atol=1e-6), (hf_loss, loss)
    tensors["logits"] = tensor_to_np(out_.logits)
    tensors["loss"] = tensor_to_np(loss.reshape(1))
    loss.backward()
    grad_names, zero_grad = [], []
    gnorm2 = 0.0
    for n, p in model.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        if p.grad is None or not torch.any(g != 0):
            zero_grad.append(n)
        gnorm2 += float(g.double().pow(2).sum())
        if n == word:
            rows = torch.unique(enc["input_ids"]).sort().values  # sorted unique ids
            tensors["rows." + n] = tensor_to_np(rows, np.int64)
            tensors["rowgrad." + n] = tensor_to_np(g[rows])
            outside = g.clone()
            outside[rows] = 0
            assert not torch.any(outside != 0), "word gradient outside the batch's ids"
        else:
            tensors["grad." + n] = tensor_to_np(g)
            grad_names.append(n)
    print(f"[{family}] batch B={B} T={T} lengths={lengths} returns {returned}; "
          f"loss {loss.item():.6f} (HF labels= loss {hf_loss.item():.6f}); "
          f"logits[0] {out_.logits[0].tolist()}; |grad| {math.sqrt(gnorm2):.6f}; "
          f"zero-gradient tensors: {zero_grad}")

    # sentence embeddings (original weights) ---------------------------------
    sents = stsb_sentences(args.glue)
    e = tok(sents, truncation=True, max_length=MAX_LEN, padding="longest", return_tensors="pt")
    e = {k: e[k] for k in e.keys()}
    with torch.no_grad():
        h = base(**e).last_hidden_state
        m = e["attention_mask"].unsqueeze(-1).to(h.dtype)
        emb = (h * m).sum(1) / m.sum(1)
    H = config.hidden_size
    assert tuple(emb.shape) == (EMBED_N, H), emb.shape
    for k in ["input_ids", "attention_mask", "token_type_ids"]:
        if k in e:
            tensors["embed." + k] = tensor_to_np(e[k], np.int64)
    tensors["embed.embeddings"] = tensor_to_np(emb)
    print(f"[{family}] embed {tuple(emb.shape)} T={e['input_ids'].shape[1]} "
          f"|e0| {emb[0].norm().item():.6f}")

    # one AdamW step on the LayerNorm + head set -----------------------------
    ln = re.compile(fam["layer_ln"])
    trainable = [n for n in pnames if ln.match(n) or n in initialised]
    assert len([n for n in trainable if ln.match(n)]) == 4 * NUM_LAYERS, trainable
    pmap = dict(model.named_parameters())
    for n, p in model.named_parameters():
        p.requires_grad_(n in trainable)
        p.grad = None

    def no_decay(n):
        return n.endswith(".bias") or "LayerNorm" in n or "layer_norm" in n

    decay_names = [n for n in trainable if not no_decay(n)]
    plain_names = [n for n in trainable if no_decay(n)]
    opt = torch.optim.AdamW(
        [{"params": [pmap[n] for n in decay_names], "weight_decay": ADAMW["weight_decay"]},
         {"params": [pmap[n] for n in plain_names], "weight_decay": 0.0}],
        lr=ADAMW["lr"], betas=tuple(ADAMW["betas"]), eps=ADAMW["eps"],
        foreach=False, fused=False)
    before = {n: pmap[n].detach().clone() for n in trainable}
    out2 = model(**enc)
    loss2 = torch.nn.functional.cross_entropy(out2.logits, labels)
    assert torch.equal(loss2, loss), (loss2, loss)
    loss2.backward()
    pre = torch.nn.utils.clip_grad_norm_([pmap[n] for n in trainable], ADAMW["max_norm"]).item()
    opt.step()
    for n in trainable:
        tensors["adamw.delta." + n] = tensor_to_np(pmap[n].detach() - before[n])
    with torch.no_grad():
        loss_after = torch.nn.functional.cross_entropy(model(**enc).logits, labels).item()
    clip_coef = min(1.0, ADAMW["max_norm"] / (pre + 1e-6))
    print(f"[{family}] adamw: {len(trainable)} tensors, pre-clip norm {pre:.6f} "
          f"(clip coef {clip_coef:.6f}), loss {loss2.item():.6f} -> {loss_after:.6f}")

    # AdamW's first step in float64 from the stored gradients (clip coef 1 here) -----------
    lr, (b1, b2), eps, wd = ADAMW["lr"], ADAMW["betas"], ADAMW["eps"], ADAMW["weight_decay"]
    worst = 0.0
    for n in trainable:
        g = tensors["grad." + n].astype(np.float64) * clip_coef
        p0 = before[n].numpy().astype(np.float64)
        decay = wd if n in decay_names else 0.0
        m, v = (1 - b1) * g, (1 - b2) * g * g
        after = p0 * (1 - lr * decay) - (lr / (1 - b1)) * m / (np.sqrt(v) / math.sqrt(1 - b2) + eps)
        worst = max(worst, float(np.abs(after - p0 - tensors["adamw.delta." + n]).max()))
    assert worst < 3e-7, worst
    print(f"[{family}] adamw delta vs float64 AdamW formula: max |diff| {worst:.2e}")

    # the Swift path: model.safetensors regenerated from layout.json + recipe ------------
    regen = os.path.join(tmp, "regen_" + family)
    os.makedirs(regen)
    shutil.copyfile(os.path.join(out, "config.json"), os.path.join(regen, "config.json"))
    save_file({t["name"]: recipe(t["name"], t["shape"]) for t in layout},
              os.path.join(regen, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(regen, "model.safetensors"), "rb") as fh:
        regen_same_bytes = hashlib.sha256(fh.read()).hexdigest() == file_sha
    model2, init2, _ = load_classifier(family, fam, regen)
    assert init2 == initialised
    with torch.no_grad():
        assert torch.equal(model2(**enc).logits, out_.logits.detach()), "regenerated logits differ"
    print(f"[{family}] regenerated checkpoint gives identical logits; "
          f"same bytes as save_pretrained: {regen_same_bytes}")

    # write --------------------------------------------------------------------
    save_file(tensors, os.path.join(out, "reference.safetensors"))
    t_spec = fam["tokenizer"]
    fixture = {
        "family": family,
        "pretraining_class": fam["pretrain_cls"].__name__,
        "classifier_class": fam["seq_cls"].__name__,
        "base_model_prefix": fam["base"],
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "safetensors": safetensors.__version__,
                     "numpy": np.__version__},
        "recipe": {"check_name": RECIPE_CHECK_NAME, "check_shape": [4],
                   "check_values": [float(x) for x in check_values],
                   "check_bits": RECIPE_CHECK_BITS,
                   "fnv1a64_check_name": "0x%016x" % fnv1a64(RECIPE_CHECK_NAME)},
        "checkpoint": {
            "file": "model.safetensors (regenerate from layout.json + the recipe)",
            "tensor_count": len(layout),
            "data_sha256": data_sha,
            "data_sha256_note": "sha256 of every tensor's little-endian float32 bytes, "
                                "concatenated in layout.json order",
            "save_pretrained_file_sha256": file_sha,
            "numpy_save_file_gives_same_bytes": regen_same_bytes,
            "tied_not_saved": tied,
            "buffers_not_saved": buffers,
        },
        "tokenizer": {"class": t_spec["class"], "files_from": {"minilm": "models/all-MiniLM-L6-v2",
                                                        "bpe": "Tests/Fixtures/bpe"}[t_spec["source"]],
                      "files": t_spec["files"], "returns": returned,
                      "do_lower_case": family != "roberta"},
        "classifier": {
            "num_labels": NUM_LABELS,
            "head_initialised_from_recipe": initialised,
            "checkpoint_tensors_unused": unexpected,
            "parameters": [[n, list(p.shape)] for n, p in model.named_parameters()],
        },
        "batch": {
            "source": "RTE/train.tsv, first 8 data rows in file order (sentence1, sentence2)",
            "label_map": RTE_LABELS, "truncation": True, "max_length": MAX_LEN,
            "padding": "longest", "shape": [B, T], "lengths": lengths,
            "labels": labels.tolist(), "examples": ex,
            "tokens": [tok.convert_ids_to_tokens(r[mk.bool()].tolist())
                       for r, mk in zip(enc["input_ids"], enc["attention_mask"])],
        },
        "loss": loss.item(),
        "hf_labels_loss": hf_loss.item(),
        "gradients": {
            "full": grad_names,
            "rows": [word],
            "row_count": int(tensors["rows." + word].shape[0]),
            "zero_gradient": zero_grad,
            "total_norm": math.sqrt(gnorm2),
        },
        "adamw": dict(ADAMW, **{
            "trainable": trainable,
            "weight_decay_on": decay_names,
            "no_weight_decay": plain_names,
            "grad_norm_pre_clip": pre,
            "clip_coef": clip_coef,
            "loss": loss2.item(),
            "loss_after": loss_after,
        }),
        "embed": {
            "source": "STS-B/dev.tsv, sentence1 of the first 8 data rows, tokenized alone",
            "sentences": sents, "truncation": True, "max_length": MAX_LEN, "padding": "longest",
            "shape": list(emb.shape), "seq_len": int(e["input_ids"].shape[1]),
            "pooling": f"model.{fam['base']}(...).last_hidden_state, "
                       "sum(h * mask) / sum(mask), no normalisation",
        },
        "keys": sorted(tensors.keys()),
    }
    write_json(os.path.join(out, "fixture.json"), fixture)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"[{family}] wrote {sorted(os.listdir(out))}, {size} bytes")
    return size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--glue", default="/work/shared/data/glue")
    ap.add_argument("--minilm", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--bpe", default="Tests/Fixtures/bpe")
    ap.add_argument("--out", default="Tests/Fixtures/families")
    ap.add_argument("--only", default=None, help="comma-separated subset of families")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()

    check_values, _ = check_recipe()

    with open(os.path.join(args.bpe, "vocab.json"), encoding="utf-8") as f:
        bpe_size = len(json.load(f))
    FAMILIES["roberta"]["config"] = lambda: RobertaConfig(
        vocab_size=bpe_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)

    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for family, fam in FAMILIES.items():
            if args.only and family not in args.only.split(","):
                continue
            src = args.minilm if fam["tokenizer"]["source"] == "minilm" else args.bpe
            tok = make_tokenizer(family, fam["tokenizer"], src, tmp)
            if family == "bert":  # the copied files tokenize exactly as the full folder does
                full = AutoTokenizer.from_pretrained(args.minilm, local_files_only=True)
                s = rte_batch(args.glue)
                a = [x["sentence1"] for x in s]
                b = [x["sentence2"] for x in s]
                assert full(a, b, truncation=True, max_length=MAX_LEN)["input_ids"] == \
                    tok(a, b, truncation=True, max_length=MAX_LEN)["input_ids"]
            total += run_family(family, fam, fam["config"](), tok, args, tmp, check_values)
    print(f"total fixture size {total} bytes")


if __name__ == "__main__":
    main()
