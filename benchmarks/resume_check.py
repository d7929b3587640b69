"""Does a resumed run end where the uninterrupted run does, on this machine? `python -m uv2 fit`, killed and resumed.

    python benchmarks/resume_check.py --work /tmp/resume                 # on a GPU: bf16-mixed, 2 workers
    python benchmarks/resume_check.py --work /tmp/resume --deterministic on --json
    python benchmarks/resume_check.py --work /tmp/resume --cpu-smoke     # at CPU size (checks the script)

tests/test_resume.py proves resume bit-identical on the CPU. On a GPU some kernels are not deterministic (atomic
adds in backward passes, cuDNN's algorithm search), so two uninterrupted runs may already differ in their last bits.
This script measures both on the machine it runs on. For each setting (``--deterministic``: with and without
``--trainer.deterministic true``) it trains the tiny temporal preset (experiments/temporal_tiny.yaml, no image
pretraining, dropout and drop-path on, so the device's random generators must be restored too) for ``--steps``
optimizer steps three times with one seed: twice uninterrupted, and once killed with SIGKILL as soon as last.ckpt
holds step ``--kill-at`` and then continued with ``--resume``. It compares the final last.ckpt files (weights and
AdamW's moments): the two uninterrupted runs give the machine's own run-to-run difference, and the resumed run
against the first gives what the resume adds. A fit that fails (e.g. an operation with no deterministic kernel) is
reported with the end of its output. Arguments it does not know go to every fit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.resume_helpers import uv2_fit, weight_difference  # noqa: E402
from uv2.io import safe_load  # noqa: E402

KILLER = "tests.resume_helpers.KillAfterCheckpoint"  # SIGKILLs the run once last.ckpt holds a chosen step
# --cpu-smoke: the micro synthetic set (32 px, 20 training videos) on the CPU in fp32
SMOKE_ARGS = ["--data.init_args.synthetic_size", "micro", "--data.init_args.batch_size", "4",
              "--trainer.accelerator", "cpu", "--trainer.precision", "32-true"]


def tensors(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The weights and the optimizer's state tensors of a checkpoint, by name."""
    out = {f"weight {k}": v for k, v in checkpoint["state_dict"].items()}
    for i, state in enumerate(checkpoint["optimizer_states"]):
        for p, moments in state["state"].items():
            out.update({f"optimizer {i} param {p} {k}": v for k, v in moments.items() if torch.is_tensor(v)})
    return out


def compare(a: dict, b: dict) -> dict:
    """Bit-identical or not, the largest |difference| and how many tensors differ, over weights and optimizer state."""
    ta, tb = tensors(a), tensors(b)
    if ta.keys() != tb.keys() or a["global_step"] != b["global_step"]:
        raise SystemExit(f"resume_check: the checkpoints hold different steps ({a['global_step']}, {b['global_step']})"
                         " or tensors; the runs did not train alike")
    different = [k for k in ta if not torch.equal(ta[k], tb[k])]
    largest = weight_difference(ta, tb) if different else 0.0
    return dict(identical=not different, tensors_differing=len(different), tensors=len(ta), max_abs_diff=largest,
                first_differing=different[:3])


