"""SLURM for a whole table: an sbatch array with one cell per task and a merge job after it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from uv2.ablation.grid import Cell, Table
from uv2.ablation.parallel import CELL_THREADS, accelerator
from uv2.errors import SettingError
from uv2.io import atomic_write_text


class Layout(NamedTuple):
    """What one task of the sbatch array asks for."""

    devices: int  # per node: a process (task) each
    nodes: int
    cpu: bool  # the cells train on the CPU: no GPUs to ask for, and a task trains on CELL_THREADS threads


def cells_layout(cells: list[Cell]) -> Layout:
    """The devices per node, nodes and accelerator that the cells' trainers ask for: their experiments' settings,
    with --devices, --num-nodes and --accelerator over them. One sbatch array requests one layout for all its tasks,
    and each task's Lightning must find the GPUs and processes its trainer asks for."""
    layouts: list[tuple] = []  # a list, not a set: trainer.devices can be a list of device indices
    for cell in cells:
        trainer = cell.config.get("trainer", {})
        if (layout := (trainer.get("devices", 1), trainer.get("num_nodes", 1), accelerator(cell))) not in layouts:
            layouts.append(layout)
    if len(layouts) > 1:
        raise SettingError(f"--slurm: the cells train on different layouts (devices per node, nodes, accelerator): "
                           f"{', '.join(map(str, sorted(layouts, key=str)))}; one sbatch array has one: give "
                           f"--devices, --num-nodes and --accelerator")
    [(devices, nodes, where)] = layouts
    for name, value in (("devices", devices), ("num_nodes", nodes)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            flag = "--devices" if name == "devices" else "--num-nodes"
            raise SettingError(f"--slurm: the cells' trainer.{name} is {value!r}; an sbatch array needs a count: "
                               f"give {flag} N")
    return Layout(devices, nodes, where == "cpu")


def write_sbatch(table: Table, cells: list[Cell], out_dir: Path, argv: list[str], layout: Layout,
                 time_limit: str = "48:00:00") -> Path:
    """out_dir/slurm/{cells.sbatch, merge.sbatch, submit.sh}: the array (`--cell $SLURM_ARRAY_TASK_ID`), the merge
    step (`--merge`) and the script that submits both; returns the path of submit.sh."""
    slurm = out_dir / "slurm"
    passthrough = " ".join(a for a in argv if a != "--slurm")
    # a GPU process: its data workers beside it; a CPU cell trains on CELL_THREADS threads with its data in-process
    resources = (f"#SBATCH --cpus-per-task={CELL_THREADS}" if layout.cpu else
                 f"#SBATCH --gpus-per-node={layout.devices}\n#SBATCH --cpus-per-task=10")
    array = f"""#!/bin/bash
# uv2 ablation table {table.name}: {len(cells)} cells, one per array task (written by ablations/run.py --slurm)
#SBATCH --job-name=uv2-table-{table.name}
#SBATCH --array=0-{len(cells) - 1}
#SBATCH --nodes={layout.nodes}
#SBATCH --ntasks-per-node={layout.devices}
{resources}
#SBATCH --time={time_limit}
#SBATCH --output={slurm}/cell-%a.out
# Lightning reads SLURM's environment: srun starts one process per device on every node
srun python ablations/run.py {passthrough} --cell $SLURM_ARRAY_TASK_ID
"""
    merge = f"""#!/bin/bash
#SBATCH --job-name=uv2-table-{table.name}-merge
#SBATCH --ntasks=1
#SBATCH --time=00:10:00
#SBATCH --output={slurm}/merge.out
python ablations/run.py {passthrough} --merge
"""
    submit = f"""#!/bin/bash
# submit the array, then the merge step once every cell has ended (whatever its outcome)
set -euo pipefail
array_id=$(sbatch --parsable {slurm}/cells.sbatch)
sbatch --dependency=afterany:$array_id {slurm}/merge.sbatch
"""
    atomic_write_text(slurm / "cells.sbatch", array)
    atomic_write_text(slurm / "merge.sbatch", merge)
    atomic_write_text(slurm / "submit.sh", submit)
    os.chmod(slurm / "submit.sh", 0o755)
    return slurm / "submit.sh"
