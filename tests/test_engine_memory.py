"""The engine's memory figure: the physical footprint on macOS (proc_pid_rusage faked here with a
ctypes function that writes the struct as the kernel does, by offset), RSS on Linux (real), and the
engine.max_memory_mb it is held to, half the RAM by default."""

from __future__ import annotations

import ctypes
import sys

import numpy as np
import psutil
import pytest

from asrd.config import build_config
from asrd.engine import device as dev
from asrd.engine import footprint

# <sys/resource.h>: ri_uuid[16], then uint64_t ri_user_time, ri_system_time, ri_pkg_idle_wkups,
# ri_interrupt_wkups, ri_pageins, ri_wired_size, ri_resident_size, ri_phys_footprint, ... 18 in all
PHYS_FOOTPRINT_OFFSET = 16 + 7 * 8
STRUCT_SIZE = 16 + 18 * 8


def test_the_struct_is_rusage_info_v2():
    assert ctypes.sizeof(footprint.RusageInfoV2) == STRUCT_SIZE
    assert footprint.RusageInfoV2.ri_phys_footprint.offset == PHYS_FOOTPRINT_OFFSET
    assert footprint.RusageInfoV2.ri_resident_size.offset == PHYS_FOOTPRINT_OFFSET - 8


@pytest.fixture
def fake_kernel(monkeypatch):
    """proc_pid_rusage as a ctypes function: for RUSAGE_INFO_V2 it writes a resident size and a
    footprint into the caller's buffer at their C offsets; calls are recorded."""
    calls = []

    def fill(pid, flavor, buffer):
        calls.append((pid, flavor))
        if flavor != 2:
            return -1
        base = ctypes.addressof(buffer.contents)
        ctypes.c_uint64.from_address(base + PHYS_FOOTPRINT_OFFSET - 8).value = 1400 * 2**20  # RSS
        ctypes.c_uint64.from_address(base + PHYS_FOOTPRINT_OFFSET).value = 18000 * 2**20  # GPU buffers too
        return 0

    function = footprint.PROTOTYPE(fill)
    monkeypatch.setattr(footprint, "_function", function)
    return calls


def test_the_macos_footprint_is_read_from_proc_pid_rusage(fake_kernel):
    assert footprint.phys_footprint(platform="darwin") == 18000 * 2**20
    assert footprint.phys_footprint(4242, platform="darwin") == 18000 * 2**20
    assert fake_kernel == [(psutil.Process().pid, 2), (4242, 2)]
    figures = dev.memory_figures("cpu", platform="darwin")
    assert figures["footprint_mb"] == 18000
    assert dev.engine_memory_mb(figures) == 18000  # not the RSS


def test_an_error_from_the_kernel_leaves_rss(monkeypatch):
    monkeypatch.setattr(footprint, "_function", footprint.PROTOTYPE(lambda pid, flavor, buffer: -1))
    assert footprint.phys_footprint(platform="darwin") is None
    figures = dev.memory_figures("cpu", platform="darwin")
    assert "footprint_mb" not in figures and dev.engine_memory_mb(figures) == figures["rss_mb"]


@pytest.mark.skipif(sys.platform != "linux", reason="the Linux path")
def test_on_linux_the_figure_is_rss_and_follows_real_allocations():
    assert footprint.phys_footprint() is None
    before = dev.memory_figures("cpu")
    assert "footprint_mb" not in before and dev.engine_memory_mb(before) == before["rss_mb"]
    block = np.ones(300 * 2**20 // 8)  # 300 MB, every page touched
    after = dev.memory_figures("cpu")
    assert dev.engine_memory_mb(after) - dev.engine_memory_mb(before) > 250
    assert abs(after["rss_mb"] - psutil.Process().memory_info().rss / 2**20) < 50
    del block


def test_max_memory_mb_defaults_to_half_the_ram(monkeypatch):
    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("VM", (), {"total": 16 * 2**30})())
    assert build_config({}, None).engine.max_memory_mb is None
    assert build_config({}, None).engine.memory_limit_mb() == 8192
    assert build_config({"engine": {"max_memory_mb": 3000}}, None).engine.memory_limit_mb() == 3000
    assert build_config({"engine": {"max_memory_mb": 0}}, None).engine.memory_limit_mb() == 0  # no limit
