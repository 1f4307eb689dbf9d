"""Run one of the repository's service scripts (`scripts/redmine up`, `scripts/postgres up`,
`scripts/chromium`) for a fixture: it installs and starts what the tests need, and a failure
fails the test with the script's own output. Only an unprivileged user (no root, no passwordless
sudo: the quick tier on a developer's machine) gets a skip with the reason instead; root, as in
CI, always runs them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values

REPO = Path(__file__).resolve().parent.parent


def start_service(name: str, timeout_s: float, needs: tuple[str, ...]) -> dict[str, str]:
    """`scripts/<name> up`: the facts it wrote to `.<name>/env` (every name in `needs`)."""
    _, facts = run_service_script([name, "up"], timeout_s, REPO / f".{name}" / "env", needs)
    return facts


def run_service_script(
    args: list[str], timeout_s: float, env_file: Path | None = None, needs: tuple[str, ...] = ()
) -> tuple[str, dict[str, str]]:
    """(stdout, the facts the script wrote to `env_file`); every name in `needs` must be there."""
    command = f"scripts/{' '.join(args)}"
    try:
        done = subprocess.run(
            [str(REPO / "scripts" / args[0]), *args[1:]],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(f"{command} did not finish in {timeout_s:.0f} s:\n{output}")
    if done.returncode != 0 and not privileged():
        # The quick tier runs as any user; installing a service needs root (or sudo -n).
        pytest.skip(
            f"{command} needs root to install or start its service (run the tests as root, as CI "
            f"does, or with passwordless sudo): {(done.stderr or done.stdout).strip()[-300:]}"
        )
    if done.returncode != 0:
        pytest.fail(
            f"{command} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}",
            pytrace=False,
        )
    facts = {k: v for k, v in dotenv_values(env_file).items() if v} if env_file else {}
    missing = [name for name in needs if not facts.get(name)]
    if missing:
        pytest.fail(f"{command} succeeded but {env_file} lacks {', '.join(missing)}")
    return done.stdout, facts


def privileged() -> bool:
    """Root, or passwordless sudo: the service scripts can install what they need."""
    if os.geteuid() == 0:
        return True
    try:
        return (
            subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=10).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
