#!/usr/bin/env python3
"""transformers' side of `swift-petl export`: the exported folders load and predict like `predict`.

Usage (from the repository root, after `swift build -c release`):
    HF_HUB_OFFLINE=1 /work/venv/bin/python reference/export_fixtures.py \
        --swift-petl .build/release/swift-petl --out Tests/Fixtures/export

Options: --glue (default /work/shared/data/glue), --minilm (default models/all-MiniLM-L6-v2),
--bpe (default Tests/Fixtures/bpe), --families (default Tests/Fixtures/families), --only CASES.

Needs torch 2.13.0, transformers 5.24.0 and peft 0.21.2. For each case (every family on RTE, and
BERT on STS-B for a regression head) the script
  1. rebuilds the tiny hub-layout checkpoint of reference/family_fixtures.py exactly as the Swift
     test does (`FamilyFixtures.folder`): config.json from Tests/Fixtures/families/<family>/, every
     tensor of layout.json from the recipe, the family's tokenizer files;
  2. writes a recipe adapter: every encoder LayerNorm (ln_attn and ln_out of every layer) and the
     task's classification head, tensor N (our name) = recipe("adapter." + N), the head's output
     projection weight times 30 (OUTPUT_SCALE), metadata swift_petl.task / swift_petl.num_labels (no
     training, so no dependence on the engine's numerics);
  3. runs `swift-petl export --peft` and `swift-petl predict --output` (with the adapter, and on the
     exported folder without one: the two must agree byte for byte) on the full dev set;
  4. loads the export with AutoModelForSequenceClassification.from_pretrained(output_loading_info=True)
     (no missing, unexpected or mismatched key; the family's class; the tensor names are exactly
     what save_pretrained of that model writes), checks config.json (every original member kept
     as written, the label fields), tokenizes the dev set with AutoTokenizer.from_pretrained(export)
     at predict's max_length and checks transformers' logits against predict's (1e-4), the
     pipeline() call of docs/export.md, and the PEFT folder: PeftModel.from_pretrained(base, export/peft)
     restores every adapter tensor (get_peft_model_state_dict gives the file back exactly), predicts
     the same, and PEFT's own save_pretrained of that model writes the same keys and config;
  5. writes Tests/Fixtures/export/<case>/expected.json (format in reference/README.md, "Export
     fixtures") for Tests/PETLTests/CLI/ExportTests.swift.

Everything runs on the CPU in float32, one thread, eval mode, attn_implementation="eager". A rerun
with the same binary gives the same bytes.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import peft
import safetensors
import tokenizers
import torch
import transformers
from peft import LNTuningConfig, PeftModel, get_peft_model
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors import safe_open
from safetensors.numpy import save_file
from safetensors.torch import load_file as load_torch_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from family_fixtures import FAMILIES, read_tsv, recipe, write_json  # noqa: E402

MAX_LENGTH = 64  # the tiny checkpoints' positions (RoBERTa: 66 - pad_token_id - 1)
BATCH = 32
TOLERANCE = 1e-4
# (case folder, family, task): every family on RTE (the done-when), BERT on STS-B (regression).
CASES = [("bert", "bert", "rte"), ("roberta", "roberta", "rte"), ("electra", "electra", "rte"),
         ("distilbert", "distilbert", "rte"), ("bert-stsb", "bert", "stsb")]
TASKS = {
    "rte": {"folder": "RTE", "text": ("sentence1", "sentence2"), "label": "label",
            "labels": ["entailment", "not_entailment"]},
    "stsb": {"folder": "STS-B", "text": ("sentence1", "sentence2"), "label": "score", "labels": None},
}
# config.json members `swift-petl export` sets; every other member must come through as written.
SET_KEYS = ["architectures", "id2label", "label2id", "problem_type", "num_labels", "dtype", "torch_dtype"]
PIPELINE_ROWS = 4
# The recipe's head gives logits that vary across the dev set by ~5e-4 only (tiny random encoders
# carry little of the input into [CLS]), too close to the 1e-4 tolerance for a wrong token or a
# truncation off by a few tokens to show. The adapter's output projection times 30 spreads them 30x.
OUTPUT_SCALE = 30


def run(argv):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    p = subprocess.run(argv, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    return p.stdout


def build_checkpoint(family, args, out):
    """FamilyFixtures.folder: config.json, the recipe's model.safetensors, the tokenizer files."""
    src = os.path.join(args.families, family)
    os.makedirs(out)
    shutil.copyfile(os.path.join(src, "config.json"), os.path.join(out, "config.json"))
    with open(os.path.join(src, "layout.json"), encoding="utf-8") as f:
        layout = json.load(f)["tensors"]
    save_file({t["name"]: recipe(t["name"], t["shape"]) for t in layout},
              os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(src, "fixture.json"), encoding="utf-8") as f:
        tok = json.load(f)["tokenizer"]
    files_from = {"models/all-MiniLM-L6-v2": args.minilm, "Tests/Fixtures/bpe": args.bpe}[tok["files_from"]]
    for name in tok["files"]:
        shutil.copyfile(os.path.join(files_from, name), os.path.join(out, name))


