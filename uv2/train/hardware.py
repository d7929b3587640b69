"""What a run ran on, as far as its numbers depend on it: the GPU, or the CPU (its model and instruction set), and
torch's version.

Two runs of the same config, seeds and code round differently on other hardware, and a run still learning when its
schedule ends can end far apart: 20 points for one cell of table (c) (README). The ablation grid records
:func:`hardware` in every cell's row of results.csv, and table.md names it.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

__all__ = ["cpu_capability", "cpu_model", "hardware"]


def cpu_capability() -> str:
    """The instruction set torch's CPU kernels use here (AVX2, AVX512, ...): the same run on CPUs of another one
    rounds differently."""
    return torch.backends.cpu.get_cpu_capability()


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else what the platform says; '' where neither does). Two CPUs
    with the same instruction set can round the same run differently: seed 3 of table (c)'s tiny "9-12, no DPE"
    temporal cell ended at 44.8 % on an AMD EPYC and 53.6 % on an Intel Xeon, both on torch's AVX-512 kernels
    (README)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor()


def hardware(device: torch.device | str) -> str:
    """What ran a computation on torch `device`, as results.csv's `hardware` records it: the GPU's name, or the CPU's
    instruction set and model, with torch's version (they decide the rounding, hence a run's numbers)."""
    device = torch.device(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type.upper()
    if device.type == "cpu":
        where += f" {cpu_capability()}" + (f" ({model})" if (model := cpu_model()) else "")
    return f"{where}, torch {torch.__version__}"
