#!/usr/bin/env python3
"""PEFT LoRA reference fixtures: forward, A/B gradients and one AdamW step, per encoder family.

Usage (from the repository root):
    HF_HUB_OFFLINE=1 /work/main/.venv-ref/bin/python reference/lora_fixtures.py --out Tests/Fixtures/lora

Pinned stack: torch 2.13.0 (CPU), transformers 5.24.0, peft 0.21.2.

Models: the four tiny family checkpoints of reference/family_fixtures.py (weights from its recipe,
head from the recipe; nothing committed but their config.json and layout.json there) and the real
all-MiniLM-L6-v2 (models/, not committed; head from the recipe). Batch: the first 8 RTE training
pairs, exactly the batch of Tests/Fixtures/families/<family>/reference.safetensors (asserted), which
the Swift test reads from there.

Per model and LoRA configuration (`CONFIGS`; `LoraConfig(r, lora_alpha, lora_dropout=0,
target_modules, layers_to_transform, modules_to_save=the head)`), in float32, one thread, every
dropout at 0, attn_implementation="eager":
  - A: PEFT's own initialisation (kaiming_uniform_, a=sqrt(5)), from torch.manual_seed(CONFIG seed);
  - B: set to recipe values x 0.5 (PEFT initialises B to zero, which would make A's gradient zero);
  - logits and loss with A and B in place;
  - the gradient of every trainable tensor (every A and B, and the head, `modules_to_save`);
  - one AdamW step (lr 1e-2, betas 0.9/0.999, eps 1e-8, weight decay 0.01 on weights, none on
    biases, gradient norm clipped at 1 over the trainable tensors): the update of every trainable
    tensor, and a check that every other parameter is unchanged;
  - what `PeftModel.save_pretrained` writes: adapter_config.json and the adapter's keys and shapes.
Names in the fixture are the engine's (`encoder.layer.0.attention.self.query.lora_A.weight`, the
family's checkpoint prefix and PEFT's `base_model.model.`, `.default`, `modules_to_save` dropped).

Writes <out>/<model>.safetensors (keys `<config>.A.<name>`, `<config>.B.<name>`, `<config>.logits`,
`<config>.grad.<name>`, `<config>.delta.<name>`) and <out>/<model>.json (configs, losses, norms,
PEFT's saved adapter). A rerun gives the same bytes.
"""

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import peft
import torch
import transformers
from peft import LoraConfig, get_peft_model
from safetensors import safe_open
from safetensors.numpy import save_file
from transformers import AutoTokenizer, BertForSequenceClassification

import family_fixtures as ff

ADAMW = ff.ADAMW

# kind -> module path inside a layer, per family
PATHS = {
    "bert": {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
             "attn_out": "attention.output.dense", "intermediate": "intermediate.dense", "output": "output.dense"},
    "distilbert": {"query": "attention.q_lin", "key": "attention.k_lin", "value": "attention.v_lin",
                   "attn_out": "attention.out_lin", "intermediate": "ffn.lin1", "output": "ffn.lin2"},
}
PATHS["roberta"] = PATHS["electra"] = PATHS["minilm"] = PATHS["bert"]
PREFIX = {"bert": "bert", "roberta": "roberta", "electra": "electra", "distilbert": "distilbert", "minilm": "bert"}
LAYER = {"distilbert": "transformer.layer"}
HEAD = {"bert": ["classifier"], "minilm": ["classifier"], "roberta": ["classifier"], "electra": ["classifier"],
        "distilbert": ["pre_classifier", "classifier"]}

# name -> (kinds, layers ("all" or a list), r, alpha, how targets are named for PEFT)
#   "suffix": target_modules = the kinds' module names, layers_to_transform = the layers
#   "full":   target_modules = every adapted module's full path ("output.dense" alone would also
#             match attention.output.dense)
CONFIGS = {
    "qv_all": (["query", "value"], "all", 4, 8.0, "suffix"),
    "key_attnout_l0": (["key", "attn_out"], [0], 4, 16.0, "suffix"),
    "ffn_last": (["intermediate", "output"], "last", 2, 2.0, "full"),
}
MINILM_CONFIGS = {
    "qv_all": (["query", "value"], "all", 2, 4.0, "suffix"),
    "output_last": (["output"], "last", 2, 2.0, "full"),
}


def layers_of(spec, L):
    return list(range(L)) if spec == "all" else [L - 1] if spec == "last" else spec


