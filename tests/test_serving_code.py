"""A logged model carries `pipeline/serving` and nothing else of the project, and runs on that alone."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf
from conftest import train_tiny

from pipeline.tracking import logged_model
from pipeline.training.splits import scaled

# Runs in a process where the project itself cannot be imported: the editable install's
# finder is removed, so the only `pipeline` is the copy inside the model.
LOAD_IN_ISOLATION = """
import importlib.util, json, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path_hooks[:] = [h for h in sys.path_hooks if "editable" not in getattr(h, "__module__", "")]
sys.path_importer_cache.clear()
try:
    import pipeline
except ModuleNotFoundError:
    pass
else:
    sys.exit(f"the project is importable here: {pipeline.__file__}")
import mlflow
model = mlflow.pyfunc.load_model(sys.argv[1])
images = json.load(open(sys.argv[2]))
answers = model.predict(images)
import pipeline
assert importlib.util.find_spec("pipeline.serving") is not None
leaked = [name for name in ("training", "tracking", "tuning", "analysis", "data", "train", "arguments")
          if importlib.util.find_spec(f"pipeline.{name}") is not None]
print(json.dumps({"package": pipeline.__file__, "leaked": leaked, "digits": [a["digit"] for a in answers]}))
"""


def test_a_logged_model_carries_and_needs_only_the_serving_code(tracking, mnist, tmp_path):
    run_id = train_tiny(subset=1000, validation=200, epochs=2)
    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model", dst_path=str(tmp_path / "model")))
    carried = sorted(str(path.relative_to(local / "code")) for path in (local / "code").rglob("*.py"))
    assert carried == ["pipeline/__init__.py"] + sorted(
        f"pipeline/serving/{path.name}" for path in (Path(__file__).parents[1] / "pipeline" / "serving").glob("*.py")
    )

    images = scaled(mnist.test_images[:20])
    (tmp_path / "images.json").write_text(json.dumps(images.tolist()))
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_IN_ISOLATION, str(local), str(tmp_path / "images.json")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(found["package"]).is_relative_to(local / "code") and found["leaked"] == []
    # The same answers as the model loaded beside the whole project.
    here = mlflow.pyfunc.load_model(str(local)).predict(images)
    assert found["digits"] == [answer["digit"] for answer in here]
    assert np.mean(np.array(found["digits"]) == mnist.test_labels[:20]) > 0.5


def test_networks_the_served_model_cannot_run_are_neither_logged_nor_registered(tracking):
    images = keras.Input((28, 28))
    odd = keras.layers.Lambda(tf.math.bessel_i0e)(images)  # an operation TensorFlow Lite has no kernel for
    network = keras.Model(images, keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(odd)))
    with mlflow.start_run() as run:
        with pytest.raises(logged_model.NotServable, match="neither logged as a model nor registered .*MLIR"):
            logged_model.log_model([network], np.zeros((2, 28, 28), np.float32), registered_model_name="mnist")
    assert mlflow.search_registered_models() == []
    assert not mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    kept = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="unservable")
    assert [path.name for path in Path(kept).iterdir()] == ["keras_model.keras"]  # the training is not lost
