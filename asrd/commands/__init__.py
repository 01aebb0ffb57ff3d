"""One module per `asrd` subcommand; each exposes `main(args) -> exit code`."""
