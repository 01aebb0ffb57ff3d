#!/usr/bin/env python3
"""A mutation check anyone can rerun: break one safety-critical line at a time, run the tests that
guard it, and say whether they noticed (KILLED) or not (SURVIVED).

Each mutant is applied to a throwaway copy of the repo (never to your checkout). The list holds the
mutants a review found surviving (issue 15) plus the ones the durability tests were written for;
add a line when you add a promise. Run from the repo root with the test venv:

    .venv/bin/python scripts/mutants.py            # all; about 15 min on 2 cores
    .venv/bin/python scripts/mutants.py fsync      # only mutants whose name contains "fsync"
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]


DURABILITY = "tests/test_durability.py"
PROMISES = "tests/test_promises.py"
MUTANTS = [
    Mutant("output fsync skipped", "asrd/output.py", "    os.fsync(fd)\n", "    pass\n", (DURABILITY,)),
    Mutant("directory fsync skipped", "asrd/output.py", "    _fsync_dir(path.parent)\n", "    pass\n", (DURABILITY,)),
    Mutant("fchmod(0o600) dropped", "asrd/output.py", "        os.fchmod(fd, 0o600)", "        pass", (DURABILITY,)),
    Mutant("temp created 0o644", "asrd/output.py", "fd = os.open(tmp, flags, 0o600)",
           "fd = os.open(tmp, flags, 0o644)", (DURABILITY,)),
    Mutant("UNIQUE(size, sha256) dropped", "asrd/ledger.py", "            missing_since REAL,\n            UNIQUE (size, sha256)",
           "            missing_since REAL", (DURABILITY,)),
    Mutant("no re-check before writing", "asrd/daemon.py", "        if where != HERE:\n            return\n",
           "        if False:\n            return\n",
           (f"{PROMISES}::test_a_recording_rewritten_mid_job_with_the_same_size_gets_the_new_contents_transcript",)),
    Mutant("re-check by size only", "asrd/daemon.py", " or sha256_file(path) == job.sha256:", " or True:",
           (f"{PROMISES}::test_a_recording_rewritten_mid_job_with_the_same_size_gets_the_new_contents_transcript",)),
    Mutant("engine crashes never fail a job", "asrd/policy.py", "        if crashes + 1 >= engine.max_crashes:\n",
           "        if False:\n", (f"{PROMISES}::test_a_poison_file_ends_failed_and_memory_limit_recycles_the_engine",)),
    Mutant("memory recycle off", "asrd/engine/process.py",
           "        elif limit_mb and used > limit_mb:\n", "        elif False:\n",
           (f"{PROMISES}::test_a_poison_file_ends_failed_and_memory_limit_recycles_the_engine",)),
    Mutant("SIGINT handler dropped", "asrd/daemon.py", "        signal.signal(signal.SIGINT, stop)\n", "",
           (f"{PROMISES}::test_ctrl_c_stops_cleanly_and_sigkill_litter_is_cleaned_at_start",)),
    Mutant("start-up temp cleanup skipped", "asrd/daemon.py",
           "            for leftover in cleanup_temp_files_under(folder):\n", "            for leftover in []:\n",
           (f"{PROMISES}::test_ctrl_c_stops_cleanly_and_sigkill_litter_is_cleaned_at_start",)),
    Mutant("crash counter not incremented", "asrd/ledger.py", '"crashes": job.crashes + (count == "crash"),',
           '"crashes": job.crashes,', ("tests/test_ledger.py",)),
    Mutant("attempts off by one", "asrd/policy.py", "        if attempts + 1 >= engine.max_attempts:\n",
           "        if attempts + 2 >= engine.max_attempts:\n", ("tests/test_daemon.py::test_corrupt_file_gets_an_error_record_and_the_daemon_goes_on",)),
]


def run(mutant: Mutant) -> str:
    with tempfile.TemporaryDirectory(prefix="asrd-mutant-") as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", ".pytest_cache"))
        target = copy / mutant.path
        text = target.read_text()
        if mutant.before not in text:
            return "STALE (the line is no longer there: update the list)"
        target.write_text(text.replace(mutant.before, mutant.after, 1))
        tests = [t for t in mutant.tests if (copy / t.split("::")[0]).exists()]
        env = {**os.environ, "ASRD_NETGUARD": "1", "PYTHONPATH": f"{copy}/tests/netguard:{copy}"}
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                                cwd=copy, env=env, capture_output=True, text=True)
        last = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
        return f"{'KILLED' if result.returncode != 0 else 'SURVIVED'}  ({last})"


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or any(a in m.name for a in argv)]
    survivors = 0
    for mutant in chosen:
        verdict = run(mutant)
        survivors += not verdict.startswith("KILLED")
        print(f"{mutant.name:<34} {mutant.path:<24} {verdict}", flush=True)
    print(f"{len(chosen) - survivors} of {len(chosen)} killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
