"""Exact resume: a run killed with SIGKILL at a chosen step and resumed ends bit-identically to the uninterrupted run
(weights, optimizer state, logged metrics from the resume point on), with and without worker processes, with the
decode cache on and off, in co-training, with weight averaging, and in the ablation grid (uv2.data.sampler,
uv2.train.resume)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from tests.helpers import REPO, hparams_records, hparams_session, micro_grid_spec, sigint_as_at_a_terminal
from tests.resume_helpers import logged_scalars, uv2_fit
from uv2.data.sampler import ItemKey, ResumableDataLoader, ShuffleSampler
from uv2.data.synthetic import ensure_synthetic
from uv2.errors import EXIT_INTERRUPTED
from uv2.io import safe_load
from uv2.train.checkpointing import LAST

SYNTH_SEED = 0
STEPS_PER_EPOCH = 5  # the micro temporal set: 20 training videos in batches of 4
KILLER = "tests.resume_helpers.KillAfterCheckpoint"


# ------------------------------------------------------------------------------------------------ the sampler
class _Draws(torch.utils.data.Dataset):
    """Items that are their list index and a draw from the item's own generator."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, key: ItemKey) -> torch.Tensor:
        return torch.tensor([key.index, int(key.rng().integers(1 << 30))])


def _loader(num_workers: int, seed: int = 7) -> ResumableDataLoader:
    dataset = _Draws()
    return ResumableDataLoader(dataset, sampler=ShuffleSampler(dataset, seed), batch_size=2, drop_last=True,
                               num_workers=num_workers, persistent_workers=num_workers > 0)


def _epochs(loader: ResumableDataLoader, epochs: range) -> list[torch.Tensor]:
    batches = []
    for epoch in epochs:
        loader.sampler.set_epoch(epoch)
        batches += list(loader)
    return batches


def test_sampler_order_and_draws_are_functions_of_seed_and_epoch():
    """The same seed gives the same batches whatever the number of workers; each epoch has its own order and draws;
    another seed gives other ones."""
    plain, workers = _epochs(_loader(0), range(2)), _epochs(_loader(2), range(2))
    assert all(torch.equal(a, b) for a, b in zip(plain, workers, strict=True))
    first, second = torch.cat(plain[:5]), torch.cat(plain[5:])
    assert sorted(first[:, 0].tolist()) == sorted(second[:, 0].tolist()) == list(range(10))  # each item once
    assert not torch.equal(first[:, 0], second[:, 0])  # a new order per epoch
    assert not torch.equal(first, torch.cat(_epochs(_loader(0, seed=8), range(1))))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_state_resumes_the_remaining_batches(num_workers):
    """The state after k batches, loaded into a fresh loader, gives exactly the batches the first had left, then
    the next epoch as the uninterrupted loader does."""
    reference = _epochs(_loader(num_workers), range(2))
    interrupted = _loader(num_workers)
    interrupted.sampler.set_epoch(0)
    iterator = iter(interrupted)
    consumed = [next(iterator) for _ in range(2)]
    state = interrupted.state_dict()
    resumed = _loader(num_workers)
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(0)
    rest = list(resumed)
    resumed.sampler.set_epoch(1)
    rest += list(resumed)
    assert all(torch.equal(a, b) for a, b in zip(consumed + rest, reference, strict=True))


# ------------------------------------------------------------------------------------------- killed fits (CLI)
@pytest.fixture(scope="module")
def synth_root(tmp_path_factory) -> Path:
    parent = tmp_path_factory.mktemp("synthetic")
    ensure_synthetic(parent / f"micro_seed{SYNTH_SEED}", "micro", SYNTH_SEED)
    return parent


