"""Reference fixtures for the Swift ByteLevelBPETokenizer (RoBERTa), produced by HuggingFace itself.

Run from the repository root:  HF_HUB_OFFLINE=1 /work/venv/bin/python reference/bpe_fixtures.py
Optional arguments: GLUE_DIR BPE_DIR (defaults: ../shared/data/glue, Tests/Fixtures/bpe). BPE_DIR holds the
vocab.json and merges.txt written by reference/bpe_vocab.py; the fixtures are written beside them.

The tokenizer is `RobertaTokenizer.from_pretrained` on a folder holding only vocab.json and merges.txt, which in
transformers 5.24 is the same pipeline as `RobertaTokenizer(vocab=..., merges=...)` (the script asserts it): added
tokens <s> <pad> </s> <unk> <mask> with no lstrip/rstrip, ByteLevel pre-tokenizer with add_prefix_space False, BPE
without unk_token, RobertaProcessing.

Writes into BPE_DIR:
  <TASK>-<split>.hashes  one line per data row of <TASK>/<split>.tsv (header excluded):
                         "<h128> <hA> [<hB>]" where h128 hashes the ids the task feeds the model (the row's text
                         or text pair, truncation=True, max_length=128) and hA / hB the ids of each sentence alone
                         (max_length=512). A hash is FNV-1a 64 (16 hex digits) of the ids joined by single spaces.
  unicode-sweep.hashes   one line per block of 256 code points: "<first code point hex> <hash>", the hash over the
                         ids of "x" + chr(c) + "y" for every non-surrogate c of the block, one id list per line.
  pretokenizer-sweep.hashes  as unicode-sweep.hashes, but over the pre-tokenizer's pieces (the byte-level spelling of
                         each piece, joined by single spaces) of PROBE(c), which puts c after a letter, a digit,
                         punctuation and spaces: the ids of "x" + c + "y" rarely show whether c is a letter, a
                         number or other, since no merge crosses a piece boundary there.
  cases.jsonl            readable cases: {"a", "b" (or null), "max_length", "ids", "token_type_ids", "tokens"}.
  cases-mask-lstrip.jsonl  the same for a folder that also holds a tokenizer.json whose <mask> has lstrip true, as
                         roberta-base's does (transformers then takes the added tokens' flags from it). The
                         tokenizer.json is this tokenizer's own backend with that one flag changed.

Everything is tokenized in batches, the way `run_glue` feeds the tokenizer: in a batch an empty second text is still
a pair (<s> a </s></s></s>), while the single-call API would drop it.
"""
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from glue_text_hashes import fnv1a64, glue_fixtures, unicode_sweep  # noqa: E402
from transformers import RobertaTokenizer  # noqa: E402

GLUE_DIR = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/glue"
BPE_DIR = sys.argv[2] if len(sys.argv) > 2 else "Tests/Fixtures/bpe"

def probe(c):
    return "a" + c + "1" + c + "," + c + " " + c + "b " + c + "  " + c + "\t" + c


def pretokenizer_sweep(tok):
    pre = tok.backend_tokenizer.pre_tokenizer
    out = os.path.join(BPE_DIR, "pretokenizer-sweep.hashes")
    with open(out, "w", encoding="utf-8") as f:
        for start in range(0, 0x110000, 256):
            chars = [c for c in range(start, start + 256) if not 0xD800 <= c <= 0xDFFF]
            if not chars:
                continue
            lines = [" ".join(piece for piece, _ in pre.pre_tokenize_str(probe(chr(c)))) for c in chars]
            f.write("%04x %s\n" % (start, fnv1a64("\n".join(lines))))
    print(f"{out}: written")


