"""Test-only faults and fakes inside the engine process, switched on by $ASRD_TEST_HOOKS (JSON).

A monkeypatch in the test process cannot reach a spawned child, so tests describe what the child
should do instead. Keys:
  "crash_on": "text"   SIGKILL itself when a job's path contains text (a poison file)
  "hang_on": "text"    sleep forever when a job's path contains text
  "exit_on": "text"    exit with status 3 when a job's path contains text (a native library's exit())
  "fault_stage": "x"   the job stage (asrd.engine.protocol) at whose start crash_on/hang_on strike;
                       default "opening", before the recording is even probed
  "delay_s": 2.5       sleep this long at the start of every job (time to kill it mid-job)
  "delay_after_s": 2.5 sleep this long after a job's transcript is made, before it is sent
  "hang_on_load": true sleep forever before loading the models (a stuck device or download)
  "load_progress": true  while the models load, log `test.load_progress` every 0.5 s (a moving download)
  "fake_mps": "FILE"   pretend the weights sit on an Apple GPU: device "mps", with
                       torch.mps.empty_cache appending a line to FILE and fixed mps memory figures
                       (not in an engine the parent holds on the CPU)
  "mps_error_on": "x"  with fake_mps: the loaded models' ASR call raises the error MPS gives for an op
                       it lacks when a job's path contains x (a CPU set loaded later is not touched)
  "bucket_shapes": true  pad ASR input shapes to buckets whatever the device (as on MPS)
Without the variable, nothing here changes behaviour.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from asrd.engine.protocol import OPENING

ENV = "ASRD_TEST_HOOKS"
LOAD_PROGRESS_EVERY_S = 0.5
FAKE_MPS_ERROR = ("The operator 'aten::_asrd_fake_op' is not currently implemented for the MPS device. If you want "
                  "this op to be considered for addition please comment on pytorch#141287")


@dataclass
class Hooks:
    settings: dict[str, Any] = field(default_factory=dict)
    _loaded: threading.Event = field(default_factory=threading.Event)
    _path: str = ""  # the job in flight

    def before_load(self) -> None:
        if self.settings.get("load_progress"):
            threading.Thread(target=self._report_load_progress, daemon=True).start()
        if self.settings.get("hang_on_load"):
            _sleep_forever()

    def _report_load_progress(self) -> None:
        import structlog

        log = structlog.get_logger("asrd.engine.testhooks")
        while not self._loaded.wait(LOAD_PROGRESS_EVERY_S):
            log.info("test.load_progress")

    def after_load(self, engine: Any) -> None:
        self._loaded.set()
        if self.settings.get("bucket_shapes"):
            engine.bucket_shapes = True
        path = self.settings.get("fake_mps")
        if not path or engine.pinned:
            return
        torch = engine._torch

        def record_empty_cache() -> None:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()}\n")

        torch.mps.empty_cache = record_empty_cache
        torch.mps.current_allocated_memory = lambda: 100 * 2**20
        torch.mps.driver_allocated_memory = lambda: 200 * 2**20
        engine.device = "mps"
        if self.settings.get("mps_error_on"):
            self._fail_ops_on(engine, self.settings["mps_error_on"])

    def _fail_ops_on(self, engine: Any, text: str) -> None:
        automodel = engine.model
        original = automodel.inference

        def inference(*args: Any, **kwargs: Any) -> Any:
            if kwargs.get("model") is automodel.model and text in self._path:
                raise NotImplementedError(FAKE_MPS_ERROR)
            return original(*args, **kwargs)

        automodel.inference = inference

    def at_stage(self, stage: str, request: Any) -> None:
        self._path = request.path
        if stage == OPENING and self.settings.get("delay_s"):
            time.sleep(float(self.settings["delay_s"]))
        if stage != self.settings.get("fault_stage", OPENING):
            return
        if self.settings.get("crash_on") and self.settings["crash_on"] in request.path:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.settings.get("hang_on") and self.settings["hang_on"] in request.path:
            _sleep_forever()
        if self.settings.get("exit_on") and self.settings["exit_on"] in request.path:
            os._exit(3)

    def after_job(self, request: Any) -> None:
        if self.settings.get("delay_after_s"):
            time.sleep(float(self.settings["delay_after_s"]))


def _sleep_forever() -> None:
    while True:
        time.sleep(60)


def install() -> Hooks:
    raw = os.environ.get(ENV)
    return Hooks(json.loads(raw)) if raw else Hooks()