def _fit_args(synth_root: Path, run_dir: Path, num_workers: int) -> list[str]:
    """Two epochs of the tiny temporal preset on the micro set, with dropout and drop-path (their masks must be
    restored too), seek-and-decode (the decode cache: the co-training test), every step logged and checkpointed."""
    return ["--config", str(REPO / "experiments/temporal_tiny.yaml"),
            "--data.init_args.synthetic_size", "micro", "--data.init_args.synthetic_root", str(synth_root),
            "--data.init_args.synthetic_set", "temporal", "--data.init_args.batch_size", "4",
            "--data.init_args.crop_size", "32", "--data.init_args.short_side", "32",
            "--data.init_args.num_workers", str(num_workers), "--data.init_args.cache_decoded", "false",
            "--model.init_from", "null", "--model.arch.head_dropout", "0.5", "--model.arch.drop_path", "0.2",
            "--trainer.max_epochs", "2", "--trainer.limit_val_batches", "1", "--trainer.log_every_n_steps", "1",
            "--checkpoint_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--run_dir", str(run_dir)]


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


def _killed_and_resumed(args: list[str], kill_steps: list[int]) -> dict:
    """Run `args` killed by SIGKILL once last.ckpt holds the first of `kill_steps`, resumed and killed again at the
    next one, ..., and resumed to the end; the final last.ckpt."""
    run_dir = Path(args[args.index("--run_dir") + 1])
    run_dir.mkdir(parents=True, exist_ok=True)
    for n, step in enumerate(kill_steps):
        log = run_dir / f"killed{n}.log"
        resume = ["--resume"] if n else []
        killed = uv2_fit([*args, *resume, f"--trainer.callbacks+={KILLER}", f"--trainer.callbacks.step={step}"], log)
        assert killed == -signal.SIGKILL, _tail(log)
        assert safe_load(run_dir / "checkpoints" / "last.ckpt")["global_step"] == step
    assert uv2_fit([*args, "--resume"], run_dir / "resumed.log") == 0, _tail(run_dir / "resumed.log")
    return safe_load(run_dir / "checkpoints" / "last.ckpt")


def _assert_same_state(resumed: dict, reference: dict) -> None:
    assert resumed["global_step"] == reference["global_step"] == 2 * STEPS_PER_EPOCH
    assert resumed["state_dict"].keys() == reference["state_dict"].keys()
    different = [k for k, v in reference["state_dict"].items() if not torch.equal(v, resumed["state_dict"][k])]
    assert not different, f"weights differ from the uninterrupted run's: {different[:5]}"
    for a, b in zip(resumed["optimizer_states"][0]["state"].values(),
                    reference["optimizer_states"][0]["state"].values(), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in b)


@pytest.fixture(scope="module")
def uninterrupted(synth_root, tmp_path_factory) -> Path:
    """The run dir of the uninterrupted run (no workers: the batches do not depend on them)."""
    run_dir = tmp_path_factory.mktemp("uninterrupted")
    log = run_dir.parent / f"{run_dir.name}.log"
    assert uv2_fit(_fit_args(synth_root, run_dir, 0), log) == 0, _tail(log)
    return run_dir


@pytest.mark.parametrize(("num_workers", "kill_steps"), [
    (0, [3]),  # mid first epoch
    (2, [STEPS_PER_EPOCH, 7]),  # at the end of the first epoch (after its validation), then mid second epoch
], ids=["workers0", "workers2"])
def test_killed_run_resumes_bit_identically(synth_root, uninterrupted, tmp_path, num_workers, kill_steps):
    """Killed with SIGKILL once last.ckpt holds a chosen step, resumed with --resume: the same final weights and
    optimizer state as the uninterrupted run (torch.equal), the same logged training losses, epoch metrics and
    validation from the (last) resume point on, one HPARAMS session; with worker processes and without (the
    uninterrupted run has none: the batches do not depend on them). The decode cache: the co-training test."""
    run_dir = tmp_path / "killed"
    resumed = _killed_and_resumed(_fit_args(synth_root, run_dir, num_workers), kill_steps)
    reference_dir = uninterrupted
    _assert_same_state(resumed, safe_load(reference_dir / "checkpoints" / "last.ckpt"))

    logged, expected = logged_scalars(run_dir, newest_only=True), logged_scalars(reference_dir)
    for tag in ("train/loss_step", "train/loss_epoch", "train/top1", "val/top1", "val/loss"):
        after = {step: v for step, v in expected[tag].items() if step >= kill_steps[-1]}
        assert after and {step: logged[tag][step] for step in after} == after, tag
    # TensorBoard's HPARAMS session is written once per run, and the best validation top-1 carries over the kill
    assert len(hparams_records(run_dir)["_hparams_/session_start_info"]) == 1
    session = hparams_session(run_dir)
    assert session["status"] == "STATUS_SUCCESS"
    assert session["values"]["hp/val_top1"] == pytest.approx(max(expected["val/top1"].values()))


