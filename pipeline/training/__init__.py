"""Training networks, in pure Keras: nothing here records anything in MLflow.

- `versions`: the registry of versions: network, defaults, search space, the seed's figures;
- `settings`: what decides a training run (a version's defaults and the overrides);
- `splits`: the training, validation and test images a run uses;
- `augmentation`: random affine maps and stroke thickness, on whole batches;
- `loop`: `fit`, the one training code path of `train`, the search, `bench` and the tests.

It imports `data` (and through it `serving`), nothing above.
"""
