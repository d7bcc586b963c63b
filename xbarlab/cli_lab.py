"""``xbarlab`` commands for the lab: emulated hardware, the GUI, training and calibration.

``emulate serve``, ``gui``, ``train`` and the ``calibrate`` group (``readout``, ``drift``,
``characterize``, ``fit``). ``xbarlab.cli`` registers them on ``main``; each command
imports the upper layers lazily in its body.
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
from xbarlab.units import fmt_seconds


@click.group()
def emulate():
    """Emulated hardware on loopback sockets: the array test board and the instrument bench."""


@emulate.command("serve")
@click.option("--board", "want_board", is_flag=True, help="Serve the emulated test board.")
@click.option("--bench", "want_bench", is_flag=True, help="Serve the emulated bench instruments.")
@click.option("--rows", default=8, show_default=True, type=click.IntRange(1), help="Array rows.")
@click.option("--cols", default=8, show_default=True, type=click.IntRange(1), help="Array columns.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Chip seed.")
@click.option(
    "--technology",
    type=click.Choice(["pcm", "rram"]),
    default="pcm",
    show_default=True,
    help="Emulated chip: pcm (unipolar) or rram (bipolar, +1 SET / -1 RESET; arrives pristine).",
)
@click.option(
    "--preset", default="default", show_default=True, help="Parameter preset of the technology."
)
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
def emulate_serve(
    want_board, want_bench, rows, cols, seed, technology, preset, faults, host, station_path
):
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
            technology=technology,
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


@click.command("gui")
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


@click.command("train")
@click.option(
    "--mode",
    type=click.Choice(["fp", "mixed-precision", "hwa", "ternary"]),
    required=True,
    help="fp: software only; mixed-precision: chip in the loop, SET-pulse updates; "
    "hwa: noise-injection training, then programmed and evaluated over time; "
    "ternary: 3-level weights, 7-level activations, on ternary tiles.",
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


@click.group()
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
@click.option(
    "--cores",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Cores (arrays) of a multi-core chip to calibrate; core k is the spec's core k.",
)
@_json_option
@_friendly_errors
def calibrate_readout_cmd(spec: str, out: str | None, seed: int, cores: int, as_json: bool):
    """Estimate each output's readout gain and offset; report the MVM error it removes.

    Reprograms the whole array: run it before deploying weights.
    """
    from xbarlab.calibration.readout import run_readout

    result = run_readout(spec, seed=seed, out=out, cores=cores)
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


COMMANDS = (emulate, gui_cmd, train_cmd, calibrate)
