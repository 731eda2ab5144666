#!/usr/bin/python3
"""Draws the plots of dtask's performance from the JSON file of dtask_perf --json.

efficiency.png: efficiency against subtask duration, with the 50% line and the METG.
broker_scaling.png: broker throughput with batching off, and the broker thread's CPU per
subtask, against the number of workers.

Usage: bench/plot_performance.py JSON OUTDIR
Needs Debian's python3-matplotlib (installed by scripts/setup.sh). A plot whose scenario is
not in the file (dtask_perf --only ...) is skipped.
"""

import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

PROGRAM = "plot_performance.py"
SIZE = (9, 6)  # inches, at 100 dpi: the 900x600 of the plots in docs/images
DPI = 100
DTASK = "#9400d3"
JOBS = "#0072b2"
RELAY = "#505050"
COST = "#d55e00"
METG = "#c00000"


def finite(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def spread(figure):
    """The lowest and highest repetition of a figure: its error bar."""
    reps = [r for r in figure["repetitions"] if finite(r)]
    return (min(reps), max(reps)) if reps else (figure["value"], figure["value"])


def ratio(figure):
    return figure["ratio"] if finite(figure.get("ratio")) else 1.0


def subtitle(result):
    machine = result["machine"]
    settings = result["settings"]
    return "{} ({} cores), {}, {}; median of {} repetition(s){}".format(
        machine["cpu"], machine["nproc"], machine["compiler"], machine["date"][:10],
        settings["repeat"], ", --quick sizes" if settings["quick"] else "")


def error_bars(figures, scale=1.0):
    """Values and their asymmetric error bars (min and max of the repetitions), scaled."""
    values = [f["value"] * scale for f in figures]
    low = [v - spread(f)[0] * scale for v, f in zip(values, figures)]
    high = [spread(f)[1] * scale - v for v, f in zip(values, figures)]
    return values, [low, high]


def plot_efficiency(result, path):
    """Efficiency against subtask duration (log x); False if the file has no such figures."""
    figures = result["figures"]
    points = sorted((f for f in figures
                     if f["scenario"] == "efficiency" and "granularity_us" in f["details"]
                     and finite(f["value"])),
                    key=lambda f: f["details"]["granularity_us"])
    if not points:
        return False
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    x = [f["details"]["granularity_us"] for f in points]
    y, bars = error_bars(points)
    ax.errorbar(x, y, yerr=bars, color=DTASK, linewidth=2, marker="o", capsize=3,
                label="median (bars: min and max of the repetitions)")
    ax.axhline(50, color="#808080", linestyle=":", label="50%")
    metg = next((f for f in figures if f["name"] == "efficiency.metg_50"), None)
    if metg and finite(metg["value"]):
        ax.axvline(metg["value"], color=METG, linestyle="--", linewidth=1)
        ax.annotate("METG(50%) = {:.3g} µs".format(metg["value"]), (metg["value"], 20),
                    xytext=(6, 0), textcoords="offset points", color=METG, va="center")
    ax.set_xscale("log")
    ax.set_xlim(10 ** math.floor(math.log10(x[0])), 10 ** math.ceil(math.log10(x[-1])))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: "{:g}".format(value)))
    ax.set_ylim(0, 110)
    ax.set_title("dtask efficiency against subtask duration, 2 local workers\n"
                 + subtitle(result), fontsize=11)
    ax.set_xlabel("duration of one subtask (µs, log scale)")
    ax.set_ylabel("efficiency: useful work / (wall time x 2 workers), %")
    ax.grid(True, which="major", linestyle=":", color="#c0c0c0")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], loc="lower right", frameon=False)  # median first
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def plot_broker_scaling(result, path):
    """Subtasks/s (left axis) and broker CPU per subtask (right axis) against the number of
    workers; False if the file has no such figures."""
    figures = [f for f in result["figures"] if f["scenario"] == "broker_scaling"]
    by_workers = lambda f: f["details"]["workers"]  # noqa: E731
    rates = sorted((f for f in figures
                    if f["details"].get("jobs") == 1 and f["unit"] == "subtasks/s"
                    and not f["name"].endswith("_vs_relay") and finite(f["value"])),
                   key=by_workers)
    if not rates:
        return False
    costs = sorted((f for f in figures
                    if f["details"].get("jobs") == 1 and f["unit"] == "ns/subtask"
                    and finite(f["value"])),
                   key=by_workers)
    relayed = sorted((f for f in figures
                      if f["name"].endswith("_vs_relay") and f.get("baseline")
                      and finite(f["baseline"]["value"])),
                     key=by_workers)
    jobs = next((f for f in figures
                 if f["details"].get("jobs", 1) > 1 and f["unit"] == "subtasks/s"
                 and finite(f["value"])), None)

    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    label_offset = dict(textcoords="offset points", ha="center")

    x = [by_workers(f) for f in rates]
    y, bars = error_bars(rates, 1e-3)
    ax.errorbar(x, y, yerr=bars, color=DTASK, linewidth=2, marker="o", capsize=3,
                label="dtask, one job (bars: min and max; labels: ratio to 1 worker)")
    for f, value in zip(rates, y):
        if by_workers(f) > 1:
            ax.annotate("{:.2f}".format(ratio(f)), (by_workers(f), value), xytext=(0, 8),
                        va="bottom", **label_offset)
    rate_top = max(spread(f)[1] * 1e-3 for f in rates)

    if jobs:
        value = jobs["value"] * 1e-3
        ax.plot([by_workers(jobs)], [value], linestyle="none", marker="s", markersize=7,
                color=JOBS, label="{} concurrent jobs, {} worker".format(
                    int(jobs["details"]["jobs"]), int(by_workers(jobs))))
        # Left of its point: the relay's label at the same number of workers is on the right.
        ax.annotate("{:.2f}".format(ratio(jobs)), (by_workers(jobs), value), xytext=(-10, 0),
                    textcoords="offset points", ha="right", va="center")

    if relayed:
        values = [f["baseline"]["value"] * 1e-3 for f in relayed]
        ax.plot([by_workers(f) for f in relayed], values, color=RELAY, linestyle="--",
                linewidth=1, marker="o", markerfacecolor="none",
                label="raw ZeroMQ relay, as many echo workers (labels: dtask / relay)")
        for f, value in zip(relayed, values):
            ax.annotate("{:.2f}".format(ratio(f)), (by_workers(f), value), xytext=(8, 0),
                        textcoords="offset points", ha="left", va="center")
        rate_top = max(rate_top, max(values))

    # The rates in the lower half of the plot, the broker's cost near its top: on axes of
    # their own they would otherwise land at the same height and their labels overlap.
    ax.set_ylim(0, rate_top * 1.9)
    entries = dict(zip(*reversed(ax.get_legend_handles_labels())))
    if costs:
        cost_ax = ax.twinx()
        cx = [by_workers(f) for f in costs]
        cy, cbars = error_bars(costs)
        cost_ax.errorbar(cx, cy, yerr=cbars, color=COST, linewidth=2, marker="^", capsize=3,
                         label="broker thread CPU per subtask, right axis "
                               "(labels: ratio to 1 worker)")
        for f, value in zip(costs, cy):
            if by_workers(f) > 1:
                cost_ax.annotate("{:.2f}".format(ratio(f)), (by_workers(f), value),
                                 xytext=(0, -10), va="top", color=COST, **label_offset)
        cost_ax.set_ylim(0, max(spread(f)[1] for f in costs) * 1.2)
        cost_ax.set_ylabel("broker CPU, ns per subtask")
        entries.update(zip(*reversed(cost_ax.get_legend_handles_labels())))

    ax.set_xscale("log")
    ax.set_xlim(0.7, x[-1] * 1.5)
    ax.xaxis.set_major_locator(FixedLocator(x))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(int(w)) for w in x])
    ax.set_title("broker throughput and cost with batching off (one message per subtask), "
                 "workers over tcp\n" + subtitle(result), fontsize=11)
    ax.set_xlabel("connected worker processes (log scale)")
    ax.set_ylabel("thousand subtasks/s")
    ax.grid(True, linestyle=":", color="#c0c0c0")
    # In the order of the old plots: dtask, concurrent jobs, relay, cost.
    order = sorted(entries, key=lambda label: (not label.startswith("dtask"),
                                               "concurrent" not in label,
                                               not label.startswith("raw"), label))
    fig.legend([entries[label] for label in order], order, loc="lower center", frameon=False)
    fig.tight_layout(rect=(0, 0.01 + 0.04 * len(order), 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return True


def main(argv):
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    source, outdir = argv[1], argv[2]
    try:
        with open(source) as file:
            result = json.load(file)
    except (OSError, ValueError) as e:
        print("{}: cannot read {}: {}".format(PROGRAM, source, e), file=sys.stderr)
        return 1
    os.makedirs(outdir, exist_ok=True)
    for name, plot in (("efficiency", plot_efficiency), ("broker_scaling", plot_broker_scaling)):
        path = os.path.join(outdir, name + ".png")
        if plot(result, path):
            print("{}: wrote {}".format(PROGRAM, path))
        else:
            print("{}: no {} figures in {}; {}.png not drawn".format(PROGRAM, name, source, name),
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
