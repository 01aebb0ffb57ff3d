"""The engine: the only part of asrd that imports torch and FunASR (inside the engine process)."""
