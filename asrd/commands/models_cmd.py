"""`asrd models [list]` and `asrd models pull [--preset NAME]`: which models each preset uses,
whether the configured ones are on this Mac, and downloading them while online.

The daemon downloads a missing hub model on first use too; `pull` does it up front, with progress,
so the daemon can then run offline. Exit 1 when a model is missing (list) or could not be made ready (pull).
"""

from __future__ import annotations

import argparse
import sys

from asrd import models
from asrd.cli import EXIT_FAILED, EXIT_OK
from asrd.config import Config, load_config
from asrd.plural import count
from asrd.presets import MODEL_ROLES, PRESETS


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.action == "pull":
        return pull(config, args.preset)
    return show(config)


def show(config: Config) -> int:
    """Every preset with its models, then where each configured model is on this machine."""
    for preset in PRESETS.values():
        mark = "*" if preset.name == config.model.preset else " "
        print(f"{mark} {preset.name:<14} {preset.summary}")
        for role in MODEL_ROLES:
            if getattr(preset, role):
                print(f"    {role:<5} {getattr(preset, role)}")
    print(f"\nconfigured models (model.preset = {config.model.preset}; ModelScope cache {models.cache_root()}):")
    found = models.locate_all(config.models())
    for place in found:
        print(f"  {place.role:<5} {place.name}\n        {_state(place)}")
    if all(place.ready for place in found):
        return EXIT_OK
    print("\nto download the missing models: run `asrd models pull` while online", file=sys.stderr)
    return EXIT_FAILED


def _state(place: models.ModelLocation) -> str:
    if place.ready:
        return f"ready: {place.path}"
    return f"{'missing' if place.path is None else 'incomplete'}: {place.problem} (looked in {place.where})"


def pull(config: Config, preset_name: str | None) -> int:
    """Download every hub model of the configured models (or of one preset) that is not complete."""
    chosen = config.models() if preset_name is None else {r: getattr(PRESETS[preset_name], r) for r in MODEL_ROLES}
    failed = 0
    for role, name in chosen.items():
        if name and not _pull_one(role, name):
            failed += 1
    if failed:
        print(f"{count(failed, 'model')} not ready; see above", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _pull_one(role: str, name: str) -> bool:
    place = models.locate(role, name)
    if place.hub_id is None:
        print(f"{role:<5} {name}: local folder, " + (f"PROBLEM: {place.problem}" if place.problem else "ready"),
              file=sys.stdout if place.ready else sys.stderr)
        return place.ready
    if place.ready:
        print(f"{role:<5} {name}: already downloaded ({place.path})")
        return True
    print(f"{role:<5} {name}: downloading {place.hub_id} to {models.cache_root()} ...", flush=True)
    try:
        folder = models.download(place.hub_id, progress=True)
    except models.DownloadFailed as exc:
        print(f"{role:<5} {name}: cannot download: {exc}. Connect to the internet and run "
              f"`asrd models pull` again, or set model.{role} to a local model folder.", file=sys.stderr)
        return False
    problem = models.folder_problem(folder)
    if problem:
        print(f"{role:<5} {name}: downloaded to {folder} but {problem}; run `asrd models pull` again", file=sys.stderr)
        return False
    print(f"{role:<5} {name}: ready ({folder})")
    return True
