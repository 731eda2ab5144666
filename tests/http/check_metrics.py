#!/usr/bin/env python3
"""Parses a dtaskd /metrics answer (a file) with the Prometheus client's text parser and
checks each NAME=VALUE given on the command line against it: a counter's name with _total,
a gauge's, or a sample's full name with its labels, as dtask_bytes_sent_total{role="worker"}.
VALUE ">0" means any positive number. Also checks the histogram is well formed.

Exit status 0 if all hold, 1 listing what does not."""
import sys

from prometheus_client.parser import text_string_to_metric_families

with open(sys.argv[1]) as f:
    text = f.read()
samples = {}
types = {}
for family in text_string_to_metric_families(text):
    types[family.name] = family.type
    for sample in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
        samples[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
        samples.setdefault(sample.name, sample.value)

wrong = []
for check in sys.argv[2:]:
    name, expected = check.rsplit("=", 1)
    if name not in samples:
        wrong.append(f"{name} is missing")
    elif expected == ">0":
        if not samples[name] > 0:
            wrong.append(f"{name} is {samples[name]}, not positive")
    elif samples[name] != float(expected):
        wrong.append(f"{name} is {samples[name]}, not {expected}")

for name, kind in (("dtask_subtasks_done", "counter"), ("dtask_workers", "gauge"),
                   ("dtask_batch_map_seconds", "histogram")):
    if types.get(name) != kind:
        wrong.append(f"{name} is of type {types.get(name)}, not {kind}")
buckets = sorted((float(k.split('le="')[1].split('"')[0]), v) for k, v in samples.items()
                 if k.startswith("dtask_batch_map_seconds_bucket{"))
counts = [v for _, v in buckets]
if counts != sorted(counts) or not buckets or buckets[-1][0] != float("inf"):
    wrong.append(f"the histogram's buckets are not cumulative up to +Inf: {buckets}")
elif counts[-1] != samples.get("dtask_batch_map_seconds_count"):
    wrong.append("the +Inf bucket differs from dtask_batch_map_seconds_count")

for line in wrong:
    print("check_metrics: " + line)
print("check_metrics: " + ("wrong" if wrong else "all hold"))
sys.exit(1 if wrong else 0)
