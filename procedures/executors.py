"""Executors of a campaign's independent tasks: serial in-process, or on Dask.

A fan-out step of a campaign (see :mod:`xbarlab.procedures.campaign`) becomes one
:class:`Task` per child. A task opens its own chip from its backend spec, runs its
procedure (or a training run) against a temporary run store of its own, and returns
plain records (:func:`run_task`): the run's catalog fields and its ``(step_id, data)``
records, data being numpy arrays and JSON values, never a store handle. The campaign,
on the client, writes each result into the one run store as it arrives
(:func:`store_result`), so the SQLite file has a single writer whichever executor ran
the task.

- :class:`LocalExecutor` (``--executor local``, the default): the tasks one after
  another in this process, in campaign order.
- :class:`DaskExecutor` (``--executor dask`` or ``dask:ADDRESS``): without an address,
  a ``distributed.LocalCluster`` on loopback (processes, one single-threaded worker
  per core, HTTP on a free loopback port) that :meth:`DaskExecutor.close` shuts down; with one, a
  client of the scheduler at ``tcp://HOST:PORT``. Results are yielded as futures
  complete (``distributed.as_completed``). On a worker a task runs with BLAS/OpenMP
  and numba held to one thread, so one-process-per-core workers do not oversubscribe.

A task that raises comes back as a result with status "failed" and the error (and the
records it made before failing); a task whose worker died comes back the same way.

Stations: a task with a station (hardware steps) is submitted with the Dask resource
``station-NAME`` = 1. :func:`run_station_worker` (``xbarlab worker --scheduler ADDRESS
--station NAME --backend SPEC``) starts a worker holding that one resource, so such
tasks run only there and one at a time, and installs :class:`StationPlugin`, through
which a task without a backend spec of its own opens the station's chip.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xbarlab.errors import ConfigError

#: the pseudo-procedure of a training step (see :mod:`xbarlab.training.runs`)
TRAIN = "train"
#: name of the worker plugin that holds a station's name and backend spec
STATION_PLUGIN = "xbarlab-station"
#: what a station name may contain (it becomes part of a Dask resource name)
STATION_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
#: backend schemes of real hardware: several processes must never open one at once
HARDWARE_SCHEMES = ("bench", "board")
#: how long a station worker waits for its scheduler before giving up, in s
SCHEDULER_TIMEOUT_S = 60.0
#: executors by name, as ``--executor`` takes them
EXECUTORS = ("local", "dask", "dask:ADDRESS")


def station_resource(station: str) -> str:
    """The Dask worker resource of a station: ``station-NAME``."""
    return f"station-{station}"


def check_station_name(station: Any) -> str:
    """The station name, or ConfigError saying which characters are allowed."""
    if not isinstance(station, str) or not STATION_NAME.match(station):
        raise ConfigError(
            f"station {station!r} must be a name of letters, digits, '_', '.' or '-' "
            "(it names the Dask resource station-NAME of that station's worker)"
        )
    return station


@dataclass(frozen=True)
class Task:
    """One independent child of a campaign (picklable: it travels to a worker).

    index: the child's position in the campaign; label: readable name; procedure: a
    registry name or ``"train"``; values: its parameters (JSON values, already
    validated); backend: the chip spec, or None for the station worker's chip;
    station: pins the task to that station's worker (None: any worker).
    """

    index: int
    label: str
    procedure: str
    values: dict = field(hash=False)
    backend: str | None
    station: str | None = None

    @property
    def resources(self) -> dict[str, int] | None:
        return None if self.station is None else {station_resource(self.station): 1}


# -- running one task (in this process or on a worker) ------------------------------


def run_task(task: Task) -> dict:
    """Run ``task`` on its own chip; its run as plain records (see the module docstring).

    Returns a dict: procedure, parameters, backend, chip_info, seed, status
    ("completed" or "failed"), summary, error (None or "Type: message") and records
    (a list of ``(step_id, data)``).
    """
    from xbarlab.store import RunStore

    backend = task.backend
    with tempfile.TemporaryDirectory(prefix="xbarlab-task-") as tmp:
        with RunStore(Path(tmp) / "task.sqlite") as store:
            error = None
            try:
                if backend is None:
                    backend = station_backend(task.station)
                if task.procedure == TRAIN:
                    _train(task, backend, store)
                else:
                    _procedure(task, backend, store)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            return _collect(task, backend, store, error)


def _procedure(task: Task, backend: str, store) -> None:
    from xbarlab.chipdrivers import open_crossbar
    from xbarlab.procedures import registry
    from xbarlab.procedures.runner import Runner

    procedure = registry.get(task.procedure).from_values(task.values)
    with open_crossbar(backend) as xbar:
        Runner(store).run(procedure, xbar, backend=backend)


def _train(task: Task, backend: str, store) -> None:
    from xbarlab.training.runs import run_training  # training sits beside procedures

    v = task.values
    run_training(
        v["mode"], backend, epochs=v["epochs"], hidden=v["hidden"], seed=v["seed"], store=store
    )


def _collect(task: Task, backend: str | None, store, error: str | None) -> dict:
    runs = store.runs()
    if not runs:  # failed before its run was created (bad spec, chip refused the task)
        return failed_result(task, error or "the task created no run", backend=backend)
    info = runs[0]
    return {
        "procedure": info.procedure,
        "parameters": info.parameters,
        "backend": info.backend,
        "chip_info": info.chip_info,
        "seed": info.seed,
        "status": "failed" if error else info.status,
        "summary": info.summary,
        "error": error or info.error,
        "records": [(r.step_id, r.data) for r in store.records(info.run_id)],
    }


def failed_result(task: Task, error: str, *, backend: str | None = None) -> dict:
    """The result of a task that produced no run (or whose worker died)."""
    name = task.procedure if task.procedure != TRAIN else f"train-{task.values.get('mode')}"
    return {
        "procedure": name,
        "parameters": dict(task.values),
        "backend": backend or task.backend or f"station:{task.station}",
        "chip_info": {},
        "seed": None,
        "status": "failed",
        "summary": {},
        "error": error,
        "records": [],
    }


def _run_on_worker(task: Task) -> dict:
    """:func:`run_task` with BLAS/OpenMP and numba held to one thread (one worker per core)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        try:
            import numba

            numba.set_num_threads(1)
        except (ImportError, ValueError):  # pragma: no cover - numba is a dependency
            pass
        return run_task(task)


