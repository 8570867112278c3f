"""``zerowatt --help`` without typer: the root help rendered from :data:`zerowatt.cli.commands.COMMANDS`.

Importing typer (with rich and click) costs ~0.25 s of CPU, most of ``zerowatt --help``; the root
help is a fixed text, so it is laid out here with the standard library: the same lines typer's rich
formatter prints without a terminal (boxes, columns, word wrap), without colours.
``tests/test_cli.py`` compares the two at several widths. Narrower than :data:`MIN_WIDTH` columns,
where rich starts folding words and re-flowing the usage line, :func:`render_root_help` gives up and
typer prints the help.
"""

from __future__ import annotations

import os
import textwrap

from zerowatt.cli.commands import COMMANDS, ROOT_HELP, VERSION_COMMAND_HELP, VERSION_OPTION_HELP

#: Below this width the plain layout would differ from rich's.
MIN_WIDTH = 60
#: The option rows as typer lays them out (name, short name, metavar), before the help column.
OPTION_ROWS = (
    (" --version          <bool>  ", VERSION_OPTION_HELP),
    (" --help     -h      <bool>  ", "Show this message and exit."),
)


def terminal_width() -> int:
    """The width rich would use: ``$TERMINAL_WIDTH`` (typer's), ``$COLUMNS``, the terminal, else 80."""
    for variable in ("TERMINAL_WIDTH", "COLUMNS"):
        value = os.environ.get(variable, "")
        if value.isascii() and value.isdigit() and int(value) > 0:
            return int(value)
    if os.environ.get("TERM", "").lower() in ("dumb", "unknown") and os.isatty(1):
        return 80
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd).columns or 80
        except OSError:
            continue
    return 80


def _panel(title: str, rows: list[tuple[str, str]], width: int) -> list[str]:
    """A rounded box ``title`` over ``width`` columns: each row's prefix, then its text word-wrapped."""
    inner = width - 2
    prefix_width = max(len(prefix) for prefix, _ in rows)
    text_width = inner - prefix_width - 1
    lines = [f"╭─ {title} " + "─" * (width - len(title) - 5) + "╮"]
    for prefix, text in rows:
        wrapped = textwrap.wrap(text, text_width, break_on_hyphens=False) or [""]
        for i, part in enumerate(wrapped):
            left = prefix.ljust(prefix_width) if i == 0 else " " * prefix_width
            lines.append("│" + (left + part).ljust(inner) + "│")
    lines.append("╰" + "─" * inner + "╯")
    return lines


def render_root_help(program: str, width: int | None = None) -> str | None:
    """The root help for ``program`` (``Usage: PROGRAM ...``) at ``width`` columns (default: the
    terminal's, as rich measures it); None where the layout would not match typer's."""
    width = terminal_width() if width is None else width
    usage = f" Usage: {program} [OPTIONS] COMMAND [ARGS]..."
    names = ["version", *COMMANDS]
    name_width = max(len(name) for name in names)
    summaries = [VERSION_COMMAND_HELP, *(entry.summary for entry in COMMANDS.values())]
    longest_word = max(len(word) for text in summaries for word in text.split())
    if width < MIN_WIDTH or len(usage) >= width or width - name_width - 6 < longest_word:
        return None
    blank = " " * width
    lines = [blank, usage.ljust(width), blank, f" {ROOT_HELP}".ljust(width), blank]
    lines += _panel("Options", list(OPTION_ROWS), width)
    rows = [(f" {name.ljust(name_width)}  ", text) for name, text in zip(names, summaries, strict=True)]
    lines += _panel("Commands", rows, width)
    return "\n".join(lines) + "\n\n"