def test_ctrl_c_stops_a_fit_at_a_batch_with_its_checkpoint(synth_root, tmp_path):
    """Ctrl-C (SIGINT) stops `python -m uv2 fit` after the batch it arrives in: last.ckpt holds that step, the
    TensorBoard session closes as "unknown" (TensorBoard has no "aborted"), and the exit status is 130, not
    Lightning's 1. `--resume` then continues from that step."""
    run_dir, log = tmp_path / "run", tmp_path / "fit.log"
    args = [*_fit_args(synth_root, run_dir, 0), "--trainer.max_epochs", "1000"]  # minutes: stopped long before
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uv2", "fit", *args], cwd=REPO, stdout=out, stderr=out,
                                preexec_fn=sigint_as_at_a_terminal)
        try:
            deadline = time.time() + 300
            while time.time() < deadline and proc.poll() is None and not (run_dir / "checkpoints" / LAST).exists():
                time.sleep(0.2)
            os.kill(proc.pid, signal.SIGINT)
            code = proc.wait(timeout=120)
        finally:
            proc.kill()
    assert code == EXIT_INTERRUPTED, _tail(log)
    # mid-epoch "stopped at step N", or in an epoch's last batch after that epoch ends (its metrics logged)
    stop = re.search(r"stopped at (?:step (\d+)|the end of epoch \d+ \(step (\d+)\)); \S+last.ckpt holds this state",
                     log.read_text())
    stopped = int(stop.group(1) or stop.group(2))
    assert torch.load(run_dir / "checkpoints" / LAST, weights_only=False)["global_step"] == stopped
    assert hparams_session(run_dir)["status"] == "STATUS_UNKNOWN"
    resumed = [*args[:-2], "--trainer.max_epochs", str(stopped // 5 + 2), "--resume"]  # 5 steps per epoch
    assert uv2_fit(resumed, tmp_path / "resumed.log") == 0, _tail(tmp_path / "resumed.log")
    assert f"Restoring states from the checkpoint path at {run_dir / 'checkpoints' / LAST}" in \
        (tmp_path / "resumed.log").read_text()


def test_ddp_run_resumes_with_every_ranks_epoch_sums(synth_root, tmp_path):
    """Two CPU processes (gloo) killed mid-epoch and resumed: the weights and the epoch metrics, which cover both
    ranks' batches (sync_dist), come out as the uninterrupted run's: each rank takes its own running sums back
    (uv2.train.resume.EpochMetricSums)."""
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    reference_dir, run_dir = tmp_path / "uninterrupted", tmp_path / "killed"
    assert uv2_fit([*_fit_args(synth_root, reference_dir, 0), *ddp], tmp_path / "uninterrupted.log") == 0, \
        _tail(tmp_path / "uninterrupted.log")
    assert "sync_dist=True" not in (tmp_path / "uninterrupted.log").read_text()  # Lightning's hint: none is left
    resumed = _killed_and_resumed([*_fit_args(synth_root, run_dir, 0), *ddp], [1])  # 2 steps per epoch on 2 ranks
    reference = safe_load(reference_dir / "checkpoints" / "last.ckpt")
    assert resumed["global_step"] == reference["global_step"] == 4
    different = [k for k, v in reference["state_dict"].items() if not torch.equal(v, resumed["state_dict"][k])]
    assert not different, f"weights differ from the uninterrupted run's: {different[:5]}"
    logged, expected = logged_scalars(run_dir, newest_only=True), logged_scalars(reference_dir)
    for tag in ("train/loss_epoch", "train/top1", "val/top1"):
        assert expected[tag] and logged[tag] == expected[tag], tag


def test_epoch_sums_go_back_to_the_rank_that_saved_them():
    """Each rank's saved sums go back to that rank; on another number of processes rank 0 takes every rank's (their
    epoch value is the same up to rounding); one process's sums, as checkpoints held them before, go to rank 0."""
    from types import SimpleNamespace

    from uv2.train.resume import EpochMetricSums

    def entry(value: float) -> dict[str, torch.Tensor]:
        return {"value": torch.tensor(value), "count": torch.tensor(4)}

    def pending(saved: dict, world_size: int, rank: int) -> dict:
        sums = EpochMetricSums()
        sums.on_load_checkpoint(SimpleNamespace(world_size=world_size, global_rank=rank), None,
                                {EpochMetricSums.KEY: saved})
        return {key: [float(e["value"]) for e in entries] for key, entries in sums._pending.items()}

    by_rank = {"world_size": 2, "ranks": [{"train/top1": [entry(1.0)]}, {"train/top1": [entry(2.0)]}]}
    assert pending(by_rank, 2, 0) == {"train/top1": [1.0]} and pending(by_rank, 2, 1) == {"train/top1": [2.0]}
    assert pending(by_rank, 1, 0) == {"train/top1": [1.0, 2.0]}
    assert pending(by_rank, 3, 0) == {"train/top1": [1.0, 2.0]} and pending(by_rank, 3, 2) == {}
    one_process = {"train/top1": entry(3.0)}
    assert pending(one_process, 1, 0) == pending(one_process, 2, 0) == {"train/top1": [3.0]}
    assert pending(one_process, 2, 1) == {}


def test_cotraining_resumes_bit_identically(synth_root, tmp_path):
    """Co-training two sets of different batch counts (the shorter set starts a second pass within the epoch), the
    decode cache on, killed mid-epoch in that second pass: the resumed run ends with the uninterrupted run's
    weights."""
    common = {"synthetic_size": "micro", "synthetic_root": str(synth_root), "num_workers": 0, "crop_size": 32,
              "short_side": 32, "cache_decoded": True}
    sets = {"scene_a": {"synthetic_set": "scene_a", "batch_size": 4},  # 16 videos: 4 batches per pass
            "scene_b": {"synthetic_set": "scene_b", "batch_size": 2}}  # 8 batches: the epoch's length

    def args(run_dir: Path) -> list[str]:
        return ["--config", str(REPO / "experiments/cotrain_tiny.yaml"), "--data.init_args.common", json.dumps(common),
                "--data.init_args.sets", json.dumps(sets), "--model.arch.num_classes", "16", "--model.init_from", "null",
                "--model.arch.head_dropout", "0.5", "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "1",
                "--checkpoint_every_n_steps", "1", "--trainer.enable_progress_bar", "false",
                "--trainer.enable_model_summary", "false", "--run_dir", str(run_dir)]

    assert uv2_fit(args(tmp_path / "uninterrupted"), tmp_path / "uninterrupted.log") == 0, \
        _tail(tmp_path / "uninterrupted.log")
    reference = safe_load(tmp_path / "uninterrupted" / "checkpoints" / "last.ckpt")
    resumed = _killed_and_resumed(args(tmp_path / "killed"), [5])  # scene_a's second pass, its first batch done
    assert resumed["global_step"] == reference["global_step"] == 8
    different = [k for k, v in reference["state_dict"].items() if not torch.equal(v, resumed["state_dict"][k])]
    assert not different, f"weights differ from the uninterrupted run's: {different[:5]}"


# -------------------------------------------------------------------------------------------- the ablation grid
@pytest.mark.parametrize("jobs", [1, 2])
def test_grid_killed_mid_cell_and_rerun_gives_the_same_results(synth_root, tmp_path, jobs):
    """A grid of two cells killed mid-cell (SIGKILL in the first cell's epoch) and rerun writes the same results.csv
    numbers (top-1, top-5, tested checkpoint step) and test scores for that cell as an uninterrupted run of it, the
    killed cell resumed, not restarted (the second cell runs once, from the start, in either grid). With --jobs 2
    the kill hits a worker process: the grid records its cells as failed and ends, and the rerun resumes them (on
    one thread per cell, as the uninterrupted --jobs 1 run on one thread)."""
    spec = micro_grid_spec(tmp_path)
    spec["data"].update(synthetic_root=str(synth_root), num_test_clips=1, num_test_crops=1)
    table = tmp_path / "mr.yaml"
    rows = [{"label": "no local", "arch": {"local_type": "none"}}, {"label": "local MHRA", "arch": {"local_type": "lmhra"}}]
    table.write_text(json.dumps({"title": "resume", "datasets": ["temporal"], "rows": rows}))

    def grid(name: str, marker: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
        # the same config in both grids (the same cell hashes): the kill is armed while `marker` does not exist
        killer = {"class_path": KILLER, "init_args": {"step": 3, "write": True, "marker": str(marker)}}
        cell_spec = {**spec, "overrides": {**spec["overrides"], "trainer": {"callbacks": [killer]}}}
        datasets = tmp_path / f"datasets_{name}.yaml"
        datasets.write_text(json.dumps({"temporal": {"name": "SSv2", "tiny": cell_spec, "paper": None}}))
        out = tmp_path / name
        threads = {"OMP_NUM_THREADS": str(jobs if name == "killed" else 1)}  # one thread per cell in every run
        return subprocess.run([sys.executable, "ablations/run.py", "--table", str(table), "--datasets",
                               str(datasets), "--out", str(out), *extra], cwd=REPO, capture_output=True, text=True,
                              timeout=600, env={**os.environ, **threads}), out / "table_mr"

    disarmed = tmp_path / "never-kill"
    disarmed.write_text("")
    straight, straight_out = grid("straight", disarmed, "--only", "0")  # the row the kill hits, uninterrupted
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed, killed_out = grid("killed", tmp_path / "killed.marker", "--jobs", str(jobs))
    if jobs == 1:
        assert killed.returncode == -9, killed.stderr[-3000:]
    else:  # the worker was killed; the grid says so and ends
        assert killed.returncode == 1 and "a worker process of the grid died" in killed.stdout, killed.stdout[-3000:]
    rerun, _ = grid("killed", tmp_path / "killed.marker", "--jobs", str(jobs))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "no local | temporal | seed 1: resuming" in rerun.stdout

    def results(out: Path) -> list[tuple]:
        lines = (out / "results.csv").read_text().splitlines()
        header = lines[0].split(",")
        records = [dict(zip(header, line.split(","))) for line in lines[1:]]
        return [(r["label"], r["status"], r["top1"], r["top5"], r["checkpoint_step"]) for r in records]

    assert [r[1] for r in results(killed_out)] == ["done", "done"]
    assert results(killed_out)[:1] == results(straight_out)[:1]
    assert [r[1] for r in results(straight_out)] == ["done", "pending"]  # --only ran row 0; the table has both
    for cell in (straight_out / "cells").iterdir():
        scores = [torch.load(out / "cells" / cell.name / "test_predictions.pt")["scores"]
                  for out in (straight_out, killed_out)]
        assert torch.equal(*scores), cell.name


def test_weight_averaging_resumes_bit_identically(synth_root, tmp_path):
    """With Lightning's EMAWeightAveraging among the callbacks, a run killed mid-epoch (last.ckpt written at a step
    checkpoint) and resumed ends with the uninterrupted run's average, current weights and averaging state."""
    if not hasattr(pl.callbacks, "EMAWeightAveraging"):
        pytest.skip("Lightning < 2.6 has no weight averaging")
    ema = json.dumps({"class_path": "pytorch_lightning.callbacks.EMAWeightAveraging", "init_args": {"decay": 0.5}})

    def args(run_dir: Path) -> list[str]:
        return [*_fit_args(synth_root, run_dir, 0), f"--trainer.callbacks+={ema}"]

    reference_log = tmp_path / "uninterrupted.log"
    assert uv2_fit(args(tmp_path / "uninterrupted"), reference_log) == 0, _tail(reference_log)
    reference = safe_load(tmp_path / "uninterrupted" / "checkpoints" / "last.ckpt")
    resumed = _killed_and_resumed(args(tmp_path / "killed"), [3])
    _assert_same_state(resumed, reference)
    for key in ("current_model_state", "averaging_state"):
        assert resumed[key].keys() == reference[key].keys()
        different = [k for k, v in reference[key].items() if not torch.equal(v, resumed[key][k])]
        assert not different, f"{key} differs from the uninterrupted run's: {different[:5]}"
