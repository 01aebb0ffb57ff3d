"""`python -m asrd` is the same entry point as the `asrd` console script."""

from asrd.cli import main

raise SystemExit(main())
