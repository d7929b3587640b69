"""uv2 ablation grids: the paper's tables as data, expanded into cells and run resumably.

- :mod:`uv2.ablation.grid`    tables and datasets files; cells (row x dataset x seed) as complete experiment configs
- :mod:`uv2.ablation.runner`  the grid runner: cells in order, resume, status files
- :mod:`uv2.ablation.launch`  one cell's run: fit + multi-view test through the training CLI; peak memory
- :mod:`uv2.ablation.progress` the grid's progress: a line per cell (updating in a terminal), the grid's time left
- :mod:`uv2.ablation.scripts` table (e)'s training scripts (union-label pretraining, co-training): shared runs
- :mod:`uv2.ablation.union`   union label sets and head slicing by class name
- :mod:`uv2.ablation.table`   results.csv and table.md beside the paper's numbers
- :mod:`uv2.ablation.stats`   statistics over seeds (shared with uv2.analysis)
- :mod:`uv2.ablation.slurm`   sbatch scripts for a whole table
"""

# Constants the command lines offer as choices live here, apart from the grid's modules (which import torch, timm
# and Lightning, about 5 s), so that ablations/run.py --help and ablations/variance.py --help answer at once.
# the scales a table runs at: the synthetic benchmark on CPU, or the paper's datasets and recipes on GPUs
SCALES = ("tiny", "paper")
# what varies between a cell's runs in ablations/variance.py (uv2.ablation.variance): everything; only the data
# module's seed; only seed_everything; only the new blocks' and the head's initial weights (model.init_seed)
GROUPS = ("all", "data", "init", "weights")
