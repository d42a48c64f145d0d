"""The example scripts run as a lab engineer would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_check_user_agents_example():
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "check_user_agents.py"),
                           str(ROOT / "examples" / "user_agents.txt")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1  # the list holds a below-minimum and an enterprise-firmware phone
    lines = proc.stdout.splitlines()
    assert lines[-1] == "6 supported, 1 wrong_family, 1 below_minimum"
    assert any(line.startswith("below_minimum") and "firmware series 83" in line for line in lines)
