#!/usr/bin/env python3
"""The examples' progress bar: drawn on a terminal, absent otherwise.

Usage: example_progress_bar.py SUM_SQUARES

Runs sum_squares twice on the same input: with its output on pipes, where the output must be
exactly the result line and the timing line, with no bar; and on a pseudo-terminal, where a
bar redrawn with \\r must appear and its last drawing must say 100% and every subtask.
"""
import os
import pty
import re
import select
import subprocess
import sys
import time

N, SUBTASKS = "20000000", "4000"
RESULT = "sum of squares of 1..20000000 = 2666666866666670000000\n"
TIMEOUT = 100  # seconds for each run


def on_pipes(program):
    run = subprocess.run([program, "--workers", "2", "--n", N, "--subtasks", SUBTASKS],
                         capture_output=True, text=True, timeout=TIMEOUT)
    if run.returncode != 0:
        sys.exit(f"sum_squares on pipes exited {run.returncode}: {run.stderr}")
    if run.stdout != RESULT:
        sys.exit(f"sum_squares on pipes printed {run.stdout!r}, not {RESULT!r}")
    if "\r" in run.stderr or "[" in run.stderr:
        sys.exit(f"sum_squares drew a bar on a pipe: {run.stderr!r}")
    if not re.fullmatch(r"sum_squares: 4000 subtasks in [0-9.e-]+ s, start-up and shutdown "
                        r"included\n", run.stderr):
        sys.exit(f"sum_squares on pipes wrote to stderr: {run.stderr!r}")


def on_terminal(program):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(program, [program, "--workers", "2", "--n", N, "--subtasks", SUBTASKS])
    output = b""
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                sys.exit(f"sum_squares on a terminal did not end; it wrote {output!r}")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the terminal's other end closed
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"sum_squares on a terminal exited {status}: {output!r}")
    text = output.decode()
    bars = [part for part in text.split("\r") if part.startswith("sum_squares [")]
    if not bars:
        sys.exit(f"no progress bar on a terminal: {text!r}")
    last = bars[-1]
    if "100% 4000/4000" not in last:
        sys.exit(f"the last bar drawn is not at 100%: {last!r}")
    if not re.search(r"\] 100% 4000/4000  [0-9.]+[kMG]?/s", last):
        sys.exit(f"the last bar has no rate: {last!r}")
    if RESULT.rstrip("\n") not in text:
        sys.exit(f"no result on a terminal: {text!r}")
    print(f"bar drawn {len(bars)} time(s), last: {last.strip()}")


def main():
    program = sys.argv[1]
    on_pipes(program)
    on_terminal(program)
    print("progress bar on a terminal only")


if __name__ == "__main__":
    main()
