"""Results store: one SQLite file, one row per finished run, keyed by the run's configuration hash.

Crash safety: the run key is the PRIMARY KEY and every row is written in its own transaction (WAL journal,
synchronous=FULL) by the parent process only, so a sweep killed at any moment (SIGKILL included) leaves every
finished row intact and no partial one; rerunning skips the finished keys (no duplicate, no lost row).
Failed runs are logged in a separate ``failures`` table and retried on the next run.
Readers (``rhm report``) may open the store while a sweep writes it: WAL lets both proceed, and reads inside
``with store.snapshot():`` all see one committed state (one read transaction).

Tables: ``runs`` (results), ``sweep_keys`` (which keys belong to which sweep), ``failures``, ``meta``
(name -> JSON, e.g. the summary of ``rhm reproduce``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import json
import math
import socket
import sqlite3
import subprocess
import urllib.parse
from pathlib import Path

from ..spec import spec_columns
from .config import RunConfig, canonical_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    sweep TEXT,
    learner TEXT,
    label TEXT,
    v INTEGER, m INTEGER, s INTEGER, L INTEGER, n_classes INTEGER, rules TEXT, grammar_seed INTEGER,
    nc_m_L REAL, p_max REAL,
    train_size INTEGER, test_size INTEGER, seed INTEGER,
    test_accuracy REAL, test_error REAL, fit_seconds REAL, wall_seconds REAL,
    config TEXT NOT NULL, metrics TEXT, info TEXT,
    version TEXT, git_rev TEXT, host TEXT, finished_at TEXT
    {spec_columns}
);
CREATE TABLE IF NOT EXISTS sweep_keys (sweep TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (sweep, key));
CREATE TABLE IF NOT EXISTS failures (key TEXT NOT NULL, sweep TEXT, error TEXT, at TEXT);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
"""

# The grammar's other spec fields (zipf, zipf_levels, noise, s0, ...): one column each, named as the field, added
# at the end of the table (ALTER TABLE ADD COLUMN on a store written before the field existed, see _migrate).
SPEC_COLUMNS = spec_columns()
SCHEMA = SCHEMA.replace("{spec_columns}", "".join(f", {name} {sql}" for name, sql, _ in SPEC_COLUMNS))
COLUMNS = ["key", "task", "sweep", "learner", "label", "v", "m", "s", "L", "n_classes", "rules", "grammar_seed",
           "nc_m_L", "p_max", "train_size", "test_size", "seed", "test_accuracy", "test_error", "fit_seconds",
           "wall_seconds", "config", "metrics", "info", "version", "git_rev", "host", "finished_at",
           *(name for name, _, _ in SPEC_COLUMNS)]
JSON_COLUMNS = ("config", "metrics", "info")
_CHUNK = 500  # keys per IN (...) query (SQLite limits the number of bound variables)


