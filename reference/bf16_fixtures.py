#!/usr/bin/env python3
"""PyTorch CPU autocast bf16 reference for the engine's `--precision bf16`.

Usage (from the repository root):
    HF_HUB_OFFLINE=1 .venv-ref/bin/python reference/bf16_fixtures.py --out Tests/Fixtures/bf16

Options: --glue (default /work/shared/data/glue), --minilm (default models/all-MiniLM-L6-v2),
--bpe (default Tests/Fixtures/bpe), --out.

What it runs, per model, on one batch in eval mode with every nn.Dropout at p=0 and
attn_implementation="eager" (the engine's attention; also what reference/bench_torch.py times):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(**batch).logits
        loss = F.cross_entropy(logits, labels)
    loss.backward()          # outside autocast, as autocast is meant to be used
with every parameter trainable (fp32 master weights; the gradients arrive in fp32), and the same in
plain fp32 for the distance bf16 itself makes.

Models:
  - the four tiny family checkpoints of reference/family_fixtures.py (recipe weights, rebuilt here
    with its own functions; same RTE batch of 8 pairs, max_length 64);
  - all-MiniLM-L6-v2 with the head of Tests/Fixtures/model/head.safetensors and the batch of
    Tests/Fixtures/model/forward.safetensors (RTE, 8 pairs, max_length 128).

Writes <out>/<name>.safetensors and <out>/<name>.json, name in bert, roberta, electra, distilbert,
minilm. Gradients are sampled to keep the fixtures small: for a tensor of n elements the entries
at flat indices floor(k * n / 512), k < 512 (all of them when n <= 512); the word embeddings'
gradient is gathered at the batch's sorted distinct ids (`rows.<name>`) and that [rows, E] matrix
sampled the same way. Keys: `logits` (autocast's bf16 logits, widened), `loss`, `grad.<name>` /
`rowgrad.<name>` (sampled bf16-autocast gradients), `rows.<name>`. The JSON holds, per tensor, the
relative L2 distance between PyTorch's bf16 and fp32 gradients over the sample (`bf16_vs_fp32`) and
over the whole tensor (`bf16_vs_fp32_full`), their cosine over the whole tensor
(`bf16_vs_fp32_cosine`), the logits' max |bf16 - fp32|, the dtypes autocast
produced, and versions. One thread, deterministic algorithms: a rerun gives the same bytes.
"""

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from safetensors.torch import load_file as load_torch_file  # noqa: E402
from transformers import AutoTokenizer, BertForSequenceClassification, RobertaConfig  # noqa: E402

import family_fixtures as ff  # noqa: E402

SAMPLE = 512


def sample_index(n):
    """floor(k * n / 512) for k < 512, or every index when n <= 512 (the Swift test's rule)."""
    if n <= SAMPLE:
        return np.arange(n, dtype=np.int64)
    return (np.arange(SAMPLE, dtype=np.int64) * n) // SAMPLE


def rel(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    den = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / den) if den > 0 else float(np.linalg.norm(a - b))


def cosine(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    den = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / den) if den > 0 else 1.0


def gradients(model, enc, labels, bf16):
    """logits, loss and {name: fp32 gradient} of one forward/backward, under autocast when bf16."""
    model.zero_grad(set_to_none=True)
    for p in model.parameters():
        p.requires_grad_(True)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with ctx:
        logits = model(**enc).logits
        loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    grads = {n: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
             for n, p in model.named_parameters()}
    return logits.detach(), loss.detach(), grads


