"""README's Python examples run as written, and its set-up commands are the documented two."""
import pathlib
import re

import numpy as onp

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_opens_with_the_two_setup_commands():
    text = README.read_text()
    first_block = re.search(r"```\n(.*?)```", text, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)          # the examples save runs/ relative to the working directory
    namespace = {}
    blocks = python_blocks()
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    # the training example's claims: every method improves held-out log p(x) over the initial model
    init = vi_lab_initial_log_px(namespace)
    for name in ("pd", "vae", "ws", "rws", "ee", "ml"):
        assert namespace[name].history["log_px_valid"][-1] > init + 0.5, name
    assert (tmp_path / "runs" / "amortized.npz").exists()


def vi_lab_initial_log_px(namespace):
    import vi_lab
    model, params, _, x_valid = vi_lab.data.default(0)
    return float(onp.mean(vi_lab.exact.log_marginal(model, params, x_valid)))
