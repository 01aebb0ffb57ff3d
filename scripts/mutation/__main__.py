"""The mutation check over asrd's safety-critical modules: does any test notice when one line breaks?

    .venv/bin/python scripts/mutation map        # one test run under coverage: which tests reach which lines
    .venv/bin/python scripts/mutation run        # every mutant against the tests that reach it
    .venv/bin/python scripts/mutation report     # kill rate per module, and the survivors
    .venv/bin/python scripts/mutation map --tests tests/test_x.py   # add tests written since the map

`run` resumes where it stopped (results in .mutation/results.jsonl); `run daemon` only mutates
modules whose path contains "daemon". The curated list in scripts/mutants.py is separate: the
mutants a review found, each named with the test that kills it.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from collections import Counter, defaultdict
from pathlib import Path

import coverage_map
import sweep
from explained import EQUIVALENT, UNKILLED
from generate import Mutant, mutants_of

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".mutation"
MODULES = [
    "asrd/output.py",
    "asrd/ledger.py",
    "asrd/daemon.py",
    "asrd/engine/process.py",
    "asrd/policy.py",
    "asrd/watcher.py",
]
MAP_TESTS = ["-m", "not slow", "--deselect", "tests/test_cuda.py", "tests"]


def _chosen(names: list[str]) -> list[str]:
    """The modules named (in the order named: cheap ones first pays off), or all."""
    if not names:
        return MODULES
    return [m for n in names for m in MODULES if n in m]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/mutation", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=["map", "run", "report", "list", "carry"])
    parser.add_argument(
        "modules", nargs="*", help="only modules whose path contains one of these"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--budget",
        type=float,
        default=12.0,
        help="wall seconds of tests per mutant (covering tests, the fastest of each file first); later ones are skipped",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=0,
        help="run (and report) a seeded random sample of this many mutants, drawn uniformly; 0: all",
    )
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--since",
        help="with carry: the commit the records were made against",
    )
    parser.add_argument(
        "--again",
        action="append",
        default=[],
        help="run mutants with this verdict again (e.g. survived, with a bigger --budget)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        action="append",
        help="the records to append to (run, carry), or to read (report: give several, later ones win)",
    )
    parser.add_argument(
        "--tests",
        action="append",
        default=[],
        help="with map: map only these test files or node ids (written since the map) and add them to it",
    )
    parser.add_argument(
        "--first",
        action="append",
        default=[],
        help="a test (file or node id) written since the map, run first for every mutant",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only mutants whose ident contains this (e.g. asrd/daemon.py:401:)",
    )
    args = parser.parse_args(argv)
    by_module = {path: mutants_of(path, (ROOT / path).read_text()) for path in MODULES}
    mutants = [m for path in _chosen(args.modules) for m in by_module[path]]
    if args.sample:  # drawn from every module, so naming modules narrows the same sample
        everything = [m for found in by_module.values() for m in found]
        drawn = {m.ident for m in _sample(everything, args.sample, args.seed)}
        mutants = [m for m in mutants if m.ident in drawn]
    if args.command == "map" and args.tests:  # tests written since the map: mapped on their own
        added = WORK / "map-added" / f"{len(_maps()):03d}"
        return coverage_map.build(ROOT, MODULES, args.tests, added, MAP_TESTS[:2])
    if args.command == "map":
        shutil.rmtree(WORK / "map-added", ignore_errors=True)
        return coverage_map.build(
            ROOT, MODULES, MAP_TESTS[-1:], WORK / "map", MAP_TESTS[:-1]
        )
    if args.command == "list":
        for m in mutants:
            print(f"{m.ident:<48} {m.before[:40]!r} -> {m.after[:40]!r}")
        print(len(mutants), "mutants")
        return 0
    # report reads every records file given (one sweep per module, say); the others write to one
    given = args.results or [WORK / "results.jsonl"]
    if args.command != "report" and len(given) > 1:
        parser.error("--results: give one records file to write to")
    results = given[0]
    if args.command == "carry":  # records made before an edit of the module that moved its lines
        return sweep.carry(ROOT, mutants, results, args.since)
    if args.command == "run":
        todo = [
            m for m in mutants if not args.only or any(o in m.ident for o in args.only)
        ]
        cmap = coverage_map.Map(ROOT, _maps())
        sweep.sweep(
            ROOT,
            todo,
            cmap,
            results,
            args.workers,
            args.budget,
            WORK,
            again=tuple(args.again),
            first_tests=tuple(args.first),
        )
    return report(given, {m.ident for m in mutants})


def _maps() -> list[Path]:
    """The mapping run, then the runs that added tests to it, oldest first."""
    return [WORK / "map", *sorted((WORK / "map-added").glob("[0-9]*"))]


def _sample(mutants: list[Mutant], k: int, seed: int) -> list[Mutant]:
    """A seeded sample, so anyone rerunning with the same seed (and code) gets the same mutants;
    kept in module order so the cheap modules still come first."""
    rng = random.Random(seed)
    pool = sorted(
        mutants, key=lambda m: m.ident
    )  # the same sample whatever order modules are named in
    chosen = {m.ident for m in rng.sample(pool, min(k, len(pool)))}
    return [m for m in mutants if m.ident in chosen]


def report(results: list[Path], wanted: set[str]) -> int:
    """Per module: mutants run, killed (a test failed or hung), equivalent (explained.EQUIVALENT),
    survived (or not judged: pytest ran no test), not reached by any test; the kill rate is
    killed / (run - equivalent)."""
    latest = {ident: row for path in results for ident, row in sweep.latest(path).items()}  # a later file wins
    rows = [row for ident, row in latest.items() if ident in wanted]
    per_module: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        per_module[row["path"]][_verdict(row)] += 1
    print(
        "| module | mutants | killed | equivalent | survived | not reached | kill rate |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    total: Counter = Counter()
    for path, counts in sorted(per_module.items()):
        total.update(counts)
        print(_row(f"`{path}`", counts))
    print(_row("**all**", total))
    print(f"\n{len(rows)} of {len(wanted)} mutants run\n\nsurvivors:")
    for row in rows:
        verdict = _verdict(row)
        if verdict != "killed":
            why = (
                EQUIVALENT.get(row["ident"])
                or UNKILLED.get(row["ident"])
                or row["detail"]
            )
            print(
                f"- {verdict}: `{row['ident']}` `{row['before'][:60]}` -> `{row['after'][:60]}`: {why}"
            )
    return 0


def _verdict(row: dict) -> str:
    if row["verdict"] in ("killed", "timeout"):
        return "killed"
    return "equivalent" if row["ident"] in EQUIVALENT else row["verdict"]


def _row(name: str, counts: Counter) -> str:
    n = sum(counts.values())
    judged = n - counts["equivalent"]
    rate = f"{100 * counts['killed'] / judged:.1f} %" if judged else ""
    return (
        f"| {name} | {n} | {counts['killed']} | {counts['equivalent']} | {counts['survived'] + counts['error']} | "
        f"{counts['uncovered']} | {rate} |"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
