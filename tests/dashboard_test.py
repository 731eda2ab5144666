#!/usr/bin/python3
"""The dashboard in a real browser, against a real dtaskd.

Starts dtaskd with its HTTP endpoint on loopback, two sum_squares workers and a sum_squares
client, opens the dashboard in headless Chromium and checks from the rendered page that the
worker count is right, the job's name appears, its progress reaches 100% and the task stream
has bars. Saves a screenshot (--screenshot; --docs-image also writes the one of the docs).

Every wait is for a condition with a deadline; every process it started (Chromium too) is
ended before it exits, whatever happened. Prints "dtask-test skipped: REASON" and exits 0
only when Chromium or its driver is not installed.
"""

import argparse
import importlib.util
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

SKIP = "dtask-test skipped: "
WORKERS = 2
# Long enough on two workers to be seen running (a few seconds in a release build), short
# enough under a sanitizer; the test never depends on how long it takes.
N, SUBTASKS = 1_000_000_000, 400
START_SECONDS = 30      # dtaskd listening, workers joined, page loaded
JOB_SECONDS = 110       # the job from its submission to the client's exit, on a loaded
                        # machine under a sanitizer (run_checked.sh allows 170 s in all)
# Every process started here carries this in its environment, Chromium's children too: what
# still has it at the end was left behind and is killed.
MARKER = "DTASK_DASHBOARD_TEST=" + uuid.uuid4().hex


class Failure(Exception):
    pass


