"""``python -m rhm`` is the ``rhm`` command."""

from .cli import app

app(prog_name="rhm")
