"""docs/architecture.md stays true: every package file listed once, no path or module that does not exist.

The convention the document follows (stated in it): each file under ``src/zerowatt/`` is one list item that
starts with its path relative to ``src/zerowatt/`` in backticks (``- `wasm/wagi/cgi.py` — ...``). Elsewhere a
backticked file or folder path is read relative to ``src/zerowatt/``, to the subpackage of the enclosing
``## `sub/` ...`` section, or to the repository root (``docs/``, ``tests/``, ``benchmarks/``...), and must
exist in one of them; ``src/zerowatt/...`` paths and dotted ``zerowatt.x.y`` names must exist too.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "zerowatt"
DOC = ROOT / "docs" / "architecture.md"

#: What counts as a file of the package (source, native source, shipped data, notices, the typing marker).
SUFFIXES = frozenset({".py", ".c", ".csv", ".md", ".typed"})

ENTRY = re.compile(r"^\s*- `([^`]+)`")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FILE_PATH = re.compile(r"^[\w.-]+(?:/[\w.-]+)*\.(?:py|c|csv|md|typed)$")
DIR_PATH = re.compile(r"^[\w.-]+(?:/[\w.-]+)*/$")
DOTTED = re.compile(r"\bzerowatt(?:\.\w+)+")
SECTION = re.compile(r"^## .*?`([\w/]+/)`")


def package_files(package: Path) -> set[str]:
    """Every file of the package that the document must list, as a path relative to the package."""
    return {
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts
    }


def listed_files(doc: str) -> list[str]:
    """The file index: list items whose first code span is a file path, in document order."""
    return [m.group(1) for line in doc.splitlines() if (m := ENTRY.match(line)) and FILE_PATH.match(m.group(1))]


def index_problems(doc: str, files: set[str]) -> list[str]:
    """Files not listed, listed twice, or listed but absent from the package."""
    counts = Counter(listed_files(doc))
    problems = [f"not listed: {name}" for name in sorted(files - counts.keys())]
    problems += [f"listed {n} times: {name}" for name, n in sorted(counts.items()) if n > 1]
    problems += [f"listed but no such file: {name}" for name in sorted(counts.keys() - files)]
    return problems


def _module_names(module: Path) -> set[str]:
    """Top-level names a module defines or imports (what ``zerowatt.mod.Name`` may refer to)."""
    names: set[str] = set()
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def dotted_exists(name: str, package: Path) -> bool:
    """``zerowatt.a.b`` is a package or module under ``package``, or a top-level name of one (``.C.attr``: ``C``)."""
    here = package
    for part in name.split(".")[1:]:
        if here.is_file():
            return part in _module_names(here)
        if (here / part).is_dir():
            here = here / part
        elif (here / f"{part}.py").is_file():
            here = here / f"{part}.py"
        else:
            return (here / "__init__.py").is_file() and part in _module_names(here / "__init__.py")
    return True


def path_problems(doc: str, package: Path, repo: Path) -> list[str]:
    """Backticked paths and dotted module names the document uses that do not exist."""
    problems: list[str] = []
    section: Path | None = None
    for number, line in enumerate(doc.splitlines(), 1):
        if line.startswith("## "):
            heading = SECTION.match(line)
            section = package / heading.group(1) if heading else None
        for span in CODE_SPAN.findall(line):
            if span.startswith("src/zerowatt/"):
                if not (repo / span).exists():
                    problems.append(f"line {number}: no such path: {span}")
            elif FILE_PATH.match(span) or DIR_PATH.match(span):
                bases = [package, repo] + ([section] if section is not None else [])
                if not any((base / span).exists() for base in bases):
                    problems.append(f"line {number}: no such file or folder: {span}")
        for name in DOTTED.findall(line):
            if not dotted_exists(name, package):
                problems.append(f"line {number}: no such module or name: {name}")
    return problems


# -- the real document --------------------------------------------------------------------------------


def test_every_package_file_is_listed_exactly_once() -> None:
    files = package_files(PACKAGE)
    assert {Path(name).suffix for name in files} >= {".py", ".c", ".csv", ".md"}  # the walk sees more than code
    assert index_problems(DOC.read_text(encoding="utf-8"), files) == []


def test_every_path_and_module_named_exists() -> None:
    assert path_problems(DOC.read_text(encoding="utf-8"), PACKAGE, ROOT) == []


def test_one_diagram() -> None:
    assert DOC.read_text(encoding="utf-8").count("```") == 2


# -- the checks themselves catch what they are for ---------------------------------------------------------


def _tree(tmp: Path) -> tuple[Path, Path]:
    repo = tmp / "repo"
    package = repo / "src" / "zerowatt"
    (package / "kube" / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Root."""\n')
    (package / "kube" / "__init__.py").write_text("")
    (package / "kube" / "decide.py").write_text("def decide() -> None: ...\nLIMIT = 3\n")
    (package / "kube" / "data.csv").write_text("a\n")
    (package / "kube" / "__pycache__" / "decide.cpython-312.pyc").write_bytes(b"")
    (package / "kube" / "native.so").write_bytes(b"")
    (repo / "docs").mkdir()
    (repo / "docs" / "x.md").write_text("")
    return repo, package


def test_index_problems_names_missing_duplicate_and_unknown_files(tmp_path: Path) -> None:
    _, package = _tree(tmp_path)
    files = package_files(package)
    assert files == {"__init__.py", "kube/__init__.py", "kube/decide.py", "kube/data.csv"}
    complete = "- `__init__.py` — root\n- `kube/__init__.py` — m\n- `kube/decide.py` — d\n  - `kube/data.csv` — c\n"
    assert index_problems(complete, files) == []
    doc = "- `__init__.py` — root\n- `kube/decide.py` — d\n- `kube/decide.py` — again\n- `kube/gone.py` — old\n"
    assert index_problems(doc, files) == [
        "not listed: kube/__init__.py",
        "not listed: kube/data.csv",
        "listed 2 times: kube/decide.py",
        "listed but no such file: kube/gone.py",
    ]
    assert index_problems("Prose naming `kube/data.csv` is not an entry.\n" + complete, files) == []


def test_path_problems_names_stale_paths_and_modules(tmp_path: Path) -> None:
    repo, package = _tree(tmp_path)
    good = (
        "## `kube/` — section\n"
        "`decide.py` and `kube/decide.py`, `kube/`, `src/zerowatt/kube/data.csv`, see `docs/x.md`;\n"
        "zerowatt.kube.decide, `zerowatt.kube.decide.decide`, zerowatt.kube.decide.LIMIT, zerowatt.kube.\n"
    )
    assert path_problems(good, package, repo) == []
    bad = (
        "## `kube/` — section\n"
        "`wire.py` `src/zerowatt/kube/old.py` `wasm/` `docs/gone.md`\n"
        "zerowatt.kube.gone and zerowatt.kube.decide.missing\n"
        "## Other\n"
        "`decide.py`\n"
    )
    assert path_problems(bad, package, repo) == [
        "line 2: no such file or folder: wire.py",
        "line 2: no such path: src/zerowatt/kube/old.py",
        "line 2: no such file or folder: wasm/",
        "line 2: no such file or folder: docs/gone.md",
        "line 3: no such module or name: zerowatt.kube.gone",
        "line 3: no such module or name: zerowatt.kube.decide.missing",
        "line 5: no such file or folder: decide.py",
    ]
