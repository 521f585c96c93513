#!/usr/bin/env python3
"""Seeded mutation fuzz of every input kind swift-petl reads.

    python3 Tests/fuzz/fuzz.py [--bin .build/release/swift-petl] [--seed S] [--cases N]
    python3 Tests/fuzz/fuzz.py --replay TARGET:CASE_SEED      # one case again, its files kept

Each case takes one valid input (seeds.py builds them: tiny model folders of the four families,
tokenizer files, user task files, a journal, an adapter, stdin text), applies one to three
mutators (mutators.py) and runs the one swift-petl command that reads that input. A case fails
when the command is killed by a signal (a trap or crash), runs past --time-limit (a hang or a
super-linear parse), ends non-zero without an "Error: " line or with a first error line over 300
characters, or peaks above --rss-mb of resident memory (measured with wait4). Accepted inputs
(exit 0) and one-line refusals pass. The seed is printed first so a run can be repeated; every
failure prints the line that replays it. The last line is "N passed, N failed".
"""
import argparse
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mutators as m  # noqa: E402
import seeds  # noqa: E402

ROOT = seeds.ROOT
STDIN_TEXT = ("A quietly brilliant film. [SEP] It's 2,024 scenes long; naïve résumé café.\n"
              "中文字符 and ひらがな\tSecond text of a pair.\n<s>roberta</s> <mask> tokens\n").encode()


def jsonl(mutate):
    """A JSON mutator applied to one line of a JSON Lines file."""
    def on_a_line(data, rng):
        lines = data.split(b"\n")
        candidates = [k for k, l in enumerate(lines) if l.strip()]
        k = rng.choice(candidates)
        lines[k] = mutate(lines[k], rng)
        return b"\n".join(lines)
    on_a_line.__name__ = "jsonl_" + mutate.__name__
    return on_a_line


JSON = m.JSON_MUTATORS + m.BYTE_MUTATORS
TEXT = m.LINE_MUTATORS + m.BYTE_MUTATORS
JSONL = [jsonl(f) for f in m.JSON_MUTATORS[:4]] + m.LINE_MUTATORS + m.BYTE_MUTATORS
HEADER = m.SAFETENSORS_MUTATORS[:3] + [m.flip_bit]
BODY = [m.safetensors_values, m.truncate]


def model_cmd(family, *rest):
    return lambda d: [*rest, "--model", os.path.join(d, family)]


def task_cmd(task, split, adapter=False):
    def cmd(d):
        argv = ["predict", "--model", os.path.join(d, "bert"), "--task", os.path.join(d, task), "--split", split,
                "--max-length", "32"]
        return argv + (["--adapter", os.path.join(d, "adapter.safetensors")] if adapter else [])
    return cmd


# name: (file mutated, relative to the seed folder; mutators; command; stdin)
TARGETS = {}
for fam in ("bert", "roberta", "electra", "distilbert"):
    TARGETS["config-" + fam] = (fam + "/config.json", JSON, model_cmd(fam, "inspect"), None)
    TARGETS["header-" + fam] = (fam + "/model.safetensors", HEADER, model_cmd(fam, "inspect"), None)
