"""What a logged model carries and runs: the code behind `mlflow models serve` and `pipeline.predict`.

- `model`: the MLflow pyfunc (`DigitRecognizer`), its payload checks and the
  averaging of several networks;
- `images`: people's image files into MNIST-format digits, or a reason they hold none;
- `segmentation`: where the digits of a whole number end, decided by the network's answers;
- `sequence`: a whole number as one line for the sequence reader, and its answer decoded;
- `reading`: the answers (digit, confidence, rejected, reason, number) for those digits;
- `calibration`: temperature scaling, fitted on the validation split.

This subpackage imports nothing else of `pipeline`: `pipeline.tracking.logged_model`
copies it, and only it, into every logged model (`code_paths`).
"""
