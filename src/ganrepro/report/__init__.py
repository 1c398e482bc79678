"""Comparison reports from stored sweep results (``ganrepro report``).

    runs.py       load stored runs (one folder per seed, as ``records.save_runs`` writes them)
    stats.py      interquartile mean, bootstrap intervals, probability of improvement, effect sizes
    tables.py     the pandas tables of the report
    figures.py    the figures (deterministic PNG bytes)
    animation.py  the training animation of one run: draws recorded frames into a GIF
    build.py      everything above into reports/<grid>/ (Markdown, CSV, PNG, HTML)

The image track's report (docs/images.md), on the same loading and statistics:

    image_tables.py   per variant x framework scores, comparisons with verdicts, the frozen-G table
    image_figures.py  post 004's five curves, frozen vs trained G, latent grids, samples, the
                      sigmoid-gradient plot (computed)
    image_build.py    reports/<image grid>/ (``build.build_report`` dispatches here for an image grid)

Framework-free, and below the commands: nothing here imports torch or tensorflow, trains
(``ganrepro.animate`` trains the animated run and hands its frames to ``animation.write_gif``),
or imports the sweep (the grid's stored cells come from ``ganrepro.cells``). Shared display
names: ``ganrepro.labels``. ``tests/test_layers.py`` checks these directions.
"""
