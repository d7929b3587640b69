#!/usr/bin/env bash
# The GPU figures of the README (Speed, issue 11; Feeding the GPU, issue 12) in one run, on a machine with one GPU
# and a copy of this repository. About 7 minutes on one H200 (2026-11-26); every stage is cut to what is left of
# --budget (default 450 s), so the whole run stays under 8 minutes.
#
#   benchmarks/gpu_check.sh [--official-code CHECKOUT] [--compile] [--out DIR] [--wheels DIR] [--budget S]
#                           [--stages LIST] [--rounds N]
#   --stages k400,ssv2       # only these stages (comma-separated names below; env always runs), e.g. a rerun
#   --rounds N               # alternating rounds of speed.py in k400, ssv2, control and compile (median); a round
#                            # after the first times steps alone (each measuring process keeps its model)
#   benchmarks/gpu_check.sh --cpu-smoke          # every stage at CPU size on this machine (checks the script)
#   benchmarks/gpu_check.sh --fetch-wheels       # where pip reaches PyPI: download the wheels below into .whl/
#
# Stages, in this order (each under its own timeout; a failed or timed-out stage is reported and the others run):
#   env      python, torch, the GPU; packages uv2 needs that are missing are installed from the wheels in
#            --wheels (default .whl/: av, jsonargparse, docstring-parser, typeshed-client, torchdata) into a
#            temporary folder on PYTHONPATH, with pip --no-index (nothing is fetched, nothing already there touched)
#   augment  tests/test_data_augment.py's batch-path tests (on the GPU: its passes give the CPU's values), then
#            benchmarks/augment_cost.py --device cuda: operations, host and GPU time of a batch's augmentation
#            (32 clips of 8x224, rand-m7-n4), grouped passes against clip by clip
#   feed     benchmarks/feed_check.py: python -m uv2 fit of the K400 B/16 design, bf16-mixed, batch 32, 14 workers,
#            on generated 320x240 H.264 videos, with num_repeats 1 and 2, and 1 without RandAugment: the data wait
#            fraction (on the GPU's timeline) and clips/s; in feed.log each fit's split of a step, host and GPU, and
#            the calls that made the host wait for the GPU (--probe: benchmarks/step_probe.py)
#   k400     benchmarks/speed.py, K400 B/16 design (experiments/k400/k400_b16_8x224.yaml), 8x224, batch 32, bf16:
#            uv2, the official layout and, with --official-code, the official repository's model; then uv2's
#            costliest kernels of one profiled training step (--profile)
#   ssv2     the same for the SSv2 B/16 design (experiments/ssv2/ssv2_b16_16x224.yaml), 16x224, batch 16
#   bench    (if time is left) python -m uv2 bench-data --workers 14 on generated 604x340 H.264 videos: per-worker
#            clips/s and the split of a clip's time, the per-batch work (RandAugment included) on the GPU
#   fit      (if time is left) python -m uv2 fit of the SSv2 B/16 design on generated synthetic videos (the tiny
#            temporal set, upscaled to 224), --trainer.accelerator gpu --trainer.precision bf16-mixed, 40 steps
#   resume   (if time is left) benchmarks/resume_check.py: the tiny temporal preset on the GPU (bf16-mixed, 2
#            workers), 30 steps, twice uninterrupted and once killed with SIGKILL at step 15 and resumed, with and
#            without --trainer.deterministic true: final weights and AdamW state compared, run to run and resumed
#   control  (if time is left) uv2 alone on the SSv2 design with --path cpu: the CPU formulations of the
#            dispatched layers on the GPU, i.e. what the device dispatch gains there
#   compile  (with --compile or --stages ...,compile, if time is left) uv2 under torch.compile on the K400 design,
#            against k400's uv2, or eager uv2 in the same run where k400 did not run (117 s on an H200)
#   fit_compiled  (with --compile, if time is left) the fit stage's run with --model.compile true, then its
#            multi-view test on 4 batches: a compiled fit and test through Lightning on the GPU (346 s on an H100,
#            most of it compiling); with compile, a call of its own: --stages compile,fit_compiled --budget 500
#   tiny     (with --stages ...,tiny) tiny scale on the GPU: table (c)'s temporal column, seed 1, through
#            ablations/run.py --accelerator gpu (the image pretraining on the GPU first, the cells one at a time,
#            about 70 s each on an H200); its table.md and results.csv as OUT/tiny_table.md, tiny_results.csv, also
#            where the stage's time runs out (the grid is stopped with Ctrl-C's signal 20 s before, and writes
#            them); --cpu-smoke: one cell of one epoch on the CPU
# then one summary table (also written to OUT/summary.txt). Output: OUT (default $OUT where set, else
# gpu_check_out/) holds one log per stage (a speed stage's and feed's last line is their JSON) and summary.txt.
#
# On the device machine of this workplace (python3 with torch, timm, Lightning, torchmetrics, einops, tensorboard):
#   carry [".whl"] (and the official checkout, e.g. ".official"), command:
#   benchmarks/gpu_check.sh --official-code .official/UniFormerV2
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PY="${PYTHON:-python3}"
OUT_DIR="${OUT:-$REPO/gpu_check_out}"
WHEELS="$REPO/.whl"
OFFICIAL=""
COMPILE=0
SMOKE="${UV2_GPU_CHECK_CPU_SMOKE:-0}"
BUDGET=450
ONLY=""   # --stages: the stages to run, comma-separated (empty: all)
ROUNDS=1  # --rounds of speed.py in the speed stages
WHEEL_PINS=(av==19.0.2 jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.15.0 torchdata==0.11.0)

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --official-code) OFFICIAL="$(cd "$2" && pwd)"; shift 2 ;;
    --compile) COMPILE=1; shift ;;
    --out) OUT_DIR="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --stages) ONLY="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --cpu-smoke) SMOKE=1; shift ;;
    --fetch-wheels)
      # the device's python is 3.12 on x86-64 Linux; --no-deps: their own needs are already there
      exec "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$WHEELS" "${WHEEL_PINS[@]}" ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for stage in ${ONLY//,/ }; do
  case "$stage" in
    env|augment|feed|k400|ssv2|bench|fit|resume|control|compile|fit_compiled|tiny) ;;
    *) echo "gpu_check.sh: --stages: no stage $stage (stages: env augment feed k400 ssv2 bench fit resume" \
            "control compile fit_compiled tiny)" >&2; exit 2 ;;
  esac
