"""The experiment subcommands end to end on tiny configurations, and their handling of user mistakes."""
import json
import os
import subprocess
import sys

import pytest

from vi_lab.cli import main
from vi_lab.experiments import read_table, read_config

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
