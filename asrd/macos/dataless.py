"""iCloud Drive's evicted ("dataless") files: the path and size stay, the bytes live in the cloud.

Since macOS 12.3 such a file carries SF_DATALESS in st_flags; opening it for reading blocks until the
download finishes, and a background process may be refused the download. asrd never reads one: it
waits until the file is materialised (downloaded in Finder, or `brctl download PATH`). Only a stat
is needed to tell, so this is safe on any platform: Linux stat results have no st_flags.
"""

from __future__ import annotations

import os

SF_DATALESS = 0x40000000  # <sys/stat.h>: the file's content is not on this Mac
FIX = "download it in Finder (Download Now) or run `brctl download PATH`; asrd picks it up then"


def is_dataless(st: os.stat_result) -> bool:
    """Does this stat describe a file whose content is only in the cloud?"""
    return bool(getattr(st, "st_flags", 0) & SF_DATALESS)
