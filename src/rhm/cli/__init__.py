"""Command line: ``rhm info | sample | train | learners | boolean | sweep | report | reproduce``.

Thin: parse options, call the library, print. One module per command group, each registering its commands on
the shared typer ``app`` of :mod:`rhm.cli._common` (which imports none of them, so there is no import cycle):
``grammar`` (info, sample), ``train`` (train, learners), ``boolean``, ``experiments`` (sweep, report, reproduce).
Errors from bad input print one line ``error: ...`` on stderr and exit with status 1, writing nothing.
``--json`` prints exactly one JSON object on stdout; human-readable output goes to stderr.
"""

from . import boolean, experiments, grammar, train  # noqa: F401  (each registers its commands on `app`)
from ._common import CliError, app


def main():  # pragma: no cover
    app()


__all__ = ["CliError", "app", "main"]