CASES = [
    # contractions: only lower-case 's 't 're 've 'm 'll 'd after an apostrophe; a space before it is a separate piece
    ("I'm sure you're right, they've said she'll go and he'd stay; it's done, don't.", None, 128),
    ("I'M YOU'RE 's 'S ' s rock 'n' roll 'twas ''ll '' x'", None, 128),
    ("the company 's long-term growth strategy doesn 't fit .", None, 128),
    # numbers and symbols
    ("Numbers 3.14159 1,000,000 2nd 10:30pm 50% 12345678901234567890 ½ ① ٣٤ Ⅻ", None, 128),
    ("$100 + <tag> = ^caret^ `tick` |pipe| ~tilde~ @at #hash", None, 128),
    # white space: runs, tabs, newlines, leading and trailing, Unicode spaces
    ("a  b   c    d", None, 128),
    ("tab\there\nnewline\r\ncrlf \n\n x\t\t y", None, 128),
    ("trailing   ", None, 128),
    ("   leading", None, 128),
    ("nbsp\u00a0x\u2028y\u3000z\u0085w\u200bv\ufeffu\u2009t", None, 128),
    ("   \t  ", None, 128),
    ("\n", None, 128),
    # scripts, emoji, combining marks, controls
    ("Café Crème, naïve résumé — déjà vu!", None, 128),
    ("ΟΔΟΣ Σίσυφος İstanbul STRAßE", None, 128),
    ("北京欢迎你 and 東京 mixed中文text", None, 128),
    ("ひらがな カタカナ 한국어 ภาษาไทย हिन्दी العربية", None, 128),
    ("€5, £3, ¥7, emoji 😀🎉 and ✓ check ™ © 👩‍👩‍👧 🇫🇷", None, 128),
    ("\u0301leading combining mark e\u0301 precomposed é", None, 128),
    ("nul\x00bell\x07 zero\u200bwidth repl\ufffdace soft\u00adhyphen", None, 128),
    # literal special tokens (matched in the raw text; no lstrip/rstrip without a tokenizer.json)
    ("<s>", None, 128),
    ("</s>", None, 128),
    ("a<s>b</s>c <pad> <unk>x <mask>", None, 128),
    ("the  <mask> is  <mask>.", None, 128),
    ("<s <mask <MASK> </ s> <<s>> <pad><pad>", None, 128),
    # empty texts
    ("", None, 128),
    ("", "", 128),
    ("only a", "", 128),
    ("", "only b", 128),
    # very long words
    ("a" * 300, None, 512),
    ("supercalifragilistic" * 20 + " antidisestablishmentarianism", None, 128),
    # truncation: single and pairs at small max_length (4 is the shortest a pair allows)
    ("the quick brown fox jumps over the lazy dog", None, 6),
    ("one two three four five six seven eight nine ten", "alpha beta gamma", 12),
    ("alpha beta gamma", "one two three four five six seven eight nine ten", 12),
    ("one two three four five", "six seven eight nine ten", 10),
    ("one two three four five", "six seven eight nine ten", 9),
    ("one two three four five", "six seven eight nine ten", 4),
    ("one two three four five", "six seven eight nine ten", 5),
    ("hyperparameterization is long", "antidisestablishmentarianism too", 9),
    ("x" * 30 + " " + "word " * 200, "tail " * 50, 128),
    ("He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .",
     "\" The foodservice pie business does not fit our long-term growth strategy .", 128),
]

MASK_LSTRIP_CASES = [
    (" Hello <mask> x", None, 128),
    ("a  <mask>b", None, 128),
    ("a\t\u3000\n<mask>", None, 128),
    ("<mask>", None, 128),
    ("  <mask>  ", None, 128),
    ("a <s> <mask> </s> b", None, 128),
    ("<s> <mask><mask> <mask>", None, 128),
    ("The capital of France is <mask>.", "  <mask> is big", 128),
]


def readable_cases(tok, cases, name):
    out = os.path.join(BPE_DIR, name)
    with open(out, "w", encoding="utf-8") as f:
        for a, b, max_length in cases:
            # RoBERTa's model inputs leave token types out; asked for, they are RobertaProcessing's (all 0).
            if b is None:
                enc = tok([a], truncation=True, max_length=max_length, return_token_type_ids=True)
            else:
                enc = tok([a], [b], truncation=True, max_length=max_length, return_token_type_ids=True)
            ids = enc["input_ids"][0]
            record = {"a": a, "b": b, "max_length": max_length, "ids": ids,
                      "token_type_ids": enc["token_type_ids"][0], "tokens": tok.convert_ids_to_tokens(ids)}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{out}: {len(cases)} cases")


def main():
    with tempfile.TemporaryDirectory() as plain, tempfile.TemporaryDirectory() as hub:
        for folder in (plain, hub):
            for name in ("vocab.json", "merges.txt"):
                shutil.copy(os.path.join(BPE_DIR, name), folder)
        tok = RobertaTokenizer.from_pretrained(plain)
        direct = RobertaTokenizer(vocab=os.path.join(plain, "vocab.json"), merges=os.path.join(plain, "merges.txt"))
        assert tok.backend_tokenizer.to_str() == direct.backend_tokenizer.to_str(), "from_pretrained != constructor"
        backend = json.loads(tok.backend_tokenizer.to_str())
        assert not any(t["lstrip"] or t["rstrip"] or t["single_word"] for t in backend["added_tokens"])
        for token in backend["added_tokens"]:
            if token["content"] == "<mask>":
                token["lstrip"] = True
        with open(os.path.join(hub, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(backend, f, ensure_ascii=False)
        hub_tok = RobertaTokenizer.from_pretrained(hub)
        flags = {t["content"]: t["lstrip"] for t in json.loads(hub_tok.backend_tokenizer.to_str())["added_tokens"]}
        assert flags["<mask>"] and not flags["<s>"], flags

        glue_fixtures(tok, GLUE_DIR, BPE_DIR)
        readable_cases(tok, CASES, "cases.jsonl")
        readable_cases(hub_tok, MASK_LSTRIP_CASES, "cases-mask-lstrip.jsonl")
        unicode_sweep(tok, BPE_DIR)
        pretokenizer_sweep(tok)


if __name__ == "__main__":
    main()
