"""What the examples' tests share: run an example as a user does, and fail with a clear reason.

Each run has a time limit; a non-zero exit or a run past its limit fails the test with the
command and what it wrote.
"""
import subprocess
import sys

TIMEOUT = 100  # seconds for one run of an example


def fail(reason):
    """Ends the test as failed, saying why."""
    sys.exit(f"FAILED: {reason}")


def run(command, expect_exit=0):
    """Runs `command` (a list) and returns its standard output, as text."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        fail(f"{' '.join(command)} did not end within {TIMEOUT} s")
    if done.returncode != expect_exit:
        fail(f"{' '.join(command)} exited {done.returncode}, not {expect_exit}:\n"
             f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}")
    return done.stdout


def same_for_all(commands):
    """Runs each command; fails unless every one prints the same. Returns that output."""
    outputs = [run(command) for command in commands]
    for command, output in zip(commands[1:], outputs[1:]):
        if output != outputs[0]:
            fail(f"{' '.join(command)} printed\n{output}\nbut {' '.join(commands[0])} "
                 f"printed\n{outputs[0]}")
    if not outputs[0]:
        fail(f"{' '.join(commands[0])} printed nothing")
    return outputs[0]
