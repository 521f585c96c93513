"""Reference values for the GLUE metrics, from scikit-learn and SciPy.

Writes Tests/Fixtures/data/metrics.json: cases of (task, split, logits, labels) with the metrics the
Swift `evaluate` must reproduce to 1e-9 relative. The inputs are float32 values (what the Swift side
holds), written exactly; they contain tied logits (argmax takes the first maximum, as NumPy does) and
tied scores (Spearman averages the ranks of ties). Degenerate cases record our convention (0 instead
of SciPy's NaN) and assert what SciPy/sklearn say about them.

Run: /work/venv/bin/python reference/metrics_fixtures.py
"""
import json
import math
import pathlib
import warnings

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "data" / "metrics.json"
rng = np.random.RandomState(20221207)


def logits(n, k, tie_every=7):
    """Random logits rounded to 0.5 so that many rows have tied maxima; every `tie_every`-th row is all equal."""
    x = np.round(rng.randn(n, k) * 2) / 2
    x[::tie_every] = 0.25
    return x.astype(np.float32)


def classification_case(name, task, k, n, split="dev", labels=None, outputs=None):
    outputs = logits(n, k) if outputs is None else outputs.astype(np.float32)
    pred = outputs.argmax(axis=1)
    if labels is None:  # agree with the prediction 60 % of the time, else random: metrics well away from 0
        labels = np.where(rng.rand(n) < 0.6, pred, rng.randint(0, k, size=n))
    expected = {}
    if task == "cola":
        expected["mcc"] = float(matthews_corrcoef(labels, pred))
    else:
        key = "accuracy_mm" if split == "dev_mismatched" else "accuracy"
        expected[key] = float(accuracy_score(labels, pred))
    if task in ("mrpc", "qqp"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # all-negative case: sklearn warns and returns 0.0
            expected["f1"] = float(f1_score(labels, pred, pos_label=1, average="binary", zero_division=0.0))
    return dict(name=name, task=task, split=split, outputs=outputs.tolist(),
                labels=[float(v) for v in labels], expected=expected)


def regression_case(name, predictions, labels):
    p = predictions.astype(np.float32)
    y = labels.astype(np.float32)
    pf, yf = p.astype(np.float64), y.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: SciPy warns and returns NaN
        r, rho = pearsonr(pf, yf)[0], spearmanr(pf, yf)[0]
    if np.ptp(pf) == 0 or np.ptp(yf) == 0:
        assert math.isnan(r) and math.isnan(rho)
        r, rho = 0.0, 0.0  # our convention: no signal is 0, never NaN
    return dict(name=name, task="stsb", split="dev", outputs=[[float(v)] for v in p],
                labels=[float(v) for v in y], expected=dict(pearson=float(r), spearman=float(rho)))


cases = [
    classification_case("cola random with tied logits", "cola", 2, 240),
    classification_case("cola constant prediction", "cola", 2, 50, outputs=np.tile([0.0, 1.0], (50, 1))),
    classification_case("mrpc random", "mrpc", 2, 160),
    classification_case("qqp random", "qqp", 2, 300),
    classification_case("qqp no positives anywhere", "qqp", 2, 20, labels=np.zeros(20, dtype=int),
                        outputs=np.tile([1.0, -1.0], (20, 1))),
    classification_case("sst2", "sst2", 2, 90),
    classification_case("rte", "rte", 2, 77),
    classification_case("rt-vader", "rt-vader", 2, 64),
    classification_case("mnli matched", "mnli", 3, 210, split="dev_matched"),
    classification_case("mnli mismatched", "mnli", 3, 190, split="dev_mismatched"),
]
gold = np.round(rng.uniform(0, 5, size=300) * 5) / 5          # STS-B style scores, many ties
noisy = np.round((gold + rng.randn(300)) * 10) / 10          # predictions with ties of their own
cases += [
    regression_case("stsb tied scores", noisy, gold),
    regression_case("stsb negative correlation", -noisy[:40], gold[:40]),
    regression_case("stsb constant prediction", np.full(30, 2.5), gold[:30]),
]
for c in cases:
    for v in c["expected"].values():
        assert math.isfinite(v)

OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps(dict(generator="reference/metrics_fixtures.py", cases=cases), indent=1) + "\n")
print(f"wrote {OUT} ({len(cases)} cases)")
for c in cases:
    print(f"  {c['name']}: {c['expected']}")
