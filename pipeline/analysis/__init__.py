"""Measuring models and showing what was measured: test metrics, image folders, benchmarks, the report, figures.

- `evaluation`: test-set figures and rejection rates, logged the same for `train` and `evaluate`;
- `image_folders`: scoring a model on folders of image files whose answers are known;
- `benchmarking`: time to a test accuracy, with the clock stopped while measuring;
- `reporting`: the comparison of an experiment's models, as Markdown and HTML;
- `figures`: learning curves, confusion matrices, digit grids;
- `machine`: the processor and versions a figure was measured with;
- `scoring_server`: a real `mlflow models serve` on 127.0.0.1, started, measured and stopped.

It imports `serving`, `data` and `training`; `tracking` and `tuning` import it.
"""
