#!/usr/bin/env python3
"""Checks for the two-node tests (Tests/cluster/*.sh). Standard library only (CI has no numpy).

  check.py journal JOURNAL REFERENCE [--prefix FILE] [--hosts n1,n2]
      Every cell of REFERENCE's journal is in JOURNAL exactly once (by spec_hash), status ok, every
      line complete JSON, nothing unplanned; each cell's dev metrics, per-epoch train loss and dev,
      and `moved` equal the reference's exactly (one BLAS thread: bit-identical on any rank).
      --prefix: FILE (a copy of the journal taken after an interrupted run) is a byte prefix of JOURNAL.
      --hosts: every record names hosts, all from this list, and every host of the list trained a cell.
  check.py dp-update DP1 DP1X2 DP2
      Three results folders of one SGD cell trained ONE step (no clipping, no momentum): DP1 at lr 1 on
      one rank, DP1X2 at lr 2 on one rank, DP2 at lr 1 by a group of two ranks. One SGD step moves a
      parameter by -lr*g, so DP1X2 - DP1 is exactly DP1's update; DP2's update must equal DP1's within
      1e-3 of the tensor's largest update plus 4 ulps of the parameter (the summation order of the
      all-reduce differs); the largest update must be >= 100x that tolerance, so that a x2 or /2
      error in the reduced gradient or the global-batch divisor cannot pass. Also: DP2's
      record has ranks 2, allreduce_bytes_per_step == 4 x trainable_parameters, hosts of two nodes.
Prints "ok: ..." or the first problem, and exits 0 / 1.
"""
import array
import json
import os
import struct
import sys


def fail(msg):
    print(msg)
    sys.exit(1)