done
if [[ ! "$ROUNDS" =~ ^[1-9][0-9]*$ ]]; then echo "gpu_check.sh: --rounds: $ROUNDS is not a positive integer" >&2; exit 2; fi
if [[ ",$ONLY," == *",compile,"* || ",$ONLY," == *",fit_compiled,"* ]]; then COMPILE=1; fi  # naming one asks for it
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/uv2_gpu_check.XXXXXX")"  # synthetic videos, the fit's run dir, wheels' site
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
START=$(date +%s)
DEADLINE=$((START + BUDGET))
STAGES="$WORK/stages"  # one line per stage: name|status|seconds
: >"$STAGES"

# --- sizes: the released designs on the GPU, or the same configs shrunk to CPU size (--cpu-smoke)
if [[ "$SMOKE" == 1 ]]; then
  TINY='{"vit_overrides": {"width": 64, "heads": 1, "img_size": 32, "patch_size": 8}, "num_frames": 4}'
  SPEED_COMMON=(--device cpu --dtype bf16 --warmup 1 --iters 1 --rounds "$ROUNDS" --threads 1 --peak-tflops 1 --json
                --profile 5 --arch "$TINY")
  K400_BATCH=2; SSV2_BATCH=2
  FIT_SIZE=(--data.init_args.synthetic_size micro --data.init_args.crop_size 32 --data.init_args.short_side 32
            --data.init_args.num_frames 4 --data.init_args.num_workers 0 --data.init_args.batch_size 2
            --data.init_args.rand_augment null --model.arch.num_frames 4
            --model.arch.vit_overrides '{"width": 64, "heads": 1, "img_size": 32, "patch_size": 8}'
            --trainer.accelerator cpu --trainer.max_steps 3 --trainer.limit_val_batches 1)
  FEED=(--cpu-smoke --plain --probe)
  BENCH=(--workers 2 --videos 2 --seconds 2 --width 64 --height 48 --size 32 --frames 4 --clips-per-video 2
         --batch-size 2)
  RESUME=(--cpu-smoke --workers 0 --deterministic off)
  STAGE_LIMITS=(augment:240 k400:240 ssv2:240 feed:240 bench:240 fit:240 resume:240 control:240 compile:600
                fit_compiled:600 tiny:300)
  AUG_DEVICE=cpu; AUG_SIZE=(--batch 4 --size 32 --repeats 1)
  TINY=(--seeds 1 --only 0 --accelerator cpu); TINY_EPOCHS=1
