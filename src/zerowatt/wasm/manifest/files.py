"""A component's ``files``: what the guest sees of the host's file system, as read-only preopens.

Spin copies or maps files into the guest; zerowatt turns each ``files`` entry into WASI preopens:

- ``{ source = "dir", destination = "/path" }`` with a directory is preopened as is at ``/path``;
- glob strings (``"assets/**/*.png"``) and single-file mappings are *staged*: the matching files are
  copied into one directory under the cache (``<cache>/files/<content key>``) at their guest paths, and
  that directory is preopened at ``/``. The key hashes the file list with sizes and modification
  times, so loading the same manifest twice (several workers) reuses one staging directory, and a
  changed file gets a new one;
- ``exclude_files`` globs remove matches; a directory mapping with exclusions is staged too.

Nothing else of the host is visible to the guest.

The sandbox rule (Spin's): every source, after symlinks are resolved, must lie inside the app's
directory (the manifest's directory, itself resolved). ``"../../etc"``, a glob that matches a link to
``/etc/passwd``, a single-file link, a directory source that is a link to ``/etc``: each is refused at
load (``zerowatt check`` and ``up``, exit 2) naming the manifest key and the path it resolves to.
Staged copies read only files that pass that check, and a directory mount copied for its exclusions
takes only files that stay inside the mounted directory. A symlink inside a directory mounted as is
is left to the preopen: WASI in wasmtime resolves guest paths inside the preopened directory
(cap-std) and refuses links that are absolute or climb out of it, including links made after start
(``tests/host/test_files_sandbox.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from zerowatt.errors import ValidationError
from zerowatt.wasm.model import Preopen


@dataclass(frozen=True, slots=True)
class GlobFiles:
    """A ``files`` string: a glob relative to the manifest directory, mounted at the same relative path."""

    pattern: str
    where: str


@dataclass(frozen=True, slots=True)
class MappedFiles:
    """A ``files`` table: ``source`` (file or directory, relative to the manifest) at ``destination``."""

    source: str
    destination: str
    where: str


FilesEntry = GlobFiles | MappedFiles


def _relative_pattern(pattern: str, where: str) -> str:
    pure = PurePosixPath(pattern)
    if not pattern or pure.is_absolute() or ".." in pure.parts:
        raise ValidationError(
            where, f"expected a glob relative to the manifest directory without '..', got {pattern!r}"
        )
    return pattern


def _guest_path(destination: str, where: str) -> PurePosixPath:
    pure = PurePosixPath(destination)
    if not pure.is_absolute() or ".." in pure.parts:
        raise ValidationError(
            where, f"expected an absolute guest path such as '/static' for destination, got {destination!r}"
        )
    return pure


def _confined(path: Path, root: Path, where: str, what: str, area: str = "the app directory") -> Path:
    """``path`` with symlinks resolved, if it lies inside ``root`` (resolved); else a ValidationError.

    ``what`` names the path as the manifest wrote it (or the glob match) and ``area`` names ``root``.
    """
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # Python 3.11 raises RuntimeError for a symlink loop
        raise ValidationError(where, f"{what} cannot be resolved: {exc}") from None
    if not resolved.is_relative_to(root):
        raise ValidationError(
            where,
            f"{what} resolves to {resolved}, outside {area} {root}; "
            "expected every files source to stay inside the app directory after resolving symlinks",
        )
    return resolved


def _excluded(root: Path, patterns: Sequence[str], where: str) -> set[Path]:
    """Resolved paths matched by ``exclude_files``; a matched directory excludes everything under it."""
    excluded: set[Path] = set()
    for pattern in patterns:
        excluded.update(p.resolve() for p in root.glob(_relative_pattern(pattern, where)))
    return excluded


def _is_excluded(path: Path, excluded: set[Path]) -> bool:
    return bool(excluded) and (path in excluded or any(parent in excluded for parent in path.parents))


def _stage(staged: dict[PurePosixPath, Path], cache_dir: Path) -> Path:
    """Copy ``guest path → host file`` into a content-keyed directory under ``cache_dir``; return it."""
    digest = hashlib.sha256()
    for guest, host in sorted(staged.items()):
        st = host.stat()
        digest.update(f"{guest}\0{host}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    root = cache_dir / "files"
    final = root / digest.hexdigest()[:24]
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        for guest, host in staged.items():
            target = tmp / guest.relative_to("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(host, target)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():  # not a concurrent loader that got there first: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def resolve_files(
    entries: Sequence[FilesEntry],
    exclude: Sequence[str],
    manifest_dir: Path,
    cache_dir: Path,
    component_where: str,
) -> tuple[Preopen, ...]:
    """Turn ``files`` entries into preopens (staging what must be staged); errors name the entry.

    ``component_where`` is ``"<file>: component.<id>"``, for errors about the lists as a whole.
    """
    excluded = _excluded(manifest_dir, exclude, f"{component_where}.exclude_files")
    direct: list[Preopen] = []
    staged: dict[PurePosixPath, Path] = {}

    def stage_file(guest: PurePosixPath, host: Path, where: str) -> None:
        previous = staged.get(guest)
        if previous is not None and previous != host:
            raise ValidationError(where, f"guest path {str(guest)!r} is already mapped to {previous}")
        staged[guest] = host

    root = manifest_dir.resolve()
    for entry in entries:
        if isinstance(entry, GlobFiles):
            pattern = _relative_pattern(entry.pattern, entry.where)
            found: set[Path] = set()
            for hit in manifest_dir.glob(pattern):
                _confined(hit, root, entry.where, f"{str(hit.relative_to(manifest_dir))!r} (matched by {pattern!r})")
                if hit.is_dir():  # a directory stands for every file under it
                    found.update(hit.rglob("*"))
                else:
                    found.add(hit)
            matches: list[tuple[Path, Path]] = []
            for path in sorted(found):
                shown = f"{str(path.relative_to(manifest_dir))!r} (matched by {pattern!r})"
                resolved = _confined(path, root, entry.where, shown)
                if resolved.is_file() and not _is_excluded(resolved, excluded):
                    matches.append((path, resolved))
            if not matches:
                raise ValidationError(entry.where, f"glob {pattern!r} matches no files under {manifest_dir}")
            for match, resolved in matches:
                stage_file(PurePosixPath("/") / match.relative_to(manifest_dir).as_posix(), resolved, entry.where)
            continue
        guest = _guest_path(entry.destination, f"{entry.where}.destination")
        where = f"{entry.where}.source"
        if not entry.source or PurePosixPath(entry.source).is_absolute():
            raise ValidationError(where, f"expected a source path relative to the manifest, got {entry.source!r}")
        source = _confined(manifest_dir / entry.source, root, where, f"source {entry.source!r}")
        if source.is_file():
            stage_file(guest, source, where)
        elif source.is_dir():
            if any(p.is_relative_to(source) for p in excluded):
                # Copied file by file: only files that stay inside the mounted directory, as a mount would give.
                for path in sorted(source.rglob("*")):
                    shown = f"{str(path.relative_to(source))!r} under source {entry.source!r}"
                    resolved = _confined(path, source, where, shown, "the mounted directory")
                    if resolved.is_file() and not _is_excluded(resolved, excluded):
                        stage_file(guest / path.relative_to(source).as_posix(), resolved, where)
            else:
                if any(p.guest_path == str(guest) for p in direct):
                    raise ValidationError(f"{entry.where}.destination", f"destination {str(guest)!r} is mounted twice")
                direct.append(Preopen(host_path=source, guest_path=str(guest)))
        else:
            raise ValidationError(where, f"source {entry.source!r} not found (looked for {source})")

    for guest in staged:
        for mount in direct:
            if guest.is_relative_to(mount.guest_path):
                raise ValidationError(
                    f"{component_where}.files",
                    f"file {str(guest)!r} falls inside the directory mounted at {mount.guest_path!r}; "
                    "expected files and directory mounts not to overlap",
                )
    if not staged:
        return tuple(direct)
    return (Preopen(host_path=_stage(staged, cache_dir), guest_path="/"), *direct)


def _close_all(fds: tuple[int, ...]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _moved(preopen: Preopen, where: str, now: str) -> ValidationError:
    return ValidationError(
        where,
        f"the directory mounted at {preopen.guest_path} ({preopen.host_path}) now resolves to {now}; "
        "expected it unchanged since the manifest was loaded (no symlinks)",
    )


class PinnedPreopens:
    """The component's preopened directories held open, named by ``/proc/self/fd/<n>`` paths.

    The load-time rule checks paths. If whoever can write the app directory later swaps a mounted
    directory for a symlink to ``/etc``, the same path leads there. Opening each directory with
    ``O_PATH | O_NOFOLLOW`` and checking the descriptor against the resolved path the loader verified
    refuses such a swap; reading through the descriptor's ``/proc`` path then reads exactly the
    directory that was checked. The wasi:http executor copies its mounts this way at every start.
    (The WAGI executor still preopens by path at every request: see "Security model" in docs/host.md.)
    Without ``/proc`` the plain paths are used. :meth:`close` (or garbage collection) releases them.
    """

    def __init__(self, preopens: Sequence[Preopen], where: str) -> None:
        fds: list[int] = []
        paths: list[tuple[str, str]] = []
        proc = os.path.isdir("/proc/self/fd")
        try:
            for preopen in preopens:
                if not proc:
                    paths.append((str(preopen.host_path), preopen.guest_path))
                    continue
                flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
                try:
                    fd = os.open(preopen.host_path, flags)
                except OSError as exc:
                    if os.path.islink(preopen.host_path):
                        raise _moved(preopen, where, os.path.realpath(preopen.host_path)) from None
                    raise ValidationError(
                        where, f"cannot open the directory mounted at {preopen.guest_path}: {exc}"
                    ) from None
                fds.append(fd)
                actual = os.readlink(f"/proc/self/fd/{fd}")
                if actual != str(preopen.host_path):
                    raise _moved(preopen, where, actual)
                paths.append((f"/proc/self/fd/{fd}", preopen.guest_path))
        except BaseException:
            _close_all(tuple(fds))
            raise
        self.paths: tuple[tuple[str, str], ...] = tuple(paths)  # (host path to open, guest path)
        self._finalizer = weakref.finalize(self, _close_all, tuple(fds))

    def close(self) -> None:
        self._finalizer()
