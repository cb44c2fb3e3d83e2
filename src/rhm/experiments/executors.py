"""Executors run :func:`rhm.experiments.tasks.execute` on many configurations; the parent writes the results.

- :class:`LocalExecutor` (default): a process pool over the available cores (spawned workers, 1 torch thread
  each). ``workers=0`` runs in the calling process (debugging).
- :class:`RayExecutor`: Ray tasks (``address`` = None for a local instance, ``"auto"`` or ``"HOST:PORT"`` for a
  cluster), retried ``max_retries`` times when a worker or its node dies. Ray is imported only here, only when
  used. ``connect()`` fails within seconds, naming the address, when no cluster answers there (Ray itself would
  wait minutes), so a command can connect before it creates its store (docs/cluster.md).

Both yield ``(config_dict, result_or_exception)`` as runs finish; the runner (:mod:`rhm.experiments.runner`)
stores each result as it arrives (one transaction per row), so killing the parent loses at most the runs in flight.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import socket
import sys
import threading
import time
import traceback
from typing import Iterator

from ..validation import check_int, require
from .sweep import import_modules
from .tasks import execute


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


# How often a worker's watchdog checks that its parent still lives (seconds).
_WATCHDOG_PERIOD = 0.5


def _die_with_parent(parent_pid: int | None) -> None:
    """Make this worker exit soon after its parent dies, SIGKILL included (no orphan keeps a core busy).

    Linux: prctl(PR_SET_PDEATHSIG, SIGKILL) makes the kernel kill us with the parent. Everywhere (and in case the
    prctl is unavailable): a daemon thread polls os.getppid(), which changes when the parent is gone (we are
    re-parented to init or a subreaper), and then ends the process with os._exit.
    PDEATHSIG follows the *thread* that spawned the worker: the pool is started from the thread that first
    submits (the runner's main thread), which must outlive the pool.
    """
    if parent_pid is None:
        return
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)

    def watch():
        while True:
            time.sleep(_WATCHDOG_PERIOD)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="rhm-parent-watchdog", daemon=True).start()


def _init_worker(imports, sys_path, parent_pid=None):
    """Worker start: exit with the parent, one torch/BLAS thread, the parent's import path, the sweep's plugin
    modules."""
    _die_with_parent(parent_pid)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    for p in sys_path:
        if p not in sys.path:
            sys.path.append(p)
    import torch

    torch.set_num_threads(1)
    # the variables above come too late for numpy: unpickling this function imported rhm, hence numpy, whose
    # OpenBLAS then started a thread per core (two workers on 2 cores ran 4 BLAS threads: SS1's quick grid took
    # 135 CPU-s instead of 78); threadpoolctl (a scikit-learn dependency) sets the loaded pools to one thread
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - scikit-learn brings it
        pass
    import_modules(imports)


class RunFailed(Exception):
    """A run raised; carries the worker's traceback text."""


def _guarded(config: dict):
    try:
        return execute(config)
    except Exception as err:  # the error travels back as text (exceptions may not pickle)
        raise RunFailed(f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}") from None


class LocalExecutor:
    """Process pool of `workers` spawned processes (default: the available cores)."""

    name = "local"

    def __init__(self, workers: int | None = None):
        workers = check_int("workers", workers, 0, none_ok=True)
        self.workers = available_cores() if workers is None else workers
        self._pool, self._pool_imports = None, None

    def run(self, configs: list[dict], imports=()) -> Iterator[tuple[dict, object]]:
        if not configs:
            return
        if self.workers == 0:
            for c in configs:
                try:
                    yield c, _guarded(c)
                except RunFailed as err:
                    yield c, err
            return
        pool = self._get_pool(imports)
        futures = {pool.submit(_guarded, c): c for c in configs}
        try:
            for fut in cf.as_completed(futures):
                c = futures[fut]
                try:
                    yield c, fut.result()
                except cf.process.BrokenProcessPool as err:  # a worker died: later calls get a fresh pool
                    self.close()
                    yield c, RunFailed(f"worker process died: {err}")
                except Exception as err:  # RunFailed
                    yield c, err
        finally:
            for fut in futures:
                fut.cancel()

    def _get_pool(self, imports):
        """One pool kept across calls (spawning workers and importing torch costs seconds)."""
        key = tuple(imports)
        if self._pool is not None and self._pool_imports != key:
            self.close()
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                                                initargs=(list(imports), list(sys.path), os.getpid()))
            self._pool_imports = key
        return self._pool

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _ray_task(config: dict, imports, sys_path):
    _init_worker(imports, sys_path)
    return _guarded(config)


