"""`asrd doctor [--json]`: check the set-up, one line per check with the fix; exit 1 on any fail."""

from __future__ import annotations

import argparse

from asrd import doctor
from asrd.cli import EXIT_FAILED, EXIT_OK
from asrd.config import find_config_file, load_config


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    config_path, _ = find_config_file(args.config)
    checks = doctor.run_checks(config, config_path)
    print(doctor.as_json(checks) if args.json else "\n".join(doctor.render(c) for c in checks))
    return EXIT_FAILED if any(c.status == "fail" for c in checks) else EXIT_OK
