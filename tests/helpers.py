"""Helpers shared by the tests: the repository's paths, the official fixture's location, micro grid settings.

(Video helpers: tests/data_helpers.py. Fixtures: tests/conftest.py.)
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the official fixture lives beside the checkout (../shared/fixtures); UV2_FIXTURES points elsewhere
FIXTURES = Path(os.environ.get("UV2_FIXTURES") or REPO.parent / "shared" / "fixtures")


def sigint_as_at_a_terminal() -> None:
    """A subprocess's `preexec_fn` for tests that send it SIGINT: SIGINT's default action, which Python turns into
    KeyboardInterrupt. A command started in the background by a non-interactive shell (`cmd &` in a CI script)
    inherits SIGINT ignored, and so would the process under test, which Ctrl-C then never reaches."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def micro_grid_spec(root: Path) -> dict:
    """A tiny-scale dataset entry for ablations/datasets.yaml-style files that points at the micro synthetic
    benchmark under root, one quick epoch per cell, no image-pretrained init."""
    return {"experiment": "experiments/temporal_tiny.yaml", "epochs": 1,
            "data": {"synthetic_size": "micro", "synthetic_root": str(root / "synthetic"), "batch_size": 4},
            "overrides": {"model": {"init_from": None}}}


def hparams_records(run_dir: Path) -> dict[str, list]:
    """Every hparams plugin record written to a run's own event files (not its sub-runs'), by tag, in the order
    written: {"_hparams_/session_start_info": [HParamsPluginData, ...], ...}. Counts what was written, where
    TensorBoard keeps the latest per tag."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    records: dict[str, list] = {}
    for path in sorted(Path(run_dir).glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    records.setdefault(value.tag, []).append(
                        HParamsPluginData.FromString(value.metadata.plugin_data.content))
    return records


def hparams_session(run_dir: Path) -> dict:
    """A run's entry of TensorBoard's HPARAMS tab as TensorBoard reads it (event_accumulator and the hparams plugin
    data): {"hparams": {name: value}, "metrics": the experiment's metric tags, "status": "STATUS_SUCCESS" (or None
    before the session ended), "values": {metric tag: its last scalar}}."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import api_pb2, metadata
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    events = EventAccumulator(str(run_dir))
    events.Reload()
    content = {tag: HParamsPluginData.FromString(data) for tag, data in events.PluginTagToContent("hparams").items()}
    start = content[metadata.SESSION_START_INFO_TAG].session_start_info
    experiment = content[metadata.EXPERIMENT_TAG].experiment
    end = content.get(metadata.SESSION_END_INFO_TAG)
    scalars = events.Tags()["scalars"]
    metrics = [m.name.tag for m in experiment.metric_infos]
    return {"hparams": {name: getattr(v, v.WhichOneof("kind")) for name, v in start.hparams.items()},
            "metrics": metrics, "status": api_pb2.Status.Name(end.session_end_info.status) if end else None,
            "values": {tag: events.Scalars(tag)[-1].value for tag in metrics if tag in scalars}}
