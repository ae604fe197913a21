"""One module per study: what ``python -m dlstudies.report <sweep folder>`` computes and draws.

A study is two files: ``sweeps/<name>.yaml`` (what runs; it sets ``study.name: <name>``) and
``studies/<name>.py``, found by that name (no list to edit). The report builds one table row per
job (status, seed, overrides, norm, activation, the metrics the job's task declares in
``STUDY_METRICS``, diagnostics) and uses:

- ``COLUMNS: dict[str, str]``: more columns, name -> config key read from each job's config.
- ``job_values(job: Path) -> dict`` (optional): more columns read from the job's folder
  (summary.json, csv/metrics.csv, diagnostics.json, checkpoints); lists are fine. The job may
  be unfinished: return what exists.
- ``draw(table, fig: Figure) -> list[str]``: the figure from the finished jobs' rows; it chooses
  its layout (``fig.subplots``, ``fig.set_size_inches``; 11 x 4.2 inches unless changed) and
  returns the trend lines for ``<name>.txt``.

``figures.py`` holds what the figures share (statistics over seeds, error bars, value ticks).
"""
