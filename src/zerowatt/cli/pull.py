"""``zerowatt pull REF --to DIR``: a Spin app from an OCI registry or a digest-pinned URL, ready for ``up``.

The operator's pods run it as their ``pull`` init container (``zerowatt pull IMAGE --to /app``) with the
app's ``imagePullSecrets`` mounted under ``/var/run/zerowatt/pull-secrets/SECRET/.dockerconfigjson``.
Exit 2 for a bad reference, refused credentials, a missing artifact or content that fails its digest or
a safety check; exit 1 when the registry cannot be reached (worth retrying).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zerowatt.cli.common import console, esc, print_json, reports_errors


@reports_errors
def pull_command(
    reference: Annotated[
        str,
        typer.Argument(
            metavar="REF",
            help="OCI reference as `spin registry push` takes it (ghcr.io/org/app:1.0, …@sha256:…), "
            "or an https:// URL of an app tar(.gz) ending in #sha256=<hex>.",
        ),
    ],
    to: Annotated[
        Path, typer.Option("--to", help="Directory to write the app into (created; empty, or holding an earlier pull).")
    ],
    auth_file: Annotated[
        list[Path] | None,
        typer.Option("--auth-file", help="A .dockerconfigjson with registry credentials (repeatable; tried first)."),
    ] = None,
    pull_secrets: Annotated[
        Path,
        typer.Option(
            "--pull-secrets",
            envvar="ZEROWATT_PULL_SECRETS",
            help="Directory of mounted pull secrets: each SECRET/.dockerconfigjson is read.",
        ),
    ] = Path("/var/run/zerowatt/pull-secrets"),
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Plain HTTP to the registry (loopback registries always use it).")
    ] = False,
    max_size: Annotated[
        str, typer.Option("--max-size", help="Most bytes the artifact may have (layers, unpacked archives).")
    ] = "512Mi",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds for each HTTP operation.", min=0.1)] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print what was pulled as JSON.")] = False,
) -> None:
    """Fetch a Spin app from an OCI registry (as `spin registry push` wrote it) or a digest-pinned URL.

    Every digest is verified; DIR gets spin.toml, the Wasm and the static files, ready for `zerowatt up`.
    """
    from zerowatt.oci.pull import PullSettings, pull
    from zerowatt.wasm.manifest.parse import parse_byte_size

    settings = PullSettings(
        max_bytes=parse_byte_size(max_size, "--max-size"),
        insecure=insecure,
        timeout=timeout,
        auth_files=tuple(auth_file or ()),
        pull_secrets=pull_secrets,
    )
    result = pull(reference, to, settings)
    if as_json:
        print_json(result.as_dict())
    else:
        console.print(
            f"pulled {esc(result.reference)} ({result.digest}): app {esc(result.app)}, {result.files} files, "
            f"{result.bytes} bytes → {esc(result.manifest)}",
            highlight=False,
            soft_wrap=True,
        )


def register(app: typer.Typer) -> None:
    """Add ``zerowatt pull`` to the main app."""
    app.command("pull")(pull_command)
