"""`asrd agent install|uninstall|restart|status|plist`: start asrd at login (launchd on macOS,
a systemd user unit on Linux)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asrd import agent
from asrd.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from asrd.config import find_config_file, load_config


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # a broken config must not be installed
    config_path, _ = find_config_file(args.config)
    log_dir = Path(config.log_file).parent
    try:
        backend = agent.manager()
        if args.action == "plist":
            sys.stdout.write(backend.render(config_path, log_dir))
        elif args.action == "install":
            if args.dry_run:
                return _dry_run(backend, backend.render(config_path, log_dir), backend.install_plan())
            path = backend.install(config_path, log_dir)
            print(f"installed {path}; asrd runs now and at every login (`asrd agent status` to check)")
        elif args.action == "uninstall":
            return _uninstall(backend, config, args)
        elif args.action == "restart":
            backend.restart()
            print("restarted: asrd stopped and started again")
        else:
            return _status(backend, config, config_path)
    except agent.AgentError as exc:
        print(f"asrd agent: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _dry_run(backend, text: str | None, commands: list[str]) -> int:
    print(f"# dry run: nothing is changed. {backend.definition_path()} would be:" if text is not None
          else "# dry run: nothing is changed. Commands:")
    if text is not None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        print("# then:")
    for command in commands:
        print(command)
    return EXIT_OK


def _uninstall(backend, config, args: argparse.Namespace) -> int:
    from asrd import purge

    doomed, kept = purge.plan(config) if args.purge else ([], [])
    if args.dry_run:
        return _dry_run(backend, None, backend.uninstall_plan() + [f"rm -r {p}" for p in doomed]
                        + [f"# {why}" for why in kept])
    if args.purge and doomed and not args.yes:
        if not sys.stdin.isatty():
            print("asrd agent: --purge removes asrd's state and logs; add --yes to confirm", file=sys.stderr)
            return EXIT_USAGE
        print("--purge removes:\n" + "\n".join(f"  {p}" for p in doomed))
        if input("remove them? [y/N] ").strip().lower() not in ("y", "yes"):
            print("nothing removed")
            return EXIT_FAILED
    removed = backend.uninstall()
    print("uninstalled: asrd stopped and will not start at login" if removed else "not installed")
    if args.purge:
        purge.purge(doomed)
        for path in doomed:
            print(f"removed {path}")
        for why in kept:
            print(why)
        print("kept: your config, transcripts beside recordings, and the shared model caches")
    return EXIT_OK


def _status(backend, config, config_path) -> int:
    from asrd.commands.status_cmd import gather, render

    state = backend.status()
    running = f"running (pid {state.pid})" if state.pid else "not running"
    print(f"{state.manager}: {state.definition} ({'present' if state.installed else 'absent'})")
    print(f"{state.manager}: {'loaded, ' + running if state.loaded else 'not loaded'}"
          + (f", last exit {state.last_exit}" if state.last_exit else ""))
    code = EXIT_OK
    if state.installed and state.stale:
        print(f"interpreter: {state.interpreter} no longer exists (its venv was removed or upgraded); "
              f"reinstall: {agent.reinstall_command(config_path)}")
        code = EXIT_FAILED
    elif state.interpreter:
        print(f"interpreter: {state.interpreter}")
    print(render(gather(config, 3)))
    return code
