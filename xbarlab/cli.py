"""The ``xbarlab`` command line.

Subcommands import the layers they need lazily, so ``xbarlab --version`` and
``xbarlab --help`` start fast and the core does not import upward at import time.
Errors xbarlab raises on purpose are printed as one line, without a traceback.
"""

from __future__ import annotations

import functools
import json
import sys

import click

from xbarlab import __version__
from xbarlab.errors import XbarlabError
from xbarlab.events import EventBus, Progress
from xbarlab.units import fmt_seconds, to_uS

DEFAULT_SPEC = "emulator:pcm?rows=256&cols=256&seed=1"


def _friendly_errors(fn):
    """Turn XbarlabError into a one-line CLI error (exit code 1)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except XbarlabError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xbarlab")
def main():
    """Lab control and emulation for analog in-memory-computing crossbar arrays.

    Backends are named by spec strings, e.g. emulator:pcm?rows=256&cols=256&seed=1.
    """


@main.command()
@click.argument("spec")
@_friendly_errors
def info(spec: str):
    """Print the ChipInfo of the chip SPEC names, as JSON."""
    from xbarlab.chipdrivers import open_crossbar

    with open_crossbar(spec) as xbar:
        click.echo(json.dumps(xbar.info.to_dict(), indent=2))


@main.command()
def backends():
    """List the backend schemes with an example spec each."""
    from xbarlab.chipdrivers import backends as registered

    for scheme, usage in registered().items():
        click.echo(f"{scheme:10s} {usage}")


@main.command()
@click.option(
    "--backend",
    "spec",
    default=DEFAULT_SPEC,
    show_default=True,
    help="Backend spec of the chip to run on.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary.")
@click.option(
    "--levels",
    "n_levels",
    default=8,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Number of conductance levels to program.",
)
@click.option(
    "--reads",
    "n_reads",
    default=20,
    show_default=True,
    type=click.IntRange(2, 1000),
    help="Drift reads, log-spaced from 30 s to 1 day.",
)
@_friendly_errors
def demo(spec: str, as_json: bool, n_levels: int, n_reads: int):
    """Program a pattern, let it drift for a (virtual) day, fit nu per device."""
    from xbarlab.chipdrivers import open_crossbar
    from xbarlab.procedures.demo import run_demo

    bus = EventBus()
    bars = _ProgressBars(disable=True if as_json else None)
    bus.subscribe(bars, Progress)
    try:
        with open_crossbar(spec) as xbar:
            result = run_demo(xbar, n_levels=n_levels, n_reads=n_reads, bus=bus)
    finally:
        bars.close()
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(_summary(result))


@main.group()
def bench():
    """Benchmarks that print JSON with ratios against baselines measured in the same run."""


@bench.command("mvm")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (the default prints a table)."
)
@click.option(
    "--sizes", default="256,512,1024", show_default=True, help="Comma-separated square array sizes."
)
@click.option(
    "--batches", default="1,64,1024", show_default=True, help="Comma-separated batch sizes."
)
@_friendly_errors
def bench_mvm(as_json: bool, sizes: str, batches: str):
    """Analog MVM through tiles (modes ideal, io, device) against numpy's X @ W.T."""
    from xbarlab.chipdrivers.mvm_bench import bench as run

    report = run(
        _int_list(sizes, "--sizes"),
        _int_list(batches, "--batches"),
        progress=None if as_json else lambda line: click.echo(line, err=True),
    )
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"numba compile/cache load: {report['compile_s']:.2f} s")
    click.echo(f"{'size':>6} {'batch':>6} {'mode':>7} {'ms':>9} {'numpy ms':>9} {'ratio':>6}")
    for r in report["results"]:
        click.echo(
            f"{r['rows']:>6} {r['batch']:>6} {r['mode']:>7} {r['ms']:>9.3f} "
            f"{r['baseline_ms']:>9.3f} {r['ratio']:>6.2f}"
        )


@main.group()
def emulate():
    """Emulated hardware on loopback sockets: the array test board and the instrument bench."""


@emulate.command("serve")
@click.option("--board", "want_board", is_flag=True, help="Serve the emulated test board.")
@click.option("--bench", "want_bench", is_flag=True, help="Serve the emulated bench instruments.")
@click.option("--rows", default=8, show_default=True, type=click.IntRange(1), help="Array rows.")
@click.option("--cols", default=8, show_default=True, type=click.IntRange(1), help="Array columns.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Chip seed.")
@click.option("--preset", default="default", show_default=True, help="PCM parameter preset.")
@click.option(
    "--faults",
    default="",
    metavar="SPEC",
    help="Faults on every server, e.g. drop=0.01,corrupt=0.01,latency=0.002,disconnect=50,seed=3.",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Interface the servers bind to."
)
@click.option(
    "--station",
    "station_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Where to write station.yaml (default: a temporary file removed on exit).",
)
@_friendly_errors
def emulate_serve(want_board, want_bench, rows, cols, seed, preset, faults, host, station_path):
    """Serve one emulated chip behind the board and/or the bench (both when neither flag is
    given). Prints one JSON line (board URL, instrument resources, station file), then
    serves until SIGINT or SIGTERM."""
    import signal
    import threading

    from xbarlab.emulator.faults import FaultPlan
    from xbarlab.emulator.lab import EmulatedLab

    both = not (want_board or want_bench)
    plan = FaultPlan.parse(faults) if faults else None
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with EmulatedLab(
            rows,
            cols,
            seed=seed,
            preset=preset,
            board=both or want_board,
            bench=both or want_bench,
            faults=plan,
            host=host,
            station_path=station_path,
        ) as lab:
            click.echo(json.dumps(lab.describe()))
            sys.stdout.flush()
            while not stop.wait(0.2):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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