def check_ray_address(address: str | None, timeout: float = 5.0) -> None:
    """ValueError naming `address` unless something listens there (HOST:PORT, or the cluster "auto" finds).

    ``ray.init(address=...)`` on a dead address retries for minutes; a TCP connect answers in <= `timeout` s.
    """
    if address is None or address == "local":
        return
    where = address
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address
        except ImportError:  # pragma: no cover - a Ray without this helper: let ray.init decide
            return
        try:
            where = canonicalize_bootstrap_address("auto")
        except ConnectionError as err:
            raise ValueError(f"address='auto': no Ray cluster found on this machine ({err})") from None
        if where is None:
            raise ValueError("address='auto': no Ray cluster found on this machine")
    host, _, port = where.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"address={address!r} must be 'auto' or HOST:PORT of a Ray cluster's head")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise ValueError(f"address={address!r}: no Ray cluster answers at {where} within {timeout:g} s ({err}); "
                         "start one with `ray start --head` or fix --address") from None


class RayExecutor:
    """Ray tasks, one CPU (and `num_gpus_per_task` GPUs) each; a task whose worker or node dies is retried on
    another node up to `max_retries` times (results are written by the driver only, so a retry never duplicates
    a row)."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None, max_retries: int = 3,
                 num_gpus_per_task: float = 0):
        self.address, self.num_cpus, self.max_retries = address, num_cpus, max_retries
        self.num_gpus_per_task = num_gpus_per_task

    def _ray(self):
        ray = require("ray", "--executor ray", "ray")
        if not ray.is_initialized():
            kwargs = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": False}
            check_ray_address(self.address)
            if self.address:
                kwargs["address"] = self.address
            elif self.num_cpus:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(**kwargs)
        gpus = ray.cluster_resources().get("GPU", 0) if self.num_gpus_per_task else 0
        if self.num_gpus_per_task > gpus:  # Ray would wait forever for a GPU that no node has
            raise ValueError(f"gpus_per_run={self.num_gpus_per_task:g} but the Ray cluster has {gpus:g} GPUs")
        return ray

    def connect(self) -> None:
        """Connect to the cluster (or start the local instance) now; ValueError naming the address if none answers."""
        self._ray()

    def run(self, configs: list[dict], imports=()) -> Iterator[tuple[dict, object]]:
        if not configs:
            return
        ray = self._ray()
        task = ray.remote(num_cpus=1, num_gpus=self.num_gpus_per_task, max_retries=self.max_retries,
                          retry_exceptions=False)(_ray_task)
        path = list(sys.path)
        pending = {task.remote(c, list(imports), path): c for c in configs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    c = pending.pop(ref)
                    try:
                        yield c, ray.get(ref)
                    except Exception as err:  # RayTaskError wrapping RunFailed, or WorkerCrashedError
                        yield c, RunFailed(str(err).strip().splitlines()[-1] if str(err).strip() else repr(err))
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)


def make_executor(name: str = "local", address: str | None = None, workers: int | None = None,
                  gpus_per_run: float = 0):
    """``local`` or ``ray``; ValueError naming the option otherwise."""
    if isinstance(gpus_per_run, bool) or not isinstance(gpus_per_run, (int, float)) or not 0 <= gpus_per_run < 1e6:
        raise ValueError(f"gpus_per_run={gpus_per_run!r} must be a number >= 0 (a fraction shares a GPU)")
    if name == "local":
        if address is not None:
            raise ValueError("--address applies only to --executor ray")
        if gpus_per_run:
            raise ValueError("--gpus-per-run applies only to --executor ray")
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(address=address, num_cpus=workers or None, num_gpus_per_task=gpus_per_run)
    raise ValueError(f"executor={name!r} must be 'local' or 'ray'")