def write(name, model, enc, labels, word, out, extra):
    l16, loss16, g16 = gradients(model, enc, labels, bf16=True)
    l32, loss32, g32 = gradients(model, enc, labels, bf16=False)
    assert l16.dtype == torch.bfloat16, l16.dtype  # autocast's linear returns bf16
    assert loss16.dtype == torch.float32, loss16.dtype  # cross_entropy autocasts to fp32
    tensors = {"logits": l16.float().numpy(), "loss": loss16.reshape(1).numpy()}
    distances, full_distances, cosines = {}, {}, {}
    for n, g in g16.items():
        assert g.dtype == torch.float32, (n, g.dtype)
        a, b = g.numpy(), g32[n].numpy()
        if n == word:
            rows = torch.unique(enc["input_ids"]).sort().values.numpy().astype(np.int64)
            tensors["rows." + n] = rows
            a, b = a[rows], b[rows]
            key = "rowgrad." + n
        else:
            key = "grad." + n
        idx = sample_index(a.size)
        tensors[key] = np.ascontiguousarray(a.ravel()[idx].astype(np.float32))
        distances[n] = rel(a.ravel()[idx], b.ravel()[idx])
        full_distances[n] = rel(a, b)
        cosines[n] = cosine(a, b)
    info = dict(extra, **{
        "model": name,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "autocast": "torch.autocast('cpu', dtype=torch.bfloat16) around forward and loss; backward outside",
        "dtypes": {"logits": str(l16.dtype), "loss": str(loss16.dtype), "gradients": "torch.float32"},
        "loss": float(loss16), "loss_fp32": float(loss32),
        "logits_max_abs_bf16_vs_fp32": float((l16.float() - l32).abs().max()),
        "sample": "flat indices floor(k * n / 512), k < 512 (all when n <= 512); word embeddings: "
                  "the gradient rows of the batch's sorted distinct ids, sampled the same way",
        "bf16_vs_fp32": distances,
        "bf16_vs_fp32_full": full_distances,
        "bf16_vs_fp32_cosine": cosines,
    })
    save_file(tensors, os.path.join(out, name + ".safetensors"))
    ff.write_json(os.path.join(out, name + ".json"), info)
    worst = max((v, k) for k, v in distances.items() if "key.bias" not in k and "k_lin.bias" not in k)
    print(f"[{name}] loss bf16 {float(loss16):.6f} fp32 {float(loss32):.6f}; logits max |bf16-fp32| "
          f"{info['logits_max_abs_bf16_vs_fp32']:.3e}; largest gradient distance bf16-fp32 {worst[0]:.3e} ({worst[1]})")


def families(args, tmp):
    with open(os.path.join(args.bpe, "vocab.json"), encoding="utf-8") as f:
        bpe_size = len(json.load(f))
    ff.FAMILIES["roberta"]["config"] = lambda: RobertaConfig(
        vocab_size=bpe_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
    for family, fam in ff.FAMILIES.items():
        src = args.minilm if fam["tokenizer"]["source"] == "minilm" else args.bpe
        tok = ff.make_tokenizer(family, fam["tokenizer"], src, tmp)
        ckpt = os.path.join(tmp, "ckpt_" + family)
        ff.build_checkpoint(family, fam, fam["config"](), ckpt)
        model, _, _ = ff.load_classifier(family, fam, ckpt)
        ex = ff.rte_batch(args.glue)
        enc = tok([e["sentence1"] for e in ex], [e["sentence2"] for e in ex],
                  truncation=True, max_length=ff.MAX_LEN, padding="longest", return_tensors="pt")
        enc = {k: enc[k] for k in enc.keys()}
        labels = torch.tensor([e["label"] for e in ex], dtype=torch.int64)
        word = f"{fam['base']}.embeddings.word_embeddings.weight"
        write(family, model, enc, labels, word, args.out,
              {"checkpoint": "Tests/Fixtures/families/" + family + " (recipe weights and head)",
               "batch": "RTE/train.tsv first 8 pairs, max_length 64, the family fixture's batch"})


def minilm(args):
    fx = "Tests/Fixtures/model"
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(
        args.minilm, num_labels=2, local_files_only=True, attn_implementation="eager")
    head = load_torch_file(os.path.join(fx, "head.safetensors"))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in head:
                p.copy_(head[n])
    ff.no_dropout(model)
    fw = load_torch_file(os.path.join(fx, "forward.safetensors"))
    enc = {k: fw[k] for k in ["input_ids", "token_type_ids", "attention_mask"]}
    write("minilm", model, enc, fw["labels"], "bert.embeddings.word_embeddings.weight", args.out,
          {"checkpoint": args.minilm + " with Tests/Fixtures/model/head.safetensors",
           "batch": "Tests/Fixtures/model/forward.safetensors (RTE, 8 pairs, max_length 128)",
           "names": "parameter names carry the `bert.` prefix; the head's do not"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--glue", default="/work/shared/data/glue")
    ap.add_argument("--minilm", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--bpe", default="Tests/Fixtures/bpe")
    ap.add_argument("--out", default="Tests/Fixtures/bf16")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        families(args, tmp)
    minilm(args)
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {sorted(os.listdir(args.out))}, {size} bytes")


if __name__ == "__main__":
    main()