def module_path(model_key, kind, layer):
    """The module's path in *ForSequenceClassification."""
    return f"{PREFIX[model_key]}.{LAYER.get(model_key, 'encoder.layer')}.{layer}.{PATHS[model_key][kind]}"


def engine_name(model_key, peft_name):
    """PEFT's parameter name -> the engine's slot name."""
    n = peft_name.removeprefix("base_model.model.")
    n = n.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")
    n = n.replace(".modules_to_save.default.", ".")
    return n.removeprefix(PREFIX[model_key] + ".")


def run(model_key, make_model, enc, labels, configs, L, tensors, info):
    for cname, (kinds, lspec, r, alpha, naming) in configs.items():
        layers = layers_of(lspec, L)
        model = make_model()
        targets = [module_path(model_key, k, l) for k in kinds for l in layers]
        if naming == "suffix":
            tm = [PATHS[model_key][k].split(".")[-1] if model_key == "distilbert" else PATHS[model_key][k] for k in kinds]
            lt = None if lspec == "all" else layers
        else:
            tm, lt = targets, None
        cfg = LoraConfig(task_type="SEQ_CLS", r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=tm,
                         layers_to_transform=lt, modules_to_save=list(HEAD[model_key]))  # PEFT extends the list it is given
        torch.manual_seed(1234)
        pm = get_peft_model(model, cfg)
        ff.no_dropout(pm)
        adapted = sorted(n for n, m in pm.named_modules() if isinstance(m, peft.tuners.lora.Linear))
        assert adapted == sorted("base_model.model." + t for t in targets), (adapted, targets)
        pmap = dict(pm.named_parameters())
        trainable = [n for n, p in pm.named_parameters() if p.requires_grad]
        names = {n: engine_name(model_key, n) for n in trainable}
        with torch.no_grad():
            for n in trainable:
                if ".lora_B." in n:
                    pmap[n].copy_(0.5 * torch.from_numpy(ff.recipe(names[n], list(pmap[n].shape))))
        for n in trainable:
            if ".lora_A." in n:
                tensors[f"{cname}.A.{names[n]}"] = ff.tensor_to_np(pmap[n])
            elif ".lora_B." in n:
                tensors[f"{cname}.B.{names[n]}"] = ff.tensor_to_np(pmap[n])
        frozen_before = {n: p.detach().clone() for n, p in pm.named_parameters() if not p.requires_grad}
        out = pm(**enc)
        loss = torch.nn.functional.cross_entropy(out.logits, labels)
        tensors[f"{cname}.logits"] = ff.tensor_to_np(out.logits)
        loss.backward()
        for n in trainable:
            tensors[f"{cname}.grad.{names[n]}"] = ff.tensor_to_np(pmap[n].grad)
        decay = [n for n in trainable if not n.endswith(".bias")]
        plain = [n for n in trainable if n.endswith(".bias")]
        opt = torch.optim.AdamW([{"params": [pmap[n] for n in decay], "weight_decay": ADAMW["weight_decay"]},
                                 {"params": [pmap[n] for n in plain], "weight_decay": 0.0}],
                                lr=ADAMW["lr"], betas=tuple(ADAMW["betas"]), eps=ADAMW["eps"], foreach=False, fused=False)
        before = {n: pmap[n].detach().clone() for n in trainable}
        pre = torch.nn.utils.clip_grad_norm_([pmap[n] for n in trainable], ADAMW["max_norm"]).item()
        opt.step()
        for n in trainable:
            tensors[f"{cname}.delta.{names[n]}"] = ff.tensor_to_np(pmap[n].detach() - before[n])
        for n, p in pm.named_parameters():
            if not p.requires_grad:
                assert torch.equal(p.detach(), frozen_before[n]), n
        with tempfile.TemporaryDirectory() as d:
            pm.save_pretrained(d)
            with open(os.path.join(d, "adapter_config.json")) as f:
                saved_cfg = json.load(f)
            saved_cfg["base_model_name_or_path"] = "(the base model folder)"  # a temporary path here
            saved_cfg["target_modules"] = sorted(saved_cfg["target_modules"])  # a set in PEFT: any order
            with safe_open(os.path.join(d, "adapter_model.safetensors"), "np") as f:
                saved = {k: list(f.get_tensor(k).shape) for k in f.keys()}
        info[cname] = {"kinds": kinds, "layers": layers, "r": r, "lora_alpha": alpha,
                       "target_modules": tm, "layers_to_transform": lt, "modules_to_save": HEAD[model_key],
                       "loss": loss.item(), "grad_norm_pre_clip": pre,
                       "trainable": [names[n] for n in trainable],
                       "peft_saved": {"adapter_config": saved_cfg, "tensors": saved}}
        print(f"[{model_key}/{cname}] adapted {len(adapted)} linears, {len(trainable)} trainable tensors, "
              f"loss {loss.item():.6f}, pre-clip norm {pre:.6f}")


