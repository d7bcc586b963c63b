"""``xbarlab`` commands for procedure runs and the run store.

``procedures`` (list the declared procedures), ``run``, ``campaign`` and ``resume``
(``--executor local|dask[:ADDRESS]`` for fan-out steps), ``worker`` (a station's Dask
worker) and the ``runs`` group (``list``, ``show``, ``export``). ``xbarlab.cli`` registers them on
``main``; each command imports the upper layers lazily in its body.
"""

from __future__ import annotations

import json
import sys

import click

from xbarlab.cli_common import (
    _friendly_errors,
    _json_option,
    _key_values,
    _open_store,
    _run_job,
    _store_option,
)
from xbarlab.events import Progress


@click.command("procedures")
@click.option("--json", "as_json", is_flag=True, help="Print the declarations as JSON.")
@click.option("--markdown", is_flag=True, help="Print the README's procedures table.")
def procedures_cmd(as_json: bool, markdown: bool):
    """List the procedures and their parameters (unit, default, allowed range)."""
    from xbarlab.procedures import registry

    if as_json:
        click.echo(json.dumps(registry.describe(), indent=2))
    elif markdown:
        click.echo(registry.markdown_table())
    else:
        for proc in registry.describe():
            click.echo(f"{proc['name']}: {proc['summary']}")
            for p in proc["parameters"]:
                unit = f" [{p['unit']}]" if p["unit"] else ""
                click.echo(f"    {p['name']}={p['default']}{unit}  {p['help']} ({p['allowed']})")


@click.command("run")
@click.argument("name")
@click.option("--backend", "spec", required=True, help="Backend spec of the chip to run on.")
@click.option(
    "-p", "params", multiple=True, metavar="KEY=VALUE", help="Procedure parameter (repeatable)."
)
@_store_option
@_json_option
@_friendly_errors
def run_cmd(name: str, spec: str, params: tuple[str, ...], store_path: str, as_json: bool):
    """Run procedure NAME on the chip SPEC names and record it in the run store."""
    from xbarlab.chipdrivers import open_crossbar
    from xbarlab.procedures import registry

    procedure = registry.get(name).from_values(_key_values(params))
    with open_crossbar(spec) as xbar:
        procedure.check(xbar.info)

        def job(runner):
            run_id = runner.create_run(procedure, xbar, backend=spec)
            return runner.run(procedure, xbar, backend=spec, run_id=run_id, state_key=run_id)

        _run_job(job, store_path, as_json)


_executor_option = click.option(
    "--executor",
    default="local",
    show_default=True,
    metavar="local|dask[:ADDRESS]",
    help="Where fan-out steps run: local (one after another in this process), dask (a "
    "LocalCluster, one worker per core) or dask:tcp://HOST:PORT (a running scheduler).",
)


