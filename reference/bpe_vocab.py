#!/usr/bin/env python3
"""Trains the small byte-level BPE vocabulary the RoBERTa tests use (no RoBERTa vocabulary is
obtainable here): `tokenizers`' ByteLevelBPETokenizer on the text columns of the local GLUE train
files, with RoBERTa's special tokens at RoBERTa's ids (<s> 0, <pad> 1, </s> 2, <unk> 3, <mask> 4).

Run from the repository root (deterministic; a few seconds):
    /work/venv/bin/python reference/bpe_vocab.py ../shared/data/glue Tests/Fixtures/bpe
Writes vocab.json and merges.txt (the files a RoBERTa hub folder ships).
"""
import os
import sys

from tokenizers import ByteLevelBPETokenizer

GLUE = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/glue"
OUT = sys.argv[2] if len(sys.argv) > 2 else "Tests/Fixtures/bpe"
VOCAB_SIZE = 4000
# task -> (text columns, header row)
TASKS = {"CoLA": ([3], False), "MRPC": ([3, 4], True), "RTE": ([1, 2], True),
         "WNLI": ([1, 2], True), "STS-B": ([7, 8], True)}


def texts():
    for task, (cols, header) in sorted(TASKS.items()):
        with open(os.path.join(GLUE, task, "train.tsv"), encoding="utf-8-sig", newline="") as f:
            lines = f.read().split("\n")
        for line in lines[1 if header else 0:]:
            fields = line.split("\t")
            if len(fields) > max(cols):
                for c in cols:
                    yield fields[c]


tok = ByteLevelBPETokenizer()
tok.train_from_iterator(list(texts()), vocab_size=VOCAB_SIZE, min_frequency=2,
                        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
os.makedirs(OUT, exist_ok=True)
tok.save_model(OUT)
print(f"{OUT}: vocab.json ({tok.get_vocab_size()} tokens), merges.txt")