@functools.lru_cache(maxsize=1)
def git_revision() -> str:
    """The git revision of the rhm source tree (``unknown`` outside a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def _version() -> str:
    from .. import __version__

    return __version__


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _sql_value(x):
    """A spec field as a store cell: a tuple (zipf_levels) as its JSON list, anything else as it is."""
    return json.dumps(list(x)) if isinstance(x, tuple) else x


def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# The tables (and the runs columns) that make a SQLite file an rhm store; anything else is refused unchanged.
STORE_TABLES = ("runs", "sweep_keys", "failures", "meta")


def _ro_connect(path: Path) -> sqlite3.Connection:
    """A read-only connection (SQLite URI mode=ro): nothing done through it can change a byte of the file."""
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)


def check_store_file(path) -> bool:
    """ValueError unless `path` is an rhm results store; False when it is missing or an empty file (a store
    may be created there), True when it is one. Reads through a read-only connection only."""
    path = Path(path)
    if not path.exists():
        return False
    if not path.is_file():
        raise ValueError(f"store={str(path)!r} is not a regular file")
    if path.stat().st_size == 0:
        return False
    try:
        conn = _ro_connect(path)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            cols = {r[1] for r in conn.execute("PRAGMA table_info(runs)")} if "runs" in tables else set()
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise ValueError(f"store={str(path)!r} is not an rhm results store (not a SQLite database: {err})") from None
    missing = [t for t in STORE_TABLES if t not in tables]
    if missing or not set(COLUMNS) - {name for name, _, _ in SPEC_COLUMNS} <= cols:  # older stores lack spec columns
        what = f"lacks the tables {', '.join(missing)}" if missing else "its runs table has other columns"
        raise ValueError(f"store={str(path)!r} is not an rhm results store: it {what}"
                         + (f" (it holds {', '.join(sorted(tables))})" if tables else " (it holds no table)"))
    return True


class ResultStore:
    """A results store at `path` (created if missing). Use as a context manager or call ``close()``.

    A file that exists and is not an rhm store (another program's SQLite, any other file) is refused with a
    ValueError before anything is written to it. ``readonly=True`` opens an existing store read-only (SQLite
    URI mode=ro) for reports: the writes then raise, and an empty or missing file is refused.
    """

    def __init__(self, path, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if str(self.path.parent) and not self.path.parent.exists():
            raise ValueError(f"store={str(self.path)!r}: directory {str(self.path.parent)!r} does not exist")
        is_store = check_store_file(self.path)
        if readonly and not is_store:
            raise ValueError(f"store={str(self.path)!r} " + ("is an empty file, not an rhm results store"
                                                            if self.path.exists() else "does not exist"))
        try:
            if readonly:
                self.conn = _ro_connect(self.path)
                self._spec_view()
                self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()
                return
            self.conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.executescript(SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as err:
            raise ValueError(f"store={str(self.path)!r} is not a usable SQLite results store: {err}") from None

    def _missing_spec_columns(self) -> list[tuple[str, str, str]]:
        """(name, SQL type, SQL value from the row's config JSON) of each spec column this store lacks (a store
        written by an older rhm); a field absent from the JSON is at its default."""
        have = {r[1] for r in self.conn.execute("PRAGMA table_info(runs)")}
        out = []
        for name, sql, default in SPEC_COLUMNS:
            if name not in have:
                value = f"json_extract(config, '$.grammar.{name}')"
                if default is not None:  # rows of tasks without a grammar (boolean) keep NULL
                    value = f"CASE WHEN json_extract(config, '$.grammar.v') IS NULL THEN NULL " \
                            f"ELSE COALESCE({value}, {default!r}) END"
                out.append((name, sql, value))
        return out

    def _migrate(self) -> None:
        """Add the spec columns an older store lacks, filled from each row's config JSON, in one transaction."""
        todo = [q for name, sql, value in self._missing_spec_columns()
                for q in ((f"ALTER TABLE runs ADD COLUMN {name} {sql}", ()), (f"UPDATE runs SET {name} = {value}", ()))]
        if todo:
            self._tx(todo)

    def _spec_view(self) -> None:
        """Read-only: an older store's missing spec columns computed by a TEMP view that shadows `runs` (the temp
        schema lives outside the file, which is never written)."""
        cols = self._missing_spec_columns()
        if cols:
            extra = ", ".join(f"{value} AS {name}" for name, _, value in cols)
            self.conn.execute(f"CREATE TEMP VIEW runs AS SELECT r.*, {extra} FROM main.runs AS r")

    # ----------------------------------------------------------------------------------------- admin
    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def _write(self):
        """A write transaction (BEGIN IMMEDIATE): the cursor inside; COMMIT on success, ROLLBACK on any error."""
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def _tx(self, sql_params: list[tuple[str, tuple]]):
        with self._write() as cur:
            for sql, params in sql_params:
                cur.execute(sql, params)

    # ------------------------------------------------------------------------------------------ writes
    def register(self, sweep: str, keys) -> None:
        """Record that `keys` belong to `sweep` (one transaction)."""
        keys = list(keys)
        with self._write() as cur:
            cur.executemany("INSERT OR IGNORE INTO sweep_keys(sweep, key) VALUES (?, ?)", [(sweep, k) for k in keys])

    def put(self, config: RunConfig, result: dict) -> bool:
        """Write one finished run atomically; False if its key was already there (then nothing changes)."""
        spec = config.spec if config.grammar else None
        g = spec.to_dict() if spec else {}
        row = {
            "key": config.key, "task": config.task, "sweep": config.sweep, "learner": config.learner,
            "label": config.label, "v": g.get("v"), "m": g.get("m"), "s": g.get("s"), "L": g.get("L"),
            "n_classes": g.get("n_classes"), "rules": g.get("rules"), "grammar_seed": g.get("seed"),
            "nc_m_L": float(spec.nc_m_L) if spec else None, "p_max": float(spec.num_inputs) if spec else None,
            **{name: (_sql_value(getattr(spec, name)) if spec else None) for name, _, _ in SPEC_COLUMNS},
            "train_size": config.train_size, "test_size": config.test_size, "seed": config.seed,
            "test_accuracy": _num(result.get("test_accuracy")), "test_error": _num(result.get("test_error")),
            "fit_seconds": _num(result.get("fit_seconds")), "wall_seconds": _num(result.get("wall_seconds")),
            "config": canonical_json(config.to_dict()), "metrics": canonical_json(result.get("metrics") or {}),
            "info": canonical_json(result.get("info") or {}), "version": _version(), "git_rev": git_revision(),
            "host": socket.gethostname(), "finished_at": _now(),
        }
        with self._write() as cur:
            cur.execute(f"INSERT OR IGNORE INTO runs({','.join(COLUMNS)}) VALUES ({','.join('?' * len(COLUMNS))})",
                        [row[c] for c in COLUMNS])
            added = cur.rowcount == 1
            if config.sweep:
                cur.execute("INSERT OR IGNORE INTO sweep_keys(sweep, key) VALUES (?, ?)", (config.sweep, config.key))
        return added

    def put_failure(self, config: RunConfig, error: str) -> None:
        self._tx([("INSERT INTO failures(key, sweep, error, at) VALUES (?, ?, ?, ?)",
                   (config.key, config.sweep, str(error)[:4000], _now()))])

    def set_meta(self, name: str, value) -> None:
        self._tx([("INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)", (name, canonical_json(value)))])

    # ------------------------------------------------------------------------------------------- reads
    @contextlib.contextmanager
    def snapshot(self):
        """Reads inside see one committed state of the store, even while another process writes it."""
        self.conn.execute("BEGIN")  # deferred: the first SELECT pins the WAL snapshot until COMMIT
        try:
            yield self
        finally:
            self.conn.execute("COMMIT")

    def get_meta(self, name: str, default=None):
        row = self.conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else default

    def _in_chunks(self, sql: str, keys, params=()):
        """Rows of `sql` (which ends in ``key IN ({})``) for every key, in chunks of SQLite's variable limit."""
        keys = list(keys)
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i:i + _CHUNK]
            yield from self.conn.execute(sql.format(",".join("?" * len(chunk))), [*params, *chunk])

    def finished_keys(self, keys=None) -> set[str]:
        if keys is None:
            return {r[0] for r in self.conn.execute("SELECT key FROM runs")}
        return {r[0] for r in self._in_chunks("SELECT key FROM runs WHERE key IN ({})", keys)}

    def test_errors(self, keys) -> dict:
        """{key: test_error} of the finished runs among `keys` (a WHERE key IN (...) query)."""
        return dict(self._in_chunks("SELECT key, test_error FROM runs WHERE key IN ({})", keys))

    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def sweeps(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT sweep FROM sweep_keys ORDER BY sweep")]

    def failures(self) -> list[dict]:
        return [dict(zip(("key", "sweep", "error", "at"), r))
                for r in self.conn.execute("SELECT key, sweep, error, at FROM failures ORDER BY rowid")]

    def rows(self, sweep: str | None = None, task: str | None = None, keys=None) -> list[dict]:
        """Finished runs as dicts (JSON columns parsed), optionally only those of a sweep / task / key set
        (every filter is a SQL condition)."""
        sql = f"SELECT {','.join('r.' + c for c in COLUMNS)} FROM runs r"
        where, params = [], []
        if sweep is not None:
            sql += " JOIN sweep_keys k ON k.key = r.key"
            where.append("k.sweep = ?")
            params.append(sweep)
        if task is not None:
            where.append("r.task = ?")
            params.append(task)
        if keys is not None:
            where.append("r.key IN ({})")
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.rowid"
        raw = (self._in_chunks(sql, keys, params) if keys is not None
               else self.conn.execute(sql, params))
        out = []
        for r in raw:
            d = dict(zip(COLUMNS, r))
            for c in JSON_COLUMNS:
                d[c] = json.loads(d[c]) if d[c] else {}
            if sweep is not None:
                d["sweep"] = sweep
            out.append(d)
        return out

    # ------------------------------------------------------------------------------------------ export
    def to_pandas(self, sweep: str | None = None, task: str | None = None, json_as_text: bool = False):
        """A pandas DataFrame of the finished runs (config/metrics/info as dicts, or JSON text)."""
        import pandas as pd

        rows = self.rows(sweep=sweep, task=task)
        if json_as_text:
            for d in rows:
                for c in JSON_COLUMNS:
                    d[c] = canonical_json(d[c])
        return pd.DataFrame(rows, columns=COLUMNS)

    def to_csv(self, path, sweep: str | None = None) -> int:
        from .._io import atomic_path

        df = self.to_pandas(sweep=sweep, json_as_text=True)
        with atomic_path(path, suffix=".tmp.csv") as tmp:
            df.to_csv(tmp, index=False)
        return len(df)

    def to_parquet(self, path, sweep: str | None = None) -> int:
        from ..validation import require

        require("pyarrow", "Parquet export", "parquet")  # pandas needs it for Parquet
        from .._io import atomic_path

        df = self.to_pandas(sweep=sweep, json_as_text=True)
        with atomic_path(path, suffix=".tmp.parquet") as tmp:
            df.to_parquet(tmp, index=False)
        return len(df)
