"""asrd: a local, private speech-transcription daemon.

Importing this package must stay cheap: no torch, no funasr (the engine process alone imports them).
"""

__version__ = "0.1.0"