TARGETS.update({
    "body-bert": ("bert/model.safetensors", BODY, model_cmd("bert", "embed", "--max-length", "32"), STDIN_TEXT),
    "vocab.txt": ("bert/vocab.txt", TEXT, model_cmd("bert", "tokenize", "--max-length", "64"), STDIN_TEXT),
    "tokenizer_config.json": ("bert/tokenizer_config.json", JSON, model_cmd("bert", "tokenize", "--max-length", "64"), STDIN_TEXT),
    "vocab.json": ("roberta/vocab.json", m.JSON_MUTATORS[:4] + m.BYTE_MUTATORS, model_cmd("roberta", "tokenize", "--max-length", "64"), STDIN_TEXT),
    "merges.txt": ("roberta/merges.txt", TEXT, model_cmd("roberta", "tokenize", "--max-length", "64"), STDIN_TEXT),
    "tokenizer.json": ("roberta/tokenizer.json", JSON, model_cmd("roberta", "tokenize", "--max-length", "64"), STDIN_TEXT),
    "stdin-wordpiece": ("<stdin>", TEXT, model_cmd("bert", "tokenize", "--max-length", "64"), STDIN_TEXT),
    "stdin-wordpiece-pairs": ("<stdin>", TEXT, model_cmd("bert", "tokenize", "--pairs", "--max-length", "64"), STDIN_TEXT),
    "stdin-bpe": ("<stdin>", TEXT, model_cmd("roberta", "tokenize", "--max-length", "64"), STDIN_TEXT),
    "stdin-bpe-pairs": ("<stdin>", TEXT, model_cmd("roberta", "tokenize", "--pairs", "--max-length", "64"), STDIN_TEXT),
    "train.tsv": ("task/train.tsv", TEXT, task_cmd("task", "train"), None),
    "dev.jsonl": ("task/dev.jsonl", JSONL, task_cmd("task", "dev"), None),
    "task.json": ("task/task.json", JSON, task_cmd("task", "dev"), None),
    "train.csv": ("task2/train.csv", TEXT, task_cmd("task2", "train"), None),
    "dev.tsv": ("task2/dev.tsv", TEXT, task_cmd("task2", "dev"), None),
    "journal": ("journal.jsonl", JSONL, lambda d: ["report", os.path.join(d, "journal.jsonl"), "--output",
                                                    os.path.join(d, "report")], None),
    "adapter": ("adapter.safetensors", m.SAFETENSORS_MUTATORS, task_cmd("task", "dev", adapter=True), None),
})


def case_folder(seed_dir, work, target):
    """A folder that looks like the seed folder: symlinks to every seed file, except the target
    file's own folder, which is a real folder of symlinks so the mutated file can replace one."""
    os.makedirs(work)
    path = TARGETS[target][0]
    own = os.path.dirname(path) if path != "<stdin>" else None
    for entry in os.listdir(seed_dir):
        src = os.path.join(seed_dir, entry)
        if entry == own:
            os.makedirs(os.path.join(work, entry))
            for f in os.listdir(src):
                os.symlink(os.path.join(src, f), os.path.join(work, entry, f))
        else:
            os.symlink(src, os.path.join(work, entry))


def mutate(data, mutators, rng):
    names = []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        f = rng.choice(mutators)
        try:
            out = f(data, rng)
        except (ValueError, IndexError, KeyError, TypeError, RecursionError, UnicodeDecodeError, struct.error):
            continue  # a JSON mutator on what is no longer JSON: try another
        data = out
        names.append(f.__name__)
    return data, names


def run(argv, stdin, limit):
    """(status, stderr, seconds, peak RSS MB, timed_out)."""
    t0 = time.time()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    timed_out = []

    def kill():
        timed_out.append(True)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(limit, kill)
    timer.start()
    err = []
    reader = threading.Thread(target=lambda: err.append(p.stderr.read()))
    reader.start()
    try:
        if stdin:
            p.stdin.write(stdin)
        p.stdin.close()
    except BrokenPipeError:
        pass
    _, status, usage = os.wait4(p.pid, 0)
    timer.cancel()
    reader.join()
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, err[0] if err else b"", time.time() - t0, usage.ru_maxrss / 1024, bool(timed_out)


def judge(status, stderr, rss, timed_out, args):
    """None when the case passes, else why it failed."""
    if timed_out:
        return "hang: still running after %g s" % args.time_limit
    if status < 0:
        return "crash: killed by signal %d" % -status
    if rss > args.rss_mb:
        return "memory: peak RSS %.0f MB over %d MB" % (rss, args.rss_mb)
    text = stderr.decode("utf-8", "replace")
    if "Fatal error" in text:
        return "crash: runtime trap"
    if status != 0:
        errors = [line for line in text.split("\n") if line.startswith("Error: ")]
        if not errors:
            return "exit %d without an 'Error: ' line" % status
        if len(errors[0]) > 300:
            return "first error line is %d characters" % len(errors[0])
    return None


