"""Campaigns: a YAML list of procedure steps with parameter sweeps; steps that fan out.

```yaml
backend: emulator:pcm?rows=64&cols=64&seed=3     # optional, --backend overrides
steps:
  - procedure: program-array
    params: {pattern: checkerboard}
  - procedure: drift
    params: {n_reads: 10}
    sweep: {tolerance: [1.0e-7, 5.0e-7]}          # cartesian product over listed params
```

Every parameter of every step is validated (and checked against the chip) before
anything runs; all errors are reported together. A campaign is a run (procedure
"campaign", parameters = the parsed YAML) whose steps are child runs executed in
order. The campaign records ``start-NNN`` (child id) when it creates a child and
``child-NNN`` (status, summary) when the child completes, so :func:`resume` skips
completed children, resumes the unfinished one (its recorded steps are not executed
again) and runs the rest. The chip state is kept under the campaign id, so on an
emulator a resumed campaign continues on the same chip.

Fan-out. A step like the ones above runs its children in order on the campaign's one
chip session (each child sees the chip the previous one left), exactly as before. A
step *fans out* when it has any of the keys below: its children are then independent
tasks, each opening its own chip, which an executor may run in parallel
(:mod:`xbarlab.procedures.executors`; ``xbarlab campaign FILE --executor
local|dask[:ADDRESS]``):

- ``backend_sweep: {seed: [1, 2, 3], periphery: [hermes, ideal]}``: a cartesian
  product over parameters of the backend spec (chip seed, preset, periphery, ...),
  crossed with the step's ``sweep:``; each value replaces or adds that spec parameter.
- ``fanout: true``: the step's ``sweep:`` children run as independent tasks, each on
  a fresh chip opened from the spec (not one after another on the same chip).
- ``backend: SPEC``: the step runs on its own chip, not the campaign's.
- ``station: NAME`` (in the step, or at the top for every hardware step): a step
  on a ``bench:`` or ``board:`` chip, or without any backend (the chip of the station
  worker: ``xbarlab worker --station NAME --backend SPEC``), runs only on that
  station's Dask worker, one task at a time. Emulator steps run on any worker.
- ``procedure: train``: a training run (:func:`xbarlab.training.runs.run_training`;
  params mode, epochs, hidden, seed; see :class:`TrainParameters`) always fans out.

Fan-out steps still run in step order (a step's tasks all finish before the next step
starts). Each task's records come back to this process, which writes them as a child
run in the one store as tasks finish; a completed task is recorded as ``child-NNN``,
a failed one as ``failed-NNN-KK`` (its child run "failed", with the error). The
other tasks of the step go on; then the campaign stops "failed", and :func:`resume`
re-runs only the tasks without a ``child-NNN``. Tasks are deterministic: the same
seeds give the same records with every executor.

The YAML is expanded and validated in :mod:`xbarlab.procedures.sweep`; tasks run and
come back through :mod:`xbarlab.procedures.executors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xbarlab.chipdrivers import parse_spec
from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar
from xbarlab.errors import ConfigError, XbarlabError
from xbarlab.events import Progress, Status
from xbarlab.procedures import registry
from xbarlab.procedures.executors import LocalExecutor, Task, store_result
from xbarlab.procedures.runner import ABORTED, Runner, RunOutcome, restore_chip_state
from xbarlab.procedures.sweep import (
    HARDWARE_SCHEMES,
    CampaignEntry,
    TrainParameters,
    expand,
    raise_all,
    with_spec_params,
)

__all__ = [
    "Campaign",
    "CampaignEntry",
    "TrainParameters",
    "resume",
    "with_spec_params",
]

NAME = "campaign"


class Campaign:
    """A parsed, validated campaign (see the module docstring)."""

    def __init__(self, doc: Mapping[str, Any]):
        self.doc = dict(doc) if isinstance(doc, Mapping) else doc
        self.entries = expand(self.doc)
        self._tasks_checked: str | None | bool = False  # backend of the last check_tasks

    @classmethod
    def from_file(cls, path: str | Path) -> Campaign:
        """Read and validate a campaign YAML file (ConfigError listing every problem)."""
        import yaml

        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read campaign file {path}: {exc.strerror}") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"campaign file {path} is not valid YAML: {exc}") from None
        return cls(doc)

    @property
    def backend(self) -> str | None:
        return self.doc.get("backend")

    @property
    def needs_chip(self) -> bool:
        """True when some step runs on the campaign's own chip session."""
        return any(not e.fanout for e in self.entries)

    @property
    def n_tasks(self) -> int:
        """Children that run as independent tasks."""
        return sum(e.fanout for e in self.entries)

    def check(self, info: ChipInfo | None) -> None:
        """Check every chip-session child against the chip; one ConfigError listing all."""
        errors = []
        for entry in self.entries:
            if entry.fanout:
                continue
            if info is None:
                errors.append(
                    f"step {entry.step + 1} ({entry.label}): runs on the campaign's chip, "
                    "and the campaign has no backend; give it one (backend: or --backend)"
                )
                continue
            try:
                entry.procedure.check(info)
            except XbarlabError as exc:
                errors.append(f"step {entry.step + 1} ({entry.label}): {exc}")
        raise_all(errors)

    def check_tasks(self, backend: str | None, *, open_crossbar=None) -> None:
        """Check the tasks before any runs: specs parse; procedures fit emulated chips.

        Emulated chips are opened here (once per spec) to check the procedures against
        them; hardware and station chips are checked by the task on its worker.
        """
        if open_crossbar is None:
            from xbarlab.chipdrivers import open_crossbar
        errors, by_spec = [], {}
        for i, entry in enumerate(self.entries):
            if not entry.fanout:
                continue
            try:
                task = self.task(i, backend)
                if task.backend is not None:
                    spec = parse_spec(task.backend)
                    if entry.procedure is not None and spec.scheme == "emulator":
                        by_spec.setdefault(task.backend, []).append(entry)
            except XbarlabError as exc:
                errors.append(f"step {entry.step + 1} ({entry.label}): {exc}")
        for spec, entries in by_spec.items():
            try:
                with open_crossbar(spec) as xbar:
                    for entry in entries:
                        try:
                            entry.procedure.check(xbar.info)
                        except XbarlabError as exc:
                            errors.append(f"step {entry.step + 1} ({entry.label}): {exc}")
            except XbarlabError as exc:
                errors.append(f"backend {spec}: {exc}")
        raise_all(errors)
        self._tasks_checked = backend

    def task(self, index: int, backend: str | None) -> Task:
        """Child ``index`` as an independent task; ``backend``: the campaign's spec."""
        entry = self.entries[index]
        spec = entry.backend or backend
        if spec is not None and entry.backend_params:
            spec = with_spec_params(spec, entry.backend_params)
        hardware = spec is None or parse_spec(spec).scheme in HARDWARE_SCHEMES
        station = entry.station if hardware else None
        if spec is None and station is None:
            raise ConfigError("no backend: give the step or the campaign a backend: spec")
        return Task(index, entry.label, entry.name, dict(entry.values), spec, station)

    def run(
        self,
        runner: Runner,
        xbar: Crossbar | None,
        *,
        backend: str | None,
        campaign_id: str | None = None,
        executor=None,
    ) -> RunOutcome:
        """Run the campaign, or continue campaign run ``campaign_id``.

        xbar: the campaign's chip session (None is allowed when every step fans out);
        executor: runs the fan-out tasks (default: a LocalExecutor).
        """
        self.check(None if xbar is None else xbar.info)
        if self.n_tasks and self._tasks_checked != backend:
            self.check_tasks(backend)
        if self.n_tasks and hasattr(executor, "check"):
            tasks = [self.task(i, backend) for i, e in enumerate(self.entries) if e.fanout]
            executor.check(tasks)
        store = runner.store
        if campaign_id is None:
            campaign_id = store.create_run(
                NAME,
                self.doc,
                backend=backend or "",
                chip_info={} if xbar is None else xbar.info.to_dict(),
                seed=None if xbar is None else xbar.info.details.get("seed"),
            )
        store.set_status(campaign_id, "running")
        runner.bus.emit(Status(campaign_id, "running", f"campaign of {len(self.entries)} runs"))
        try:
            return self._children(runner, xbar, backend, campaign_id, executor)
        except KeyboardInterrupt:
            store.set_status(campaign_id, "interrupted")
            raise
        except BaseException as exc:
            store.set_status(campaign_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise

    def _children(self, runner: Runner, xbar, backend, cid: str, executor) -> RunOutcome:
        store = runner.store
        recorded = set(store.step_ids(cid))
        _abort_orphans(store, cid, recorded)
        children: dict[int, dict] = {}
        n = len(self.entries)
        i = 0
        while i < n:
            entry = self.entries[i]
            if entry.fanout:
                end = i
                while end < n and self.entries[end].step == entry.step:
                    end += 1
                stop = self._fan_out(runner, range(i, end), backend, cid, recorded, executor)
                children.update(stop.pop("children"))
                status = stop.pop("status", None)
                if status is not None:
                    summary = {"children": _ordered(children), **stop}
                    return self._stop(runner, cid, status, summary, stop.get("error"))
                i = end
                continue
            done_id, start_id = f"child-{i:03d}", f"start-{i:03d}"
            if done_id in recorded:
                children[i] = store.record(cid, done_id)
            else:
                if start_id in recorded:
                    child = store.record(cid, start_id)["run_id"]
                else:
                    child = runner.create_run(entry.procedure, xbar, backend=backend, parent=cid)
                    store.add_record(cid, start_id, {"run_id": child, "label": entry.label})
                out = runner.run(
                    entry.procedure, xbar, backend=backend, run_id=child, state_key=cid
                )
                if out.status != "completed":
                    summary = {"children": _ordered(children), "stopped_at": out.run_id}
                    return self._stop(runner, cid, out.status, summary, None)
                result = {
                    "run_id": child,
                    "label": entry.label,
                    "procedure": entry.procedure.name,
                    "status": out.status,
                    "summary": out.summary,
                }
                store.add_record(cid, done_id, result)
                children[i] = result
            runner.bus.emit(Progress(cid, i + 1, n, f"campaign: {entry.label}"))
            i += 1
        summary = {"children": _ordered(children)}
        store.set_status(cid, "completed", summary=summary)
        runner.bus.emit(Status(cid, "completed", ""))
        return RunOutcome(cid, "completed", summary)

    @staticmethod
    def _stop(runner, cid, status, summary, error) -> RunOutcome:
        runner.store.set_status(cid, status, summary=summary, error=error)
        runner.bus.emit(Status(cid, status, error or ""))
        return RunOutcome(cid, status, summary)

    def _fan_out(self, runner, indices, backend, cid, recorded, executor) -> dict:
        """Run one fan-out step's tasks: {"children": ...}, plus "status" ("failed" with
        "failed" and "error", or "aborted" by the run control: the tasks not yet finished
        are cancelled) when the campaign must stop."""
        store, bus = runner.store, runner.bus
        children, todo = {}, []
        for i in indices:
            if f"child-{i:03d}" in recorded:
                children[i] = store.record(cid, f"child-{i:03d}")
            else:
                todo.append(self.task(i, backend))
        total, done, failed = len(indices), len(children), []
        step = self.entries[indices[0]].step + 1

        executor = executor or LocalExecutor()

        def progress() -> None:
            pending = total - done - len(failed)
            running = min(pending, max(int(getattr(executor, "slots", 1)), 1))
            tasks = {"step": step, "total": total, "done": done, "failed": len(failed)}
            tasks.update(running=running, queued=pending - running)
            store.set_status(cid, "running", summary={"tasks": tasks})
            text = (
                f"step {step}: {done} done, {len(failed)} failed, {running} running, "
                f"{pending - running} queued"
            )
            bus.emit(Progress(cid, done + len(failed), total, text))

        progress()
        results = executor.run(todo)
        try:
            for task, result in results:
                self._store_task(store, cid, recorded, task, result, children, failed)
                done += result["status"] == "completed"
                progress()
                if runner.control.state == ABORTED and done + len(failed) < total:
                    return {"children": children, "status": "aborted"}
        finally:
            getattr(results, "close", lambda: None)()  # cancels what a cluster still runs
        if not failed:
            return {"children": children}
        first = failed[0]
        error = (
            f"{len(failed)} of {total} tasks of step {step} failed (first: {first['label']}: "
            f"{first['error']}); `xbarlab resume {cid}` runs them again"
        )
        return {
            "children": children,
            "status": "failed",
            "failed": [f["label"] for f in failed],
            "error": error,
        }

    @staticmethod
    def _store_task(store, cid, recorded, task, result, children, failed) -> None:
        """Write one task's result: its child run, then ``child-NNN`` or ``failed-NNN-KK``."""
        child = store_result(store, cid, result)
        doc = {
            "run_id": child,
            "label": task.label,
            "procedure": result["procedure"],
            "status": result["status"],
            "summary": result["summary"],
        }
        if result["status"] == "completed":
            store.add_record(cid, f"child-{task.index:03d}", doc)
        else:
            doc["error"] = result["error"]
            prefix = f"failed-{task.index:03d}-"
            attempt = sum(s.startswith(prefix) for s in recorded)
            store.add_record(cid, f"{prefix}{attempt:02d}", doc)
            recorded.add(f"{prefix}{attempt:02d}")
            failed.append(doc)
        children[task.index] = doc


def _ordered(children: dict[int, dict]) -> list[dict]:
    return [children[i] for i in sorted(children)]


def _abort_orphans(store, cid: str, recorded: set[str]) -> None:
    """Mark "aborted" the children a killed campaign left behind without a record.

    A child run is created, then its start-NNN record is written: a kill in between
    leaves a child no record points to, which never ran a step; resume makes a new one.
    The same holds for a task result killed while it was being written.
    """
    known = {
        store.record(cid, s)["run_id"]
        for s in recorded
        if s.startswith(("start-", "child-", "failed-"))
    }
    for child in store.runs(parent=cid):
        if child.run_id not in known and child.status == "running":
            store.set_status(
                child.run_id, "aborted", error="created by a campaign killed before it started"
            )


def resume(runner: Runner, run_id: str, *, open_crossbar=None, executor=None) -> RunOutcome:
    """Continue a run or campaign from its last durable step.

    A child of a campaign resumes its whole campaign. The chip is opened from the
    stored backend spec and, where the backend keeps state, restored from the store.
    A campaign's fan-out tasks without a durable result run again on ``executor``.
    A completed run is returned as it is.
    """
    store = runner.store
    info = store.run(run_id)
    if info.parent is not None:
        info = store.run(info.parent)
    if info.status == "completed":
        return RunOutcome(info.run_id, info.status, info.summary)
    if info.procedure == NAME:
        job = Campaign(info.parameters)
    else:
        job = registry.get(info.procedure).from_values(info.parameters)
    if open_crossbar is None:
        from xbarlab.chipdrivers import open_crossbar
    backend = info.backend or None
    if info.procedure == NAME and not job.needs_chip:
        return job.run(runner, None, backend=backend, campaign_id=info.run_id, executor=executor)
    with open_crossbar(info.backend) as xbar:
        restore_chip_state(store, xbar, info.run_id)
        if info.procedure == NAME:
            return job.run(
                runner, xbar, backend=backend, campaign_id=info.run_id, executor=executor
            )
        return runner.run(
            job, xbar, backend=info.backend, run_id=info.run_id, state_key=info.run_id
        )
