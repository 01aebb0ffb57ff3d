"""`asrd agent install|uninstall|status|plist`: start asrd at login with launchd (macOS)."""

from __future__ import annotations

import argparse
import plistlib
import sys
from pathlib import Path

from asrd import agent
from asrd.cli import EXIT_FAILED, EXIT_OK
from asrd.config import find_config_file, load_config


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # a broken config must not be installed
    config_path, _ = find_config_file(args.config)
    log_dir = Path(config.log_file).parent
    try:
        if args.action == "plist":
            sys.stdout.write(plistlib.dumps(agent.build_plist(config_path, log_dir), sort_keys=True).decode())
        elif args.action == "install":
            path = agent.install(config_path, log_dir)
            print(f"installed {path}; asrd runs now and at every login (`asrd status` to check)")
        elif args.action == "uninstall":
            removed = agent.uninstall()
            print("uninstalled: asrd stopped and will not start at login" if removed else "not installed")
        else:
            state = agent.status()
            running = f"running (pid {state.pid})" if state.pid else "not running"
            print(f"plist: {agent.plist_path()} ({'present' if state.installed else 'absent'})")
            print(f"launchd: {'loaded, ' + running if state.loaded else 'not loaded'}"
                  + (f", last exit {state.last_exit}" if state.last_exit else ""))
    except agent.AgentError as exc:
        print(f"asrd agent: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