else
  SPEED_COMMON=(--device cuda --dtype bf16 --warmup 3 --iters 10 --rounds "$ROUNDS" --json --profile 12)
  K400_BATCH=32; SSV2_BATCH=16
  FIT_SIZE=(--data.init_args.synthetic_size tiny --data.init_args.num_workers 8 --data.init_args.batch_size 16
            --trainer.accelerator gpu --trainer.max_steps 40 --trainer.limit_val_batches 2)
  FEED=(--workers 14 --repeats 1,2 --plain --steps 40 --probe)
  BENCH=(--workers 14 --videos 8 --clips-per-video 8 --batch-size 16 --rand-augment rand-m7-n4-mstd0.5-inc1)
  RESUME=()
  STAGE_LIMITS=(augment:60 k400:$((150 * ROUNDS)) ssv2:$((150 * ROUNDS)) feed:300 bench:90 fit:120 resume:240
                control:$((60 * ROUNDS)) compile:300 fit_compiled:360 tiny:480)
  AUG_DEVICE=cuda; AUG_SIZE=(--repeats 20)
  TINY=(--seeds 1 --accelerator gpu); TINY_EPOCHS=14  # seeds 1-3 (12 cells of ~70 s) would take 14 minutes
fi
OFFICIAL_ARGS=()
if [[ -n "$OFFICIAL" ]]; then OFFICIAL_ARGS=(--official-code "$OFFICIAL"); fi

limit_of() {
  local kv
  for kv in "${STAGE_LIMITS[@]}"; do
    if [[ "${kv%%:*}" == "$1" ]]; then echo "${kv#*:}"; fi
  done
}

# run_stage NAME COMMAND...: the command under its stage's time limit (cut to what is left of the budget), its
# output in OUT/NAME.log, its status recorded; never fails the script.
run_stage() {
  local name="$1"; shift
  local limit left rc=0 start status
  if [[ -n "$ONLY" && "$name" != env && ",$ONLY," != *",$name,"* ]]; then
    echo "== $name: not among --stages $ONLY"
    return 0
  fi
  limit="$(limit_of "$name")"
  left=$((DEADLINE - $(date +%s) - 10))  # 10 s kept for the summary
  if ((left < 30)); then
    echo "$name|skipped: the ${BUDGET}s budget is spent|0" >>"$STAGES"
    echo "== $name: skipped (budget spent)"
    return 0
  fi
  if ((limit > left)); then limit=$left; fi
  echo "== $name (limit ${limit}s): $*"
  start=$(date +%s)
  STAGE_LIMIT=$limit timeout --kill-after=10 "$limit" "$@" >"$OUT_DIR/$name.log" 2>&1 || rc=$?
  case $rc in
    0) status="ok" ;;
    124|137) status="TIMEOUT after ${limit}s" ;;
    *) status="FAILED (exit $rc; see $name.log)" ;;
  esac
  echo "$name|$status|$(($(date +%s) - start))" >>"$STAGES"
  echo "   $status in $(($(date +%s) - start))s"
  return 0
}

