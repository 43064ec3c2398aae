"""The experiment subcommands end to end on tiny configurations, and their handling of user mistakes."""
import json
import os
import subprocess
import sys

import pytest

import numpy as onp

from vi_lab.cli import main
from vi_lab.experiments import read_table, read_config

COMPARE = sys.modules["vi_lab.experiments.compare"]      # the module (vi_lab.experiments.compare is the function)

TINY = {
    "variance": ["--latent", "3", "--n-data", "4", "--reps", "5", "--samples", "2", "4", "--checkpoints", "0", "5",
                 "--estimators", "arm", "rloo", "concrete", "--taus", "0.5", "1", "--tau-samples", "2",
                 "--warmup", "1"],
    "train-compare": ["--latent", "3", "--steps", "6", "--record-every", "3", "--estimators", "arm",
                      "--methods", "exact_ml"],
    "tightness": ["--latent", "3", "--train-steps", "5", "--ks", "1", "5", "--iwae-reps", "2",
                  "--sleep-steps", "5"],
    "compare": ["--samples", "2", "--reps", "3", "--estimators", "disarm", "straight_through", "--train-steps", "3",
                "--ks", "1", "3", "--iwae-reps", "2", "--sleep-steps", "3"],
}

FILES = {
    "variance": ["variance", "tau"], "train-compare": ["history", "summary"],
    "tightness": ["tightness", "tightness_summary", "iwae"],
    "compare": ["summary", "variance", "tau", "tightness", "tightness_summary", "iwae"],
}
FIGURES = {
    "variance": ["variance_vs_samples", "variance_at_equal_cost", "variance_vs_checkpoint", "bias_variance_tau"],
    "train-compare": ["learning_curves"],
    "tightness": ["tightness_gaps", "iwae_vs_k"],
    "compare": ["variance_vs_samples", "variance_at_equal_cost", "bias_variance_tau", "tightness_gaps", "iwae_vs_k"],
}


