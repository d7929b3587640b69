"""Analysis of ablation results, for the report notebook and scripts.

- :mod:`uv2.analysis.results`   results.csv of one table or all, table definitions, where each cell's run is
- :mod:`uv2.analysis.tables`    the tables beside the paper: numbers and text, computed in one place
- :mod:`uv2.analysis.report`    the report's sections, each with what to show or why it is skipped
- :mod:`uv2.analysis.plots`     figures (returned and saved; no backend chosen here)
- :mod:`uv2.analysis.attention` what the global blocks attend to; the head's balance weight
"""