summary() {
  "$PY" - "$OUT_DIR" "$STAGES" "$WORK" <<'EOF' | tee "$OUT_DIR/summary.txt" || true
"""One summary table from the stage logs (speed.py's JSON lines) and the fit run's TensorBoard scalars."""
import json
import sys
from pathlib import Path

out, stages, work = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
print("\n## gpu_check summary")
print("| stage | status | seconds |\n|---|---|---|")
for line in stages.read_text().splitlines():
    name, status, seconds = line.split("|")
    print(f"| {name} | {status} | {seconds} |")


def report(name):
    log = out / f"{name}.log"
    lines = log.read_text(errors="replace").strip().splitlines() if log.is_file() else []
    try:
        return json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        return None


reports = {name: report(name) for name in ("k400", "ssv2", "control", "compile")}
feed = report("feed")
reports = {name: r for name, r in reports.items() if r is not None}
notes = []
for i, (name, r) in enumerate(reports.items()):
    if i == 0:
        print(f"\nmachine: {r['machine']}, {r['device']}, {r['dtype']}, MFU against {r['peak_tflops']} TFLOP/s")
        print("| stage | impl | mode | batch | s/step | clips/s | MFU | peak MB | uv2 speed-up over |")
        print("|---|---|---|---|---|---|---|---|---|")
    for impl, modes in r["results"].items():
        for mode, m in modes.items():
            mfu = f"{100 * m['mfu']:.1f}%" if m["mfu"] is not None else "-"
            ups = ", ".join(f"{k.split('_over_')[1]} {v[mode]:.2f}x" for k, v in r["speedup"].items()
                            if k.startswith(f"{impl}_over_"))
            print(f"| {name} | {impl} | {mode} | {r['batch']} | {m['s_per_step']:.4f} | {m['clips_per_s']:.1f} | "
                  f"{mfu} | {m['peak_mb']:.0f} | {ups} |")
    for other, diff in r["max_abs_diff"].items():
        kind = f"{r['dtype']} as timed" if other == "uv2_compiled" else "fp32"
        notes.append(f"{name}: max |logits uv2 - {other}| = {diff:.2e} ({kind})")
if "compile" in reports and ("k400" in reports or "uv2" in reports["compile"]["results"]):
    # torch.compile against eager uv2, same design and batch: in the same run, else k400's
    eager = reports["compile"] if "uv2" in reports["compile"]["results"] else reports["k400"]
    for mode in ("train", "eval"):
        gain = eager["results"]["uv2"][mode]["s_per_step"] / reports["compile"]["results"]["uv2_compiled"][mode]["s_per_step"]
        notes.append(f"K400 design, uv2 {mode}: torch.compile is {gain:.2f}x eager")
if "ssv2" in reports and "control" in reports:  # uv2 with the CPU formulations on the GPU vs the dispatch
    for mode in ("train", "eval"):
        gain = reports["control"]["results"]["uv2"][mode]["s_per_step"] / reports["ssv2"]["results"]["uv2"][mode]["s_per_step"]
        notes.append(f"SSv2 design, uv2 {mode}: the CPU formulations (--path cpu) take {gain:.2f}x the time of the "
                     f"device dispatch")
if notes:
    print("\n" + "\n".join(notes))
for name, r in reports.items():  # where a uv2 training step's device time goes (speed.py --profile)
    if r.get("profile"):
        print(f"\n{name}: uv2 training step, costliest kernels by own device time")
        print("| ms | share | calls | kernel |\n|---|---|---|---|")
        for k in r["profile"]:
            print(f"| {k['ms']:.3f} | {100 * k['share']:.1f}% | {k['calls']} | {k['name'][:90].replace('|', '/')} |")
if feed is not None:
    print(f"\nfeed (K400 B/16 design, {feed['workers']} workers, {feed['cpus']} CPUs, {feed['videos']} videos "
          f"{feed['size'][0]}x{feed['size'][1]} H.264; {feed['results'][0]['steps']} steps): after the first step")
    print("| num_repeats | RandAugment | batch | clips/s | data wait | first step (s) | decode failures |\n"
          "|---|---|---|---|---|---|---|")
    for r in feed["results"]:
        print(f"| {r['repeats']} | {'yes' if r['rand_augment'] else 'no'} | {r['batch_size']} x {r['repeats']} | "
              f"{r['clips_per_s']:.1f} | {100 * r['wait_fraction']:.0f}% | {r['first_step_s']:.1f} | "
              f"{r['decode_failures']} |")
resume = report("resume")
if resume is not None:
    print(f"\nresume (tiny temporal preset, {resume['device']}; {resume['steps']} steps, killed at step "
          f"{resume['kill_at']} and resumed): final weights and AdamW state against the first uninterrupted run")
    print("| setting | two uninterrupted runs | killed and resumed |\n|---|---|---|")
    for r in resume["results"]:
        cells = [("failed: " + ", ".join(r["failed"])) if "failed" in r else
                 "bit-identical" if r[key]["identical"] else
                 f"{r[key]['tensors_differing']} of {r[key]['tensors']} tensors differ, max {r[key]['max_abs_diff']:.2g}"
                 for key in ("uninterrupted_twice", "resumed_vs_uninterrupted")]
        print(f"| {r['setting']} | {cells[0]} | {cells[1]} |")
if (out / "augment.log").is_file():
    lines = (out / "augment.log").read_text(errors="replace").splitlines()
    keep = ("BatchAugment", "batched passes", "clip by clip", "outputs equal")
    print("\naugment:\n" + "\n".join(line for line in lines if line.startswith(keep) or " passed" in line))
if (out / "tiny_table.md").is_file():
    print("\ntiny (table (c), temporal set):\n" + (out / "tiny_table.md").read_text(errors="replace"))
if (out / "bench.log").is_file():
    lines = (out / "bench.log").read_text(errors="replace").splitlines()
    print("\nbench-data:\n" + "\n".join(line for line in lines if line.startswith(("bench-data", "clips:", "decoder", "pyav"))))

for fit, fit_dir in (("fit", work / "fit"), ("fit_compiled", work / "fit_compiled")):
    if not fit_dir.is_dir():
        continue
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(fit_dir))
        events.Reload()
        tags = events.Tags()["scalars"]

        def last(tag, n=1):
            values = [e.value for e in events.Scalars(tag)] if tag in tags else []
            return sum(values[-n:]) / len(values[-n:]) if values else float("nan")

        steps = max((e.step for e in events.Scalars("train/loss_step")), default=0) if "train/loss_step" in tags else 0
        tested = json.loads((fit_dir / "test_results.json").read_text()) if (fit_dir / "test_results.json").is_file() else None
        print(f"\n{fit} (SSv2 B/16 design, synthetic videos): {steps + 1 if steps else 0} logged steps, "
              f"train loss {last('train/loss_step'):.3f} (last), {last('perf/clips_per_s_step', 5):.1f} clips/s and "
              f"data wait {100 * last('data/wait_fraction_step', 5):.0f} % (mean of the last 5 logged steps), "
              f"checkpoint {'written' if (fit_dir / 'checkpoints' / 'last.ckpt').is_file() else 'MISSING'}"
              + (f", test top-1 {tested['metrics']['top1']:.1f} on {tested['num_videos']} videos" if tested else ""))
    except Exception as err:  # the summary reports, it never fails the script
        print(f"\n{fit}: no TensorBoard scalars read ({type(err).__name__}: {err})")
