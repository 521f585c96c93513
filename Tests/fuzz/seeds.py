#!/usr/bin/env python3
"""The valid inputs the fuzzer mutates, built with the standard library only (CI has no torch).

    python3 Tests/fuzz/seeds.py OUT_DIR

writes under OUT_DIR:
    bert/ roberta/ electra/ distilbert/   tiny hub folders: the committed fixture config.json, a
                                          model.safetensors with every tensor of the fixture's
                                          layout.json (small deterministic values, not the test recipe),
                                          the family's tokenizer files
    roberta/tokenizer.json                the added tokens, as roberta-base's (<mask> with lstrip)
    task/, task2/                         user tasks: train.tsv, dev.jsonl, task.json; train.csv, dev.tsv
    adapter.safetensors                   a LayerNorm adapter of the BERT folder (2 labels)
    journal.jsonl                         Tests/Fixtures/report/journal-a.jsonl
"""
import json
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
MINILM = os.path.join(ROOT, "models", "all-MiniLM-L6-v2")


def values(name, count):
    """Deterministic small floats: LayerNorm gains near 1, everything else near 0."""
    h = 0
    for b in name.encode():
        h = (h * 31 + b) & 0xFFFF
    gain = name.endswith("LayerNorm.weight") or name.endswith("layer_norm.weight")
    base = 1.0 if gain else 0.0
    return [base + (((h + 7 * i) % 97) - 48) / 2400.0 for i in range(count)]


def write_safetensors(path, tensors, metadata=None):
    """tensors: [(name, shape, floats)] in file order, F32."""
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, shape, vals in tensors:
        blob = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def family_folder(out, family):
    src = os.path.join(FIXTURES, "families", family)
    dst = os.path.join(out, family)
    os.makedirs(dst, exist_ok=True)
    shutil.copy(os.path.join(src, "config.json"), dst)
    layout = json.load(open(os.path.join(src, "layout.json")))["tensors"]
    tensors = []
    for t in layout:
        n = 1
        for d in t["shape"]:
            n *= d
        tensors.append((t["name"], t["shape"], values(t["name"], n)))
    write_safetensors(os.path.join(dst, "model.safetensors"), tensors, {"format": "pt"})
    if family == "roberta":
        for f in ("vocab.json", "merges.txt"):
            shutil.copy(os.path.join(FIXTURES, "bpe", f), dst)
    else:
        for f in ("vocab.txt", "tokenizer_config.json"):
            shutil.copy(os.path.join(MINILM, f), dst)


ROWS = [("A fine film.", "pos"), ("Dull and slow.", "neg"), ("Great fun, really.", "pos"),
        ("Awful.", "neg"), ("I liked it", "pos"), ("Not for me", "neg")]


def task_folders(out):
    """task/: train.tsv, dev.jsonl and task.json; task2/: train.csv and dev.tsv, no task.json."""
    d = os.path.join(out, "task")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "train.tsv"), "w") as f:
        f.write("sentence\tlabel\n")
        for text, label in ROWS:
            f.write("%s\t%s\n" % (text, label))
    with open(os.path.join(d, "dev.jsonl"), "w") as f:
        for k, (text, label) in enumerate(ROWS[:4]):
            f.write(json.dumps({"id": "r%d" % k, "sentence": text, "label": label}) + "\n")
    with open(os.path.join(d, "task.json"), "w") as f:
        json.dump({"labels": ["neg", "pos"]}, f)
    d = os.path.join(out, "task2")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "train.csv"), "w") as f:
        f.write("sentence,label\n")
        for text, label in ROWS:
            f.write('"%s",%s\n' % (text.replace('"', '""'), label))
    with open(os.path.join(d, "dev.tsv"), "w") as f:
        f.write("sentence\tlabel\n")
        for text, label in ROWS[:4]:
            f.write("%s\t%s\n" % (text, label))


def roberta_tokenizer_json(out):
    """The added_tokens part of a hub tokenizer.json, <mask> with lstrip as in roberta-base."""
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    added = [{"id": i, "content": c, "single_word": False, "lstrip": c == "<mask>", "rstrip": False,
              "normalized": False, "special": True} for i, c in enumerate(specials)]
    with open(os.path.join(out, "roberta", "tokenizer.json"), "w") as f:
        json.dump({"added_tokens": added}, f)


def adapter(out):
    """LayerNorm weights and biases of both layers plus the head of the BERT folder (2 labels)."""
    tensors = []
    for layer in range(2):
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            for part in ("weight", "bias"):
                name = "encoder.layer.%d.%s.%s" % (layer, ln, part)
                tensors.append((name, [32], values(name, 32)))
    tensors.append(("classifier.weight", [2, 32], values("classifier.weight", 64)))
    tensors.append(("classifier.bias", [2], values("classifier.bias", 2)))
    write_safetensors(os.path.join(out, "adapter.safetensors"), tensors,
                      {"format": "pt", "swift_petl.num_labels": "2"})


def main_into(out):
    os.makedirs(out, exist_ok=True)
    for family in ("bert", "roberta", "electra", "distilbert"):
        family_folder(out, family)
    task_folders(out)
    roberta_tokenizer_json(out)
    adapter(out)
    shutil.copy(os.path.join(FIXTURES, "report", "journal-a.jsonl"), os.path.join(out, "journal.jsonl"))


if __name__ == "__main__":
    main_into(sys.argv[1])
