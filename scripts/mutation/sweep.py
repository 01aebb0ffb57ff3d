"""Run each mutant against the tests that reach its line, a few workers at a time, each in its own
copy of the repo; results go to a JSON-lines file as they come, so an interrupted sweep resumes."""

from __future__ import annotations

import difflib
import functools
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from coverage_map import Map
from explained import EQUIVALENT
from generate import Mutant

HERE = Path(__file__).resolve().parent
IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", ".pytest_cache", ".carry", ".mutation", "*.egg-info"
)


@dataclass
class Outcome:
    ident: str
    path: str
    line: int
    kind: str
    before: str
    after: str
    verdict: str  # killed | timeout | survived | uncovered | error (pytest ran no test)
    tests_given: int
    tests_covering: int
    seconds: float
    detail: str  # the failing test, or pytest's last line

    @classmethod
    def of(
        cls,
        mutant: Mutant,
        verdict: str,
        tests_given: int,
        tests_covering: int,
        seconds: float,
        detail: str,
    ) -> Outcome:
        return cls(
            mutant.ident,
            mutant.path,
            mutant.line,
            mutant.kind,
            mutant.before[:200],
            mutant.after[:200],
            verdict,
            tests_given,
            tests_covering,
            seconds,
            detail,
        )


def _first_failure(stdout: str) -> str:
    lines = stdout.splitlines()
    why = next((line[1:].strip() for line in lines if line.startswith("E ")), "")  # the first error line
    for line in lines:  # pytest's summary line, not a captured log line at level ERROR
        if re.match(r"(FAILED|ERROR) \S+\.py", line):
            return f"{line.split(' - ')[0]}: {why[:200]}" if why else line.split(" - ")[0]
    lines = stdout.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _last_line(stdout: str) -> str:
    lines = stdout.strip().splitlines()
    return lines[-1] if lines else "(no output)"


