"""Reference fixtures for the Swift BertTokenizer, produced by HuggingFace itself.

Run from the repository root:  HF_HUB_OFFLINE=1 /work/venv/bin/python reference/tokenizer_fixtures.py
Optional arguments: GLUE_DIR MODEL_DIR OUT_DIR (defaults: ../shared/data/glue, models/all-MiniLM-L6-v2,
Tests/Fixtures/tokenizer).

Writes into OUT_DIR:
  <TASK>-<split>.hashes  one line per data row of <TASK>/<split>.tsv (header excluded):
                         "<h128> <hA> [<hB>]" where h128 hashes the ids the task feeds the model (the row's text
                         or text pair, truncation=True, max_length=128) and hA / hB the ids of each sentence alone
                         (max_length=512). A hash is FNV-1a 64 (16 hex digits) of the ids joined by single spaces.
  unicode-sweep.hashes   one line per block of 256 code points: "<first code point hex> <hash>", the hash over the
                         ids of "x" + chr(c) + "y" for every non-surrogate c of the block, one id list per line.
  cases.jsonl            readable cases: {"a", "b" (or null), "max_length", "ids", "token_type_ids", "tokens"}.

Everything is tokenized in batches, the way `run_glue` feeds the tokenizer: in a batch an empty second text is still
a pair ([CLS] a [SEP] [SEP]), while the single-call API would drop it.
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from glue_text_hashes import glue_fixtures, unicode_sweep  # noqa: E402
from transformers import AutoTokenizer  # noqa: E402

GLUE_DIR = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/glue"
MODEL_DIR = sys.argv[2] if len(sys.argv) > 2 else "models/all-MiniLM-L6-v2"
OUT_DIR = sys.argv[3] if len(sys.argv) > 3 else "Tests/Fixtures/tokenizer"

LONG_WORD = "a" * 101
WORD_100 = "b" * 100
CASES = [
    ("Café Crème, naïve résumé — déjà vu!", None, 128),
    ("ΟΔΟΣ Σίσυφος İstanbul STRAßE", None, 128),
    ("北京欢迎你 and 東京 mixed中文text", None, 128),
    ("ひらがな カタカナ 한국어 ภาษาไทย हिन्दी العربية", None, 128),
    ("nul\x00bell\x07 zero\u200bwidth repl\ufffdace soft\u00adhyphen", None, 128),
    ("tab\there\nnewline\r\ncrlf\u00a0nbsp\u2028line\u3000ideo", None, 128),
    ("ﬁne ligature, ½ fraction, ① circled, ＦＵＬＬ width", None, 128),
    ("unaffable unbelievably hyperparameterization antidisestablishmentarianism", None, 128),
    (LONG_WORD + " ok " + WORD_100, None, 128),
    ("$100 + <tag> = ^caret^ `tick` |pipe| ~tilde~ @at #hash", None, 128),
    ("¿Qué? ¡Sí! «guillemets» “curly” ‘single’ … ellipsis – en — em", None, 128),
    ("€5, £3, ¥7, emoji 😀🎉 and ✓ check ™ ©", None, 128),
    ("a[SEP]b [CLS] [cls] [MASK]x [UNK]", None, 128),
    ("\u0301leading combining mark e\u0301 precomposed é", None, 128),
    ("", None, 128),
    ("   \t  ", None, 128),
    ("", "", 128),
    ("only a", "", 128),
    ("", "only b", 128),
    ("one two three four five six seven eight nine ten", "alpha beta gamma", 12),
    ("alpha beta gamma", "one two three four five six seven eight nine ten", 12),
    ("one two three four five", "six seven eight nine ten", 10),
    ("one two three four five", "six seven eight nine ten", 9),
    ("one two three four five six", "six seven eight nine ten", 10),
    ("the quick brown fox jumps over the lazy dog", None, 6),
    ("hyperparameterization is long", "antidisestablishmentarianism too", 9),
    ("The U.S.A. isn't \"quoted\" (parens) [brackets] {braces} co-operate e-mail", None, 128),
    ("Numbers 3.14159 1,000,000 2nd 10:30pm 50%", "Mixed CaSe WoRdS AND SHOUTING", 128),
    ("He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .",
     "\" The foodservice pie business does not fit our long-term growth strategy .", 128),
    ("x" * 30 + " " + "word " * 200, "tail " * 50, 128),
]


def readable_cases(tok):
    out = os.path.join(OUT_DIR, "cases.jsonl")
    with open(out, "w", encoding="utf-8") as f:
        for a, b, max_length in CASES:
            if b is None:
                enc = tok([a], truncation=True, max_length=max_length)
            else:
                enc = tok([a], [b], truncation=True, max_length=max_length)
            ids = enc["input_ids"][0]
            record = {"a": a, "b": b, "max_length": max_length, "ids": ids,
                      "token_type_ids": enc["token_type_ids"][0], "tokens": tok.convert_ids_to_tokens(ids)}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{out}: {len(CASES)} cases")


def main():
    tok = AutoTokenizer.from_pretrained(MODEL_DIR)
    os.makedirs(OUT_DIR, exist_ok=True)
    glue_fixtures(tok, GLUE_DIR, OUT_DIR)
    readable_cases(tok)
    unicode_sweep(tok, OUT_DIR)


if __name__ == "__main__":
    main()
