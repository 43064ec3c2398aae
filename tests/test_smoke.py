import subprocess
import sys

import vi_lab


def test_version_is_a_string():
    assert isinstance(vi_lab.__version__, str) and vi_lab.__version__.count(".") == 2


def test_cli_version_runs():
    out = subprocess.run([sys.executable, "-m", "vi_lab", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert vi_lab.__version__ in out.stdout