def adapter_tensors(family, num_labels, args):
    """Our names and shapes of the adapter: the encoder LayerNorms and the head, in
    named_parameters order of the family's classifier (the fixture's list), head width num_labels."""
    with open(os.path.join(args.families, family, "fixture.json"), encoding="utf-8") as f:
        fx = json.load(f)
    fam = FAMILIES[family]
    prefix = fam["base"] + "."
    ln = re.compile(fam["layer_ln"])
    out = []
    for name, shape in fx["classifier"]["parameters"]:
        if ln.match(name):
            out.append((name[len(prefix):], shape))
        elif name in fam["head"]:
            if name in ("classifier.weight", "classifier.out_proj.weight"):
                shape = [num_labels, shape[1]]
            elif name in ("classifier.bias", "classifier.out_proj.bias"):
                shape = [num_labels]
            out.append((name, shape))
    return out


OUTPUT_WEIGHTS = ("classifier.weight", "classifier.out_proj.weight")


def adapter_value(name, shape):
    """recipe("adapter." + name), the head's output projection times OUTPUT_SCALE (in float32)."""
    v = recipe("adapter." + name, shape)
    return v * np.float32(OUTPUT_SCALE) if name in OUTPUT_WEIGHTS else v


def write_adapter(path, tensors, task, num_labels):
    meta = {"format": "pt", "swift_petl.task": task, "swift_petl.num_labels": str(num_labels)}
    save_file({n: adapter_value(n, s) for n, s in tensors}, path, metadata=meta)
    return meta


def dev_rows(args, task):
    spec = TASKS[task]
    header, rows = read_tsv(os.path.join(args.glue, spec["folder"], "dev.tsv"))
    a, b = (header.index(c) for c in spec["text"])
    lab = header.index(spec["label"])
    return [(r[a], r[b], r[lab]) for r in rows]


