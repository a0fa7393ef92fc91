"""Device and precision selection of training and generation (the device rule itself is :mod:`physics._device`)."""

from __future__ import annotations

import torch

from physics._device import resolve_device

__all__ = ["resolve_device", "resolve_precision", "autocast"]


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → ``bf16`` where convolutions run natively in bfloat16 (CUDA, CPUs with AVX-512 BF16), else ``fp32``."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if _cpu_has_bf16() else "fp32"


def autocast(device: torch.device, precision: str):
    """Autocast context for ``precision`` on ``device`` (a no-op for fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
