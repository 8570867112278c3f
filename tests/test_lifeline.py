"""zerowatt.lifeline with real processes, a real pipe and real signals."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import cli_env
from zerowatt.lifeline import die_with_parent, watch_parent

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG and /proc are Linux")

GRANDCHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from zerowatt.lifeline import die_with_parent
    assert die_with_parent(signal.SIGKILL, int(sys.argv[1]))
    print(os.getpid(), flush=True)
    time.sleep(600)
    """
)
MIDDLE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    subprocess.Popen([sys.executable, "-c", sys.argv[1], str(os.getpid())])
    time.sleep(600)
    """
)


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_a_child_dies_with_its_parent_even_on_sigkill() -> None:
    middle = subprocess.Popen(
        [sys.executable, "-c", MIDDLE, GRANDCHILD], stdout=subprocess.PIPE, text=True, env=cli_env()
    )
    try:
        assert middle.stdout is not None
        grandchild = int(middle.stdout.readline())
        assert running(grandchild)
        middle.kill()
        middle.wait()
        deadline = time.monotonic() + 60
        while running(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running(grandchild), "the grandchild outlived its SIGKILLed parent"
    finally:
        if middle.poll() is None:
            middle.kill()
            middle.wait()


def test_a_parent_already_gone_is_reported() -> None:
    # Signal 0 clears the parent-death signal: this leaves the test process as it was.
    assert die_with_parent(0, os.getppid())
    assert not die_with_parent(0, -1)


def test_watch_parent_calls_back_at_end_of_file_only() -> None:
    read, write = os.pipe()
    gone = threading.Event()
    try:
        watch_parent(read, gone.set)
        os.write(write, b"data is not the end")
        assert not gone.is_set()
        os.close(write)
        assert gone.wait(30)
    finally:
        os.close(read)
