"""Campaigns: a YAML list of procedure steps with parameter sweeps, run on one chip session.

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
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xbarlab.chipdrivers.crossbar import ChipInfo, Crossbar
from xbarlab.errors import ConfigError, XbarlabError
from xbarlab.events import Progress, Status
from xbarlab.procedures import registry
from xbarlab.procedures.base import Procedure
from xbarlab.procedures.runner import Runner, RunOutcome, restore_chip_state

NAME = "campaign"
_TOP_KEYS = ("backend", "steps")
_STEP_KEYS = ("procedure", "params", "sweep")


@dataclass(frozen=True)
class CampaignEntry:
    """One child run of a campaign: a validated procedure and a readable label."""

    procedure: Procedure
    label: str


class Campaign:
    """A parsed, validated campaign (see the module docstring)."""

    def __init__(self, doc: Mapping[str, Any]):
        self.doc = dict(doc)
        self.entries = _entries(self.doc)

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

    def check(self, info: ChipInfo) -> None:
        """Check every child against the chip; one ConfigError listing all problems."""
        errors = []
        for i, entry in enumerate(self.entries):
            try:
                entry.procedure.check(info)
            except XbarlabError as exc:
                errors.append(f"step {i + 1} ({entry.label}): {exc}")
        _raise_all(errors)

    def run(
        self, runner: Runner, xbar: Crossbar, *, backend: str, campaign_id: str | None = None
    ) -> RunOutcome:
        """Run the campaign, or continue campaign run ``campaign_id``."""
        self.check(xbar.info)
        store = runner.store
        if campaign_id is None:
            campaign_id = store.create_run(
                NAME,
                self.doc,
                backend=backend,
                chip_info=xbar.info.to_dict(),
                seed=xbar.info.details.get("seed"),
            )
        store.set_status(campaign_id, "running")
        runner.bus.emit(Status(campaign_id, "running", f"campaign of {len(self.entries)} runs"))
        try:
            return self._children(runner, xbar, backend, campaign_id)
        except KeyboardInterrupt:
            store.set_status(campaign_id, "interrupted")
            raise
        except BaseException as exc:
            store.set_status(campaign_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise

    def _children(self, runner: Runner, xbar, backend: str, cid: str) -> RunOutcome:
        store = runner.store
        recorded = set(store.step_ids(cid))
        _abort_orphans(store, cid, recorded)
        children = []
        n = len(self.entries)
        for i, entry in enumerate(self.entries):
            done_id, start_id = f"child-{i:03d}", f"start-{i:03d}"
            if done_id in recorded:
                children.append(store.record(cid, done_id))
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
                    summary = {"children": children, "stopped_at": out.run_id}
                    store.set_status(cid, out.status, summary=summary)
                    runner.bus.emit(Status(cid, out.status, ""))
                    return RunOutcome(cid, out.status, summary)
                result = {
                    "run_id": child,
                    "label": entry.label,
                    "procedure": entry.procedure.name,
                    "status": out.status,
                    "summary": out.summary,
                }
                store.add_record(cid, done_id, result)
                children.append(result)
            runner.bus.emit(Progress(cid, i + 1, n, f"campaign: {entry.label}"))
        summary = {"children": children}
        store.set_status(cid, "completed", summary=summary)
        runner.bus.emit(Status(cid, "completed", ""))
        return RunOutcome(cid, "completed", summary)


def _abort_orphans(store, cid: str, recorded: set[str]) -> None:
    """Mark "aborted" the children a killed campaign created but never started.

    A child run is created, then its start-NNN record is written: a kill in between
    leaves a child no record points to, which never ran a step; resume makes a new one.
    """
    started = {store.record(cid, s)["run_id"] for s in recorded if s.startswith("start-")}
    for child in store.runs(parent=cid):
        if child.run_id not in started and child.status == "running" and child.n_records == 0:
            store.set_status(
                child.run_id, "aborted", error="created by a campaign killed before it started"
            )


def resume(runner: Runner, run_id: str, *, open_crossbar=None) -> RunOutcome:
    """Continue a run or campaign from its last durable step.

    A child of a campaign resumes its whole campaign. The chip is opened from the
    stored backend spec and, where the backend keeps state, restored from the store.
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
    with open_crossbar(info.backend) as xbar:
        restore_chip_state(store, xbar, info.run_id)
        if info.procedure == NAME:
            return job.run(runner, xbar, backend=info.backend, campaign_id=info.run_id)
        return runner.run(
            job, xbar, backend=info.backend, run_id=info.run_id, state_key=info.run_id
        )


def _entries(doc) -> list[CampaignEntry]:
    """Expand sweeps and validate every step's parameters; all errors at once."""
    if not isinstance(doc, dict):
        raise ConfigError("a campaign must be a mapping with a 'steps' list (and 'backend')")
    unknown = sorted(set(doc) - set(_TOP_KEYS))
    steps = doc.get("steps")
    errors = (
        [f"unknown campaign key(s) {', '.join(unknown)}; known: backend, steps"] if unknown else []
    )
    if doc.get("backend") is not None and not isinstance(doc["backend"], str):
        errors.append(f"backend must be a spec string, got {doc['backend']!r}")
    if not isinstance(steps, list) or not steps:
        errors.append("a campaign needs a non-empty 'steps' list")
        steps = []
    entries = []
    for i, step in enumerate(steps):
        try:
            entries += _expand(step)
        except ConfigError as exc:
            name = step.get("procedure", "?") if isinstance(step, dict) else "?"
            errors.append(f"step {i + 1} ({name}): {exc}")
    _raise_all(errors)
    return entries


def _expand(step) -> list[CampaignEntry]:
    if not isinstance(step, dict):
        raise ConfigError(f"a step must be a mapping with 'procedure', got {step!r}")
    unknown = sorted(set(step) - set(_STEP_KEYS))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(_STEP_KEYS)}")
    cls = registry.get(step.get("procedure"))
    params = step.get("params") or {}
    sweep = step.get("sweep") or {}
    if not isinstance(params, dict) or not isinstance(sweep, dict):
        raise ConfigError("'params' and 'sweep' must be mappings of parameter: value(s)")
    for name, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"sweep of {name} must be a non-empty list, got {values!r}")
    entries = []
    for combo in itertools.product(*sweep.values()):
        swept = dict(zip(sweep, combo, strict=True))
        label = cls.name + (
            "[" + ", ".join(f"{k}={v}" for k, v in swept.items()) + "]" if swept else ""
        )
        entries.append(CampaignEntry(cls.from_values({**params, **swept}), label))
    return entries


def _raise_all(errors: list[str]) -> None:
    if errors:
        raise ConfigError(
            f"campaign refused, nothing was run ({len(errors)} problem(s)): " + "; ".join(errors)
        )
