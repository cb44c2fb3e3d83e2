"""Stand-ins shared by the experiment tests."""


class FakeStore:
    """What an experiment's analysis reads from a store: ``store.rows(sweep=...)``, here from a list of rows."""

    def __init__(self, rows):
        self._rows = rows

    def rows(self, sweep=None):
        return [r for r in self._rows if r["sweep"] == sweep]
