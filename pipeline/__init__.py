"""An MLflow-tracked workflow for training, comparing, promoting and serving MNIST digit recognizers.

At the top, one module per `MLproject` entry point (`prep`, `train`, `evaluate`,
`promote`, `search`, `ensemble`, `bench`, `report`, `main`) and `predict`: each
parses its parameters (`arguments`, `console`) and calls the library, which
lives in subpackages, each importing only those listed before it:

- `serving`: what a logged model carries: the pyfunc, people's images, the answers, calibration;
- `data`: the datasets, their sources and checksums, the non-digits;
- `training`: the versions and the one Keras training loop, with no MLflow inside;
- `analysis`: test metrics, image folders, benchmarks, the report, figures;
- `tracking`: a tracked training run, its tags and lineage, the logged model, promotion;
- `tuning`: the Optuna search, its workers and its summary.

docs/architecture.md draws the same picture in words.
"""
