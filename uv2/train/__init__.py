"""uv2 training: the LightningModule, optimiser and schedule, the LightningCLI entry points, prediction.

Modules are imported where used (``python -m uv2 flops`` never imports Lightning):

- :mod:`uv2.train.module`  VideoClassifier (the LightningModule) and its callbacks
- :mod:`uv2.train.optim`   AdamW parameter groups, warm-up + cosine schedule, learning-rate scaling
- :mod:`uv2.train.guard`   the non-finite-loss guard (a step skipped on the device or on the host)
- :mod:`uv2.train.cli`     ``python -m uv2 fit | validate | test`` (LightningCLI, run directories, checkpoints)
- :mod:`uv2.train.predict` ``python -m uv2 predict`` (top-k classes or features of video files)
"""
