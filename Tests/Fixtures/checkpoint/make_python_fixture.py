"""Writes python-written.safetensors with the reference `safetensors` library (run with /work/venv/bin/python).

CheckpointTests reads it and compares against the exact values listed here, so the Swift reader is checked
against the reference writer's dtypes (F16, BF16, F32, F64, I64, I32, U8), padding and metadata.
"""
import sys
import torch
from safetensors.torch import save_file

tensors = {
    # Powers of two and edge cases: exactly representable in F16 (max, smallest normal, smallest subnormal, inf, -0).
    "half": torch.tensor([1.0, -2.5, 65504.0, 2.0**-14, 2.0**-24, float("inf"), -0.0, 0.333251953125], dtype=torch.float16),
    # bfloat16: max finite 0x7F7F, smallest subnormal 2^-133, and -3.140625 (= 0xC049).
    "brain": torch.tensor([1.0, -3.140625, 3.3895313892515355e38, 2.0**-133], dtype=torch.bfloat16),
    "single": torch.tensor([[0.5, -1.25, 3.0], [1e-3, 7.0, -0.0]], dtype=torch.float32),
    "double": torch.tensor([0.1, -2.0], dtype=torch.float64),
    "position_ids": torch.tensor([[0, 1, 2, -5, 2**40]], dtype=torch.int64),
    "int32": torch.tensor([-7, 2**31 - 1], dtype=torch.int32),
    "bytes": torch.tensor([0, 255], dtype=torch.uint8),
}
save_file(tensors, sys.argv[1] if len(sys.argv) > 1 else "python-written.safetensors", metadata={"format": "pt", "note": "fixture"})
