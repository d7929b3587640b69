#!/usr/bin/env python
"""How much of a clip's motion the image-pretrained tiny ViT's layers keep: a linear probe per layer.

    python benchmarks/layer_probe.py                       # the tiny temporal set, runs/image_tiny/vit.pth
    python benchmarks/layer_probe.py --size micro --vit FILE --json

The tiny temporal cells that learn slowly read the ViT's last layers (table (c)'s "9-12" rows, whose global
blocks and DPE see layers 3-4 of the tiny ViT's 4) and those that converge read its first. This asks whether the
frozen ViT's layers already differ in what a linear read-out of the four frames' patch tokens finds: for each layer,
the centre view of every training and test video of the set goes through the image ViT as 4 separate frames (no
local or global block: the ViT the grid arms, before any video training), its patch tokens are flattened (frames x
patches x channels, in order, so a linear map can compare frames), standardised over the training videos, and a
multinomial logistic regression (L2, L-BFGS) is fitted on the training videos and scored on the test videos: top-1
over all classes and over the translation classes alone (the direction of a motion, which the slow designs have
not learnt at 14 epochs). Rows "pixels" (the normalised clip itself) and "... , frames averaged" (the tokens'
mean over the frames: the order gone, as a plain ViT sees it; at most 50 % on a set of time-reversed pairs) bound
the read-out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from uv2.data import VideoDataModule  # noqa: E402
from uv2.data.dataset import VideoDataset  # noqa: E402
from uv2.data.synthetic import TRANSLATION_CLASSES  # noqa: E402
from uv2.experiment import load_experiment  # noqa: E402
from uv2.models.config import ModelConfig  # noqa: E402
from uv2.models.convert import init_model  # noqa: E402


def clips(dm: VideoDataModule, records) -> tuple[torch.Tensor, torch.Tensor]:
    """The centre view of every video (the test transform, no augmentation): (N, 3, T, H, W) and the labels."""
    dataset = VideoDataset(records, "val", dm.dataset_cfg)
    return (torch.stack([dataset.load_view(i) for i in range(len(records))]),
            torch.tensor([r.label for r in records]))


@torch.no_grad()
def layer_tokens(model, video: torch.Tensor, batch: int = 64) -> list[torch.Tensor]:
    """Each layer's patch tokens, (N, T, S, C) per layer."""
    per_layer: list[list[torch.Tensor]] = [[] for _ in model.blocks]
    for chunk in video.split(batch):
        x, grid = model.embed(chunk)
        B, T = grid[:2]
        for i, block in enumerate(model.blocks):
            x = block(x, grid)
            per_layer[i].append(x[:, 1:].unflatten(0, (B, T)))  # (B*T, 1+S, C) -> (B, T, S, C), class token out
    return [torch.cat(parts) for parts in per_layer]


def probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, classes: int,
          weight_decay: float, steps: int) -> torch.Tensor:
    """Test predictions of a multinomial logistic regression fitted on the training features (standardised by
    their own mean and deviation), L2-penalised, with L-BFGS."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    linear = torch.nn.Linear(train_x.shape[1], classes)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        penalty = weight_decay * linear.weight.square().sum()
        value = torch.nn.functional.cross_entropy(linear(train_x), train_y) + penalty
        value.backward()
        return value

    optimizer.step(loss)
    with torch.no_grad():
        return linear(test_x).argmax(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vit", type=Path, default=REPO / "runs" / "image_tiny" / "vit.pth",
                        help="the image-pretrained ViT (default runs/image_tiny/vit.pth: `python -m uv2 fit --config "
                             "experiments/image_tiny.yaml`, or any `make ablation`)")
    parser.add_argument("--size", default="tiny", help="the synthetic benchmark's size (default tiny)")
    parser.add_argument("--synthetic-root", type=Path, default=REPO / "data" / "synthetic",
                        help="where the synthetic benchmark is, or is generated (default data/synthetic)")
    parser.add_argument("--weight-decay", type=float, default=1e-3, help="L2 penalty of the read-out")
    parser.add_argument("--steps", type=int, default=200, help="L-BFGS iterations")
    parser.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    args = parser.parse_args(argv)
    if not args.vit.is_file():
        parser.error(f"--vit {args.vit}: no such file; make it with `python -m uv2 fit --config "
                     f"experiments/image_tiny.yaml` (or any `make ablation`)")
    torch.manual_seed(0)
    preset = load_experiment(REPO / "experiments" / "temporal_tiny.yaml")
    arch = {**preset["model"]["arch"], "local_type": "none", "global_layers": "none"}
    model, _ = init_model(ModelConfig(**arch), args.vit)
    model.eval()
    data = preset["data"]["init_args"]
    dm = VideoDataModule(synthetic_set="temporal", synthetic_size=args.size, synthetic_root=str(args.synthetic_root),
                         num_frames=arch["num_frames"], crop_size=data["crop_size"], short_side=data["short_side"],
                         num_workers=0, cache_decoded=True)
    dm.prepare_data()
    dm.setup("fit")
    names = dm.class_names
    train_video, train_y = clips(dm, dm.train_dataset.records)
    test_video, test_y = clips(dm, dm.val_dataset.records)
    moving = torch.tensor([names[int(y)] in TRANSLATION_CLASSES for y in test_y])
    features = {"pixels": (train_video, test_video)}
    for i, (train_t, test_t) in enumerate(zip(layer_tokens(model, train_video), layer_tokens(model, test_video))):
        features[f"layer {i + 1}"] = (train_t, test_t)
        features[f"layer {i + 1}, frames averaged"] = (train_t.mean(1), test_t.mean(1))
    rows = []
    print(f"linear probe of {args.vit} on the {args.size} temporal set: {len(train_y)} training, {len(test_y)} test "
          f"videos, {len(names)} classes ({int(moving.sum())} test videos of translations)")
    print(f"{'features':<28}{'dims':>7}{'top-1':>8}{'translations':>14}")
    for name, (train_f, test_f) in features.items():
        predicted = probe(train_f.flatten(1), train_y, test_f.flatten(1), len(names), args.weight_decay, args.steps)
        right = predicted == test_y
        row = {"features": name, "dims": train_f[0].numel(), "top1": 100 * right.float().mean().item(),
               "translations_top1": 100 * right[moving].float().mean().item()}
        rows.append(row)
        print(f"{name:<28}{row['dims']:>7}{row['top1']:>8.1f}{row['translations_top1']:>14.1f}")
    if args.json:
        print(json.dumps({"vit": str(args.vit), "size": args.size, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
