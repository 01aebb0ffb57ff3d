"""Which tests reach which lines: one pytest run under coverage, every process measured, each test
its own context. The mutation sweep then runs, for each mutant, only the tests that reach its line."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import coverage

HERE = Path(__file__).resolve().parent

RCFILE = """\
[run]
parallel = True
data_file = {data}
include =
{include}
context = ${{ASRD_COVERAGE_CONTEXT-}}
sigterm = True
patch = _exit
"""


def build(
    root: Path, modules: list[str], tests: list[str], out: Path, pytest_args: list[str]
) -> int:
    """Run `tests` once with coverage in every process; leave the data and the durations in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(
        0o1777
    )  # the permission tests' unprivileged user writes its processes' data here too
    for old in out.glob("cov*"):
        old.unlink()
    rc = out / "coveragerc"
    rc.write_text(
        RCFILE.format(
            data=out / "cov", include="\n".join(f"    {root / m}" for m in modules)
        )
    )
    rc.chmod(0o644)
    env = {
        **os.environ,
        "COVERAGE_PROCESS_START": str(rc),
        "ASRD_NETGUARD": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(root / "tests" / "netguard"), str(root), str(HERE)]
        ),
        "ASRD_MUTATION_DURATIONS": str(out / "durations.json"),
    }
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "coverage_plugin",
        *pytest_args,
        *tests,
    ]
    (out / "commit").write_text(_head(root) + "\n")  # the code whose line numbers the map holds
    code = subprocess.run(cmd, check=False, cwd=root, env=env).returncode
    data = coverage.CoverageData(basename=str(out / "cov"))
    coverage.data.combine_parallel_data(data, data_paths=[str(out)], keep=False)
    return code


class Map:
    """Lines to tests, and each test's duration, from a mapping run and any runs added since (tests
    written after the map): a test mapped again counts as in its latest run only."""

    def __init__(self, root: Path, outs: list[Path]):
        self.durations: dict[str, float] = {}
        self.failed: set[str] = set()
        self.lines: dict[tuple[str, int], set[str]] = defaultdict(set)
        self.at_import: set[tuple[str, int]] = (
            set()
        )  # run with no test's context: module level
        later: set[str] = set()  # tests of the runs read so far, newest first
        for out in reversed(outs):
            info = json.loads((out / "durations.json").read_text())
            mine = set(info["durations"]) - later
            self.durations.update({t: info["durations"][t] for t in mine})
            self.failed |= set(info["failed"]) & mine
            self._read(root, out, mine)
            later |= mine

    def _read(self, root: Path, out: Path, tests: set[str]) -> None:
        data = coverage.CoverageData(basename=str(out / "cov"))
        data.read()
        commit_file = out / "commit"
        commit = commit_file.read_text().strip() if commit_file.exists() else None
        for measured in data.measured_files():
            rel = os.path.relpath(measured, root)
            now = _lines_now(root, commit, rel)
            for old_line, contexts in data.contexts_by_lineno(measured).items():
                for line in now(old_line):
                    for context in contexts:
                        test = context.split("|")[-1] if context else ""
                        if not test:
                            self.at_import.add((rel, line))
                        elif test in tests and test not in self.failed:
                            self.lines[(rel, line)].add(test)

    def tests_for(self, path: str, first: int, last: int) -> list[str]:
        """Tests that ran any line of the span, in the order most likely to catch a mutant soon: the
        module's own test files (named after it) fastest first, then the fastest test of every other
        file, then each one's second fastest, and so on."""
        found = set()
        for line in range(first, last + 1):
            found |= self.lines.get((path, line), set())
        return self._order(found, Path(path).stem)

    def _order(self, tests: set[str], stem: str) -> list[str]:
        by_speed = sorted(tests, key=lambda t: (self.durations.get(t, 0.0), t))
        rank, seen = {}, defaultdict(int)
        for test in by_speed:
            file = test.split("::")[0]
            rank[test] = 0 if stem in Path(file).stem else seen[file] + 1
            seen[file] += 1
        return sorted(
            by_speed, key=lambda t: rank[t]
        )  # stable: fastest first within a rank

    def import_tests(self, path: str, line: int) -> list[str]:
        """For a module-level line (run at import, before any test): every test that uses the module,
        its own test files first, fastest first; the budget cuts the list. (The five fastest were
        too few: a constant such as a Unicode range's edge is checked by one test among a hundred.)"""
        if (path, line) not in self.at_import:
            return []
        users = {t for (p, _), tests in self.lines.items() if p == path for t in tests}
        return self._order(users, Path(path).stem)


def _head(root: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip()


def _lines_now(root: Path, commit: str | None, rel: str):
    """Where a line of `rel` as it was at `commit` (when the map ran) is in the file today, so a
    map stays usable after edits: unchanged lines move with the diff, a rewritten block's lines
    stand for every line that replaced them, and lines added since take their neighbours' tests."""
    if commit is None:
        return lambda line: (line,)
    shown = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=root, capture_output=True, text=True, check=False)
    if shown.returncode != 0:
        return lambda line: (line,)
    old, new = shown.stdout.splitlines(), (root / rel).read_text().splitlines()
    if old == new:
        return lambda line: (line,)
    moved: dict[int, set[int]] = defaultdict(set)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                moved[i1 + k + 1].add(j1 + k + 1)
        elif tag == "replace":
            for i in range(i1, i2):
                moved[i + 1].update(range(j1 + 1, j2 + 1))
        elif tag == "insert":  # the lines just before and after the insertion reach it
            for i in (i1, i1 + 1):
                moved[i].update(range(j1 + 1, j2 + 1))
    return lambda line: tuple(sorted(moved.get(line, ())))
