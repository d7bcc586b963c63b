"""Helpers shared by the ``xbarlab`` command modules.

Option decorators (``--store``, ``--json``), the one-line error wrapper, the run-store
opener, ``-p KEY=VALUE`` parsing, the job runner with its progress bars and the demo's
progress bars. Imports only the core at import time; the upper layers are imported
lazily inside the helpers that need them.
"""

from __future__ import annotations

import functools
import json
import sys

import click

from xbarlab.errors import XbarlabError
from xbarlab.events import EventBus, Progress


def _friendly_errors(fn):
    """Turn XbarlabError into a one-line CLI error (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except XbarlabError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def _store_option(fn):
    """``--store PATH``: the run store (default: $XBARLAB_STORE, else DEFAULT_STORE)."""
    return click.option(
        "--store",
        "store_path",
        envvar="XBARLAB_STORE",
        default=lambda: __import__("xbarlab.store", fromlist=["DEFAULT_STORE"]).DEFAULT_STORE,
        show_default="$XBARLAB_STORE, else xbarlab-runs.sqlite",
        type=click.Path(dir_okay=False),
        help="Run store (SQLite file).",
    )(fn)


_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


def _open_store(path: str, must_exist: bool = True):
    """The run store at ``path``; a missing file is an error for commands that only read."""
    import os

    from xbarlab.errors import ConfigError
    from xbarlab.store import RunStore

    if must_exist and not os.path.exists(path):
        raise ConfigError(f"no run store at {path!r}; give --store PATH or set XBARLAB_STORE")
    return RunStore(path)


def _key_values(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="-p")
        if key.strip() in out:
            raise click.BadParameter(f"parameter {key.strip()!r} given twice", param_hint="-p")
        out[key.strip()] = value
    return out


def _run_job(job, store_path: str, as_json: bool, must_exist: bool = False) -> None:
    """Run ``job(runner)`` with progress bars; print its outcome; Ctrl+C marks it interrupted."""
    from xbarlab.events import Status
    from xbarlab.procedures.runner import Runner

    bus = EventBus()
    bars = _RunBars(disable=True if as_json else None)
    bus.subscribe(bars, Progress, Status)
    with _open_store(store_path, must_exist) as store:
        try:
            outcome = job(Runner(store, bus))
        except KeyboardInterrupt:
            bars.close()
            root = bars.root or "?"
            click.echo(f"interrupted: run {root}; continue with: xbarlab resume {root}", err=True)
            sys.exit(130)
        finally:
            bars.close()
        info = store.run(outcome.run_id)
    if as_json:
        click.echo(json.dumps({**outcome.to_dict(), "procedure": info.procedure}))
        return
    click.echo(f"{info.procedure} run {outcome.run_id}: {outcome.status}")
    click.echo(json.dumps(outcome.summary, indent=2))
    if outcome.status != "completed":
        click.echo(f"continue with: xbarlab resume {outcome.run_id}")


class _RunBars:
    """Event subscriber: one tqdm bar per run (on stderr); remembers the first run's id."""

    def __init__(self, disable: bool | None):
        self.disable = disable
        self.bars = {}
        self.root: str | None = None

    def __call__(self, ev) -> None:
        from tqdm import tqdm

        if self.root is None:
            self.root = ev.source
        if not isinstance(ev, Progress):
            return
        bar = self.bars.get(ev.source)
        if bar is None:
            bar = self.bars[ev.source] = tqdm(
                total=ev.total or None,
                desc=ev.source,
                file=sys.stderr,
                disable=self.disable,
                leave=False,
            )
        if ev.total and bar.total != ev.total:
            bar.total = ev.total
        bar.set_postfix_str(ev.message, refresh=False)
        bar.update(ev.done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


class _ProgressBars:
    """Event subscriber showing one tqdm bar per progress message (on stderr)."""

    def __init__(self, disable: bool | None):
        self.disable = disable
        self.bars = {}

    def __call__(self, ev: Progress) -> None:
        from tqdm import tqdm

        bar = self.bars.get(ev.message)
        if bar is None:
            bar = self.bars[ev.message] = tqdm(
                total=ev.total, desc=ev.message, file=sys.stderr, disable=self.disable, leave=False
            )
        bar.update(ev.done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
