#!/usr/bin/env python3
"""Loads a `swift-petl export --peft` of a LoRA adapter with PEFT itself and compares logits.

Usage (from the repository root; docs/lora.md has the commands that make the inputs):
    HF_HUB_OFFLINE=1 /work/main/.venv-ref/bin/python reference/lora_export_check.py \
        --base models/all-MiniLM-L6-v2 --export /tmp/i25/export --predictions /tmp/i25/preds.tsv \
        --glue-dev /work/shared/data/glue/RTE/dev.tsv

Checks, with torch 2.13.0, transformers 5.24.0, peft 0.21.2 (CPU, float32, eval):
  - PeftModel.from_pretrained(AutoModelForSequenceClassification.from_pretrained(base), export/peft)
    loads with no missing and no unexpected adapter key (PEFT's load_result);
  - its logits on the first N RTE dev pairs (N = the predictions' rows; max_length 128, as predict)
    equal `swift-petl predict`'s within 1e-4;
  - the merged export folder (plain transformers) gives the same logits within 1e-4.
Exits non-zero on any failure.
"""

import argparse
import csv
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import transformers
import peft
from peft import PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--export", required=True)
    ap.add_argument("--predictions", required=True)
    ap.add_argument("--glue-dev", required=True)
    ap.add_argument("--max-length", type=int, default=128)
    args = ap.parse_args()
    assert peft.__version__ == "0.21.2" and transformers.__version__ == "5.24.0", (peft.__version__, transformers.__version__)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()

    with open(args.predictions, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    ours = torch.tensor([[float(r[k]) for k in r if k.startswith("logit_")] for r in rows])
    with open(args.glue_dev, encoding="utf-8") as f:
        lines = [l.rstrip("\n").split("\t") for l in f if l.strip()]
    head, data = lines[0], lines[1:1 + len(rows)]
    a = [r[head.index("sentence1")] for r in data]
    b = [r[head.index("sentence2")] for r in data]
    tok = AutoTokenizer.from_pretrained(args.base, local_files_only=True)
    enc = tok(a, b, truncation=True, max_length=args.max_length, padding="longest", return_tensors="pt")

    base = AutoModelForSequenceClassification.from_pretrained(args.base, num_labels=ours.shape[1], local_files_only=True,
                                                              attn_implementation="eager")
    model = PeftModel.from_pretrained(base, os.path.join(args.export, "peft"))
    # from_pretrained keeps no load result: load the same folder again as a second adapter, whose
    # result lists the adapter keys the folder lacks (missing) or PEFT cannot place (unexpected)
    result = model.load_adapter(os.path.join(args.export, "peft"), adapter_name="check")
    missing = [k for k in result.missing_keys if ("lora_" in k or "modules_to_save" in k) and ".check." in k]
    unexpected = list(result.unexpected_keys)
    model.set_adapter("default")
    model.eval()
    with torch.no_grad():
        peft_logits = model(**enc).logits
    merged = AutoModelForSequenceClassification.from_pretrained(args.export, local_files_only=True,
                                                                attn_implementation="eager").eval()
    with torch.no_grad():
        merged_logits = merged(**enc).logits
    d_peft = (peft_logits - ours).abs().max().item()
    d_merged = (merged_logits - ours).abs().max().item()
    adapted = sum(1 for _, m in model.named_modules() if isinstance(m, peft.tuners.lora.Linear))
    print(f"PEFT {peft.__version__}: adapted {adapted} linears; missing adapter keys {missing}; unexpected {unexpected}")
    print(f"{len(rows)} examples: max |PEFT - predict| {d_peft:.2e}; max |merged export - predict| {d_merged:.2e}")
    ok = not missing and not unexpected and d_peft <= 1e-4 and d_merged <= 1e-4 and adapted > 0
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