def setting(work: Path, name: str, common: list[str], steps: int, kill_at: int) -> dict:
    """Three fits of one setting (two uninterrupted, one killed and resumed) and their comparisons."""
    logs: dict[str, Path] = {}

    def run(label: str, run_dir: str, extra: list[str], expect_kill: bool = False) -> dict | None:
        """One fit into work/name/run_dir; its final last.ckpt, or None where it did not end as expected."""
        logs[label] = work / name / f"{label}.log"
        logs[label].parent.mkdir(parents=True, exist_ok=True)
        rc = uv2_fit([*common, "--run_dir", str(work / name / run_dir), *extra], logs[label], timeout=900)
        if rc != (-signal.SIGKILL if expect_kill else 0):
            return None
        return safe_load(work / name / run_dir / "checkpoints" / "last.ckpt")

    result: dict = dict(setting=name)
    first, second = run("first", "first", []), run("second", "second", [])
    killed = run("killed", "resumed", [f"--trainer.callbacks+={KILLER}", f"--trainer.callbacks.step={kill_at}"],
                 expect_kill=True)
    resumed = run("resumed", "resumed", ["--resume"]) if killed is not None else None
    runs = {"first": first, "second": second, "killed": killed, "resumed": resumed}
    failed = [label for label, ckpt in runs.items() if ckpt is None and label in logs]
    if failed:
        result["failed"] = {label: logs[label].read_text(errors="replace")[-1500:] for label in failed}
        return result
    if killed["global_step"] != kill_at:
        raise SystemExit(f"resume_check: the killed run's last.ckpt holds step {killed['global_step']}, not {kill_at}")
    result["uninterrupted_twice"] = compare(first, second)
    result["resumed_vs_uninterrupted"] = compare(resumed, first)
    result["steps"], result["kill_at"] = steps, kill_at
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the synthetic set and the runs")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per run (default 30)")
    parser.add_argument("--kill-at", type=int, default=15, help="the step last.ckpt holds when the run is killed")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    parser.add_argument("--deterministic", choices=["off", "on", "both"], default="both",
                        help="--trainer.deterministic false, true, or one setting of each (default)")
    parser.add_argument("--cpu-smoke", action="store_true", help="CPU size: the micro set, fp32, 6 steps")
    parser.add_argument("--json", action="store_true", help="one JSON line at the end")
    args, fit_args = parser.parse_known_args(argv)
    if args.cpu_smoke:
        args.steps, args.kill_at = 6, 3
    if not 0 < args.kill_at < args.steps:
        parser.error(f"--kill-at: must be between 0 and --steps {args.steps}, got {args.kill_at}")
    common = ["--config", str(REPO / "experiments/temporal_tiny.yaml"), "--model.init_from", "null",
              "--model.arch.head_dropout", "0.5", "--model.arch.drop_path", "0.1", "--seed_everything", "1",
              "--data.init_args.synthetic_root", str(args.work / "synthetic"),
              "--data.init_args.num_workers", str(args.workers), "--trainer.max_steps", str(args.steps),
              "--trainer.max_epochs", "-1", "--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0",
              "--checkpoint_every_n_steps", str(args.kill_at), "--trainer.enable_progress_bar", "false",
              "--trainer.enable_model_summary", "false",
              *(SMOKE_ARGS if args.cpu_smoke else ["--trainer.accelerator", "gpu", "--trainer.precision",
                                                   "bf16-mixed"]), *fit_args]
    modes = {"off": ["false"], "on": ["true"], "both": ["false", "true"]}[args.deterministic]
    # the fits' temporary folders (a SIGKILLed fit leaves its merged configs behind) go under --work, not /tmp
    (args.work / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(args.work / "tmp")
    results = []
    for flag in modes:
        name = f"deterministic_{flag}"
        result = setting(args.work, name, [*common, "--trainer.deterministic", flag], args.steps, args.kill_at)
        results.append(result)
        if "failed" in result:
            for label, tail in result["failed"].items():
                print(f"{name}: the {label} fit failed; the end of its output:\n{tail}", flush=True)
            continue
        for key, what in (("uninterrupted_twice", "two uninterrupted runs"),
                          ("resumed_vs_uninterrupted", f"killed at step {args.kill_at} and resumed vs uninterrupted")):
            c = result[key]
            print(f"{name}: {what}: " + ("bit-identical" if c["identical"] else
                  f"{c['tensors_differing']} of {c['tensors']} tensors differ, max |diff| {c['max_abs_diff']:.3g}"),
                  flush=True)
    if args.json:
        print(json.dumps(dict(steps=args.steps, kill_at=args.kill_at, device=_device(args.cpu_smoke),
                              results=results)))
    return 1 if any("failed" in r for r in results) else 0


def _device(cpu: bool) -> str:
    if cpu or not torch.cuda.is_available():
        return "cpu"
    return torch.cuda.get_device_name(0)


if __name__ == "__main__":
    sys.exit(main())
