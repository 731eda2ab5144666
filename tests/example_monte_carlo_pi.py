#!/usr/bin/env python3
"""monte_carlo_pi: the same estimate for 1, 2 and 3 workers and in one process, near pi.

Usage: example_monte_carlo_pi.py MONTE_CARLO_PI

Every subtask seeds its generator from the job's seed and its index, so the count of points
inside the quarter circle is the same however the subtasks are spread over workers: the output
must be the same to the last digit. Each point is inside with probability p = pi/4, so the
estimate 4 * inside / n has standard deviation 4 * sqrt(p (1 - p) / n): 8.2e-4 for the 4
million points here. The estimate must be within 5 of those of pi, which a correct sampler
misses for fewer than one seed in a million (the seeds are fixed, so the test does not flake).
"""
import math
import re
import sys

from example_checks import fail, run, same_for_all

POINTS, SUBTASKS = 4_000_000, 40


def inside_count(output, points):
    found = re.search(r"pi is about ([0-9.]+): ([0-9]+) of ([0-9]+) points inside", output)
    if not found:
        fail(f"no estimate in {output!r}")
    if int(found[3]) != points:
        fail(f"{found[3]} points drawn, not {points}")
    return int(found[2])


def main():
    program = sys.argv[1]
    size = [program, "--points", str(POINTS), "--subtasks", str(SUBTASKS)]
    for seed in ("1", "2"):
        output = same_for_all([size + ["--seed", seed, "--workers", "1"],
                               size + ["--seed", seed, "--workers", "2"],
                               size + ["--seed", seed, "--workers", "3"],
                               size + ["--seed", seed, "--serial"]])
        inside = inside_count(output, POINTS)
        estimate = 4 * inside / POINTS
        p = math.pi / 4
        sigma = 4 * math.sqrt(p * (1 - p) / POINTS)
        if abs(estimate - math.pi) > 5 * sigma:
            fail(f"seed {seed}: {estimate} is {abs(estimate - math.pi) / sigma:.1f} standard "
                 f"deviations from pi")
        print(f"seed {seed}: {estimate:.6f}, {abs(estimate - math.pi) / sigma:.2f} standard "
              f"deviations from pi, the same for 1, 2, 3 workers and serial")
        if seed == "1":
            first = inside
        elif inside == first:
            fail("seeds 1 and 2 gave the same points")
    # Subtask 0 alone is the stream of subtask 0 of the full run: if every subtask drew the
    # same points, the full count would be SUBTASKS times its count.
    one = POINTS // SUBTASKS
    alone = inside_count(
        run([program, "--points", str(one), "--subtasks", "1", "--seed", "1", "--serial"]), one)
    if alone * SUBTASKS == first:
        fail("every subtask drew the same points")
    print("the same estimate for any number of workers, within 5 standard deviations of pi")


if __name__ == "__main__":
    main()