def _warm_up() -> None:
    """Import what tasks use, on every worker as the executor starts (part of start-up)."""
    import xbarlab.chipdrivers.emulated  # noqa: F401
    import xbarlab.procedures.registry  # noqa: F401
    import xbarlab.training.runs  # noqa: F401


def store_result(store, parent: str, result: dict) -> str:
    """Write a task's result as a child run of campaign ``parent``; return its id.

    The client's only writes for a task: the run, its records, its final status.
    """
    child = store.create_run(
        result["procedure"],
        result["parameters"],
        backend=result["backend"],
        chip_info=result["chip_info"],
        seed=result["seed"],
        parent=parent,
    )
    for step_id, data in result["records"]:
        store.add_record(child, step_id, data)
    store.set_status(child, result["status"], summary=result["summary"], error=result["error"])
    return child


# -- stations ----------------------------------------------------------------------


class StationPlugin:
    """Worker plugin holding the station's name and backend spec (``xbarlab worker``)."""

    name = STATION_PLUGIN

    def __init__(self, station: str, backend: str):
        self.station, self.backend = check_station_name(station), backend


def station_backend(station: str | None) -> str:
    """The backend spec of ``station``'s worker, for a task that gives none."""
    worker = None
    with contextlib.suppress(ImportError, ValueError):
        from distributed import get_worker

        worker = get_worker()
    plugin = None if worker is None else worker.plugins.get(STATION_PLUGIN)
    if plugin is None or plugin.station != station:
        raise ConfigError(
            f"a step on station {station!r} gives no backend and runs outside that station's "
            f"worker; give the step a backend: spec, or run with --executor dask:ADDRESS and "
            f"`xbarlab worker --scheduler ADDRESS --station {station} --backend SPEC`"
        )
    return plugin.backend


def run_station_worker(scheduler: str, station: str, backend: str) -> None:
    """Serve a station: a Dask worker with resource ``station-NAME`` = 1 until stopped.

    One thread, so the station's tasks run one at a time; tasks without a backend of
    their own open ``backend``. Returns when the scheduler closes the worker.
    """
    import asyncio

    from distributed import Worker
    from distributed.diagnostics.plugin import WorkerPlugin

    from xbarlab.chipdrivers import parse_spec

    check_station_name(station)
    parse_spec(backend)

    class _Plugin(StationPlugin, WorkerPlugin):
        pass

    async def serve() -> None:
        async with Worker(
            scheduler,
            nthreads=1,
            resources={station_resource(station): 1},
            plugins={_Plugin(station, backend)},
            name=f"station-{station}",
            death_timeout=SCHEDULER_TIMEOUT_S,
        ) as worker:
            await worker.finished()

    try:
        asyncio.run(serve())
    except TimeoutError:
        raise ConfigError(
            f"station {station}: no Dask scheduler answered at {scheduler!r} within "
            f"{SCHEDULER_TIMEOUT_S:g} s; start one with `dask scheduler` and give its "
            "tcp://HOST:PORT"
        ) from None


# -- executors ---------------------------------------------------------------------


class LocalExecutor:
    """The tasks one after another in this process, in the order given."""

    name = "local"
    startup_s = 0.0
    #: tasks that run at once
    slots = 1

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, dict]]:
        for task in tasks:
            yield task, run_task(task)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: Dask settings of the LocalCluster's workers. Dask's nannies start workers with
#: MALLOC_TRIM_THRESHOLD_=65536, which makes glibc hand freed memory back to the OS
#: at once; the emulator allocates and frees arrays of that size on every step, and
#: the page faults that follow made a mixed-precision training task 1.9x slower on a
#: worker than in a plain process (0.85 s -> 1.65 s). Unset, xbarlab's own thresholds
#: apply (xbarlab/allocator.py).
_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


