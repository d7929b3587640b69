"""Analysis of ablation results: tables beside the paper, plots, training curves, attention maps."""