@pytest.mark.parametrize("command", list(TINY))
def test_subcommand_runs_end_to_end_and_writes_the_documented_files(command, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([command, *TINY[command], "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "wrote" in printed.out and str(out) in printed.out
    assert printed.err == ""                                   # --quiet: no progress bars
    files = set(os.listdir(out))
    for name in FILES[command]:
        assert {f"{name}.csv", f"{name}.json"} <= files
        assert len(read_table(out / f"{name}.json")) > 0
    for name in FIGURES[command]:
        assert {f"{name}.png", f"{name}.pdf"} <= files
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert (out / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
    assert "params.npz" in files
    config = read_config(out)
    assert config["seed"] == 0 and config["versions"]["vi_lab"]
    assert set(config["files"]) == files
    assert not any(f.startswith(".") for f in files)           # no temporary files left


def test_same_seed_same_numbers_from_the_command_line(tmp_path, capsys):
    args = ["tightness", *TINY["tightness"], "--quiet", "--no-figures"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in ("tightness.csv", "iwae.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    assert main([*args, "--seed", "1", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "a" / "tightness.csv").read_text() != (tmp_path / "c" / "tightness.csv").read_text()
    a, b = (json.loads((tmp_path / d / "config.json").read_text()) for d in "ab")
    assert a["config"] == b["config"]


def _blocked(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    return str(blocker / "out")


BAD = [
    (["variance", "--estimators", "armm"], "unknown estimator 'armm'"),
    (["variance", "--samples", "0", "10"], "--samples: expected a sample count S >= 1, got 0"),
    (["variance", "--latent", "30"], "--latent: K = 30"),
    (["variance", "--estimators", "rloo", "--samples", "1", "10"], "'rloo' needs S >= 2"),
    (["variance", "--out", None], "--out: cannot write results"),
    (["variance", "--reps", "1"], "--reps"),
    (["variance", "--taus", "0"], "--taus"),
    (["train-compare", "--estimators", "vimco", "--samples", "1"], "'vimco' needs S >= 2"),
    (["train-compare", "--methods", "sleeping"], "--methods: unknown method 'sleeping'"),
    (["train-compare", "--latent", "25"], "--latent"),
    (["tightness", "--ks", "0"], "--ks"),
    (["tightness", "--out", None], "--out"),
    (["compare", "--estimators", "nope"], "unknown estimator 'nope'"),
    (["compare", "--samples", "-3"], "--samples"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a for a in argv if a) for argv, _ in BAD])
def test_bad_input_exits_2_with_one_line_on_stderr(argv, message, tmp_path, capsys):
    argv = [(_blocked(tmp_path) if a is None else a) for a in argv]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "never")]
    assert main(argv + ["--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"vi-lab {argv[0]}: error: ")
    assert message in err
    assert not (tmp_path / "never").exists() or not os.listdir(tmp_path / "never")


def test_help_lists_every_option_with_its_default(capsys):
    for command in TINY:
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        text = capsys.readouterr().out
        assert "--out" in text and "--seed" in text and "--quiet" in text
        assert "(default: 0)" in text                            # the seed's default


def test_console_script_reports_a_mistake_without_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vi_lab", "variance", "--samples", "0", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------- one line, naming the option
ARGPARSE_BAD = [
    (["variance", "--taus", "inf"], "argument --taus: expected a finite number > 0, got inf"),
    (["variance", "--taus", "nan"], "--taus"),
    (["variance", "--seed", "-1"], "argument --seed: expected an integer >= 0"),
    (["variance", "--reps", "many"], "argument --reps: expected a number of estimates R, got 'many'"),
    (["variance", "--samples"], "argument --samples: expected at least one argument"),
    (["variance", "--bogus"], "unrecognized arguments: --bogus"),
    (["tightness", "--hidden", "0"], "argument --hidden: expected a layer width >= 1, got 0"),
    (["train-compare", "--valid-fraction", "1.5"], "argument --valid-fraction: expected a number in (0, 1)"),
    (["train-compare", "--learning-rate", "inf"], "argument --learning-rate"),
    (["compare", "--jobs", "0"], "argument --jobs: expected an integer >= 1, got 0"),
    (["exact", "--data", "mnist"], "argument --data: invalid choice: 'mnist'"),
    (["nosuch"], "invalid choice: 'nosuch'"),
]


@pytest.mark.parametrize("argv, message", ARGPARSE_BAD, ids=[" ".join(a) for a, _ in ARGPARSE_BAD])
def test_parse_errors_are_one_line_naming_the_option_without_usage(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err
    assert err.startswith(f"vi-lab {argv[0]}: error: ") and message in err


SIZE_GUARDS = [
    (["variance", "--estimators", "vimco", "--samples", "1000"], "--samples: vimco at S = 1,000 needs about"),
    (["variance", "--reps", "100000000"], "--reps: R = 100,000,000 estimates"),
    (["tightness", "--ks", "10000000"], "--ks: k = 10,000,000 importance samples need about"),
    (["compare", "--reps", "100000000"], "--reps"),
]


@pytest.mark.parametrize("argv, message", SIZE_GUARDS, ids=[" ".join(a) for a, _ in SIZE_GUARDS])
def test_impossible_sizes_are_refused_before_any_work(argv, message, tmp_path, capsys, monkeypatch):
    import vi_lab.experiments.problem as problem

    def no_training(*args, **kwargs):
        raise AssertionError("training started before the size check")

    monkeypatch.setattr(problem, "train_checkpoints", no_training)
    monkeypatch.setattr(COMPARE, "train_checkpoints", no_training)
    assert main(argv + ["--out", str(tmp_path / "never"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert "GiB" in err                                    # the estimated size is in the message
    assert not (tmp_path / "never").exists()


def test_the_python_api_has_the_same_guards():
    from vi_lab.experiments import run_variance, run_tightness
    with pytest.raises(ValueError, match="samples: vimco at S = 1,000"):
        run_variance(estimators=["vimco"], samples=[1000])
    with pytest.raises(ValueError, match="reps: R = 100,000,000"):
        run_variance(reps=100_000_000)
    with pytest.raises(ValueError, match="ks: k = 10,000,000"):
        run_tightness(ks=[10_000_000])
    with pytest.raises(ValueError, match="taus: expected finite"):
        run_variance(taus=[float("inf")])


def test_api_errors_are_relabelled_with_the_option_names():
    from vi_lab.cli import build_parser, relabel, _option_names
    names = _option_names(build_parser(), "variance")
    assert relabel("rng: expected a non-negative int seed, got -1", names) == \
        "--seed: expected a non-negative int seed, got -1"
    assert relabel("n_latent: K = 30 is too many", names).startswith("--latent: ")
    assert relabel("samples (each S): expected >= 1", names).startswith("--samples: ")
    assert relabel("reps: too many; lower reps", names) == "--reps: too many; lower --reps"
    assert relabel("tau_samples: needs S >= 2", names).startswith("--tau-samples: ")


def test_the_study_subcommand_says_so_in_one_line_when_its_module_is_missing(monkeypatch, capsys):
    import sys as _sys
    monkeypatch.setitem(_sys.modules, "vi_lab.study.cli", None)       # import now raises ImportError
    assert main(["study", "studies/quick.toml"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vi-lab study: error: the study subcommand is not available" in err


def test_the_study_subcommand_is_listed_and_hands_over_to_vi_lab_study(capsys):
    from vi_lab.cli import build_parser
    assert "study" in build_parser().format_help()
    import vi_lab.study.cli as study_cli
    args = build_parser("study").parse_args(["study", "studies/quick.toml"])
    assert args.study_run is study_cli.run                  # configured by vi_lab.study.cli.configure


# ---------------------------------------------------------------------------- --from-run
@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A short amortized run on the default bars data (L = 16), saved as a study cell would save it."""
    from vi_lab.experiments.problem import load_data, make_model
    from vi_lab.inference import fit
    x_train, x_valid = load_data("bars", 3, 0)
    model = make_model(3, 16, (8,))
    result = fit(model, x_train, method="amortized", estimator="disarm", n_samples=2, steps=20, x_valid=x_valid,
                 record_every=10, rng=0, progress=False)
    cell = tmp_path_factory.mktemp("cell")
    result.save(cell / "run")
    return cell, result


def test_variance_from_run_measures_the_saved_model_without_training(saved_run, tmp_path, capsys, monkeypatch):
    cell, result = saved_run
    monkeypatch.setattr(COMPARE, "train_checkpoints",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    args = ["variance", "--estimators", "exact", "arm", "--samples", "2", "--reps", "3", "--n-data", "5",
            "--taus", "--quiet", "--no-figures"]
    for source in (cell, cell / "run", cell / "run.json"):            # a cell directory, a stem, a file
        out = tmp_path / source.name
        assert main(args + ["--from-run", str(source), "--out", str(out)]) == 0
        table = read_table(out / "variance.json")
        assert set(table["checkpoint"]) == {20}
        exact_row = table[table["estimator"] == "exact"].iloc[0]
        assert exact_row["var_q"] == 0.0
        assert read_config(out)["config"]["from_run"] == os.path.abspath(source)
    # the measured gradient is that of the saved model and its encoder: the exact row's mean q-gradient
    # would differ for any other parameters; check the q the table used through the saved params file
    from vi_lab.experiments import load_params
    saved = load_params(tmp_path / "run" / "params.npz")
    onp.testing.assert_array_equal(saved["decoder"]["W0"], result.params["decoder"]["W0"])
    capsys.readouterr()


def test_tightness_and_exact_from_run(saved_run, tmp_path, capsys):
    cell, result = saved_run
    assert main(["tightness", "--from-run", str(cell), "--ks", "1", "3", "--iwae-reps", "2", "--sleep-steps", "0",
                 "--quiet", "--no-figures", "--out", str(tmp_path / "t")]) == 0
    table = read_table(tmp_path / "t" / "tightness.json")
    from vi_lab import exact
    from vi_lab.experiments.problem import load_data
    x_train, x_valid = load_data("bars", 3, 0)
    expected = exact.log_marginal(result.model, result.params, onp.concatenate([x_train, x_valid]))
    onp.testing.assert_allclose(table["log_px"].to_numpy(), expected, rtol=0, atol=1e-12)
    capsys.readouterr()
    assert main(["exact", "--from-run", str(cell / "run")]) == 0
    out = capsys.readouterr().out
    mean = exact.log_marginal(result.model, result.params, onp.concatenate([x_train, x_valid])).mean()
    assert f"{mean:.4f}" in out and "saved run" in out


@pytest.mark.parametrize("argv, message", [
    (["variance", "--latent", "4"], "--latent: not used with --from-run"),
    (["variance", "--checkpoints", "0"], "--checkpoints: not used with --from-run"),
    (["tightness", "--train-steps", "3"], "--train-steps: not used with --from-run"),
    (["variance", "--data", "digits"], "--from-run: the run's model has L = 16 observations"),
])
def test_from_run_conflicts_are_one_line(saved_run, argv, message, tmp_path, capsys):
    cell, _ = saved_run
    assert main(argv + ["--from-run", str(cell), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_from_run_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["variance", "--from-run", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "--from-run: directory" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    (tmp_path / "bad.npz").write_bytes(b"")
    assert main(["tightness", "--from-run", str(tmp_path / "bad"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--from-run: " in err


# ---------------------------------------------------------------------------- result directories
SMALL = ["variance", "--latent", "3", "--n-data", "4", "--reps", "3", "--samples", "2", "--checkpoints", "2",
         "--estimators", "arm", "--taus", "--warmup", "1", "--quiet"]


def test_replacing_a_run_says_so_and_leaves_no_file_of_the_old_one(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(SMALL + ["--out", str(out)]) == 0
    first = set(os.listdir(out))
    assert "variance_vs_samples.png" in first
    capsys.readouterr()
    assert main(SMALL + ["--no-figures", "--seed", "1", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "holds a previous run; it is replaced" in err and err.count("\n") == 1
    files = set(os.listdir(out))
    assert "variance_vs_samples.png" not in files                 # nothing of the first run is left
    assert files == set(read_config(out)["files"]) and read_config(out)["seed"] == 1
    assert [p for p in os.listdir(tmp_path) if p != "run"] == []   # no temporary directories


def test_a_directory_with_files_vi_lab_did_not_write_is_refused_and_nothing_deleted(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("my thesis")
    assert main(SMALL + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--out:" in err and "thesis.tex" in err and err.count("\n") == 1
    assert os.listdir(out) == ["thesis.tex"]


def test_a_vi_lab_looking_config_listing_a_users_file_does_not_get_it_deleted(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(SMALL + ["--no-figures", "--out", str(out)]) == 0
    # the user puts a file of their own there and lists it in config.json (or a stale config lists it)
    (out / "notes.txt").write_text("keep me")
    record = json.loads((out / "config.json").read_text())
    record["files"].append("notes.txt")
    (out / "config.json").write_text(json.dumps(record))
    capsys.readouterr()
    assert main(SMALL + ["--no-figures", "--out", str(out)]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "keep me"
    # a table the user edited is not vi_lab's file either
    (out / "notes.txt").unlink()
    with open(out / "variance.csv", "a") as fh:
        fh.write("edited\n")
    assert main(SMALL + ["--no-figures", "--out", str(out)]) == 2
    assert "variance.csv" in capsys.readouterr().err and (out / "variance.csv").read_text().endswith("edited\n")


def test_a_corrupt_config_json_is_reported_before_the_computation(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(COMPARE, "train_checkpoints",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text('{"files": ["a.csv"], ')
    assert main(SMALL + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config.json is not valid JSON (line 1" in err
    assert os.listdir(out) == ["config.json"]


def test_an_interrupt_while_saving_leaves_the_old_complete_run(tmp_path, monkeypatch):
    from vi_lab.experiments.results import RunWriter
    out = tmp_path / "run"
    assert main(SMALL + ["--out", str(out)]) == 0
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    real_figure = RunWriter.figure
    for stop_after in range(2):                        # Ctrl-C while writing the 1st or the 2nd figure
        calls = []

        def figure(self, name, fig, **kwargs):
            if len(calls) == stop_after:
                raise KeyboardInterrupt
            calls.append(name)
            return real_figure(self, name, fig, **kwargs)

        monkeypatch.setattr(RunWriter, "figure", figure)
        assert main(SMALL + ["--seed", "5", "--out", str(out)]) == 130
        assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before
        assert sorted(os.listdir(tmp_path)) == ["run"]


def _snapshot(out):
    """(seed, files) of a complete run directory, after checking every file against config.json."""
    record = read_config(out)
    files = sorted(os.listdir(out))
    assert record["complete"] and files == sorted(record["files"])
    import hashlib
    for name, digest in record["sha256"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
    return record["seed"]


@pytest.mark.slow
def test_sigint_at_random_points_leaves_the_old_or_the_new_complete_run(tmp_path):
    import random
    import signal
    import time
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "vi_lab"] + SMALL + ["--out", str(out)]
    subprocess.run(argv, check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run(argv + ["--seed", "9"], check=True, capture_output=True, stdin=subprocess.DEVNULL)
    duration = time.perf_counter() - start
    subprocess.run(argv, check=True, capture_output=True)          # back to seed 0
    rng = random.Random(0)
    outcomes = set()
    for trial in range(4):
        seed = 10 + trial
        proc = subprocess.Popen(argv + ["--seed", str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        # from start-up (imports) to the end of saving
        time.sleep(rng.uniform(0.05, 1.1) * duration)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        # -2 (killed by SIGINT): the signal came during interpreter shut-down, after main() returned,
        # when Python has already restored the default handler; the run was complete by then
        assert proc.returncode in (0, 130, -signal.SIGINT), err
        lines = err.strip().splitlines()
        assert "Traceback" not in err and all(line.startswith("vi-lab variance: ") for line in lines), err
        if proc.returncode == 130:
            # one line for the interrupt (after the one announcing that a previous run is replaced)
            assert lines[-1] == "vi-lab variance: interrupted (nothing was written over a previous run)", err
        found = _snapshot(out)
        assert found in (0, seed) or found in {10 + t for t in range(trial)}
        outcomes.add("new" if found == seed else "old")
        assert sorted(os.listdir(tmp_path)) == ["run"]               # no temporary directory left
    assert "old" in outcomes
