"""What the tokenizer fixture scripts share (tokenizer_fixtures.py for WordPiece, bpe_fixtures.py for
byte-level BPE): the local GLUE text columns, the id hash the Swift tests recompute, and the two
fixtures written the same way for every tokenizer.

  <TASK>-<split>.hashes  one line per data row: "<h128> <hA> [<hB>]", h128 hashing the ids the task
                         feeds the model (truncation=True, max_length=128, batched as run_glue does, so
                         an empty second text is still a pair) and hA / hB each text alone (512).
  unicode-sweep.hashes   one line per block of 256 code points: "<first code point hex> <hash>", over
                         the ids of "x" + chr(c) + "y" for every non-surrogate c of the block.
A hash is FNV-1a 64 (16 hex digits) of the ids joined by single spaces.
"""
import os

# task -> (text columns, has header). Column numbers are 0-based.
TASKS = {
    "CoLA": ([3], False),
    "MRPC": ([3, 4], True),
    "RTE": ([1, 2], True),
    "WNLI": ([1, 2], True),
    "STS-B": ([7, 8], True),
}


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def ids_hash(ids):
    return fnv1a64(" ".join(str(i) for i in ids))


def read_rows(path, columns, header):
    """Splits on '\\n' and '\\t' only: str.splitlines() would also break on U+2028, U+0085 and friends."""
    with open(path, "r", encoding="utf-8-sig", newline="") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if header:
        lines = lines[1:]
    rows = []
    for number, line in enumerate(lines, start=2 if header else 1):
        fields = line.split("\t")
        if len(fields) <= max(columns):
            raise SystemExit(f"{path}:{number}: expected more than {max(columns)} tab-separated fields")
        rows.append([fields[c] for c in columns])
    return rows


def glue_fixtures(tok, glue_dir, out_dir):
    total = 0
    for task, (columns, header) in TASKS.items():
        for split in ("train", "dev"):
            rows = read_rows(os.path.join(glue_dir, task, f"{split}.tsv"), columns, header)
            if len(columns) == 1:
                fed = tok([r[0] for r in rows], truncation=True, max_length=128)["input_ids"]
            else:
                fed = tok([r[0] for r in rows], [r[1] for r in rows], truncation=True, max_length=128)["input_ids"]
            alone = [tok([r[c] for r in rows], truncation=True, max_length=512)["input_ids"] for c in range(len(columns))]
            out = os.path.join(out_dir, f"{task}-{split}.hashes")
            with open(out, "w", encoding="utf-8") as f:
                for i, ids in enumerate(fed):
                    f.write(" ".join([ids_hash(ids)] + [ids_hash(a[i]) for a in alone]) + "\n")
            total += len(rows)
            print(f"{out}: {len(rows)} rows")
    print(f"GLUE rows: {total}")


def unicode_sweep(tok, out_dir):
    out = os.path.join(out_dir, "unicode-sweep.hashes")
    with open(out, "w", encoding="utf-8") as f:
        for start in range(0, 0x110000, 256):
            chars = [c for c in range(start, start + 256) if not 0xD800 <= c <= 0xDFFF]
            if not chars:
                continue
            ids = tok(["x" + chr(c) + "y" for c in chars])["input_ids"]
            f.write("%04x %s\n" % (start, fnv1a64("\n".join(" ".join(map(str, i)) for i in ids))))
    print(f"{out}: written")