@main.command("procedures")
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


@main.command("run")
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


@main.command("campaign")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--backend", "spec", default=None, help="Backend spec (overrides the file's).")
@_store_option
@_json_option
@_friendly_errors
def campaign_cmd(file: str, spec: str | None, store_path: str, as_json: bool):
    """Run the campaign in FILE (YAML: backend, steps with params and sweeps)."""
    from xbarlab.chipdrivers import open_crossbar
    from xbarlab.errors import ConfigError
    from xbarlab.procedures.campaign import Campaign

    campaign = Campaign.from_file(file)
    spec = spec or campaign.backend
    if not spec:
        raise ConfigError(f"no backend: give --backend or a 'backend:' key in {file}")
    with open_crossbar(spec) as xbar:
        campaign.check(xbar.info)
        _run_job(lambda runner: campaign.run(runner, xbar, backend=spec), store_path, as_json)


@main.command("resume")
@click.argument("run_id")
@_store_option
@_json_option
@_friendly_errors
def resume_cmd(run_id: str, store_path: str, as_json: bool):
    """Continue an interrupted, aborted or failed run or campaign from its last durable step."""
    from xbarlab.procedures.campaign import resume

    _run_job(lambda runner: resume(runner, run_id), store_path, as_json, must_exist=True)


@main.group()
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


@main.command("gui")
@click.option("--backend", "spec", default=None, help="Backend spec to connect to at start.")
@_store_option
@click.option("--run", "run_name", default=None, help="Procedure to start at once.")
@click.option(
    "-p", "params", multiple=True, metavar="KEY=VALUE", help="Parameter of --run (repeatable)."
)
@click.option(
    "--screenshot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Save the window as PNG once --run ended, then exit (works offscreen).",
)
@_friendly_errors
def gui_cmd(spec, store_path, run_name, params, screenshot):
    """Open the live-monitoring window (PyQt5) over the run store."""
    from xbarlab.gui.app import launch

    sys.exit(launch(spec, store_path, run_name, _key_values(params), screenshot))


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


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated integers, got {text!r}", param_hint=option
        ) from None
    if not values or min(values) < 1:
        raise click.BadParameter(f"expected positive integers, got {text!r}", param_hint=option)
    return values


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


def _summary(r: dict) -> str:
    n = r["rows"] * r["cols"]
    lines = [
        f"xbarlab demo on {r['backend']}",
        f"  programmed {n:,} devices in {r['iterations']} write-verify iterations "
        f"({r['total_pulses']:,} pulses)",
        f"  converged: {100 * r['converged_fraction']:.2f}% of responsive devices within "
        f"{to_uS(r['tolerance_S']):.2f} uS; {r['unresponsive']} unresponsive (stuck) devices",
        f"  mean |G - target| right after programming: {to_uS(r['mean_abs_error_S']):.3f} uS",
        f"  drift over {fmt_seconds(r['read_times_s'][-1])} ({len(r['read_times_s'])} reads): "
        f"nu = {r['nu_mean']:.4f} +- {r['nu_std']:.4f}",
        "",
        "  target [uS]  devices  G at last read [uS]  nu mean  nu std",
    ]
    for lv in r["levels"]:
        lines.append(
            f"  {to_uS(lv['target_S']):11.2f}  {lv['devices']:7d}  "
            f"{to_uS(lv['g_last_read_S']):19.2f}  "
            f"{lv['nu_mean']:7.4f}  {lv['nu_std']:6.4f}"
        )
    virtual = fmt_seconds(r["virtual_time_s"])
    lines += ["", f"  virtual time {virtual}, wall time {r['wall_s']:.1f} s"]
    return "\n".join(lines)


@main.command("train")
@click.option(
    "--mode",
    type=click.Choice(["fp", "mixed-precision", "hwa"]),
    required=True,
    help="fp: software only; mixed-precision: chip in the loop, SET-pulse updates; "
    "hwa: noise-injection training, then programmed and evaluated over time.",
)
@click.option(
    "--backend",
    "spec",
    default="emulator:pcm?differential=1&seed=1",
    show_default=True,
    help="Backend spec of the analog layers (not opened for fp).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Epochs (mode default).")
