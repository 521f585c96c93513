"""Independent magnitude statistics of a few real all-MiniLM-L6-v2 tensors (numpy), for the Swift
`magnitudes` test: Tests/Fixtures/magnitudes/expected.json.

    /work/venv/bin/python reference/magnitudes_fixture.py --model models/all-MiniLM-L6-v2 \
        --out Tests/Fixtures/magnitudes/expected.json
"""
import argparse, json
import numpy as np
from safetensors.numpy import load_file

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--out", required=True)
a = ap.parse_args()
t = load_file(f"{a.model}/model.safetensors")
names = ["encoder.layer.0.attention.self.query.weight", "encoder.layer.5.output.LayerNorm.weight",
         "encoder.layer.3.attention.output.LayerNorm.bias", "encoder.layer.2.intermediate.dense.bias",
         "embeddings.word_embeddings.weight", "pooler.dense.weight"]
out = {}
for n in names:
    x = t[n].astype(np.float64).ravel()
    out[n] = {"count": int(x.size), "mean_abs": float(np.abs(x).mean()), "rms": float(np.sqrt((x * x).mean())),
              "max_abs": float(np.abs(x).max())}
json.dump(out, open(a.out, "w"), indent=1, sort_keys=True)
print(json.dumps(out, indent=1))
