#!/usr/bin/env bash
# Draws the plots of dtask's performance from the JSON file of dtask_perf (scripts/bench.sh
# writes build-bench/perf.json): efficiency against subtask duration, with the 50% line and
# the METG, and broker throughput and CPU per subtask against the number of workers.
# Usage: scripts/plot_performance.sh JSON OUTDIR
# Needs gnuplot (Debian's gnuplot-nox, installed by scripts/setup.sh) and python3. A plot
# whose scenario is not in the file (dtask_perf --only ...) is skipped.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/plot_performance.sh JSON OUTDIR

Reads the result file of dtask_perf --json and writes into OUTDIR:
  efficiency.png      efficiency against subtask duration (log x), 50% line, METG marked
  broker_scaling.png  subtasks/s with batching off, and the broker thread's CPU per subtask,
                      against the number of workers
USAGE
}

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    usage
    exit 0
fi
if (($# != 2)); then
    usage >&2
    exit 2
fi
json="$1"
outdir="$2"
for tool in gnuplot python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "plot_performance.sh: $tool is missing (scripts/setup.sh installs gnuplot-nox)" >&2
        exit 1
    fi
done
[[ -r "$json" ]] || { echo "plot_performance.sh: cannot read $json" >&2; exit 1; }
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"

data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT

# The data files gnuplot reads, and vars.gp with the values its scripts need.
python3 - "$json" "$data" <<'PY'
import json
import math
import os
import sys

result = json.load(open(sys.argv[1]))
out = sys.argv[2]
figures = result["figures"]
machine = result["machine"]

def finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)

def spread(figure):
    reps = [r for r in figure["repetitions"] if finite(r)]
    return (min(reps), max(reps)) if reps else (figure["value"], figure["value"])

def gp_string(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

settings = result["settings"]
subtitle = "{} ({} cores), {}, {}; median of {} repetition(s){}".format(
    machine["cpu"], machine["nproc"], machine["compiler"], machine["date"][:10],
    settings["repeat"], ", --quick sizes" if settings["quick"] else "")
variables = ["subtitle = " + gp_string(subtitle)]

points = sorted((f for f in figures
                 if f["scenario"] == "efficiency" and "granularity_us" in f["details"]
                 and finite(f["value"])),
                key=lambda f: f["details"]["granularity_us"])
if points:
    with open(os.path.join(out, "efficiency.dat"), "w") as dat:
        for f in points:
            low, high = spread(f)
            dat.write("{} {} {} {}\n".format(f["details"]["granularity_us"], f["value"], low, high))
    metg = next((f for f in figures if f["name"] == "efficiency.metg_50"), None)
    if metg and finite(metg["value"]):
        variables.append("metg = {}".format(metg["value"]))

workers = sorted((f for f in figures
                  if f["scenario"] == "broker_scaling" and f["details"].get("jobs") == 1
                  and f["unit"] == "subtasks/s" and not f["name"].endswith("_vs_relay")
                  and finite(f["value"])),
                 key=lambda f: f["details"]["workers"])
costs = sorted((f for f in figures
                if f["scenario"] == "broker_scaling" and f["details"].get("jobs") == 1
                and f["unit"] == "ns/subtask" and finite(f["value"])),
               key=lambda f: f["details"]["workers"])
if costs:
    with open(os.path.join(out, "cost.dat"), "w") as dat:
        for f in costs:
            low, high = spread(f)
            ratio = f["ratio"] if finite(f["ratio"]) else 1.0
            dat.write("{} {} {} {} {}\n".format(f["details"]["workers"], f["value"], low, high,
                                                 ratio))
relayed = sorted((f for f in figures
                  if f["scenario"] == "broker_scaling" and f["name"].endswith("_vs_relay")
                  and f["baseline"] and finite(f["baseline"]["value"])),
                 key=lambda f: f["details"]["workers"])
if relayed:
    with open(os.path.join(out, "relay.dat"), "w") as dat:
        for f in relayed:
            dat.write("{} {} {}\n".format(f["details"]["workers"], f["baseline"]["value"] / 1e3,
                                          f["ratio"] if finite(f["ratio"]) else 1.0))
if workers:
    with open(os.path.join(out, "scaling.dat"), "w") as dat:
        for f in workers:
            low, high = spread(f)
            ratio = f["ratio"] if finite(f["ratio"]) else 1.0
            dat.write("{} {} {} {} {}\n".format(f["details"]["workers"], f["value"] / 1e3,
                                                 low / 1e3, high / 1e3, ratio))
    variables.append("worker_tics = " + gp_string(
        ", ".join('"{0}" {0}'.format(int(f["details"]["workers"])) for f in workers)))
    variables.append("max_workers = {}".format(workers[-1]["details"]["workers"]))
    jobs = next((f for f in figures if f["scenario"] == "broker_scaling"
                 and f["details"].get("jobs", 1) > 1 and f["unit"] == "subtasks/s"
                 and finite(f["value"])), None)
    if jobs:
        with open(os.path.join(out, "jobs.dat"), "w") as dat:
            dat.write("{} {} {}\n".format(jobs["details"]["workers"], jobs["value"] / 1e3,
                                          jobs["ratio"] if finite(jobs["ratio"]) else 1.0))
        variables.append("jobs_title = " + gp_string(
            "{} concurrent jobs, {} worker".format(int(jobs["details"]["jobs"]),
                                                  int(jobs["details"]["workers"]))))

with open(os.path.join(out, "vars.gp"), "w") as gp:
    gp.write("\n".join(variables) + "\n")
PY

# pngcairo draws antialiased text; Debian's gnuplot-nox has it, other builds may only have png.
terminal="png"
if gnuplot -e "set terminal pngcairo" >/dev/null 2>&1; then
    terminal="pngcairo"
fi
setup="set encoding utf8; set terminal $terminal noenhanced size 900,600 font 'sans,11'"

cd "$data"
if [[ -s efficiency.dat ]]; then
    gnuplot <<GP
$setup
load "vars.gp"
set output "$outdir/efficiency.png"
set title "dtask efficiency against subtask duration, 2 local workers\n" . subtitle
set logscale x
set xlabel "duration of one subtask (µs, log scale)"
set ylabel "efficiency: useful work / (wall time x 2 workers), %"
set yrange [0:110]
set grid
set key bottom right
if (exists("metg")) {
    set arrow from metg, graph 0 to metg, graph 1 nohead dashtype 2 linecolor rgb "#c00000"
    set label sprintf("METG(50%%) = %.3g µs", metg) at metg, 20 offset 1, 0 textcolor rgb "#c00000"
}
plot "efficiency.dat" using 1:2:3:4 with yerrorlines linewidth 2 pointtype 7 \
         title "median (bars: min and max of the repetitions)", \
     50 with lines dashtype 3 linecolor rgb "#808080" title "50%"
GP
    echo "plot_performance.sh: wrote $outdir/efficiency.png"
else
    echo "plot_performance.sh: no efficiency figures in $json; efficiency.png not drawn" >&2
fi

if [[ -s scaling.dat ]]; then
    # The rates in the lower half of the plot, the broker's cost near its top: drawn on
    # axes of their own, they would otherwise land at the same height and their labels
    # overlap. stats takes only the points inside the ranges set so far: all of them come
    # before any range is set.
    extra_plots=""
    ranges='stats "scaling.dat" using 4 name "RATE" nooutput; rate_top = RATE_max'
    y2range='set y2range [0:*]'
    if [[ -s jobs.dat ]]; then
        extra_plots+=', "jobs.dat" using 1:2 with points pointtype 5 pointsize 1.5 linecolor rgb "#0072b2" title jobs_title'
        extra_plots+=', "jobs.dat" using 1:2:(sprintf("%.2f", $3)) with labels left offset 1.5, 0 notitle'
    fi
    if [[ -s relay.dat ]]; then
        extra_plots+=', "relay.dat" using 1:2 with linespoints dashtype 2 pointtype 6 linecolor rgb "#505050"'
        extra_plots+=' title "raw ZeroMQ relay, as many echo workers (labels: dtask / relay)"'
        extra_plots+=', "relay.dat" using 1:2:(sprintf("%.2f", $3)) with labels offset 0, 1.2 notitle'
        ranges+='; stats "relay.dat" using 2 name "RELAY" nooutput'
        ranges+='; rate_top = RELAY_max > rate_top ? RELAY_max : rate_top'
    fi
    if [[ -s cost.dat ]]; then
        extra_plots+=', "cost.dat" using 1:2:3:4 axes x1y2 with yerrorlines linewidth 2 pointtype 9 linecolor rgb "#d55e00"'
        extra_plots+=' title "broker thread CPU per subtask, right axis (labels: ratio to 1 worker)"'
        extra_plots+=', "cost.dat" using 1:2:($1 > 1 ? sprintf("%.2f", $5) : "") axes x1y2 with labels offset 0, -1.2 textcolor rgb "#d55e00" notitle'
        ranges+='; stats "cost.dat" using 4 name "COST" nooutput'
        y2range='set y2range [0:COST_max * 1.2]'
    fi
    ranges+="; $y2range; set yrange [0:rate_top * 1.9]"
    gnuplot <<GP
$setup
load "vars.gp"
set output "$outdir/broker_scaling.png"
$ranges
set title "broker throughput and cost with batching off (one message per subtask), workers over tcp\n" . subtitle
set logscale x
set xrange [0.7:max_workers * 1.5]
eval "set xtics (" . worker_tics . ")"
set xlabel "connected worker processes (log scale)"
set ylabel "thousand subtasks/s"
set y2label "broker CPU, ns per subtask"
set y2tics
set offsets 0, 0, graph 0.1, 0
set grid
set key below
plot "scaling.dat" using 1:2:3:4 with yerrorlines linewidth 2 pointtype 7 \
         title "dtask, one job (bars: min and max; labels: ratio to 1 worker)", \
     "scaling.dat" using 1:2:(\$1 > 1 ? sprintf("%.2f", \$5) : "") with labels offset 0, 1.2 notitle$extra_plots
GP
    echo "plot_performance.sh: wrote $outdir/broker_scaling.png"
else
    echo "plot_performance.sh: no broker_scaling figures in $json; broker_scaling.png not drawn" >&2
fi
