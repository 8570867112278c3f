"""The README's tour runs as written from a fresh clone: every line, in order, with the files the repository ships.

Why: a tour that only works beside the team's reference data (or with a file nobody creates) is the first thing
a new user hits. The test reads the tour's code block from README.md, so editing the README edits the test.
Three things differ from a person at a terminal, each for isolation only: `zerowatt up` gets free loopback
ports (the curl lines are pointed at them), the downscaler gets a kubeconfig for kmock's emulated API server,
and `.venv/bin/zerowatt` is replaced by this interpreter's `python -m zerowatt` when no `.venv` exists.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, cli_env, free_port
from tests.host.serving import stop as stop_server
from tests.host.serving import wait_ready

README = ROOT / "README.md"
VENV_CLI = ROOT / ".venv" / "bin" / "zerowatt"
DEFAULT_LISTEN = "127.0.0.1:3000"
DEFAULT_ADMIN = "127.0.0.1:3001"


def tour_lines(text: str) -> list[str]:
    """The commands of the ``## A tour`` code block, comments removed and ``\\`` continuations joined."""
    section = text.split("## A tour", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    lines: list[str] = []
    pending = ""
    for raw in block.splitlines():
        if not raw.strip():
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(strip_comment(pending + raw).strip())
        pending = ""
    return lines


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (outside quotes, after whitespace)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and i > 0 and line[i - 1].isspace():
            return line[:i]
    return line


def test_tour_parser_joins_continuations_and_drops_comments() -> None:
    text = "## A tour\n\n```sh\na b   # one\nc \\\n    d 'x # y'  # two\n\n```\n"
    assert tour_lines(text) == ["a b", "c      d 'x # y'"]


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig pointing at kmock's emulator (the tour's downscaler line needs one)."""
    from tests.kube.emulator import EmulatorThread

    with EmulatorThread() as api:
        path = tmp_path / "kubeconfig"
        path.write_text(
            json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
                "clusters": [{"name": "kmock", "cluster": {"server": api.url}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
            })
        )  # fmt: skip
        yield path


def test_every_line_of_the_readme_tour_runs_from_the_checkout(kubeconfig: Path, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is missing: `make setup` installs it (the README tour uses it)")
    lines = tour_lines(README.read_text())
    assert len(lines) >= 10 and any(line.startswith("curl") for line in lines), lines
    cli = shlex.quote(str(VENV_CLI)) if VENV_CLI.exists() else f"{shlex.quote(sys.executable)} -m zerowatt"
    env = cli_env() | {"KUBECONFIG": str(kubeconfig), "COLUMNS": "120"}
    server: subprocess.Popen[bytes] | None = None
    ports = {DEFAULT_LISTEN: DEFAULT_LISTEN, DEFAULT_ADMIN: DEFAULT_ADMIN}
    ran: list[str] = []
    try:
        for line in lines:
            command = re.sub(r"^\.venv/bin/zerowatt\b", cli, line)
            if line.startswith(".venv/bin/zerowatt up "):
                stop(server)
                ports = {DEFAULT_LISTEN: f"127.0.0.1:{free_port()}", DEFAULT_ADMIN: f"127.0.0.1:{free_port()}"}
                log = tmp_path / f"up-{len(ran)}.log"
                command += f" --listen {ports[DEFAULT_LISTEN]} --admin {ports[DEFAULT_ADMIN]}"
                with log.open("wb") as out:
                    server = subprocess.Popen(
                        ["bash", "-c", f"exec {command}"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                    )
                wait_ready(f"http://{ports[DEFAULT_ADMIN]}", server, log)  # type: ignore[arg-type]
                probe = subprocess.run(["curl", "-fsS", f"http://{ports[DEFAULT_ADMIN]}/readyz"], capture_output=True)
                assert probe.returncode == 0, probe.stderr  # serving, also where no curl line follows
                ran.append(line)
                continue
            if line.startswith("curl "):
                assert server is not None, f"{line!r} comes before any `zerowatt up` line"
                for default, actual in ports.items():
                    command = command.replace(default, actual)
                command = command.replace("curl ", "curl -fsS ", 1)  # fail on an HTTP error, as a reader would see one
            else:
                stop(server)
                server = None
            result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, timeout=240)
            out = result.stdout.decode(errors="replace")
            err = result.stderr.decode(errors="replace")
            assert result.returncode == 0, f"README tour line failed ({result.returncode}): {line}\n{out}\n{err}"
            assert (out + err).strip(), f"README tour line printed nothing: {line}"
            ran.append(line)
    finally:
        stop(server)
    assert ran == lines


def stop(server: subprocess.Popen[bytes] | None) -> None:
    """Stop a `zerowatt up` started by the tour (SIGTERM, its graceful drain) and reap it."""
    if server is not None:
        stop_server(server, timeout=30)


def test_the_tours_usage_samples_are_what_their_generator_writes(tmp_path: Path) -> None:
    generator = ROOT / "examples" / "usage" / "generate_usage.py"
    subprocess.run([sys.executable, str(generator), str(tmp_path / "usage.csv")], check=True, timeout=60)
    assert (tmp_path / "usage.csv").read_bytes() == (ROOT / "examples" / "usage" / "usage.csv").read_bytes()


def test_the_tours_cluster_snapshot_is_what_its_generator_writes(tmp_path: Path) -> None:
    generator = ROOT / "examples" / "capacity" / "generate_cluster.py"
    subprocess.run([sys.executable, str(generator), str(tmp_path / "cluster.json")], check=True, timeout=60)
    assert (tmp_path / "cluster.json").read_bytes() == (ROOT / "examples" / "capacity" / "cluster.json").read_bytes()
