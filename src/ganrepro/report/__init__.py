"""Comparison reports from stored sweep results (``ganrepro report``).

    runs.py       load stored runs (one folder per seed, as ``records.save_runs`` writes them)
    stats.py      interquartile mean, bootstrap intervals, probability of improvement, effect sizes
    tables.py     the pandas tables of the report
    figures.py    the figures (deterministic PNG bytes)
    animation.py  the training animation of one run (GIF)
    build.py      everything above into reports/<grid>/ (Markdown, CSV, PNG, HTML)

Framework-free: nothing here imports torch or tensorflow (``animation`` trains a run, through
``ganrepro.training``, which imports the chosen framework only when it starts).
"""