class Worker:
    """One copy of the repo; applies a mutant, runs its tests, puts the original back."""

    def __init__(self, root: Path, home: Path, budget_s: float):
        self.budget_s = budget_s
        self.copy = home / "repo"
        if self.copy.exists():
            shutil.rmtree(self.copy)
        shutil.copytree(root, self.copy, ignore=IGNORE)
        for folder in [
            self.copy,
            *self.copy.parents,
        ]:  # the unprivileged test user must reach it
            folder.chmod(folder.stat().st_mode | 0o001)
        self.env = {
            **os.environ,
            "ASRD_NETGUARD": "1",
            "PYTHONPATH": f"{self.copy}/tests/netguard:{self.copy}:{HERE}",
        }
        self.env.pop("COVERAGE_PROCESS_START", None)

    def run(
        self, mutant: Mutant, tests: list[str], covering: int, timeout_s: float
    ) -> Outcome:
        target = self.copy / mutant.path
        original = target.read_text()
        target.write_text(mutant.source)
        started = time.monotonic()
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "budget_plugin",
            f"--mutation-budget={self.budget_s}",
            *tests,
        ]
        # its own session, so a timeout (or a mutant that breaks the tests' clean-up) can take every
        # process it started with it: left behind, they would load the machine for the next mutants
        proc = subprocess.Popen(
            command,
            cwd=self.copy,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, _ = proc.communicate(timeout=timeout_s)
            # 4 and 5: pytest could not run what it was given (a node id no longer there, nothing
            # collected): no test judged the mutant, so it is not a kill
            verdict = {0: "survived", 4: "error", 5: "error"}.get(proc.returncode, "killed")
            detail = _first_failure(stdout) if proc.returncode else _last_line(stdout)
        except subprocess.TimeoutExpired:
            verdict, detail = "timeout", f"over {timeout_s:.0f} s"
        finally:
            _kill_group(proc)
            target.write_text(original)
        return Outcome.of(
            mutant,
            verdict,
            len(tests),
            covering,
            round(time.monotonic() - started, 1),
            detail,
        )


def _exists(root: Path, test: str) -> bool:
    """Is the map's test still there? One renamed or deleted since the map would stop pytest with a
    usage error before any test ran."""
    file, _, name = test.partition("::")
    path = root / file
    if not path.is_file():
        return False
    function = name.split("::")[-1].split("[")[0]
    return not function or re.search(rf"^\s*(async )?def {re.escape(function)}\(", _text(path), re.MULTILINE) is not None


@functools.cache
def _text(path: Path) -> str:
    """A test file of a worker's copy: it does not change during a sweep, and every mutant asks."""
    return path.read_text()


def carry(root: Path, mutants: list[Mutant], results: Path, since: str) -> int:
    """An edit that adds or removes lines renames every mutant below it (an ident holds its line).
    A record made against `since` is carried to today's ident when its line is unchanged and only
    moved, and today's module has the same mutant there; the new record says where it came from."""
    now = {m.ident: m for m in mutants}
    records = latest(results)
    carried = 0
    for path in sorted({m.path for m in mutants}):
        old = subprocess.run(["git", "show", f"{since}:{path}"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.splitlines()
        moved = {}
        matcher = difflib.SequenceMatcher(None, old, (root / path).read_text().splitlines(), autojunk=False)
        for tag, i1, i2, j1, _ in matcher.get_opcodes():
            if tag == "equal":
                moved.update({i1 + k + 1: j1 + k + 1 for k in range(i2 - i1)})
        for ident, row in records.items():
            if row["path"] != path or ident in now:
                continue
            line = moved.get(row["line"])
            target = None if line is None else now.get(f"{path}:{line}:{ident.split(':', 2)[2]}")
            if target is None or (target.before, target.after) != (row["before"], row["after"]):
                continue
            with results.open("a") as f:
                f.write(json.dumps({**row, "ident": target.ident, "line": line,
                                    "detail": f"carried from {ident} at {since}: {row['detail']}"}) + "\n")
            carried += 1
    print(f"{carried} records carried")
    return 0


def latest(results: Path) -> dict[str, dict]:
    """Each mutant's last record."""
    if not results.exists():
        return {}
    rows = (json.loads(line) for line in results.read_text().splitlines())
    return {row["ident"]: row for row in rows}


def sweep(
    root: Path,
    mutants: list[Mutant],
    cmap: Map,
    results: Path,
    workers: int,
    budget_s: float,
    work: Path,
    again: tuple[str, ...] = (),
    first_tests: tuple[str, ...] = (),
) -> None:
    """again: verdicts to run again (e.g. "survived", with a bigger budget or `first_tests`: tests
    written since the map, run before the covering ones); the last record of a mutant counts."""
    done = latest(results)
    todo: queue.Queue[Mutant] = queue.Queue()
    for mutant in mutants:
        if mutant.ident in EQUIVALENT and mutant.ident in done:
            continue  # looked at: nothing can kill it
        if mutant.ident not in done or done[mutant.ident]["verdict"] in again:
            todo.put(mutant)
    total, lock = todo.qsize(), threading.Lock()
    print(
        f"{total} mutants to run ({len(done)} already done), {workers} workers",
        flush=True,
    )

    def record(outcome: Outcome) -> None:
        with lock, results.open("a") as f:
            f.write(json.dumps(asdict(outcome)) + "\n")
            print(
                f"{outcome.verdict:<9} {outcome.seconds:>6.1f}s {outcome.ident}  {outcome.detail[:90]}",
                flush=True,
            )

    def work_loop(index: int) -> None:
        worker = Worker(root, work / f"w{index}", budget_s)
        while True:
            try:
                mutant = todo.get_nowait()
            except queue.Empty:
                return
            first_line = min(mutant.stmt_line, mutant.line)
            covering = cmap.tests_for(
                mutant.path, first_line, mutant.end_line
            ) or cmap.import_tests(mutant.path, first_line)
            found = [*first_tests, *(t for t in covering if t not in first_tests and _exists(worker.copy, t))]
            if not found:
                record(
                    Outcome.of(
                        mutant, "uncovered", 0, 0, 0.0, "no test reaches this line"
                    )
                )
                continue
            # a test started before the budget ran out runs to its end: a hang is what outlasts that
            longest = max(cmap.durations.get(t, 0.0) for t in found)
            outcome = worker.run(
                mutant, found, len(covering), timeout_s=budget_s + 3 * longest + 120
            )
            if outcome.verdict == "survived" and not covering:
                outcome.verdict = (
                    "uncovered"  # only the --first tests ran, and missed it
                )
            record(outcome)

    threads = [threading.Thread(target=work_loop, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
