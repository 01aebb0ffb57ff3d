"""What each engine outcome costs a job, at the exact edges the README promises: a recording that
keeps failing is given up after `engine.max_attempts` tries, one that keeps crashing the engine after
`engine.max_crashes` crashes (never a crash loop), and a model or a stopping daemon never costs it."""

from __future__ import annotations

import pytest

from asrd.config import EngineConfig
from asrd.engine.process import (
    BAD_FILE,
    CRASHED,
    DONE,
    ERROR,
    LOAD_FAILED,
    STOPPED,
    TIMEOUT,
)
from asrd.policy import FAIL, FINISHED, RETRY, WAIT, Decision, decide

ENGINE = EngineConfig(max_attempts=3, max_crashes=2)


@pytest.mark.parametrize("status", [BAD_FILE, ERROR, TIMEOUT])
def test_a_failing_recording_is_retried_until_its_last_allowed_attempt(status: str) -> None:
    assert decide(status, "bad header", attempts=0, crashes=0, engine=ENGINE) == Decision(RETRY, "attempt", "bad header")
    assert decide(status, "bad header", attempts=1, crashes=0, engine=ENGINE) == Decision(RETRY, "attempt", "bad header")
    assert decide(status, "bad header", attempts=2, crashes=0, engine=ENGINE) == Decision(
        FAIL, "attempt", "bad header (after 3 attempts)")


def test_with_one_attempt_allowed_the_reason_is_the_engine_s_own() -> None:
    engine = EngineConfig(max_attempts=1, max_crashes=2)
    assert decide(BAD_FILE, "not audio", attempts=0, crashes=0, engine=engine) == Decision(FAIL, "attempt", "not audio")


def test_a_recording_that_crashes_the_engine_fails_on_its_last_allowed_crash() -> None:
    assert decide(CRASHED, "SIGSEGV", attempts=0, crashes=0, engine=ENGINE) == Decision(RETRY, "crash", "SIGSEGV")
    assert decide(CRASHED, "SIGSEGV", attempts=0, crashes=1, engine=ENGINE) == Decision(
        FAIL, "crash", "crashed the engine 2 times; last: SIGSEGV")
    engine = EngineConfig(max_attempts=3, max_crashes=1)
    assert decide(CRASHED, "SIGKILL", attempts=2, crashes=0, engine=engine) == Decision(
        FAIL, "crash", "crashed the engine 1 time; last: SIGKILL")


def test_crashes_and_attempts_are_counted_apart() -> None:
    """Two crashes already used do not shorten a file error's attempts, nor the reverse."""
    assert decide(ERROR, "x", attempts=0, crashes=5, engine=ENGINE).action == RETRY
    assert decide(CRASHED, "x", attempts=5, crashes=0, engine=ENGINE).action == RETRY


@pytest.mark.parametrize("status", [LOAD_FAILED, STOPPED])
def test_a_model_problem_or_a_stopping_daemon_costs_the_recording_nothing(status: str) -> None:
    assert decide(status, "model missing", attempts=2, crashes=1, engine=ENGINE) == Decision(WAIT, None, "model missing")


def test_done_is_finished_and_an_unknown_outcome_is_a_bug() -> None:
    assert decide(DONE, None, attempts=2, crashes=1, engine=ENGINE) == Decision(FINISHED)
    with pytest.raises(ValueError, match="unknown engine outcome"):
        decide("exploded", None, 0, 0, ENGINE)
