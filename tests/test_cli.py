"""The vi-lab console script: version, help, the exact subcommand, and user errors."""
import subprocess
import sys

import pytest

import vi_lab
from vi_lab.cli import main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "vi_lab", *args], capture_output=True, text=True, timeout=120)


def test_version_and_help():
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"vi-lab {vi_lab.__version__}"
    out = run_cli("exact", "--help")
    assert out.returncode == 0
    for option in ("--data", "--latent", "--hidden", "--seed", "--n-data"):
        assert option in out.stdout
    assert "default" in out.stdout


def test_exact_prints_a_table_matching_the_api(capsys):
    assert main(["exact", "--latent", "4", "--n-data", "10"]) == 0
    text = capsys.readouterr().out
    x = vi_lab.cli.load_data("bars", 10, 0)
    model = vi_lab.BernoulliLVM(4, 16, hidden=(32,))
    mean = vi_lab.exact.log_marginal(model, model.init_params(0), x).mean()
    assert f"{mean:.4f}" in text
    assert "latent states 2**K" in text and "16" in text


@pytest.mark.parametrize("args, match", [
    (["exact", "--latent", "30"], "K <= 24"),
    (["exact", "--latent", "0"], "--latent"),
    (["exact", "--n-data", "0"], "--n-data"),
])
def test_user_errors_exit_2_with_one_line(args, match, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and match in err and "Traceback" not in err


def test_unknown_choice_is_an_argparse_error():
    out = run_cli("exact", "--data", "mnist")
    assert out.returncode == 2 and "invalid choice" in out.stderr
