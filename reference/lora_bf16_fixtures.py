#!/usr/bin/env python3
"""PEFT LoRA under PyTorch CPU autocast bf16: the reference for `--method lora --precision bf16`.

Usage (from the repository root):
    HF_HUB_OFFLINE=1 /work/main/.venv-ref/bin/python reference/lora_bf16_fixtures.py --out Tests/Fixtures/lora_bf16

Pinned stack: torch 2.13.0 (CPU), transformers 5.24.0, peft 0.21.2.

The models, batches and LoRA configurations of reference/lora_fixtures.py (the four tiny family
checkpoints with three configurations each, all-MiniLM-L6-v2 with two), with A as
Tests/Fixtures/lora/<model>.safetensors holds it and B as it holds it times `B_SCALE[config]` (read
from there, so both fixtures describe the same adapters). The scale, a power of two (exact), makes
the adapters matter: with the fp32 fixture's B the last-layer FFN adapters of the tiny checkpoints
(`ffn_last`, r 2) move the logits by 5e-5, below what bf16 rounding alone moves them (2-5e-4), so a
wrong adapter there would pass unseen; x64 moves them by about 3e-3. The other configurations move
the logits by 1e-3 to 4e-3 already and keep B (a x64 B there is as large as the weights it adapts,
an unrealistic model that only amplifies rounding). Per configuration, eval mode, every dropout 0, one thread:

    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = peft_model(**batch).logits
        loss = F.cross_entropy(logits, labels)
    loss.backward()          # outside autocast, as autocast is meant to be used

and the same in plain fp32, for the distance bf16 itself makes. Checked here: autocast runs
`lora_A` and `lora_B` in bf16 (their outputs are bf16: forward hooks), the logits come out bf16,
and the trainable tensors' gradients arrive fp32.

Writes <out>/<model>.safetensors: `<config>.logits` (autocast's, widened), `<config>.grad.<name>`
(every A, B and head gradient under autocast, whole tensors; engine names as in lora_fixtures.py),
and <out>/<model>.json: per configuration B's scale, the loss (bf16 and fp32), the logits' max |bf16 - fp32|,
and per tensor the relative L2 distance (`bf16_vs_fp32`) and cosine (`bf16_vs_fp32_cosine`) between
autocast's gradient and fp32's. A rerun gives the same bytes.
"""

import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import peft  # noqa: E402
import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

import family_fixtures as ff  # noqa: E402
import lora_fixtures as lf  # noqa: E402
from bf16_fixtures import cosine, rel  # noqa: E402

B_SCALE = {"ffn_last": 64.0}


def step(pm, enc, labels, bf16, lora_dtypes):
    pm.zero_grad(set_to_none=True)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    lora_dtypes.clear()
    with ctx:
        logits = pm(**enc).logits
        loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    return logits.detach(), loss.detach()


def run(model_key, make_model, enc, labels, configs, L, lora_fixture, tensors, info):
    for cname, (kinds, lspec, r, alpha, naming) in configs.items():
        layers = lf.layers_of(lspec, L)
        targets = [lf.module_path(model_key, k, l) for k in kinds for l in layers]
        if naming == "suffix":
            tm = [lf.PATHS[model_key][k].split(".")[-1] if model_key == "distilbert" else lf.PATHS[model_key][k] for k in kinds]
            lt = None if lspec == "all" else layers
        else:
            tm, lt = targets, None
        cfg = LoraConfig(task_type="SEQ_CLS", r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=tm,
                         layers_to_transform=lt, modules_to_save=list(lf.HEAD[model_key]))
        torch.manual_seed(1234)
        pm = get_peft_model(make_model(), cfg)
        ff.no_dropout(pm)
        pmap = dict(pm.named_parameters())
        trainable = [n for n, p in pm.named_parameters() if p.requires_grad]
        names = {n: lf.engine_name(model_key, n) for n in trainable}
        with torch.no_grad():
            for n in trainable:
                for part, tag, scale in ((".lora_A.", "A", 1.0), (".lora_B.", "B", B_SCALE.get(cname, 1.0))):
                    if part in n:
                        pmap[n].copy_(scale * torch.from_numpy(lora_fixture.get_tensor(f"{cname}.{tag}.{names[n]}")))
        lora_dtypes = []
        for mn, m in pm.named_modules():
            if isinstance(m, peft.tuners.lora.Linear):
                for sub in (m.lora_A["default"], m.lora_B["default"]):
                    sub.register_forward_hook(lambda _m, _i, out: lora_dtypes.append(out.dtype))
        l16, loss16 = step(pm, enc, labels, True, lora_dtypes)
        assert lora_dtypes and all(d == torch.bfloat16 for d in lora_dtypes), lora_dtypes  # autocast runs lora_A, lora_B in bf16
        assert l16.dtype == torch.bfloat16 and loss16.dtype == torch.float32, (l16.dtype, loss16.dtype)
        g16 = {n: pmap[n].grad.detach().clone() for n in trainable}
        l32, loss32 = step(pm, enc, labels, False, lora_dtypes)
        g32 = {n: pmap[n].grad.detach().clone() for n in trainable}
        tensors[f"{cname}.logits"] = ff.tensor_to_np(l16.float())
        distances, cosines = {}, {}
        for n in trainable:
            assert g16[n].dtype == torch.float32, (n, g16[n].dtype)
            tensors[f"{cname}.grad.{names[n]}"] = ff.tensor_to_np(g16[n])
            distances[names[n]] = rel(g16[n].numpy(), g32[n].numpy())
            cosines[names[n]] = cosine(g16[n].numpy(), g32[n].numpy())
        info[cname] = {"kinds": kinds, "layers": layers, "r": r, "lora_alpha": alpha, "b_scale": B_SCALE.get(cname, 1.0),
                       "target_modules": tm, "layers_to_transform": lt,
                       "loss": float(loss16), "loss_fp32": float(loss32),
                       "logits_max_abs_bf16_vs_fp32": float((l16.float() - l32).abs().max()),
                       "trainable": [names[n] for n in trainable],
                       "bf16_vs_fp32": distances, "bf16_vs_fp32_cosine": cosines}
        worst = max((v, k) for k, v in distances.items())
        print(f"[{model_key}/{cname}] loss bf16 {float(loss16):.6f} fp32 {float(loss32):.6f}; logits max |bf16-fp32| "
              f"{info[cname]['logits_max_abs_bf16_vs_fp32']:.3e}; largest gradient distance {worst[0]:.3e} ({worst[1]})")


def main():
    ap = lf.parser("Tests/Fixtures/lora_bf16")
    ap.add_argument("--lora", default="Tests/Fixtures/lora")
    args = ap.parse_args()
    versions = lf.prepare(args)
    autocast = "torch.autocast('cpu', dtype=torch.bfloat16) around forward and loss; backward outside"
    with tempfile.TemporaryDirectory() as tmp:
        for key, make_model, enc, labels, configs, layers, batch, extra in lf.cases(args, tmp):
            tensors, info = {}, {"versions": versions, "autocast": autocast, "adapters": f"{args.lora}/{key}.safetensors",
                                 "batch": batch, **extra}
            with safe_open(os.path.join(args.lora, key + ".safetensors"), "np") as fixture:
                run(key, make_model, enc, labels, configs, layers, fixture, tensors, info)
            save_file(tensors, os.path.join(args.out, key + ".safetensors"))
            ff.write_json(os.path.join(args.out, key + ".json"), info)
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {sorted(os.listdir(args.out))}, {size} bytes")


if __name__ == "__main__":
    main()
