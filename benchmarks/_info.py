"""What every benchmark records in ``extra_info``: device, processor, threads, torch version, commit."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

import torch


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info(device: torch.device | str = "cpu") -> dict:
    device = torch.device(device)
    info = {
        "device": device.type,
        "cpu": _cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "commit": _commit(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def record_line(out, **fields) -> None:
    """Print one measurement as a JSON line and append it to the open file ``out`` at once (a run stopped by
    its time limit keeps every line written before)."""
    line = json.dumps(fields, default=float)
    print(line, flush=True)
    out.write(line + "\n")
    out.flush()
