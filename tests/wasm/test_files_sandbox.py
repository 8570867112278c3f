"""The ``files`` sandbox rule at load time, and the wasi:http executor's private copy of a mount.

Every ``files`` source, after symlinks are resolved, must lie inside the app directory (Spin's rule);
real symlinks on a real file system, refused with the manifest key and the path they resolve to.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.wasm.conftest import CORE_WAT, WriteManifest
from tests.wasm.wasihttp_support import make_component
from zerowatt.errors import ValidationError
from zerowatt.wasm.manifest.load import load_app
from zerowatt.wasm.model import Preopen
from zerowatt.wasm.wasihttp.executor import _snapshot

PASSWD = Path("/etc/passwd")


def body(files: str, exclude: str = "") -> str:
    extra = f"\nexclude_files = [{exclude}]" if exclude else ""
    trigger = '[[trigger.http]]\nroute = "/x"\ncomponent = "c"\n\n'
    return f'{trigger}[component.c]\nsource = "m.wat"\nfiles = [{files}]{extra}\n'


@pytest.fixture
def app_dir(write_manifest: WriteManifest) -> Path:
    """An app directory with real files and real symlinks, good and bad."""
    path = write_manifest("", files={"m.wat": CORE_WAT, "assets/fine.txt": "fine\n", "static/ok.txt": "ok\n"})
    root = path.parent
    os.symlink(PASSWD, root / "assets" / "evil.txt")
    os.symlink(PASSWD, root / "secret.txt")
    os.symlink("/etc", root / "etcdir")
    os.symlink("assets/fine.txt", root / "alias.txt")  # stays inside the app: fine
    (root / "linked").symlink_to("/etc")
    return root


def load_error(app_dir: Path, files: str, exclude: str = "") -> ValidationError:
    (app_dir / "spin.toml").write_text((app_dir / "spin.toml").read_text().split("[[trigger")[0] + body(files, exclude))
    with pytest.raises(ValidationError) as info:
        load_app(app_dir / "spin.toml", env={}, cache_dir=app_dir / "cache")
    return info.value


@pytest.mark.parametrize(
    ("files", "key", "resolved"),
    [
        ('{ source = "' + "../" * 40 + 'etc", destination = "/etc" }', "files[0].source", Path("/etc")),
        ('{ source = "etcdir", destination = "/etc" }', "files[0].source", Path("/etc")),
        ('{ source = "secret.txt", destination = "/s.txt" }', "files[0].source", PASSWD),
        ('"assets/fine.txt", "assets/*.txt"', "files[1]", PASSWD),
        ('"linked/passwd"', "files[0]", PASSWD),
        ('"linked/*"', "files[0]", None),  # whichever /etc entry comes first
    ],
    ids=["dot-dot", "directory-link", "file-link", "glob-link", "glob-through-directory-link", "glob-in-linked-dir"],
)
def test_a_source_resolving_outside_the_app_is_refused(
    app_dir: Path, files: str, key: str, resolved: Path | None
) -> None:
    error = load_error(app_dir, files)
    assert error.where == f"{app_dir / 'spin.toml'}: component.c.{key}"
    assert "outside the app directory" in error.message
    assert f"resolves to {resolved if resolved else '/etc/'}" in error.message


def test_a_symlink_loop_is_a_clear_error(app_dir: Path) -> None:
    os.symlink("loop.md", app_dir / "assets" / "loop.md")
    error = load_error(app_dir, '"assets/*.md"')
    assert error.where.endswith("component.c.files[0]")
    assert "'assets/loop.md'" in error.message and "cannot be resolved" in error.message


def test_a_link_in_a_copied_mount_must_stay_in_the_mount(app_dir: Path) -> None:
    os.symlink("../assets/fine.txt", app_dir / "static" / "sideways.txt")  # inside the app, outside the mount
    (app_dir / "static" / "skip.txt").write_text("excluded: the mount is copied file by file\n")
    error = load_error(app_dir, '{ source = "static", destination = "/static" }', exclude='"static/skip.txt"')
    assert error.where.endswith("component.c.files[0].source")
    assert "outside the mounted directory" in error.message and "sideways.txt" in error.message


def test_links_that_stay_inside_the_app_are_staged_with_their_content(app_dir: Path) -> None:
    (app_dir / "spin.toml").write_text(
        (app_dir / "spin.toml").read_text().split("[[trigger")[0]
        + body('"alias.txt", { source = "static", destination = "/static" }')
    )
    app = load_app(app_dir / "spin.toml", env={}, cache_dir=app_dir / "cache")
    staged, mount = app.components["c"].files
    assert (staged.host_path / "alias.txt").read_text() == "fine\n"
    assert not (staged.host_path / "alias.txt").is_symlink()
    assert mount == Preopen(host_path=app_dir / "static", guest_path="/static")


def test_an_app_directory_reached_through_a_symlink_is_fine(
    app_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    link = tmp_path_factory.mktemp("elsewhere") / "app"
    link.symlink_to(app_dir)
    (app_dir / "spin.toml").write_text(
        (app_dir / "spin.toml").read_text().split("[[trigger")[0] + body('"assets/fine.txt"')
    )
    app = load_app(link / "spin.toml", env={}, cache_dir=app_dir / "cache")
    assert (app.components["c"].files[0].host_path / "assets" / "fine.txt").read_text() == "fine\n"


def test_wasi_http_snapshot_copies_links_as_links_and_drops_those_that_leave(tmp_path: Path) -> None:
    mount = tmp_path / "mount"
    (mount / "sub").mkdir(parents=True)
    (mount / "real.txt").write_text("real\n")
    os.symlink(PASSWD, mount / "absolute")
    os.symlink("../../../../../../../../../../etc/passwd", mount / "climbing")
    os.symlink("/etc", mount / "sub" / "etc")
    os.symlink("../real.txt", mount / "sub" / "inside")
    os.symlink("loop", mount / "loop")
    _, component = make_component(files=(Preopen(host_path=mount, guest_path="/m"),))
    into = tmp_path / "snap"
    into.mkdir()
    ((copy, guest),) = _snapshot(component, into)
    assert guest == "/m"
    assert (copy / "real.txt").read_text() == "real\n"
    assert os.readlink(copy / "sub" / "inside") == "../real.txt"
    assert (copy / "sub" / "inside").read_text() == "real\n"
    for gone in ("absolute", "climbing", "sub/etc", "loop"):
        assert not os.path.lexists(copy / gone), gone
    assert PASSWD.read_text().splitlines()[0] not in "".join(p.read_text() for p in copy.rglob("*") if p.is_file())
    for root, dirs, _files in os.walk(copy):  # let pytest remove it
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    os.chmod(copy, 0o755)
