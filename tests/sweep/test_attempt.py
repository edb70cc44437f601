"""One attempt (what a worker runs): its process's end, its log, its environment, and the
wait for a run folder whose lock a dying attempt's process still holds."""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import ExitStack

from clbench.run.lock import run_folder_lock
from clbench.sweep.attempt import LOG_NAME, Launch, run_attempt


def attempt(tmp_path, script: str, lock_wait: float = 0.0) -> Launch:
    return Launch(
        [sys.executable, "-c", script],
        str(tmp_path),
        {"OMP_NUM_THREADS": "3"},
        "results/run",
        lock_wait,
    )


def test_a_killed_process_died_and_its_output_is_in_the_log(tmp_path):
    script = (
        "import os, signal; print('threads', os.environ['OMP_NUM_THREADS'], flush=True); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    outcome = run_attempt(attempt(tmp_path, script))
    assert outcome.code == -signal.SIGKILL and outcome.died
    assert outcome.error == "threads 3"  # the last line it wrote
    log = (tmp_path / "results" / "run" / LOG_NAME).read_text().splitlines()
    assert log[0].startswith("== ") and sys.executable in log[0] and log[1] == "threads 3"


def test_exit_codes_1_and_2_are_not_deaths(tmp_path):
    for code in (1, 2):
        message = f"clbench: error: bad {code}"
        script = f"import sys\nprint({message!r}, file=sys.stderr)\nsys.exit({code})"
        outcome = run_attempt(attempt(tmp_path, script))
        assert (outcome.code, outcome.died, outcome.error) == (code, False, message)
    log = (tmp_path / "results" / "run" / LOG_NAME).read_text()
    assert log.count("== ") == 2  # appended, one header per attempt


def test_an_attempt_waits_for_the_lock_of_a_dying_attempt(tmp_path):
    folder = tmp_path / "results" / "run"
    with ExitStack() as held:
        held.enter_context(run_folder_lock(folder))
        released = {}

        def release():
            released["at"] = time.monotonic()
            held.close()

        threading.Timer(0.5, release).start()
        outcome = run_attempt(attempt(tmp_path, "import time; print(time.monotonic())", 10.0))
    assert outcome.code == 0
    started = float((folder / LOG_NAME).read_text().splitlines()[-1])
    assert started >= released["at"]
