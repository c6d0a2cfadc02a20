"""`make bench`: automl-flow against HistGradientBoosting defaults, FLAML and AutoGluon-Tabular on
the same seeded split, wall-clock budget and cores, scored the same way on the same test rows.

    .venv/bin/python -m benchmarks.peers [--datasets a,b] [--budget 60] [--systems x,y]
"""
