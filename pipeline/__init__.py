"""An MLflow-tracked workflow for training, comparing, promoting and serving MNIST digit recognizers.

One module per `MLproject` entry point (`prep`, `train`, `evaluate`, `promote`,
`main`), each a thin `main()` over the library modules beside it.
"""