@click.command("campaign")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--backend", "spec", default=None, help="Backend spec (overrides the file's).")
@_executor_option
@_store_option
@_json_option
@_friendly_errors
def campaign_cmd(file: str, spec: str | None, executor: str, store_path: str, as_json: bool):
    """Run the campaign in FILE (YAML: backend, steps with params, sweeps and fan-out)."""
    from contextlib import ExitStack

    from xbarlab.chipdrivers import open_crossbar
    from xbarlab.errors import ConfigError
    from xbarlab.procedures.campaign import Campaign
    from xbarlab.procedures.executors import check_executor, make_executor

    campaign = Campaign.from_file(file)
    check_executor(executor)
    spec = spec or campaign.backend
    if not spec and campaign.needs_chip:
        raise ConfigError(f"no backend: give --backend or a 'backend:' key in {file}")
    with ExitStack() as stack:
        xbar = stack.enter_context(open_crossbar(spec)) if campaign.needs_chip else None
        campaign.check(None if xbar is None else xbar.info)
        if campaign.n_tasks:
            campaign.check_tasks(spec)
        # a campaign without fan-out steps needs no cluster: it runs as it always did
        runs = stack.enter_context(make_executor(executor if campaign.n_tasks else "local"))

        def job(runner):
            if campaign.n_tasks and not as_json:
                runner.bus.subscribe(_TaskLines(), Progress)
            return campaign.run(runner, xbar, backend=spec, executor=runs)

        _run_job(job, store_path, as_json)


class _TaskLines:
    """Prints a fan-out step's progress (done, failed, running tasks) as lines on stderr
    when stderr is not a terminal (the tqdm bars show it on one)."""

    def __init__(self):
        self.last = None
        self.quiet = sys.stderr.isatty()

    def __call__(self, ev) -> None:
        if self.quiet or not ev.message.startswith("step ") or ev.message == self.last:
            return
        self.last = ev.message
        click.echo(f"{ev.source}: {ev.message}", err=True)


@click.command("resume")
@click.argument("run_id")
@_executor_option
@_store_option
@_json_option
@_friendly_errors
def resume_cmd(run_id: str, executor: str, store_path: str, as_json: bool):
    """Continue an interrupted, aborted or failed run or campaign from its last durable step.

    A campaign's fan-out tasks without a durable result run again (failed ones too).
    """
    from xbarlab.procedures.campaign import resume
    from xbarlab.procedures.executors import check_executor, make_executor

    check_executor(executor)
    with make_executor(executor) as runs:
        _run_job(
            lambda runner: resume(runner, run_id, executor=runs),
            store_path,
            as_json,
            must_exist=True,
        )


@click.command("worker")
@click.option(
    "--scheduler", required=True, metavar="ADDRESS", help="Dask scheduler, tcp://HOST:PORT."
)
@click.option("--station", required=True, help="Station name (campaign steps say station: NAME).")
@click.option(
    "--backend", "spec", required=True, help="Backend spec of this station's chip (bench:/board:)."
)
@_friendly_errors
def worker_cmd(scheduler: str, station: str, spec: str):
    """Serve a test station: a Dask worker that runs that station's campaign steps.

    Starts a one-thread Dask worker with resource station-NAME=1, so steps naming the
    station run only here, one at a time; steps without a backend open SPEC.
    """
    from xbarlab.chipdrivers import parse_spec
    from xbarlab.procedures.executors import check_station_name, run_station_worker

    check_station_name(station)
    parse_spec(spec)
    click.echo(f"station {station} ({spec}): worker of {scheduler}; Ctrl+C stops it", err=True)
    try:
        run_station_worker(scheduler, station, spec)
    except KeyboardInterrupt:
        click.echo(f"station {station}: worker stopped", err=True)


@click.group()
def runs():
    """Browse the run store: list, show, export."""


@runs.command("list")
@_store_option
@_json_option
@_friendly_errors
def runs_list(store_path: str, as_json: bool):
    """List the runs in the store, newest first."""
    with _open_store(store_path) as store:
        infos = store.runs()
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in infos]))
        return
    for i in infos:
        parent = f"  (in {i.parent})" if i.parent else ""
        click.echo(f"{i.run_id}  {i.procedure:16s} {i.status:11s} {i.n_records:5d} records{parent}")


@runs.command("show")
@click.argument("run_id")
@_store_option
@_json_option
@_friendly_errors
def runs_show(run_id: str, store_path: str, as_json: bool):
    """Show one run: metadata, summary, step ids and child runs."""
    with _open_store(store_path) as store:
        info = store.run(run_id)
        doc = {
            **info.to_dict(),
            "steps": store.step_ids(info.run_id),
            "children": [c.run_id for c in reversed(store.runs(parent=info.run_id))],
        }
    if as_json:
        click.echo(json.dumps(doc))
        return
    for key in ("run_id", "procedure", "status", "backend", "parent", "version", "error"):
        click.echo(f"{key:10s} {doc[key]}")
    click.echo(f"{'steps':10s} {len(doc['steps'])}: {' '.join(doc['steps'][:12])}")
    if doc["children"]:
        click.echo(f"{'children':10s} {' '.join(doc['children'])}")
    click.echo(f"parameters {json.dumps(doc['parameters'])}")
    click.echo(f"summary    {json.dumps(doc['summary'])}")


@runs.command("export")
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(["hdf5"]), required=True)
@click.argument("path", type=click.Path(dir_okay=False))
@_store_option
@_friendly_errors
def runs_export(run_id: str, fmt: str, path: str, store_path: str):
    """Export run RUN_ID (with a campaign's children) to PATH."""
    from xbarlab.store import export_hdf5

    with _open_store(store_path) as store:
        out = export_hdf5(store, store.run(run_id).run_id, path)
    click.echo(str(out))


COMMANDS = (procedures_cmd, run_cmd, campaign_cmd, resume_cmd, worker_cmd, runs)
