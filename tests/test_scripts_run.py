"""`scripts/run` installs the torch wheel that fits the machine: the CPU build on Linux without an
NVIDIA GPU (not GBs of CUDA wheels), PyPI's CUDA build with one, PyPI's (MPS) build on macOS; the
user's TORCH_SPEC / TORCH_INDEX_URL win. ASRD_DRY_RUN=1 prints the commands instead of running them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CPU_INDEX = "--index-url https://download.pytorch.org/whl/cpu"


def fake_tools(folder: Path, system: str, nvidia_smi: str | None) -> Path:
    """A PATH of the few real tools the script needs, a fake `uname` saying `system`, and a fake
    `nvidia-smi` ("works", "fails": installed without a driver) or none."""
    folder.mkdir()
    for tool in ("bash", "dirname"):
        (folder / tool).symlink_to(shutil.which(tool))
    scripts = {"uname": f"echo {system}"}
    if nvidia_smi == "works":
        scripts["nvidia-smi"] = "echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)'"
    elif nvidia_smi == "fails":
        scripts["nvidia-smi"] = "echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver\"; exit 9"
    for name, body in scripts.items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    return folder


def dry_run(tmp_path: Path, system: str, nvidia_smi: str | None, **env: str) -> subprocess.CompletedProcess:
    path = fake_tools(tmp_path / "bin", system, nvidia_smi)
    clean = {k: v for k, v in os.environ.items() if k not in ("TORCH_SPEC", "TORCH_INDEX_URL")}
    return subprocess.run([str(ROOT / "scripts" / "run"), "--config", "my.yaml"], capture_output=True, text=True,
                          timeout=30, env={**clean, "PATH": str(path), "ASRD_DRY_RUN": "1", **env})


def torch_install(result: subprocess.CompletedProcess) -> str:
    [line] = [line for line in result.stdout.splitlines() if " install " in line and "torch" in line]
    return line


@pytest.mark.parametrize("system, nvidia_smi, index, said", [
    ("Linux", None, CPU_INDEX, "CPU build"),
    ("Linux", "fails", CPU_INDEX, "CPU build"),
    ("Linux", "works", None, "CUDA"),
    ("Darwin", None, None, "MPS"),
])
def test_the_torch_wheel_fits_the_machine(tmp_path, system, nvidia_smi, index, said):
    had_venv = (ROOT / ".venv").exists()
    result = dry_run(tmp_path, system, nvidia_smi)
    assert result.returncode == 0, result.stderr
    line = torch_install(result)
    assert ("--index-url" in line) == (index is not None) and (index or "") in line
    assert said in result.stderr  # it says which it picked
    assert result.stdout.splitlines()[-1].endswith("asrd run --config my.yaml")
    assert (ROOT / ".venv").exists() == had_venv  # a dry run creates nothing


def test_the_users_torch_spec_and_index_win(tmp_path):
    result = dry_run(tmp_path, "Linux", None, TORCH_SPEC="torch==2.5.1",
                     TORCH_INDEX_URL="https://download.pytorch.org/whl/cu121")
    assert result.returncode == 0, result.stderr
    line = torch_install(result)
    assert "torch==2.5.1" in line and "--index-url https://download.pytorch.org/whl/cu121" in line
    assert "TORCH_INDEX_URL" in result.stderr


def test_an_empty_index_url_asks_for_pypis_torch(tmp_path):
    result = dry_run(tmp_path, "Linux", None, TORCH_INDEX_URL="")
    assert result.returncode == 0, result.stderr
    assert "--index-url" not in torch_install(result)
