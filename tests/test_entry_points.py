"""The MLproject's entry points and their parameters, without training anything."""

import re

import pytest
import yaml
from conftest import REPO, run_cli
from test_layout import ENTRY_POINTS

from pipeline import bench, ensemble, evaluate, main, prep, promote, report, search, train

PROJECT = yaml.safe_load((REPO / "MLproject").read_text())
PARSERS = {
    "main": main.parse,
    "prep": prep.parse,
    "train": train.parse,
    "evaluate": evaluate.parse,
    "promote": promote.parse,
    "search": search.parse,
    "ensemble": ensemble.parse,
    "bench": bench.parse,
    "report": report.parse,
}
REQUIRED = {"version": "1", "runs": "a,b"}  # example values of the parameters without a default


def test_every_entry_point_has_a_parser():
    assert set(PROJECT["entry_points"]) == set(PARSERS)


@pytest.mark.parametrize("entry_point", sorted(PARSERS))
def test_every_declared_parameter_reaches_the_command(entry_point):
    spec = PROJECT["entry_points"][entry_point]
    command = spec["command"]
    placeholders = set(re.findall(r"\{(\w+)\}", command))
    assert placeholders == set(spec.get("parameters", {}))
    module = re.match(r"python -u -m (pipeline\.\w+) ", command).group(1)
    assert module == f"pipeline.{entry_point}"


@pytest.mark.parametrize("entry_point", sorted(PARSERS))
def test_defaults_parse_to_the_modules_own_defaults(entry_point):
    spec = PROJECT["entry_points"][entry_point]
    values = {name: str(p.get("default", REQUIRED.get(name))) for name, p in spec.get("parameters", {}).items()}
    # Defaults that mean "unset" ("" or 0) parse to None or 0: compare what they stand for.
    unset = {"", "0", "none"}
    argv = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)] or "''", spec["command"]).split()[4:]
    args = PARSERS[entry_point]([arg.strip("'") for arg in argv])
    for name, parameter in spec.get("parameters", {}).items():
        if "default" in parameter and name != "versions":
            parsed, declared = str(getattr(args, name)).lower(), str(parameter["default"]).lower()
            assert parsed == declared or {parsed, declared} <= unset, name


def test_train_takes_the_optional_settings_as_mlflow_passes_them():
    args = train.parse(["--version", "2", "--epochs", "3", "--batch_size", "64", "--learning_rate", "1e-3"])
    assert (args.epochs, args.batch_size, args.learning_rate) == (3, 64, 0.001)
    args = train.parse(["--version", "2", "--batch-size", "32"])
    assert args.batch_size == 32 and args.epochs is None
    assert train.parse(["--version", "5", "--validation", "0"]).validation == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--version", "9"], "9 is not a version; choose one of 0, 1, 2, 3, 4, 5"),
        (["--version", "two"], "expected a whole number, 0 or more, got 'two'"),
        (["--version", "1", "--epochs", "0"], "expected a whole number above 0, got '0'"),
        (["--version", "1", "--learning_rate", "nan"], "expected a finite number above 0, got 'nan'"),
        (["--version", "1", "--register", "maybe"], "expected true or false, got 'maybe'"),
    ],
)
def test_bad_parameters_are_refused_clearly(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        train.parse(argv)
    assert exit.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--runs", "abc"], "expected two or more different run ids"),
        (["--runs", "abc,abc"], "expected two or more different run ids"),
    ],
)
def test_an_ensemble_needs_two_runs(argv, message, capsys):
    with pytest.raises(SystemExit):
        ensemble.parse(argv)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("entry_point", [train, bench, search])
def test_every_entry_point_refuses_a_version_that_does_not_exist(entry_point, capsys):
    with pytest.raises(SystemExit):
        entry_point.parse(["--version", "7"])
    assert "argument --version: 7 is not a version; choose one of 0, 1, 2, 3, 4, 5, 6" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["0", "1.5", "high"])
def test_bench_target_is_an_accuracy(target, capsys):
    with pytest.raises(SystemExit):
        bench.parse(["--target", target])
    assert "expected an accuracy between 0 and 1" in capsys.readouterr().err


def test_bad_versions_list_in_main(capsys):
    with pytest.raises(SystemExit):
        main.parse(["--versions", "1,7"])
    assert "unknown version '7'" in capsys.readouterr().err


def test_entry_points_import_without_tensorflow():
    """`--help` and argument errors stay instant: TensorFlow loads only once work starts."""
    modules = ", ".join(f"pipeline.{name}" for name in ENTRY_POINTS)
    script = f"import sys, {modules}; print(sorted({{'tensorflow', 'keras'}} & set(sys.modules)))"
    result = run_cli("python", "-c", script)
    assert result.stdout.strip() == "[]"


def test_conda_yaml_pins_what_pyproject_pins():
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((REPO / "conda.yaml").read_text())["dependencies"]
    pip_section = next(item["pip"] for item in conda if isinstance(item, dict))
    assert sorted(pip_section) == sorted(pyproject)