def one_case(target, case_seed, seed_dir, work_root, args, keep=False):
    path, mutators, command, stdin = TARGETS[target]
    rng = random.Random(case_seed)
    work = os.path.join(work_root, "%s-%d" % (target, case_seed))
    case_folder(seed_dir, work, target)
    if path == "<stdin>":
        data, names = mutate(stdin, mutators, rng)
        stdin = data
    else:
        with open(os.path.join(seed_dir, path), "rb") as f:
            data, names = mutate(f.read(), mutators, rng)
        os.remove(os.path.join(work, path))
        with open(os.path.join(work, path), "wb") as f:
            f.write(data)
    argv = [args.bin] + command(work)
    status, stderr, seconds, rss, timed_out = run(argv, stdin, args.time_limit)
    why = judge(status, stderr, rss, timed_out, args)
    outcome = "hang" if timed_out else "crash" if status < 0 else "accepted" if status == 0 else "error"
    if not why and not keep:
        shutil.rmtree(work)
    first = next((l for l in stderr.decode("utf-8", "replace").split("\n") if l.startswith("Error: ")), "")
    return why, outcome, names, argv, seconds, rss, first


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build/release/swift-petl"))
    ap.add_argument("--seed", type=int, default=None, help="master seed (default: from the clock, printed)")
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--time-limit", type=float, default=15, help="seconds per run")
    ap.add_argument("--rss-mb", type=int, default=512)
    ap.add_argument("--replay", help="TARGET:CASE_SEED, one case, its files kept")
    ap.add_argument("--verbose", action="store_true", help="one line per case")
    args = ap.parse_args()
    work_root = tempfile.mkdtemp(prefix="petl-fuzz-")
    seed_dir = os.path.join(work_root, "seeds")
    # In a child: the floats it builds would stay in this process, and every command forked from
    # it would start with that resident memory counted in its own peak.
    subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds.py"), seed_dir], check=True)
    env_note = "OPENBLAS_NUM_THREADS=%s" % os.environ.get("OPENBLAS_NUM_THREADS", "(unset)")
    if args.replay:
        target, case_seed = args.replay.rsplit(":", 1)
        why, outcome, names, argv, seconds, rss, first = one_case(target, int(case_seed), seed_dir, work_root, args, keep=True)
        print("%s:%s %s (%s) %.2f s %.0f MB: %s" % (target, case_seed, outcome, "+".join(names), seconds, rss, why or "ok"))
        print("  " + " ".join(argv))
        print("  " + first)
        print("%d passed, %d failed" % (0 if why else 1, 1 if why else 0))
        return 1 if why else 0
    master = args.seed if args.seed is not None else int(time.time() * 1000) % 1_000_000_007
    print("fuzz: seed %d, %d cases over %d targets, %s; replay one with --replay TARGET:CASE_SEED"
          % (master, args.cases, len(TARGETS), env_note), flush=True)
    rng = random.Random(master)
    names = sorted(TARGETS)
    counts = {}
    failed = []
    t0 = time.time()
    for i in range(args.cases):
        target = names[i % len(names)]
        case_seed = rng.randrange(1 << 31)
        why, outcome, muts, argv, seconds, rss, first = one_case(target, case_seed, seed_dir, work_root, args)
        counts[outcome] = counts.get(outcome, 0) + 1
        if args.verbose or why:
            print("%s %s:%d %s (%s) %.2f s %.0f MB%s" % ("FAIL" if why else "ok  ", target, case_seed, outcome,
                  "+".join(muts), seconds, rss, ": " + why if why else ""), flush=True)
        if why:
            failed.append((target, case_seed))
            print("  replay: python3 Tests/fuzz/fuzz.py --bin %s --replay %s:%d" % (args.bin, target, case_seed))
            print("  " + (first[:400] if first else "(no error line)"))
    print("fuzz: %s in %.0f s%s" % (", ".join("%d %s" % (n, k) for k, n in sorted(counts.items())), time.time() - t0,
                                    "; inputs of the failed cases kept in " + work_root if failed else ""))
    if not failed:
        shutil.rmtree(work_root)
    print("%d passed, %d failed" % (args.cases - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
