"""`python -m uv2 COMMAND ...`: one entry point for every uv2 tool.

Each command lives next to the code it drives and takes its own argv, so `python -m uv2 COMMAND --help` shows
that command's options. Modules are imported lazily: `python -m uv2 flops` never imports PyAV, and
`python -m uv2 synth` never imports Lightning.
"""

from __future__ import annotations

import importlib
import sys

from uv2.errors import error_message, input_error_in

# command -> ("module:function", one-line help). The function takes argv (list[str]) and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "fit": ("uv2.train.cli:fit_main", "train (LightningCLI): --config experiments/NAME.yaml [overrides] [--resume]"),
    "validate": ("uv2.train.cli:validate_main", "validate a checkpoint (LightningCLI)"),
    "test": ("uv2.train.cli:test_main", "multi-view video-level test of a checkpoint (LightningCLI)"),
    "predict": ("uv2.train.predict:main", "top-k classes (or features) of video files from a checkpoint"),
    "convert": ("uv2.models.convert:main", "official checkpoints to uv2 ones; slice a head to a class list by name"),
    "union": ("uv2.ablation.union:main", "union label set of several lists by class name (Kinetics-710)"),
    "flops": ("uv2.models.flops:main", "GFLOPs (MACs of one view) and parameters of a config"),
    "synth": ("uv2.data.cli:synth_main", "generate the synthetic video benchmark"),
    "check-videos": ("uv2.data.cli:check_videos_main", "scan a video list and report decodable frames"),
    "untrimmed-lists": ("uv2.data.cli:untrimmed_lists_main",
                        "ActivityNet / HACS: video-level lists and classes from the annotation JSON"),
    "bench-data": ("uv2.data.cli:bench_data_main", "benchmark video decoding and augmentation"),
    "env": ("uv2.env:main", "versions, GPUs, FFmpeg codecs and a decode self-test, for bug reports"),
}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: python -m uv2 COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"uv2: unknown command {name!r}; valid commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module_name, func_name = COMMANDS[name][0].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(func(rest) or 0)
    except Exception as err:  # bad input, not a bug: its message names the file or field (uv2.errors)
        if (bad := input_error_in(err)) is None:
            raise
        print(f"uv2 {name}: error: {error_message(bad)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