class DaskExecutor:
    """Tasks on a Dask cluster: a LocalCluster of this machine, or the scheduler at ``address``.

    Parameters
    ----------
    address : str, optional
        ``tcp://HOST:PORT`` of a running scheduler; None starts a LocalCluster on
        127.0.0.1 (processes, ``n_workers`` single-threaded workers, HTTP on a free loopback port).
    n_workers : int, optional
        Workers of the LocalCluster (default: the machine's cores).

    ``startup_s`` is the wall time in s that starting or connecting took, including
    the import of xbarlab's task modules on every worker.
    """

    def __init__(self, address: str | None = None, *, n_workers: int | None = None):
        import dask
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        self.cluster = None
        self.address = address
        self.name = "dask" if address is None else f"dask:{address}"
        try:
            if address is None:
                with dask.config.set(_WORKER_CONFIG):
                    self.cluster = LocalCluster(
                        n_workers=n_workers or os.cpu_count() or 1,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address="127.0.0.1:0",  # a free loopback port, never 8787
                    )
                self.client = Client(self.cluster)
            else:
                self.client = Client(address, timeout="10s")
            self.client.run(_warm_up)
            workers = self.client.scheduler_info()["workers"].values()
            #: tasks that can run at once (threads of the workers at start-up)
            self.slots = max(sum(w["nthreads"] for w in workers), 1)
        except OSError as exc:
            self.close()
            raise ConfigError(
                f"cannot reach the Dask scheduler at {address!r} ({exc}); start one with "
                "`dask scheduler` and give its tcp://HOST:PORT, or use --executor dask for "
                "a cluster on this machine"
            ) from None
        except BaseException:
            self.close()
            raise
        self.startup_s = time.perf_counter() - t0

    def check(self, tasks: list[Task]) -> None:
        """Refuse, before anything runs, hardware tasks without a station (several
        workers could open one instrument at once) and stations no worker serves (their
        tasks would wait forever)."""
        from xbarlab.chipdrivers import parse_spec

        served = set()
        for worker in self.client.scheduler_info()["workers"].values():
            served |= set(worker.get("resources") or {})
        errors = []
        for task in tasks:
            if task.station is None:
                if parse_spec(task.backend).scheme in HARDWARE_SCHEMES:
                    errors.append(
                        f"{task.label} runs on {task.backend} but names no station; give the "
                        "step station: NAME and serve it with `xbarlab worker`"
                    )
            elif station_resource(task.station) not in served:
                errors.append(
                    f"{task.label}: no worker of {self.name} serves station {task.station!r}; "
                    f"start `xbarlab worker --scheduler ADDRESS --station {task.station} "
                    "--backend SPEC` on the station's PC"
                )
        if errors:
            raise ConfigError(
                f"campaign refused, nothing was run ({len(errors)} problem(s)): "
                + "; ".join(dict.fromkeys(errors))
            )

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, dict]]:
        """Submit every task; yield ``(task, result)`` as each finishes."""
        from distributed import as_completed

        futures = {
            self.client.submit(_run_on_worker, t, pure=False, resources=t.resources): t
            for t in tasks
        }
        try:
            for future in as_completed(futures):
                task = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # the worker died, or the task could not run
                    result = failed_result(task, f"{type(exc).__name__}: {exc}")
                yield task, result
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        """Close the client and, if this executor started it, the LocalCluster."""
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_executor(text: str | None) -> tuple[str, str | None]:
    """``("local", None)``, ``("dask", None)`` or ``("dask", ADDRESS)`` from ``--executor``
    text; ConfigError naming the accepted forms otherwise. Starts nothing."""
    text = "local" if text is None else str(text).strip()
    if text == "local":
        return "local", None
    scheme, sep, address = text.partition(":")
    if scheme == "dask":
        address = address.strip()
        if sep and not address:
            raise ConfigError("--executor dask: needs an address, e.g. dask:tcp://10.0.0.5:8786")
        if address and not _is_scheduler_address(address):
            raise ConfigError(
                f"--executor dask:{address}: a scheduler address is PROTOCOL://HOST:PORT, "
                "e.g. dask:tcp://10.0.0.5:8786"
            )
        return "dask", address or None
    raise ConfigError(
        f"unknown executor {text!r}; use local, dask (a cluster on this machine) or "
        "dask:tcp://HOST:PORT (a running Dask scheduler)"
    )


def _is_scheduler_address(address: str) -> bool:
    """PROTOCOL://HOST:PORT with a numeric port (what a Dask client can connect to)."""
    protocol, sep, location = address.partition("://")
    host, colon, port = location.rpartition(":")
    return bool(protocol and sep and host and colon and port.isdigit())


def make_executor(text: str | None) -> LocalExecutor | DaskExecutor:
    """The executor ``--executor`` names: ``local``, ``dask`` or ``dask:tcp://HOST:PORT``."""
    kind, address = check_executor(text)
    return LocalExecutor() if kind == "local" else DaskExecutor(address)