def read_journal(path):
    try:
        data = open(path, "rb").read()
    except OSError as e:
        fail(f"no journal: {e}")
    if data and not data.endswith(b"\n"):
        fail(f"{path}: torn last line (no newline at the end)")
    records = []
    for i, line in enumerate(data.split(b"\n")[:-1] if data else [], 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            fail(f"{path}: line {i} is not JSON: {line[:80]!r}")
    return data, records


def fingerprint(r):
    return (r.get("dev"), [(e.get("train_loss"), e.get("dev")) for e in r.get("epochs", [])], r.get("moved"))


def journal(args):
    path, ref_path = args[0], args[1]
    prefix = hosts = None
    rest = args[2:]
    while rest:
        if rest[0] == "--prefix":
            prefix, rest = rest[1], rest[2:]
        elif rest[0] == "--hosts":
            hosts, rest = rest[1].split(","), rest[2:]
        else:
            fail(f"unknown argument {rest[0]}")
    data, records = read_journal(path)
    _, reference = read_journal(ref_path)
    ref = {r["spec_hash"]: r for r in reference}
    counts = {}
    for r in records:
        counts[r["spec_hash"]] = counts.get(r["spec_hash"], 0) + 1
        if r.get("status") != "ok":
            fail(f"cell {r['spec_hash']} status {r.get('status')}: {r.get('reason')}")
    lost = [h for h in ref if h not in counts]
    duplicated = [h for h, n in counts.items() if n > 1]
    unplanned = [h for h in counts if h not in ref]
    if lost or duplicated or unplanned:
        fail(f"{len(lost)} lost, {len(duplicated)} duplicated, {len(unplanned)} unplanned cells")
    for r in records:
        if fingerprint(r) != fingerprint(ref[r["spec_hash"]]):
            fail(f"cell {r['spec_hash']}: {fingerprint(r)} != reference {fingerprint(ref[r['spec_hash']])}")
    if prefix is not None:
        before = open(prefix, "rb").read()
        if not data.startswith(before):
            fail(f"the journal of the interrupted run ({len(before)} bytes) is not a byte prefix of the resumed one")
    seen = set()
    if hosts is not None:
        for r in records:
            h = r.get("hosts")
            if not h or any(x not in hosts for x in h):
                fail(f"cell {r['spec_hash']} names hosts {h}, expected some of {hosts}")
            seen.update(h)
        if seen != set(hosts):
            fail(f"cells trained on {sorted(seen)}, expected every one of {hosts}")
    print(f"ok: {len(records)} cells once each, 0 lost, 0 duplicated, metrics identical to the one-rank run"
          + (f", prefix of {len(open(prefix, 'rb').read())} bytes kept" if prefix else "")
          + (f", hosts {', '.join(sorted(seen))}" if hosts else ""))


def safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            fail(f"{path}: {name} is {meta['dtype']}, expected F32")
        a, b = meta["data_offsets"]
        t = array.array("f")
        t.frombytes(raw[8 + n + a:8 + n + b])
        if sys.byteorder != "little":
            t.byteswap()
        out[name] = t
    return out


def ulp(x):
    m, e = __import__("math").frexp(abs(x) or 1e-38)
    return 2.0 ** (e - 24)


def dp_update(args):
    folders = args[:3]
    recs = [read_journal(os.path.join(f, "journal.jsonl"))[1] for f in folders]
    for f, r in zip(folders, recs):
        if len(r) != 1 or r[0].get("status") != "ok":
            fail(f"{f}: expected one ok cell, got {[(x.get('status'), x.get('reason')) for x in r]}")
    one, doubled, two = (r[0] for r in recs)
    if one["spec_hash"] != two["spec_hash"]:
        fail("the --dp 2 cell is not the --dp 1 cell (spec_hash differs)")
    if one.get("steps") != 1 or two.get("steps") != 1:
        fail(f"expected one optimizer step, got {one.get('steps')} and {two.get('steps')}")
    if two.get("ranks") != 2:
        fail(f"--dp 2 record has ranks {two.get('ranks')}")
    if two.get("allreduce_bytes_per_step") != 4 * two.get("trainable_parameters", -1):
        fail(f"all-reduce bytes per step {two.get('allreduce_bytes_per_step')} != 4 x {two.get('trainable_parameters')}")
    if len(set(two.get("hosts") or [])) != 2:
        fail(f"the --dp 2 group ran on hosts {two.get('hosts')}, expected one rank on each of two nodes")
    a, c, b = (safetensors(os.path.join(f, "adapters", f"{r['spec_hash']}.safetensors"))
               for f, r in zip(folders, (one, doubled, two)))
    if set(a) != set(b) or set(a) != set(c):
        fail(f"adapter tensors differ: {sorted(a)} / {sorted(b)} / {sorted(c)}")
    closest, least_margin = 0.0, float("inf")
    for name in sorted(a):
        x, y, z = a[name], b[name], c[name]
        update = [zi - xi for xi, zi in zip(x, z)]          # DP1's update, exactly: lr*g at lr 2 minus lr 1
        biggest = max(abs(u) for u in update)
        if biggest < 1e-4:
            fail(f"{name}: update {biggest:g} too small to expose a scale error")
        worst_ratio, scaled = 0.0, float("inf")
        for xi, yi, ui in zip(x, y, update):
            tol = 1e-3 * biggest + 4 * ulp(max(abs(xi), abs(xi - ui)))
            worst_ratio = max(worst_ratio, abs(yi - xi) / tol)
        # How far a x2 (or /2) error would land outside the tolerance: |update| over the tolerance.
        scaled = max(abs(ui) / (1e-3 * biggest + 4 * ulp(xi)) for xi, ui in zip(x, update))
        if worst_ratio > 1:
            fail(f"{name}: --dp 2 update differs from --dp 1 by {worst_ratio:.2f}x the tolerance (1e-3 of {biggest:g})")
        if scaled < 100:
            fail(f"{name}: the update is only {scaled:.1f}x the tolerance: a scale error could pass")
        closest, least_margin = max(closest, worst_ratio), min(least_margin, scaled)
    print(f"ok: {len(a)} tensors, --dp 2 update within {closest:.3f} of the tolerance (every update >= {least_margin:.0f}x "
          f"the tolerance: a x2 or /2 error fails); "
          f"ranks 2 on {', '.join(two['hosts'])}, all-reduce {two['allreduce_bytes_per_step']} bytes/step = 4 x "
          f"{two['trainable_parameters']} trainable")


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("journal", "dp-update"):
        fail(__doc__)
    {"journal": journal, "dp-update": dp_update}[sys.argv[1]](sys.argv[2:])
