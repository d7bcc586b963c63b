"""The ``xbarlab`` command line: the ``main`` group and its small commands.

``info``, ``backends``, ``demo`` and ``bench`` live here; the command families live in
``cli_runs`` (runs and the run store) and ``cli_lab`` (emulator, GUI, training,
calibration) and are registered on ``main`` at the end of this module; their shared
helpers are in ``cli_common``. Subcommands import the layers they need lazily, so
``xbarlab --version`` and ``xbarlab --help`` start fast and the core does not import
upward at import time.
Errors xbarlab raises on purpose are printed as one line, without a traceback.
"""

from __future__ import annotations

import json

import click

from xbarlab import __version__
from xbarlab.cli_common import _friendly_errors, _ProgressBars
from xbarlab.events import EventBus, Progress
from xbarlab.units import fmt_seconds, to_uS

DEFAULT_SPEC = "emulator:pcm?rows=256&cols=256&seed=1"


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


# The command families live in their own modules; registering them here keeps
# ``xbarlab.cli:main`` the one entry point (and ``python -m xbarlab.cli`` working).
from xbarlab import cli_lab, cli_runs  # noqa: E402

for _command in (*cli_runs.COMMANDS, *cli_lab.COMMANDS):
    main.add_command(_command)


if __name__ == "__main__":
    main()
