#!/usr/bin/env python3
"""Paired fidelity comparison: swift-petl `train` against reference/train_torch.py, same recipe.

For every task below, every seed and dropout 0.1 (the config's) and 0, both programs fine-tune the
encoder LayerNorms + the classifier head of all-MiniLM-L6-v2 with the same data, schedule, optimizer
and clipping; only the head's random draw, the epoch permutation and the dropout masks differ (each
side seeds its own). Each run is one process on one thread; `--jobs` runs that many at once.

The statement is per (task, dropout): each side's mean and std over seeds, and the paired difference
swift - torch over seeds (mean, its standard error sd/sqrt(n), and how many seeds swift is lower).
|difference| > 2 standard errors is called a difference; otherwise the run cannot tell the sides apart.

Raw results go to OUT/raw/<side>-<task>-d<dropout>-s<seed>.json; a run whose file exists is not run
again, so an interrupted comparison resumes. The summary goes to OUT/summary.md and stdout.

  python3 reference/compare_training.py --swift .build/release/swift-petl --python /work/venv/bin/python \
      --seeds 1-10 --jobs 2 --out /tmp/fidelity
"""

import argparse
import concurrent.futures as cf
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# task -> (data folder, primary metric, flags shared by both sides)
TASKS = {
    "rt-vader": ("data", "accuracy",
                 ["--modules", "layernorm", "--lr", "5e-3", "--epochs", "2", "--max-train", "1000",
                  "--max-eval", "500", "--max-length", "64"]),
    "stsb": ("glue", "pearson",
             ["--modules", "layernorm", "--lr", "5e-3", "--epochs", "2", "--max-train", "1000",
              "--max-eval", "500", "--max-length", "64"]),
}
DROPOUTS = ["0.1", "0"]


def parse_seeds(s):
    out = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def job_command(side, task, dropout, seed, a, out_json):
    folder, _, flags = TASKS[task]
    data_dir = os.path.join(ROOT, "data") if folder == "data" else a.glue
    common = ["--task", task, "--data-dir", data_dir, "--seed", str(seed), "--dropout", dropout] + flags
    if side == "swift":
        return [a.swift, "train"] + common + ["--model", a.model, "--output", out_json]
    return [a.python, os.path.join(ROOT, "reference", "train_torch.py"), "--threads", "1",
            "--model", a.model] + common


def run_job(side, task, dropout, seed, a):
    path = os.path.join(a.out, "raw", f"{side}-{task}-d{dropout}-s{seed}.json")
    if os.path.exists(path):
        return path, "cached", 0.0
    tmp = path + ".part"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    t0 = time.time()
    p = subprocess.run(job_command(side, task, dropout, seed, a, tmp), cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise RuntimeError(f"{side} {task} dropout {dropout} seed {seed}: exit {p.returncode}: {p.stderr.strip()[-400:]}")
    if side == "torch":
        final = json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][-1])
        with open(tmp, "w") as f:
            json.dump({"dev": final["dev"], "train_losses": final["train_losses"], "seconds": final["seconds"]}, f)
    else:
        with open(tmp) as f:
            r = json.load(f)
        with open(tmp, "w") as f:
            json.dump({"dev": r["dev"], "train_losses": r["train_losses"], "seconds": r["result"]["wall_seconds"]}, f)
    os.replace(tmp, path)
    return path, "ran", time.time() - t0


def mean(xs):
    return sum(xs) / len(xs)


def sd(xs):
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")


def summarize(a, seeds):
    lines = ["| task | dropout | metric | n | swift mean ± std | torch mean ± std | paired swift − torch ± SE | swift lower | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    per_seed = []
    for task, (_, metric, _) in TASKS.items():
        for dropout in DROPOUTS:
            s, t = [], []
            for seed in seeds:
                ps = os.path.join(a.out, "raw", f"swift-{task}-d{dropout}-s{seed}.json")
                pt = os.path.join(a.out, "raw", f"torch-{task}-d{dropout}-s{seed}.json")
                if os.path.exists(ps) and os.path.exists(pt):
                    s.append(100 * json.load(open(ps))["dev"][metric])
                    t.append(100 * json.load(open(pt))["dev"][metric])
            if not s:
                continue
            d = [x - y for x, y in zip(s, t)]
            n = len(d)
            se = sd(d) / math.sqrt(n) if n > 1 else float("nan")
            verdict = ("swift lower" if mean(d) < -2 * se else "swift higher" if mean(d) > 2 * se
                       else "no difference beyond 2 SE")
            lines.append(f"| {task} | {dropout} | {metric} | {n} | {mean(s):.2f} ± {sd(s):.2f} | {mean(t):.2f} ± {sd(t):.2f} "
                         f"| {mean(d):+.2f} ± {se:.2f} ({mean(d) / se:+.1f} SE) | {sum(x < 0 for x in d)}/{n} | {verdict} |")
            per_seed.append(f"- {task} dropout {dropout}: swift " + " / ".join(f"{x:.1f}" for x in s)
                            + "; torch " + " / ".join(f"{x:.1f}" for x in t))
    return "\n".join(lines + [""] + per_seed) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--swift", default=os.path.join(ROOT, ".build", "release", "swift-petl"))
    ap.add_argument("--python", default=sys.executable, help="Python with torch==2.13.0 transformers==5.24.0")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--glue", default=os.path.join(ROOT, "..", "shared", "data", "glue"))
    ap.add_argument("--seeds", default="1-10")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="/tmp/fidelity")
    ap.add_argument("--summary-only", action="store_true")
    a = ap.parse_args()
    for t in a.tasks.split(","):
        if t not in TASKS:
            sys.exit(f"compare_training.py: --tasks: unknown task '{t}' (known: {', '.join(TASKS)})")
    for k in list(TASKS):
        if k not in a.tasks.split(","):
            del TASKS[k]
    seeds = parse_seeds(a.seeds)
    os.makedirs(os.path.join(a.out, "raw"), exist_ok=True)
    if not a.summary_only:
        # Seed-major order: an interrupted comparison still has complete pairs for the first seeds.
        jobs = [(side, task, d, seed) for seed in seeds for task in TASKS for d in DROPOUTS for side in ("torch", "swift")]
        with cf.ThreadPoolExecutor(max_workers=a.jobs) as pool:
            futures = {pool.submit(run_job, *j, a): j for j in jobs}
            for f in cf.as_completed(futures):
                path, how, secs = f.result()
                print(f"{how} {os.path.basename(path)} ({secs:.0f} s)", flush=True)
    text = summarize(a, seeds)
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