def prepare(args):
    """What both LoRA fixture scripts set up alike: one thread, deterministic kernels, the pinned
    stack, and the tiny RoBERTa sized to the committed BPE vocabulary."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    assert torch.__version__.startswith("2.13.0") and transformers.__version__ == "5.24.0" and peft.__version__ == "0.21.2"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.bpe, "vocab.json"), encoding="utf-8") as f:
        bpe_size = len(json.load(f))
    ff.FAMILIES["roberta"]["config"] = lambda: ff.RobertaConfig(
        vocab_size=bpe_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5)
    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__}


def batch_of(args, family_dir, tok):
    """The RTE batch of the family fixtures, tokenized by `tok` (checked against that fixture's ids)."""
    ex = ff.rte_batch(args.glue)
    enc = tok([e["sentence1"] for e in ex], [e["sentence2"] for e in ex], truncation=True,
              max_length=ff.MAX_LEN, padding="longest", return_tensors="pt")
    enc = {k: enc[k] for k in enc.keys()}
    with safe_open(os.path.join(args.families, family_dir, "reference.safetensors"), "np") as f:
        assert np.array_equal(f.get_tensor("input_ids"), enc["input_ids"].numpy()), "batch differs from the family fixture"
    return enc, torch.tensor([e["label"] for e in ex], dtype=torch.int64)


def minilm_model(args):
    """MiniLM with the recipe's head, without dropout."""
    m, li = BertForSequenceClassification.from_pretrained(
        args.minilm, num_labels=2, attn_implementation="eager", local_files_only=True, output_loading_info=True)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n in li["missing_keys"]:
                p.copy_(torch.from_numpy(ff.recipe(n, list(p.shape))))
    assert sorted(li["missing_keys"]) == ["classifier.bias", "classifier.weight"], li["missing_keys"]
    return ff.no_dropout(m)


def parser(out):
    """The arguments of both LoRA fixture scripts (`out`: where each writes by default)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--glue", default="/work/shared/data/glue")
    ap.add_argument("--minilm", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--bpe", default="Tests/Fixtures/bpe")
    ap.add_argument("--families", default="Tests/Fixtures/families")
    ap.add_argument("--out", default=out)
    return ap


def cases(args, tmp):
    """The fixture models in turn, each as (key, make_model, enc, labels, configs, layers, batch, extra):
    the tiny checkpoint of every family (built in `tmp`), then MiniLM; `batch` names the family fixture
    whose ids the batch equals, `extra` is what the case adds to its JSON."""
    for family, fam in ff.FAMILIES.items():
        src = args.minilm if fam["tokenizer"]["source"] == "minilm" else args.bpe
        tok = ff.make_tokenizer(family, fam["tokenizer"], src, tmp)
        ckpt = os.path.join(tmp, "ckpt_" + family)
        ff.build_checkpoint(family, fam, fam["config"](), ckpt)
        enc, labels = batch_of(args, family, tok)
        yield (family, lambda family=family, fam=fam, ckpt=ckpt: ff.load_classifier(family, fam, ckpt)[0], enc, labels, CONFIGS, 2,
               f"Tests/Fixtures/families/{family}/reference.safetensors", {})
    tok = AutoTokenizer.from_pretrained(args.minilm, local_files_only=True)
    enc, labels = batch_of(args, "bert", tok)
    yield ("minilm", lambda: minilm_model(args), enc, labels, MINILM_CONFIGS, 6,
           "Tests/Fixtures/families/bert/reference.safetensors", {"model": "models/all-MiniLM-L6-v2, head from the recipe"})


def main():
    args = parser("Tests/Fixtures/lora").parse_args()
    versions = prepare(args)
    total = 0
    with tempfile.TemporaryDirectory() as tmp:
        for key, make_model, enc, labels, configs, layers, batch, extra in cases(args, tmp):
            tensors, info = {}, {"versions": versions, "batch": batch, **extra}
            run(key, make_model, enc, labels, configs, layers, tensors, info)
            path = os.path.join(args.out, key + ".safetensors")
            save_file(tensors, path)
            ff.write_json(os.path.join(args.out, key + ".json"), info)
            total += os.path.getsize(path)
    print(f"total {total} bytes of tensors")


if __name__ == "__main__":
    main()