def read_predictions(path, num_labels):
    """predict --output: the output columns (logit_<label>... or score) and the gold label, by header."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    header = lines[0].split("\t")
    outputs = [i for i, h in enumerate(header) if h.startswith("logit_") or h == "score"]
    assert len(outputs) == num_labels, header
    gold = header.index("label")
    rows = [l.split("\t") for l in lines[1:]]
    return np.array([[float(r[i]) for i in outputs] for r in rows], dtype=np.float32), [r[gold] for r in rows]


def same_json(a, b):
    """Equal values of the same JSON types (1.0 is not 1, True is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return a == b


def transformers_logits(model, tok, rows):
    out = []
    for i in range(0, len(rows), BATCH):
        chunk = rows[i:i + BATCH]
        enc = tok([r[0] for r in chunk], [r[1] for r in chunk], truncation=True, max_length=MAX_LENGTH,
                  padding="longest", return_tensors="pt")
        with torch.no_grad():
            out.append(model(**enc).logits.float().numpy())
    return np.concatenate(out)


def f32(x):
    """A float32 value as the shortest decimal that reads back to it."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-")) if np.isfinite(x) else None


def check_case(case, family, task, args, tmp):
    spec = TASKS[task]
    labels = spec["labels"]
    num_labels = len(labels) if labels else 1
    ckpt = os.path.join(tmp, "ckpt")
    build_checkpoint(family, args, ckpt)
    tensors = adapter_tensors(family, num_labels, args)
    adapter = os.path.join(tmp, "adapter.safetensors")
    meta = write_adapter(adapter, tensors, task, num_labels)
    export = os.path.join(tmp, "export")
    swift = os.path.abspath(args.swift_petl)
    print(run([swift, "export", "--model", ckpt, "--adapter", adapter, "--task", task, "--output", export, "--peft"]).strip())

    # predict: with the adapter, and on the export alone -------------------------------------
    pred_a, pred_b = os.path.join(tmp, "a.tsv"), os.path.join(tmp, "b.tsv")
    common = ["--task", task, "--data-dir", args.glue, "--max-length", str(MAX_LENGTH)]
    run([swift, "predict", "--model", ckpt, "--adapter", adapter, "--output", pred_a] + common)
    run([swift, "predict", "--model", export, "--output", pred_b] + common)
    with open(pred_a, "rb") as fa, open(pred_b, "rb") as fb:
        assert fa.read() == fb.read(), "predict on the export differs from predict with the adapter"
    ours, gold = read_predictions(pred_a, num_labels)
    rows = dev_rows(args, task)
    assert len(rows) == len(ours), (len(rows), len(ours))
    if labels:
        assert gold == [r[2] for r in rows], "dev rows differ from predict's"
    else:
        assert np.allclose([float(g) for g in gold], [float(r[2]) for r in rows], rtol=0, atol=1e-6)

    # the export in transformers ---------------------------------------------------------------
    cls = FAMILIES[family]["seq_cls"]
    model, info = AutoModelForSequenceClassification.from_pretrained(
        export, output_loading_info=True, attn_implementation="eager", local_files_only=True)
    model.eval()
    for k in ["missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"]:
        assert not info.get(k), (k, info[k])
    assert type(model) is cls, type(model)
    with safe_open(os.path.join(export, "model.safetensors"), "np") as f:
        names = sorted(f.keys())
        assert f.metadata().get("format") == "pt", f.metadata()
    resaved = os.path.join(tmp, "resaved")
    model.save_pretrained(resaved)
    with safe_open(os.path.join(resaved, "model.safetensors"), "np") as f:
        assert sorted(f.keys()) == names, set(f.keys()) ^ set(names)

    with open(os.path.join(ckpt, "config.json"), encoding="utf-8") as f:
        original = json.load(f)
    with open(os.path.join(export, "config.json"), encoding="utf-8") as f:
        exported = json.load(f)
    for k, v in original.items():
        if k not in SET_KEYS:
            assert same_json(exported[k], v), (k, exported.get(k), v)
    set_fields = {k: exported[k] for k in SET_KEYS if k in exported}
    assert sorted(set(exported) - set(original)) == sorted(set(set_fields) - set(original)), "unexpected members"
    names_ = labels or ["score"]
    assert set_fields["architectures"] == [cls.__name__]
    assert set_fields["id2label"] == {str(i): n for i, n in enumerate(names_)}
    assert set_fields["label2id"] == {n: i for i, n in enumerate(names_)}
    assert set_fields["problem_type"] == ("single_label_classification" if labels else "regression")
    assert model.config.num_labels == num_labels
    assert model.config.id2label == dict(enumerate(names_))
    assert model.config.problem_type == set_fields["problem_type"]
    tokenizer_files = sorted(n for n in os.listdir(export)
                             if n not in ("model.safetensors", "config.json", "peft"))
    for n in tokenizer_files:
        with open(os.path.join(export, n), "rb") as a, open(os.path.join(ckpt, n), "rb") as b:
            assert a.read() == b.read(), n

    tok = AutoTokenizer.from_pretrained(export, local_files_only=True)
    theirs = transformers_logits(model, tok, rows)
    worst = float(np.abs(theirs - ours).max())
    assert worst <= TOLERANCE, f"{case}: transformers vs predict max |diff| {worst}"
    spread = float(np.abs(theirs - theirs.mean(0)).max())
    print(f"[{case}] {cls.__name__}: {len(names)} tensors, nothing missing or unexpected; "
          f"{len(rows)} dev rows, transformers vs predict max |diff| {worst:.2e} (logits spread {spread:.3f})")

    # docs/export.md's pipeline lines -----------------------------------------------------------
    clf = pipeline("text-classification", model=export, tokenizer=export)
    got = clf([{"text": r[0], "text_pair": r[1]} for r in rows[:PIPELINE_ROWS]],
              truncation=True, max_length=MAX_LENGTH)
    for g, row in zip(got, theirs[:PIPELINE_ROWS]):
        if labels:
            p = np.exp(row - row.max()); p /= p.sum()
            assert g["label"] == labels[int(row.argmax())] and abs(g["score"] - p.max()) < 1e-5, (g, row)
        else:
            assert g["label"] == "score" and abs(g["score"] - row[0]) < 1e-5, (g, row)

    # PEFT LN tuning -----------------------------------------------------------------------------
    peft_dir = os.path.join(export, "peft")
    with open(os.path.join(peft_dir, "adapter_config.json"), encoding="utf-8") as f:
        peft_config = json.load(f)
    assert peft_config["base_model_name_or_path"] == os.path.abspath(ckpt), peft_config
    with safe_open(os.path.join(peft_dir, "adapter_model.safetensors"), "pt") as f:
        peft_names = sorted(f.keys())
    base = AutoModelForSequenceClassification.from_pretrained(
        ckpt, num_labels=num_labels, attn_implementation="eager", local_files_only=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pm = PeftModel.from_pretrained(base, peft_dir)
    assert not [w for w in caught if "missing adapter keys" in str(w.message)], [str(w.message) for w in caught]
    pm.eval()
    stored = load_torch_file(os.path.join(peft_dir, "adapter_model.safetensors"))
    restored = get_peft_model_state_dict(pm)
    assert sorted(restored) == peft_names, set(restored) ^ set(peft_names)
    for k in peft_names:
        assert torch.equal(restored[k], stored[k]), k
    peft_logits = transformers_logits(pm, tok, rows)
    peft_worst = float(np.abs(peft_logits - theirs).max())
    assert peft_worst <= 1e-5, f"{case}: PEFT vs export max |diff| {peft_worst}"
    # PEFT's own writer, given the same targets and head, writes the same keys and config.
    base2 = AutoModelForSequenceClassification.from_pretrained(
        ckpt, num_labels=num_labels, attn_implementation="eager", local_files_only=True)
    own = get_peft_model(base2, LNTuningConfig(task_type="SEQ_CLS", target_modules=peft_config["target_modules"],
                                                modules_to_save=list(peft_config["modules_to_save"])))
    set_peft_model_state_dict(own, stored)
    own_dir = os.path.join(tmp, "peft_own")
    own.save_pretrained(own_dir)
    with safe_open(os.path.join(own_dir, "adapter_model.safetensors"), "pt") as f:
        assert sorted(f.keys()) == peft_names, set(f.keys()) ^ set(peft_names)
        for k in peft_names:
            assert torch.equal(f.get_tensor(k), stored[k]), k
    with open(os.path.join(own_dir, "adapter_config.json"), encoding="utf-8") as f:
        own_config = json.load(f)
    for k, v in peft_config.items():
        if k == "modules_to_save":  # PEFT adds its SEQ_CLS defaults ("classifier", "score") again
            assert set(v) <= set(own_config[k]) <= set(v) | {"classifier", "score"}, (v, own_config[k])
        elif k != "base_model_name_or_path":
            assert same_json(own_config[k], v), (k, own_config[k], v)
    assert set(own_config) == set(peft_config), set(own_config) ^ set(peft_config)
    print(f"[{case}] PEFT LN tuning: {len(peft_config['target_modules'])} LayerNorms + "
          f"{peft_config['modules_to_save']}, every tensor restored, vs export max |diff| {peft_worst:.2e}; "
          f"PEFT's own save_pretrained writes the same keys and config")

    return {
        "case": case,
        "family": family,
        "task": task,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__, "tokenizers": tokenizers.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__},
        "adapter": {"value": f"recipe('adapter.' + name, shape), times {OUTPUT_SCALE} (in float32) for "
                             f"{' and '.join(OUTPUT_WEIGHTS)}",
                    "output_scale": OUTPUT_SCALE, "scaled": list(OUTPUT_WEIGHTS), "metadata": meta,
                    "tensors": [[n, s] for n, s in tensors]},
        "export": {
            "command": f"swift-petl export --model CKPT --adapter ADAPTER --task {task} --output OUT --peft",
            "class": cls.__name__,
            "tensor_names": names,
            "config_set": set_fields,
            "config_kept": sorted(k for k in original if k not in SET_KEYS),
            "tokenizer_files": tokenizer_files,
        },
        "peft": {
            "adapter_config": {k: v for k, v in peft_config.items() if k != "base_model_name_or_path"},
            "tensor_names": peft_names,
        },
        "predict": {"split": "dev", "rows": len(rows), "max_length": MAX_LENGTH,
                    "transformers": f"AutoTokenizer.from_pretrained(OUT)(s1, s2, truncation=True, "
                                    f"max_length={MAX_LENGTH}, padding='longest'), batches of {BATCH}, eval"},
        "max_abs_diff": {"transformers_vs_predict": worst, "peft_vs_transformers": peft_worst},
        "logits": [[f32(x) for x in row] for row in theirs],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--swift-petl", required=True)
    ap.add_argument("--glue", default="/work/shared/data/glue")
    ap.add_argument("--minilm", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--bpe", default="Tests/Fixtures/bpe")
    ap.add_argument("--families", default="Tests/Fixtures/families")
    ap.add_argument("--out", default="Tests/Fixtures/export")
    ap.add_argument("--only", default=None, help="comma-separated subset of the cases")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    for case, family, task in CASES:
        if args.only and case not in args.only.split(","):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            fixture = check_case(case, family, task, args, tmp)
        out = os.path.join(args.out, case)
        os.makedirs(out, exist_ok=True)
        write_json(os.path.join(out, "expected.json"), fixture)
        print(f"[{case}] wrote {out}/expected.json ({os.path.getsize(os.path.join(out, 'expected.json'))} bytes)")


if __name__ == "__main__":
    main()
