"""Reading tar archives from hostile sources in memory, never trusting a member's name or type.

Two uses: a Spin archive layer (:data:`~zerowatt.oci.manifest.ARCHIVE_LAYER`: a gzip'd tar of one files
mount, whose files the locked app names by digest; as Spin's ``unpack_archive_layer`` does, only the
contents matter, indexed by sha256, so no member path is ever used), and a URL app archive (a tar, gzip'd
or not, of an app directory with ``spin.toml`` at its root), whose paths are checked: regular files and
directories only (links, devices and FIFOs are refused), no absolute path, no ``..``. Both stop at a
byte and member budget counted from the headers before anything is read, so a decompression bomb costs
nothing. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from zerowatt.errors import ValidationError
from zerowatt.oci.locked import safe_relative_path
from zerowatt.oci.manifest import sha256_digest

#: Most members read from one archive.
MAX_MEMBERS = 100_000


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """A regular file of an app archive: its checked relative path, contents and whether it is executable."""

    path: str
    data: bytes
    executable: bool


def _members(data: bytes, where: str, max_bytes: int) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
    """Each member with its bytes (None for a non-file), in order, within the budget."""
    raw = io.BytesIO(data)
    stream: io.IOBase = gzip.GzipFile(fileobj=raw) if data[:2] == b"\x1f\x8b" else raw
    total = 0
    count = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                count += 1
                if count > MAX_MEMBERS:
                    raise ValidationError(where, f"archive has more than {MAX_MEMBERS} members")
                if not member.isfile():
                    yield member, None
                    continue
                total += member.size
                if total > max_bytes:
                    raise ValidationError(where, f"archive unpacks to more than {max_bytes} bytes (the size limit)")
                handle = tar.extractfile(member)
                content = handle.read() if handle is not None else b""
                if len(content) != member.size:
                    raise ValidationError(where, f"archive member {member.name!r} is truncated")
                yield member, content
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ValidationError(where, f"not a readable tar archive: {exc}") from None


def index_by_digest(data: bytes, *, where: str, max_bytes: int) -> dict[str, bytes]:
    """A Spin archive layer → ``{sha256 digest: file bytes}`` of its regular files (names ignored)."""
    return {sha256_digest(content): content for _, content in _members(data, where, max_bytes) if content is not None}


def merge_layers(layers: list[list[ArchiveFile]], *, where: str) -> list[ArchiveFile]:
    """Container image layers in order → the final files (a later layer's file replaces an earlier one).

    Whiteouts (``.wh.NAME``, a layer deleting what an earlier one added) are refused: an app image built
    ``FROM scratch`` has none, and honouring them is a way to smuggle paths past the checks.
    """
    merged: dict[str, ArchiveFile] = {}
    for layer in layers:
        for f in layer:
            if f.path.rsplit("/", 1)[-1].startswith(".wh."):
                raise ValidationError(f"{where}: {f.path!r}", "whiteout files are refused; build the app FROM scratch")
            merged[f.path] = f
    _no_file_directory_clash(set(merged), where)
    return list(merged.values())


def _no_file_directory_clash(paths: set[str], where: str) -> None:
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in paths:
                raise ValidationError(f"{where}: member {path!r}", "a file and a directory have the same name")


def app_files(data: bytes, *, where: str, max_bytes: int) -> list[ArchiveFile]:
    """A URL app archive → its files with checked paths; a link, device or unsafe name is refused."""
    files: list[ArchiveFile] = []
    seen: set[str] = set()
    for member, content in _members(data, where, max_bytes):
        name = member.name.removeprefix("./") if member.name not in (".", "./") else ""
        if member.isdir():
            if name:
                safe_relative_path(name.rstrip("/"), f"{where}: member {member.name!r}")
            continue
        if content is None:
            raise ValidationError(
                f"{where}: member {member.name!r}",
                "links, devices and FIFOs are refused; expected regular files and directories only",
            )
        path = safe_relative_path(name, f"{where}: member {member.name!r}")
        if path in seen:
            raise ValidationError(f"{where}: member {member.name!r}", "appears twice in the archive")
        seen.add(path)
        files.append(ArchiveFile(path=path, data=content, executable=bool(member.mode & 0o111)))
    _no_file_directory_clash(seen, where)
    return files
