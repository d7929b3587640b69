"""uv2 ablation grids: the paper's tables as data, expanded into cells and run resumably.

- :mod:`uv2.ablation.grid`   tables and datasets files, cells (row x dataset x seed) as complete experiment configs
- :mod:`uv2.ablation.runner` the grid runner: fit + test per cell, results.csv / table.md, SLURM scripts
- :mod:`uv2.ablation.union`  table (e): union label sets and head slicing by class name
"""
