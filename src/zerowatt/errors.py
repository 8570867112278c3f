"""Errors shared by every subsystem.

The CLI maps :class:`UsageError` (and its subclasses) to exit code 2 and a one-paragraph message on
stderr; everything else is a bug or an environment failure and exits 1. Messages must name the file,
key, line or object at fault and say what was expected, because the user reads them, not a traceback.
"""

from __future__ import annotations


class ZerowattError(Exception):
    """Base class of errors zerowatt reports to the user without a traceback."""

    exit_code = 1


class UsageError(ZerowattError):
    """Bad input from the user: a flag, a manifest, a trace file, a schedule spec. Exit code 2."""

    exit_code = 2


class ValidationError(UsageError):
    """A file or value failed validation.

    ``where`` names the place (``"spin.toml: component.echo.source"``, ``"100_inv.csv:17"``); it is
    prefixed to the message so that every error says where it comes from.
    """

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


class SettingError(ValidationError):
    """A setting's value is wrong; ``key`` is the setting's name as the library knows it (``region``).

    Libraries name their settings, not a front end's spelling of them: the CLI reports the error under
    its own flag for the key (``--region``, see :func:`zerowatt.cli.common.flag`), a configuration file
    or an operator's resource would under its own field name. ``str()`` (for library callers) is
    ``"key: message"``.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(key, message)

    @property
    def key(self) -> str:
        """The setting's name: what :class:`ValidationError` calls ``where``."""
        return self.where
