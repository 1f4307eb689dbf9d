"""Shared by the two simulator test files: run a simulator's command line in a subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable


def serve_cli_until_sigterm(code: str, check: Callable[[str], None]) -> None:
    """Run ``python -c code`` (a simulator's main), wait for the line with its URL, run
    ``check(url)``, then SIGTERM it: it must exit 0."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found, line
        check(found.group(0))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
