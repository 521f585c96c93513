#!/usr/bin/env python3
"""What transformers 5 makes of unusual config.json and tokenizer files: the cases ConfigFidelityTests
replays against EncoderConfig.load and the WordPiece tokenizer.

Usage (from the repository root):
    HF_HUB_OFFLINE=1 /work/main/.venv-ref/bin/python reference/config_fixtures.py --out Tests/Fixtures/config

Writes:
    config-cases.json     one entry per (family, key, literal): the family fixture's config.json with
                          that key's line edited (`edited()`, which the test repeats) and what
                          AutoConfig.from_pretrained made of it: {"value": <the attribute>} or
                          {"error": <exception class>}
    load-reports.json     per family, the unexpected and missing tensors of transformers' load report
                          for <Family>ForSequenceClassification on the fixture checkpoint
    tokenizer-cases.json  tokenizer_config.json literals and vocab.txt edits (applied by the test to
                          models/all-MiniLM-L6-v2/vocab.txt): the ids AutoTokenizer gives a probe text,
                          and its vocabulary size, or the error

A rerun gives the same bytes.
"""
import argparse
import json
import math
import os
import shutil
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import transformers
from transformers import AutoConfig, AutoTokenizer

transformers.logging.set_verbosity_error()

# The fields EncoderConfig reads, per family (ELECTRA adds embedding_size; DistilBERT has its own names).
BERT_KEYS = ["vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
             "type_vocab_size", "layer_norm_eps", "pad_token_id", "classifier_dropout"]
KEYS = {
    "bert": BERT_KEYS,
    "roberta": BERT_KEYS,
    "electra": BERT_KEYS + ["embedding_size"],
    "distilbert": ["vocab_size", "max_position_embeddings", "sinusoidal_pos_embds", "n_layers", "n_heads", "dim",
                   "hidden_dim", "dropout", "attention_dropout", "activation", "seq_classif_dropout", "pad_token_id"],
}
LITERALS = ["1e3", "64.0", "0.5", "null", "\"8\"", "true", "-5", "0", "8", "2147483648", "99999999999999999999",
            "NaN", "Infinity", "\"gelu\"", "\"relu\"", "[8]"]
PROBE = "Hello WORLD, Éa naïve [UNK] qqzzqq 中文 # $ % & ' ( ) *"


def jsonable(v):
    if isinstance(v, float) and not math.isfinite(v):
        return {"float": repr(v)}
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    return {"repr": repr(v)}


def outcome_config(text):
    d = tempfile.mkdtemp()
    try:
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write(text)
        return AutoConfig.from_pretrained(d), None
    except Exception as e:  # noqa: BLE001 - any refusal is an outcome
        return None, type(e).__name__
    finally:
        shutil.rmtree(d)


def edited(text, key, literal):
    """config.json text with `key` set to `literal` ("<absent>": the member removed; "<repeated A then B>":
    removed, then given twice at the top). Line-based, as ConfigFidelityTests does it."""
    lines = text.split("\n")
    at = [i for i, l in enumerate(lines) if l.startswith('  "%s": ' % key)]
    if literal.startswith("<"):
        if at:
            i = at[0]
            if not lines[i].endswith(","):  # the last member: the one before loses its comma
                lines[i - 1] = lines[i - 1][:-1]
            del lines[i]
        if literal.startswith("<repeated"):
            first, last = literal[len("<repeated "):-1].split(" then ")
            lines[1:1] = ['  "%s": %s,' % (key, first), '  "%s": %s,' % (key, last)]
        return "\n".join(lines)
    if at:
        comma = "," if lines[at[0]].endswith(",") else ""
        lines[at[0]] = '  "%s": %s%s' % (key, literal, comma)
    else:
        lines[1:1] = ['  "%s": %s,' % (key, literal)]
    return "\n".join(lines)


def config_cases(families_dir):
    cases = []
    for family, keys in KEYS.items():
        text = open(os.path.join(families_dir, family, "config.json")).read()
        for key in keys:
            pair = ('"relu"', '"gelu"') if key in ("hidden_act", "activation") else ("8", "16")
            for lit in LITERALS + ["<absent>", "<repeated %s then %s>" % pair]:
                config, error = outcome_config(edited(text, key, lit))
                case = {"family": family, "key": key, "literal": lit}
                if error:
                    case["error"] = error
                else:
                    case["value"] = jsonable(getattr(config, key, None))
                cases.append(case)
    return cases


def tokenizer_outcome(minilm, tokenizer_config=None, vocab_edit=None):
    d = tempfile.mkdtemp()
    try:
        shutil.copy(os.path.join(minilm, "config.json"), d)
        vocab = open(os.path.join(minilm, "vocab.txt"), "rb").read()
        if vocab_edit:
            vocab = apply_vocab_edit(vocab, vocab_edit)
        open(os.path.join(d, "vocab.txt"), "wb").write(vocab)
        if tokenizer_config is not None:
            open(os.path.join(d, "tokenizer_config.json"), "w").write(tokenizer_config)
        t = AutoTokenizer.from_pretrained(d)
        return {"ids": t(PROBE)["input_ids"], "size": len(t)}
    except Exception as e:  # noqa: BLE001
        return {"error": type(e).__name__}
    finally:
        shutil.rmtree(d)


