"""A LOSO run killed outright takes its worker processes with it: none keeps training (and
writing fold files) after the run that started it is gone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process signals")

SLEEPER = """
import os, time
from pathlib import Path

def sleep_long(shard, progress, out):
    Path(out, f"worker_{shard[0]}.pid").write_text(str(os.getpid()))
    time.sleep(120)
"""

RUNNER = """
import functools, sys
from fervid.protocol.workers import run_in_workers
from fervid.progress import NoProgress
import sleeper
if __name__ == "__main__":
    run_in_workers(functools.partial(sleeper.sleep_long, out=sys.argv[1]), [[0], [1]], 1,
                   NoProgress())
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped has stopped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def test_workers_stop_when_their_run_is_killed(tmp_path: Path) -> None:
    (tmp_path / "sleeper.py").write_text(textwrap.dedent(SLEEPER))
    (tmp_path / "runner.py").write_text(textwrap.dedent(RUNNER))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path), str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.Popen([sys.executable, str(tmp_path / "runner.py"), str(tmp_path)], env=env)
    try:
        files = [tmp_path / "worker_0.pid", tmp_path / "worker_1.pid"]
        deadline = time.monotonic() + 120
        while not all(f.is_file() and f.read_text() for f in files):
            assert run.poll() is None, "the run ended before its workers started"
            assert time.monotonic() < deadline, "the workers did not start in 120 s"
            time.sleep(0.2)
        pids = [int(f.read_text()) for f in files]
        assert all(_alive(p) for p in pids)
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in pids), "a worker outlived its killed run"
    finally:
        if run.poll() is None:
            run.kill()
