"""Published results as data, and their reproduction: the registry of published tables
(:mod:`clbench.reproduce.registry`, one TOML file per table under ``results/published/``),
the GPU-hour estimate of a reproduction (:mod:`clbench.reproduce.estimate`) and the
cell-by-cell report of ours against the published values
(:mod:`clbench.reproduce.report`)."""
