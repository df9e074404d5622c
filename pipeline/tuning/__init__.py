"""The Optuna search over a version's search space, each trial a nested MLflow run.

- `study`: the study as a fixed number of trial slots, their claims, and the recovery of dead workers' trials;
- `workers`: the workers that claim and run trials, here or on other machines sharing the storage;
- `summary`: what the search found, logged in its parent run, and training its best configuration.

It is the top of the library: it imports `tracking`, `analysis`, `training` and `data`.
"""