@click.option("--hidden", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@_store_option
@_json_option
@_friendly_errors
def train_cmd(mode, spec, epochs, hidden, seed, store_path, as_json):
    """Train a 64-HIDDEN-10 MLP on the digits set and record the run in the store."""
    from tqdm import tqdm

    from xbarlab.training.runs import DEFAULT_EPOCHS, run_training

    total = epochs or DEFAULT_EPOCHS[mode]
    bar = tqdm(total=total, desc=f"train {mode}", unit="epoch", file=sys.stderr, disable=as_json)

    def on_epoch(stats: dict) -> None:
        bar.set_postfix(loss=f"{stats['train_loss']:.3f}", acc=f"{stats['test_accuracy']:.3f}")
        bar.update(1)

    with _open_store(store_path, must_exist=False) as store:
        try:
            result = run_training(
                mode, spec, epochs=epochs, hidden=hidden, seed=seed, store=store, on_epoch=on_epoch
            )
        finally:
            bar.close()
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"train {mode} run {result['run_id']}: test accuracy {result['test_accuracy']:.4f}")
    if "pulses" in result:
        click.echo(f"  {result['pulses']:,} SET pulses, {result['refreshes']:,} refreshed pairs")
    for t, acc in result.get("accuracy_vs_time", {}).items():
        click.echo(
            f"  {fmt_seconds(float(t))} after programming: GDC {acc['gdc']:.4f}, "
            f"raw {acc['raw']:.4f}"
        )


@main.group()
def calibrate():
    """Calibrate a chip: readout gain/offset, drift compensation, emulator fitting."""


@calibrate.command("readout")
@click.option("--backend", "spec", required=True, help="Backend spec of the chip to calibrate.")
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="Readout calibration file (JSON) to write.",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@_json_option
@_friendly_errors
def calibrate_readout_cmd(spec: str, out: str | None, seed: int, as_json: bool):
    """Estimate each output's readout gain and offset; report the MVM error it removes.

    Reprograms the whole array: run it before deploying weights.
    """
    from xbarlab.calibration.readout import run_readout

    result = run_readout(spec, seed=seed, out=out)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(
        f"readout calibration of {spec}: MVM error {result['error_before']:.2%} -> "
        f"{result['error_after']:.2%} ({result['reduction']:.1f}x)"
    )
    if result["file"]:
        click.echo(f"  written to {result['file']}")


@calibrate.command("drift")
@click.option("--backend", "spec", required=True, help="Backend spec of the chip.")
@click.option(
    "--after",
    type=click.FloatRange(min=0, min_open=True),
    default=86400.0,
    show_default=True,
    help="Time since programming in s (virtual on an emulator).",
)
@click.option(
    "--mode", type=click.Choice(["global", "column"]), default="global", show_default=True
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@_json_option
@_friendly_errors
def calibrate_drift_cmd(spec: str, after: float, mode: str, seed: int, as_json: bool):
    """Program random weights, wait AFTER seconds, compensate drift; report the MVM error."""
    from xbarlab.calibration.drift import run_drift

    result = run_drift(spec, after=after, mode=mode, seed=seed)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(
        f"drift compensation ({mode}) of {spec} after {after:g} s: MVM error "
        f"{result['error_before']:.2%} -> {result['error_after']:.2%}"
    )


@calibrate.command("characterize")
@click.option("--backend", "spec", required=True, help="Backend spec of the chip to measure.")
@_store_option
@_json_option
@_friendly_errors
def calibrate_characterize(spec: str, store_path: str, as_json: bool):
    """Run the characterisation campaign (pulse-response, drift) for `calibrate fit`."""
    from xbarlab.calibration.fit import CHARACTERIZE
    from xbarlab.chipdrivers import open_crossbar
    from xbarlab.procedures.campaign import Campaign

    campaign = Campaign(CHARACTERIZE)
    with open_crossbar(spec) as xbar:
        campaign.check(xbar.info)
        _run_job(lambda runner: campaign.run(runner, xbar, backend=spec), store_path, as_json)


@calibrate.command("fit")
@click.argument("run_id")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), help="Preset JSON file to write."
)
@click.option(
    "--report",
    "report_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Directory for one PNG per fitted law.",
)
@_store_option
@_json_option
@_friendly_errors
def calibrate_fit(run_id: str, out: str, report_dir: str | None, store_path: str, as_json: bool):
    """Fit the emulator's PCM laws to characterisation run RUN_ID; write a preset.

    Use the preset as `emulator:pcm?preset=PRESET.json`.
    """
    from xbarlab.calibration.fit import fit_run

    with _open_store(store_path) as store:
        result = fit_run(store, run_id)
    result.params.save(out)
    pngs = []
    if report_dir:
        from xbarlab.calibration.report import write_report

        pngs = [str(p) for p in write_report(result.laws, report_dir)]
    if as_json:
        click.echo(json.dumps({"preset": out, "fitted": result.fitted, "report": pngs}))
        return
    click.echo(f"preset written to {out}; use it as emulator:pcm?preset={out}")
    for name, value in result.fitted.items():
        click.echo(f"  {name} = {value:.4g}")
    for png in pngs:
        click.echo(f"  report: {png}")


if __name__ == "__main__":
    main()
