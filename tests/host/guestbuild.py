"""Builds the test guests (C for wasm32-wasi with clang-19, WAT as is) and hand-made App objects."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from zerowatt.wasm.model import App, Component, ExecutorKind, HttpTrigger, Limits, Preopen, Route, WagiOptions

GUESTS = Path(__file__).resolve().parent / "guests"


def build_c(name: str, out_dir: Path) -> Path:
    """Compile ``guests/<name>.c`` to ``out_dir/<name>.wasm`` (clang-19, wasm32-wasi)."""
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None:
        raise RuntimeError("clang-19 is required to build the test guests (make sysdeps installs it)")
    out = out_dir / f"{name}.wasm"
    subprocess.run(
        [
            clang,
            "--target=wasm32-wasi",
            "-O2",
            "-Wall",
            "-Werror",
            "-Wl,--strip-all",
            "-o",
            str(out),
            str(GUESTS / f"{name}.c"),
        ],
        check=True,
    )
    return out


def digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def component(
    source: Path,
    cid: str = "probe",
    *,
    files: tuple[Preopen, ...] = (),
    environment: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    limits: Limits | None = None,
) -> Component:
    return Component(
        id=cid,
        source=source,
        source_digest=digest(source),
        environment=dict(environment or {}),
        files=files,
        variables=dict(variables or {}),
        limits=limits or Limits(),
    )


def app(
    components: list[Component],
    routes: Mapping[str, str],
    name: str = "test",
    base: str = "/",
    argv: str | None = None,
) -> App:
    """An App with ``routes`` (pattern → component id), every trigger WAGI."""
    wagi = WagiOptions(argv=argv) if argv else WagiOptions()
    triggers = tuple(
        HttpTrigger(route=Route(pattern), component_id=cid, executor=ExecutorKind.WAGI, wagi=wagi)
        for pattern, cid in routes.items()
    )
    return App(
        name=name,
        manifest_path=GUESTS / "spin.toml",
        components={c.id: c for c in components},
        triggers=triggers,
        base=base,
    )
