"""Grids of runs: the grid file (:mod:`clbench.sweep.grid`) and its plan
(:mod:`clbench.sweep.plan`)."""