EOF
}
trap 'summary; rm -rf "$WORK"' EXIT

# --- env: versions, the device, missing packages from the carried wheels
env_stage() {
  local missing=() module pip_name
  for pair in av:av jsonargparse:jsonargparse docstring_parser:docstring-parser typeshed_client:typeshed-client \
              torchdata:torchdata; do
    module="${pair%%:*}"; pip_name="${pair#*:}"
    "$PY" -c "import $module" 2>/dev/null || missing+=("$pip_name")
  done
  if ((${#missing[@]})); then
    echo "installing from $WHEELS (missing: ${missing[*]})"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" \
      --find-links "$WHEELS" "${missing[@]}"
    export PYTHONPATH="$PYTHONPATH:$WORK/site"  # for the check below (the later stages add it the same way)
  else
    echo "every package is already installed"
  fi
  "$PY" - <<'EOF'
import platform
import torch
print(f"python {platform.python_version()}, torch {torch.__version__}, cuda {torch.version.cuda}, "
      f"cudnn {torch.backends.cudnn.version()}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"GPU {i}: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs")
import av, jsonargparse, torchdata  # noqa: E401,F401  (the fit stage needs them)
print(f"av {av.__version__}, jsonargparse {jsonargparse.__version__}")
EOF
}
export -f env_stage
export PY WHEELS WORK
STAGE_LIMITS+=(env:90)
run_stage env bash -c 'set -euo pipefail; env_stage'
if [[ -d "$WORK/site" ]]; then export PYTHONPATH="$PYTHONPATH:$WORK/site"; fi

# --- the batch augmentation on the device (issue 12): the GPU gives the CPU's values; its cost per batch
# (the cost is measured even when the tests fail; the stage fails if either does)
run_stage augment bash -c "$PY -m pytest -q -p no:cacheprovider tests/test_data_augment.py -k 'program or batch_path'; \
  tests=\$?; $PY benchmarks/augment_cost.py --device $AUG_DEVICE ${AUG_SIZE[*]} && exit \$tests"

# --- feeding the GPU (issue 12): K400 B/16 training from real-size videos, 14 workers
run_stage feed "$PY" benchmarks/feed_check.py --work "$WORK/feed" "${FEED[@]}" --json

# --- the two released designs
run_stage k400 "$PY" benchmarks/speed.py --config experiments/k400/k400_b16_8x224.yaml --batch "$K400_BATCH" \
  "${SPEED_COMMON[@]}" "${OFFICIAL_ARGS[@]}"
run_stage ssv2 "$PY" benchmarks/speed.py --config experiments/ssv2/ssv2_b16_16x224.yaml --batch "$SSV2_BATCH" \
  "${SPEED_COMMON[@]}" "${OFFICIAL_ARGS[@]}"

# --- extras while time is left: the per-worker split of the data pipeline, the SSv2 design through Lightning, the
# dispatch's gain on the GPU, torch.compile (asked for)
run_stage bench "$PY" -m uv2 bench-data "${BENCH[@]}" --sampling uniform --no-float-path --decoders pyav
LISTS=()
for key in train_list val_list test_list classes_file data_root; do LISTS+=("--data.init_args.$key" null); done
FIT_ARGS=(--config experiments/ssv2/ssv2_b16_16x224.yaml --model.init_from null \
  --model.arch.num_classes 10 --data.init_args.synthetic_set temporal \
  --data.init_args.synthetic_root "$WORK/synthetic" "${LISTS[@]}" "${FIT_SIZE[@]}" \
  --trainer.devices 1 --trainer.precision bf16-mixed --trainer.max_epochs 1 --trainer.num_sanity_val_steps 0 \
  --trainer.log_every_n_steps 1 --trainer.enable_progress_bar false)
run_stage fit "$PY" -m uv2 fit "${FIT_ARGS[@]}" --run_dir "$WORK/fit"

run_stage resume "$PY" benchmarks/resume_check.py --work "$WORK/resume" "${RESUME[@]}" --json

run_stage control "$PY" benchmarks/speed.py --config experiments/ssv2/ssv2_b16_16x224.yaml --batch "$SSV2_BATCH" \
  --impl uv2 --path cpu "${SPEED_COMMON[@]}"

if [[ "$COMPILE" == 1 ]]; then
  # against k400's eager uv2 where that stage ran, else eager uv2 in the same run
  impl=compiled
  if ! grep -q '^k400|ok|' "$STAGES"; then impl=uv2; fi
  run_stage compile "$PY" benchmarks/speed.py --config experiments/k400/k400_b16_8x224.yaml --batch "$K400_BATCH" \
    --impl "$impl" --compile "${SPEED_COMMON[@]}" --profile 0  # each measuring process compiles once
  # the fit stage's run with --model.compile true, then its multi-view test on a few batches (other batch shapes)
  run_stage fit_compiled bash -c "$(printf '%q ' "$PY" -m uv2 fit "${FIT_ARGS[@]}" --model.compile true \
    --run_dir "$WORK/fit_compiled") && $(printf '%q ' "$PY" -m uv2 test "${FIT_ARGS[@]}" --model.compile true \
    --run_dir "$WORK/fit_compiled" --ckpt_path "$WORK/fit_compiled/checkpoints/last.ckpt" \
    --trainer.limit_test_batches 4)"
fi
if [[ ",$ONLY," == *",tiny,"* ]]; then
  # table (c) on its temporal set alone (the grid's temporal entry, TINY_EPOCHS epochs), results beside the logs
  "$PY" - "$WORK/tiny" "$TINY_EPOCHS" <<'EOF'
import sys
from pathlib import Path

import yaml

work, epochs = Path(sys.argv[1]), int(sys.argv[2])
work.mkdir(parents=True)
table = yaml.safe_load(Path("ablations/tables/c.yaml").read_text())
table.update(datasets=["temporal"],
             rows=[{**row, "paper": {"temporal": row["paper"]["temporal"]}} for row in table["rows"]])
datasets = yaml.safe_load(Path("ablations/datasets.yaml").read_text())
datasets["temporal"]["tiny"]["epochs"] = epochs
(work / "c_temporal.yaml").write_text(yaml.safe_dump(table, sort_keys=False))
(work / "datasets.yaml").write_text(yaml.safe_dump(datasets, sort_keys=False))
EOF
  # the grid under SIGINT 20 s before the stage's limit (its Ctrl-C: the cells so far in table.md), then the copy
  run_stage tiny bash -c "timeout -s INT \$((STAGE_LIMIT - 20)) $(printf '%q ' "$PY" ablations/run.py \
    --table "$WORK/tiny/c_temporal.yaml" --datasets "$WORK/tiny/datasets.yaml" --out "$WORK/tiny/results" \
    "${TINY[@]}"); rc=\$?; \
    cp $WORK/tiny/results/table_c_temporal/table.md $OUT_DIR/tiny_table.md && \
    cp $WORK/tiny/results/table_c_temporal/results.csv $OUT_DIR/tiny_results.csv && exit \$rc"
fi
failed=$(grep -cE '\|(FAILED|TIMEOUT)' "$STAGES" || true)
echo "== done in $(($(date +%s) - START))s; stages failed or timed out: $failed"
exit $((failed > 0 ? 1 : 0))
