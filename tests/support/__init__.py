"""Helpers shared by the asrd test-suite (tiny FunASR models, fixtures)."""
