"""Checks that the reference `safetensors` library reads a file written by SafeTensors.write.

Usage: /work/venv/bin/python read_swift_written.py FILE  (prints each tensor's name, dtype, shape, values).
"""
import sys
from safetensors import safe_open

with safe_open(sys.argv[1], framework="pt") as f:
    print("metadata", f.metadata())
    for name in f.keys():
        t = f.get_tensor(name)
        print(name, t.dtype, list(t.shape), t.flatten().tolist())