def apply_vocab_edit(vocab, edit):
    """edit: {"line": k, "bytes": hex} replaces line k; {"prefix": hex} prepends; {"crlf": true}."""
    if edit.get("crlf"):
        return vocab.replace(b"\n", b"\r\n")
    if "prefix" in edit:
        return bytes.fromhex(edit["prefix"]) + vocab
    lines = vocab.split(b"\n")
    lines[edit["line"]] = bytes.fromhex(edit["bytes"])
    return b"\n".join(lines)


def tokenizer_cases(minilm):
    cases = []
    configs = ['{"do_lower_case": %s, "tokenizer_class": "BertTokenizer"}' % lit
               for lit in ["true", "false", "1", "0", "\"true\"", "null", "true, \"do_lower_case\": false",
                           "false, \"do_lower_case\": true"]]
    configs += [
        '{"do_lower_case": true, "strip_accents": false}',
        '{"do_lower_case": false, "strip_accents": true}',
        '{"do_lower_case": true, "strip_accents": null}',
        '{"do_lower_case": true, "strip_accents": 1}',
        '{"do_lower_case": true, "tokenize_chinese_chars": false}',
        '{"do_lower_case": true, "tokenize_chinese_chars": null}',
        '{"do_lower_case": true, "unk_token": "[UNK]", "mask_token": {"content": "[MASK]", "__type": "AddedToken"}}',
        '{"do_lower_case": true, "unk_token": "<unk>"}',
        '{}',
        '[true]',
        '{"do_lower_case": NaN}',
    ]
    for text in configs:
        cases.append({"tokenizer_config": text, **tokenizer_outcome(minilm, tokenizer_config=text)})
    edits = [
        # lines 1001-1008 of the MiniLM vocab.txt are # $ % & ' ( ) *, all in PROBE
        {"line": 1001, "bytes": b"# ".hex()},            # trailing space: Rust's trim_end drops it
        {"line": 1002, "bytes": b"$\t".hex()},           # trailing tab
        {"line": 1003, "bytes": "%\u3000".encode().hex()},  # trailing ideographic space (Unicode White_Space)
        {"line": 1004, "bytes": b"".hex()},              # an empty token: & is then unknown
        {"line": 1005, "bytes": b"[UNK]".hex()},         # [UNK] twice: the last id wins, ' is unknown
        {"line": 1006, "bytes": b"(\rzz".hex()},         # a CR inside a line is part of the token
        {"line": 1007, "bytes": b" )".hex()},            # a leading space is kept
        {"line": 1008, "bytes": b"\xff\xfe".hex()},      # not UTF-8
        {"prefix": b"\xef\xbb\xbf".hex()},               # a BOM: part of the first token
        {"crlf": True},
    ]
    for edit in edits:
        cases.append({"vocab_edit": edit, "tokenizer_config": '{"do_lower_case": true}',
                      **tokenizer_outcome(minilm, tokenizer_config='{"do_lower_case": true}', vocab_edit=edit)})
    return cases


def load_reports(families_dir):
    """Per family: the tensors transformers' load report lists as unexpected and missing when
    `<Family>ForSequenceClassification` (2 labels) loads the fixture checkpoint (every tensor of its
    layout.json, zeros: only the names and shapes matter)."""
    import numpy as np
    from safetensors.numpy import save_file
    from transformers import AutoModelForSequenceClassification
    out = {}
    for family in KEYS:
        d = tempfile.mkdtemp()
        try:
            shutil.copy(os.path.join(families_dir, family, "config.json"), d)
            layout = json.load(open(os.path.join(families_dir, family, "layout.json")))["tensors"]
            save_file({t["name"]: np.zeros(t["shape"], dtype=np.float32) for t in layout},
                      os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
            _, info = AutoModelForSequenceClassification.from_pretrained(d, num_labels=2, output_loading_info=True)
            out[family] = {"unexpected": sorted(info["unexpected_keys"]), "missing": sorted(info["missing_keys"])}
        finally:
            shutil.rmtree(d)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="Tests/Fixtures/families")
    ap.add_argument("--minilm", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--out", default="Tests/Fixtures/config")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    meta = {"transformers": transformers.__version__, "probe": PROBE}
    with open(os.path.join(a.out, "config-cases.json"), "w") as f:
        json.dump({**meta, "cases": config_cases(a.families)}, f, indent=0, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(a.out, "load-reports.json"), "w") as f:
        json.dump({**meta, "families": load_reports(a.families)}, f, indent=1)
        f.write("\n")
    with open(os.path.join(a.out, "tokenizer-cases.json"), "w") as f:
        json.dump({**meta, "cases": tokenizer_cases(a.minilm)}, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