class Processes:
    """The processes this test started; ends them all, in reverse order, on close()."""

    def __init__(self, logs):
        self.logs = logs
        self.started = []
        self.driver = None   # the browser, quit before the processes are ended
        self.output = None   # dtaskd's Lines

    def start(self, name, command, extra_env=None, pipe=False):
        env = dict(os.environ)
        key, value = MARKER.split("=", 1)
        env[key] = value
        env.update(extra_env or {})
        log = None if pipe else open(os.path.join(self.logs, name + ".log"), "wb")
        process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE if pipe else log,
                                   stderr=subprocess.STDOUT)
        if log:
            log.close()
        self.started.append((name, process))
        return process

    def log(self, name):
        try:
            with open(os.path.join(self.logs, name + ".log"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def close(self):
        for _, process in reversed(self.started):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(self.started):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        kill_marked()


def marked_pids():
    needle = MARKER.encode()
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


def kill_marked():
    """Kills what is left of this test's processes (a Chromium helper after quit) and waits,
    bounded, until they are gone."""
    for pid in marked_pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while marked_pids() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the kernel to reap them, not synchronising on timing


class Lines:
    """Reads a process's output on a thread (so that its pipe never fills) and hands out its
    lines with a deadline."""

    def __init__(self, process):
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, args=(process.stdout,), daemon=True).start()

    def _read(self, stream):
        for raw in iter(stream.readline, b""):
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))
        self.lines.put(None)

    def drain(self):
        """The lines seen so far and those waiting, without blocking."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.seen
            if line is not None:
                self.seen.append(line)

    def wait_for(self, patterns, seconds):
        """The first match of each of `patterns`, in whatever order the lines come."""
        found = {}
        deadline = time.monotonic() + seconds
        while len(found) < len(patterns):
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(0.0, left))
            except queue.Empty:
                line, left = None, 0
            if line is None:
                missing = [p for p in patterns if p not in found]
                raise Failure(f"dtaskd wrote no line matching {missing}"
                              f" ({'timed out' if left <= 0 else 'output closed'})")
            self.seen.append(line)
            for pattern in patterns:
                match = re.search(pattern, line)
                if pattern not in found and match:
                    found[pattern] = match.group(1)
        return [found[p] for p in patterns]


def start_browser(profile, logs):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ["--headless=new", "--window-size=1400,1150", f"--user-data-dir={profile}",
                     "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--no-default-browser-check", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-extensions",
                     "--disable-crash-reporter", "--disable-breakpad"]:
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    key, value = MARKER.split("=", 1)
    service = Service(shutil.which("chromedriver"), env={**os.environ, key: value},
                      log_path=os.path.join(logs, "chromedriver.log"))
    return webdriver.Chrome(service=service, options=options)


# What the page shows, read in one script so that no element goes stale between reads (the
# page redraws its tables twice a second).
PAGE_STATE = """
const byId = (id) => document.getElementById(id);
return {
  workerCount: byId("worker-count").textContent.trim(),
  unreachable: getComputedStyle(byId("banner")).display !== "none",
  jobs: [...document.querySelectorAll("#jobs tr.job")].map((row) => {
    const bar = row.querySelector(".progress");
    return { id: row.dataset.jobId, name: row.dataset.jobName, state: row.dataset.state,
             text: row.innerText, percent: bar ? bar.dataset.percent : undefined,
             total: bar ? bar.dataset.total : undefined,
             label: bar ? bar.innerText : "" };
  }),
  streamBars: [...document.querySelectorAll("#stream .stream-bar")].map((bar) => bar.dataset.job),
  body: document.body.innerText.slice(0, 3000),
};
"""


def run(args, scratch, processes):
    from selenium.webdriver.support.ui import WebDriverWait

    keys = os.path.join(scratch, "keys")
    dtaskd = processes.start("dtaskd", [args.dtaskd, "--listen", "tcp://127.0.0.1:*", "--keys", keys,
                                        "--http", "127.0.0.1:0"], pipe=True)
    output = processes.output = Lines(dtaskd)
    # "dtaskd: listening on tcp://127.0.0.1:PORT" and "dtaskd: dashboard on http://127.0.0.1:PORT/"
    endpoint, url = output.wait_for([r"listening on (tcp://\S+)", r"dashboard on (http://[^\s,;()]+)"],
                                    START_SECONDS)
    url = url.rstrip("/") + "/"
    print(f"dtaskd: {endpoint}, dashboard {url}", flush=True)

    def token(role):
        with open(os.path.join(keys, role + ".token")) as f:
            return f.read().strip()

    for i in range(WORKERS):
        processes.start(f"worker{i}", [args.worker, "--dtask-worker", endpoint],
                        {"DTASK_TOKEN": token("worker")})

    driver = start_browser(os.path.join(scratch, "chromium-profile"), scratch)
    processes.driver = driver
    driver.get(url)
    if "dtask" not in driver.title:
        raise Failure(f"the page at {url} is not the dashboard: title {driver.title!r}")

    def page():
        return driver.execute_script(PAGE_STATE)

    def wait(seconds, condition, what):
        """The first page state that satisfies `condition`, within `seconds`."""
        seen = {}

        def check(_):
            seen["last"] = page()
            return seen["last"] if condition(seen["last"]) else False
        try:
            return WebDriverWait(driver, seconds, poll_frequency=0.1).until(check)
        except Exception as error:  # TimeoutException, reported with what the page showed
            reason = (str(error).strip().splitlines() or [""])[0]
            raise Failure(f"{what}: not seen ({type(error).__name__} {reason}, limit {seconds:.0f} s);"
                          " the page shows:\n"
                          + seen.get("last", {}).get("body", "(nothing)")) from None

    def job(state):
        return next((j for j in state["jobs"] if j["name"] == "sum_squares"), None)

    state = wait(START_SECONDS, lambda s: s["workerCount"] == str(WORKERS), f"worker count {WORKERS}")
    if state["unreachable"]:
        raise Failure("the page says the broker is unreachable")

    job_deadline = time.monotonic() + JOB_SECONDS

    def job_left():
        return max(1.0, job_deadline - time.monotonic())

    client = processes.start("client", [args.worker, "--connect", endpoint, "--n", str(N),
                                        "--subtasks", str(SUBTASKS)], {"DTASK_TOKEN": token("client")})
    state = wait(job_left(), job, "a job row named sum_squares")
    if "sum_squares" not in job(state)["text"]:
        raise Failure(f"the job's row does not show its name: {job(state)['text']!r}")
    state = wait(job_left(), lambda s: job(s) and job(s)["percent"] == "100" and job(s)["state"] == "done",
                 "the job at 100% and done")
    label = job(state)["label"]
    if f"{SUBTASKS} / {SUBTASKS}" not in label or "100%" not in label:
        raise Failure(f"the progress bar of the done job says {label!r}")
    job_id = job(state)["id"]
    state = wait(job_left(), lambda s: job_id in s["streamBars"], f"bars of job {job_id} in the task stream")
    if state["workerCount"] != str(WORKERS):
        raise Failure(f"the worker count changed to {state['workerCount']}")

    try:
        status = client.wait(timeout=job_left())
    except subprocess.TimeoutExpired:
        raise Failure("the client did not exit after its job was shown done") from None
    expected = N * (N + 1) * (2 * N + 1) // 6
    client_output = processes.log("client")
    if status != 0 or f"= {expected}" not in client_output:
        raise Failure(f"the client exited {status}; it said:\n{client_output}")

    def save(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if not driver.save_screenshot(path):
            raise Failure(f"cannot save the screenshot to {path}")
        print(f"screenshot: {path}")

    # The page as the job left it: its bars in the stream, the job done.
    if args.screenshot:
        save(args.screenshot)
    print(f"the dashboard showed {WORKERS} workers, job sum_squares at 100% ({SUBTASKS} subtasks)"
          f" and {len(state['streamBars'])} stream bars")

    # For the docs, two more jobs at once, taken while the larger one is about half done (or
    # when it is done, if the page never showed it in between).
    if args.docs_image:
        environment = {"DTASK_TOKEN": token("client")}
        more = [processes.start(f"client{i}", [args.worker, "--connect", endpoint, "--n", str(n),
                                               "--subtasks", str(k)], environment)
                for i, (n, k) in enumerate([(4 * N, 4 * SUBTASKS), (N, SUBTASKS)])]
        deadline = time.monotonic() + JOB_SECONDS

        def half_done(s):
            big = [j for j in s["jobs"] if j["total"] == str(4 * SUBTASKS)]
            return big and big[0]["percent"] and (40 <= float(big[0]["percent"]) <= 90 or big[0]["state"] == "done")
        wait(max(1.0, deadline - time.monotonic()), half_done, "the docs' jobs half done")
        save(args.docs_image)
        for client in more:
            try:
                client.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise Failure("a client of the docs' jobs did not exit") from None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtaskd", required=True, help="the dtaskd binary")
    parser.add_argument("--worker", required=True, help="the sum_squares example binary")
    parser.add_argument("--screenshot", help="save a screenshot of the page here (PNG)")
    parser.add_argument("--docs-image", help="also save it here (docs/images/dashboard.png)")
    args = parser.parse_args()

    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        print(SKIP + " and ".join(missing) + " not installed (scripts/setup.sh installs chromium chromium-driver)")
        return 0
    if importlib.util.find_spec("selenium") is None:
        print("dashboard_test: python3-selenium is not installed (scripts/setup.sh installs it)", file=sys.stderr)
        return 1

    # run_checked.sh or timeout(1) ends a test with SIGTERM: clean up then too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scratch = tempfile.mkdtemp(prefix="dtask-dashboard-")
    processes = Processes(scratch)
    try:
        run(args, scratch, processes)
        return 0
    except Failure as error:
        print(f"dashboard_test: FAILED: {error}", file=sys.stderr)
        if processes.output is not None:
            print("----- dtaskd -----\n" + "\n".join(processes.output.drain()), file=sys.stderr)
        for name, _ in processes.started:
            if name != "dtaskd" and processes.log(name):
                print(f"----- {name} -----\n{processes.log(name)}", file=sys.stderr)
        return 1
    finally:
        if processes.driver is not None:
            try:
                processes.driver.quit()
            except Exception as error:  # the browser may already be gone; its processes are killed below
                print(f"dashboard_test: quitting the browser: {error}", file=sys.stderr)
        processes.close()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
