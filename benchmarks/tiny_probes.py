"""The tiny-scale probes of issue 13 (docs/tiny_scale.md): a benchmark or a recipe other than the grid's (one not
adopted, or the grid's former one), measured on some rows of tables (a) and (c) on one dataset, each run again with
one command.

    python benchmarks/tiny_probes.py --probe NAME --out DIR [--seeds 1,2,3]

Probes (PROBES below):
  half-motion   the temporal set with its translations over half the distance, every draw of the generator the
                same (`python -m uv2 synth --motion-scale 0.5`), on table (a)'s "global", "local" and
                "global + local" and table (c)'s "9-12, no DPE" and "9-12, DPE";
  long-motion   the temporal set with its translations over 1.5 times the distance (one patch of the 32-pixel crop
                between sampled frames instead of two thirds; `python -m uv2 synth --motion-scale 1.5`), on table
                (a)'s "global" and "local" and table (c)'s four rows;
  large-objects the temporal set with its objects 1.3 times their radius (`python -m uv2 synth --object-scale 1.3`),
                on the rows that have learnt the translations at 14 epochs and spread on grow, shrink, appear and
                disappear (table (c)'s "1-12, DPE", table (a)'s T-Down row: the smaller the object, the more often
                a growing one is taken for one fading in; `benchmarks/error_latents.py`), then table (c)'s other
                rows;
  large-objects-one-kind
                the same set on table (a)'s "global" and "local", the designs with one kind of block;
  large-objects-batch-4
                the same set, batch 4 for 8 epochs instead of batch 8 for 14 (1,280 optimizer steps of 4 clips
                instead of 1,120 of 8: fewer clips, more steps), on table (c)'s rows;
  large-objects-10-epochs
                the same set, 10 epochs instead of 14, on table (c)'s rows and table (a)'s "global" and "local";
  large-objects-20-epochs, large-objects-30-epochs
                the same set, 20 or 30 epochs instead of 14, on the rows still learning it at 14 (table (c)'s "9-12,
                no DPE", table (a)'s "global" and "local");
  time-reversal the temporal set's training clips played backwards under their time-reversed class's label half the
                time (`data.init_args.time_reversal: 0.5`), on the same rows;
  t-down        table (c)'s rows with T-Down and twice the frames (table (a)'s T-Down row): the design of the paper's
                SSv2 ablations, which the tiny presets train without T-Down on 4 frames;
  t-down-floor  the same, with the cosine schedule ending at 30 % of its peak learning rate instead of 1 % (the
                setting table (b) trains in: its tiny_overrides);
  beta2         AdamW's second-moment decay at 0.95 instead of 0.999 (a memory of about 20 steps instead of 1,000,
                the whole run), on table (a)'s "global" and "local" and table (c)'s "9-12, no DPE" and "9-12, DPE";
  scene         the grid's own scene recipe on the eight distinct scene rows of tables (a) and (c) as one table,
                every row's gain over the plain ViT paired by seed (the measurement behind the recipe);
  scene-2-epochs
                the scene set's former recipe (until 2026-11-29): 2 epochs at the presets' learning rate instead of
                the grid's 4 at half of it, on the same rows.

It writes DIR/<probe>.yaml (the rows, on the probe's dataset alone) and DIR/datasets.yaml (ablations/datasets.yaml
with the probe's changes), generates a probe's own set into DIR/synthetic, and runs `ablations/run.py --table
DIR/<probe>.yaml --datasets DIR/datasets.yaml --seeds ... --out DIR/results`, which prints where table.md is (a
second command reuses every finished cell).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from uv2.data.synthetic import generate, set_dir  # noqa: E402
from uv2.experiment import deep_merge  # noqa: E402


@dataclass(frozen=True)
class Probe:
    rows: tuple[tuple[str, str], ...]  # (table, row label) of ablations/tables/<table>.yaml, in this order
    arch: dict = field(default_factory=dict)  # merged into every row's arch
    frames_factor: int = 1  # every row's (T-Down rows sample twice the frames)
    dataset: str = "temporal"  # the one dataset of ablations/datasets.yaml the rows train on
    changes: dict = field(default_factory=dict)  # deep-merged into that dataset's tiny entry
    motion_scale: float | None = None  # the temporal set generated into DIR/synthetic with this motion scale
    object_scale: float | None = None  # ... with this object scale


TABLE_C = tuple(("c", label) for label in ("9-12, no DPE", "9-12, DPE", "5-12, DPE", "1-12, DPE"))
T_DOWN = dict(rows=TABLE_C, arch={"t_down": True}, frames_factor=2)
# table (a)'s rows and table (c)'s but "5-12, DPE", which on the scene set (no local blocks in its preset) is table
# (a)'s "global"
SCENE_ROWS = (*(("a", label) for label in ("no global, no local", "global", "local", "global + local",
                                           "global + local + T-Down (2x frames)")),
              *(("c", label) for label in ("9-12, no DPE", "9-12, DPE", "1-12, DPE")))
PROBES = {
    "half-motion": Probe(rows=(("a", "global"), ("a", "local"), ("a", "global + local"), ("c", "9-12, no DPE"),
                               ("c", "9-12, DPE")), motion_scale=0.5),
    "long-motion": Probe(rows=(("a", "global"), ("a", "local"), *TABLE_C), motion_scale=1.5),
    "large-objects": Probe(rows=(("c", "1-12, DPE"), ("a", "global + local + T-Down (2x frames)"), *TABLE_C[:3]),
                           object_scale=1.3),
    "large-objects-one-kind": Probe(rows=(("a", "global"), ("a", "local")), object_scale=1.3),
    "large-objects-batch-4": Probe(rows=TABLE_C, object_scale=1.3, changes={"epochs": 8, "data": {"batch_size": 4}}),
    "large-objects-10-epochs": Probe(rows=(*TABLE_C, ("a", "global"), ("a", "local")), object_scale=1.3,
                                     changes={"epochs": 10}),
    **{f"large-objects-{epochs}-epochs": Probe(rows=(TABLE_C[0], ("a", "global"), ("a", "local")), object_scale=1.3,
                                               changes={"epochs": epochs}) for epochs in (20, 30)},
    "time-reversal": Probe(rows=(("a", "global"), ("a", "local"), *TABLE_C), changes={"data": {"time_reversal": 0.5}}),
    "t-down": Probe(**T_DOWN),
    "t-down-floor": Probe(**T_DOWN, changes={"overrides": {"model": {"optim": {"min_lr_factor": 0.3}}}}),
    "beta2": Probe(rows=(("a", "global"), ("a", "local"), ("c", "9-12, no DPE"), ("c", "9-12, DPE")),
                   changes={"overrides": {"model": {"optim": {"beta2": 0.95}}}}),
    "scene": Probe(rows=SCENE_ROWS, dataset="scene"),
    "scene-2-epochs": Probe(rows=SCENE_ROWS, dataset="scene",
                            changes={"epochs": 2, "overrides": {"model": {"optim": {"lr": 1.5e-4}}}}),
}


def table_file(name: str, probe: Probe) -> dict:
    """The probe's rows as a table file on the probe's dataset alone."""
    tables: dict[str, dict] = {}
    rows = []
    for table, label in probe.rows:
        tables.setdefault(table, yaml.safe_load((REPO / "ablations" / "tables" / f"{table}.yaml").read_text()))
        row = next((r for r in tables[table]["rows"] if r["label"] == label), None)
        if row is None:
            raise ValueError(f"probe {name}: table ({table}) has no row {label!r}")
        rows.append({"label": label, "arch": row["arch"] | probe.arch,
                     "frames_factor": row.get("frames_factor", 1) * probe.frames_factor,
                     "paper": {probe.dataset: row["paper"][probe.dataset]}})
    return {"title": f"probe {name}: " + ", ".join(f"({t}) {label}" for t, label in probe.rows),
            "datasets": [probe.dataset], "rows": rows}


def datasets_file(probe: Probe, out: Path) -> dict:
    """ablations/datasets.yaml with the probe's changes to its dataset's entry; a probe's own set read by its lists
    (a root of another spec is refused as a synthetic_root, rather than generated over)."""
    datasets = yaml.safe_load((REPO / "ablations" / "datasets.yaml").read_text())
    tiny = deep_merge(datasets[probe.dataset]["tiny"], probe.changes)
    if probe.motion_scale is not None or probe.object_scale is not None:
        root = out / "synthetic"
        generate(root, size="tiny", seed=0, sets=["temporal"], motion_scale=probe.motion_scale,
                 object_scale=probe.object_scale)
        lists = set_dir(root, "temporal")
        tiny = deep_merge(tiny, {"data": {"synthetic_set": None, "train_list": str(lists / "train.csv"),
                                          "val_list": str(lists / "val.csv"),
                                          "classes_file": str(lists / "classes.txt"),
                                          "decoded_cache_dir": str(root / "decoded")}})
    datasets[probe.dataset]["tiny"] = tiny
    return datasets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", required=True, choices=list(PROBES))
    parser.add_argument("--out", type=Path, required=True, help="folder for the table, datasets, set and results")
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    probe = PROBES[args.probe]
    table, datasets = out / f"{args.probe}.yaml", out / "datasets.yaml"
    table.write_text(yaml.safe_dump(table_file(args.probe, probe), sort_keys=False))
    datasets.write_text(yaml.safe_dump(datasets_file(probe, out), sort_keys=False))
    return subprocess.run([sys.executable, str(REPO / "ablations" / "run.py"), "--table", str(table), "--datasets",
                           str(datasets), "--seeds", args.seeds, "--out", str(out / "results")], cwd=REPO).returncode


if __name__ == "__main__":
    sys.exit(main())
