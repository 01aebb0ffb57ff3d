"""The job ledger: every recording asrd has been offered, keyed on its content, and where its job stands.

A job is keyed on (size, sha256), never on the name: a recording is transcribed exactly once whatever
it is called, a renamed file keeps its job, and a new recording saved under an old name gets a new
one. mtime only lets a path skip re-hashing (the hash cache). Stored in sqlite (WAL) in state_dir so
the daemon and a one-shot `asrd transcribe` can share it. Like the manifest, every call is one short
transaction on a fresh connection (no shared connection, no lock), which also makes a Ledger safe to
share between threads; writes use BEGIN IMMEDIATE so a read-then-write cannot interleave with
another process's.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from asrd.logging import get_logger
from asrd.manifest import on_disk, path_key
from asrd.sqlite_files import BUSY_TIMEOUT_S, hold_open, open_db

log = get_logger("asrd.ledger")
DB_NAME = "ledger.sqlite3"
# retired: the job's content exists at no path any more (a half-copied file later completed, a file
# overwritten with a new recording): neither done nor failed, never retried, not shown as a recording.
STATES = ("queued", "running", "done", "failed", "retired")
REQUEUE_COUNTS = (None, "attempt", "crash")
_PID_SLACK_S = 1.0  # process start times are coarse; a claim this close to it is still that process's


class LedgerError(Exception):
    """Base for ledger errors."""


class JobNotFound(LedgerError, KeyError):
    """No job with this id."""


class IllegalTransition(LedgerError, ValueError):
    """The job is not in a state this change may start from (e.g. completing a queued job)."""

    def __init__(self, job_id: int, state: str, to: str):
        self.job_id, self.state, self.to = job_id, state, to
        super().__init__(f"job {job_id} is {state}: cannot move it to {to}")


@dataclass
class Job:
    """One recording's content and how far asrd has got with it (times are epoch seconds)."""

    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str
    state: str
    attempts: int
    crashes: int
    last_error: str | None
    outputs: list[str]
    queued_at: float
    started_at: float | None
    finished_at: float | None
    not_before: float  # not handed out by next_due before this (backoff)
    audio_s: float | None
    processing_s: float | None
    rtf: float | None
    owner_pid: int | None = None  # the process that claimed it while running, else None
    missing_since: float | None = None  # queued but its recording is not at `path`: not handed out


_COLUMNS = tuple(Job.__dataclass_fields__)


# What a retry the user asked for resets: counters, backoff, the last error and the last run's times.
_FRESH_TRY: dict[str, Any] = {"attempts": 0, "crashes": 0, "not_before": 0.0, "last_error": None,
                              "started_at": None, "finished_at": None, "owner_pid": None}


def backoff_s(n: int, base: float = 5.0, cap: float = 300.0) -> float:
    """Delay before the n-th retry (n >= 1): base, 2*base, 4*base, ... capped; 0 for n <= 0."""
    if n <= 0:
        return 0.0
    if n > 64:  # 2**n would only overflow into the cap anyway
        return cap
    return min(cap, base * 2.0 ** (n - 1))


# --------------------------------------------------------------------------- schema migrations


def _v1_jobs_and_hashes(conn: sqlite3.Connection) -> None:
    """Jobs unique on content, plus the hash cache (path -> last hashed size, mtime, sha256)."""
    conn.execute(
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            crashes INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            outputs TEXT NOT NULL DEFAULT '[]',
            queued_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            not_before REAL NOT NULL DEFAULT 0,
            audio_s REAL,
            processing_s REAL,
            rtf REAL,
            owner_pid INTEGER,
            UNIQUE (size, sha256)
        )
        """
    )
    conn.execute("CREATE INDEX jobs_by_state ON jobs (state, mtime_ns, id)")
    conn.execute("CREATE INDEX jobs_by_path ON jobs (path)")
    conn.execute(
        """
        CREATE TABLE hashes (
            path TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            hashed_at REAL NOT NULL
        )
        """
    )


def _v2_retired_and_missing(conn: sqlite3.Connection) -> None:
    """The `retired` state and `missing_since` (a job waiting for its recording to come back).

    sqlite cannot change a CHECK constraint in place: the table is rebuilt, ids kept.
    """
    conn.execute(
        """
        CREATE TABLE jobs_v2 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'retired')),
            attempts INTEGER NOT NULL DEFAULT 0,
            crashes INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            outputs TEXT NOT NULL DEFAULT '[]',
            queued_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            not_before REAL NOT NULL DEFAULT 0,
            audio_s REAL,
            processing_s REAL,
            rtf REAL,
            owner_pid INTEGER,
            missing_since REAL,
            UNIQUE (size, sha256)
        )
        """
    )
    conn.execute("INSERT INTO jobs_v2 SELECT *, NULL FROM jobs")
    conn.execute("DROP TABLE jobs")
    conn.execute("ALTER TABLE jobs_v2 RENAME TO jobs")
    conn.execute("CREATE INDEX jobs_by_state ON jobs (state, mtime_ns, id)")
    conn.execute("CREATE INDEX jobs_by_path ON jobs (path)")
    conn.execute("CREATE INDEX hashes_by_content ON hashes (sha256)")


# MIGRATIONS[i] takes the schema from version i to i + 1 (PRAGMA user_version); append, never edit.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1_jobs_and_hashes, _v2_retired_and_missing]


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the pending migrations in one transaction (all or none); returns the new version.

    The version is read again under the write lock, so two processes opening a new ledger together
    apply each migration once.
    """
    if schema_version(conn) == len(MIGRATIONS):
        return len(MIGRATIONS)
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = schema_version(conn)
        if version > len(MIGRATIONS):
            raise LedgerError(
                f"ledger schema version {version} is newer than this asrd knows ({len(MIGRATIONS)})"
            )
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            step(conn)
            conn.execute(f"PRAGMA user_version = {number:d}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return schema_version(conn)


# --------------------------------------------------------------------------- helpers


def _row_job(row: sqlite3.Row) -> Job:
    values = dict(zip(_COLUMNS, (row[c] for c in _COLUMNS)))
    values["outputs"] = json.loads(values["outputs"])
    return Job(**values)


def _owner_alive(pid: int | None, since: float | None) -> bool:
    """Is the process that claimed a job still running? (A pid started after the claim is re-used.)

    Why: a one-shot `asrd transcribe` may hold a job while the daemon starts; requeueing its job
    would transcribe the file twice. Another user's process (AccessDenied) cannot be our owner.
    """
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return since is None or created <= since + _PID_SLACK_S


class Ledger:
    """The job store in `state_dir/ledger.sqlite3`; see the module docstring."""

    def __init__(self, state_dir: Path, clock: Callable[[], float] = time.time):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.state_dir / DB_NAME
        self._clock = clock
        self.set_aside = open_db(self.path, self._connect, migrate)  # a corrupt ledger, moved out of the way
        if self.set_aside is not None:
            log.error("state.corrupt", file=str(self.path), set_aside=str(self.set_aside),
                      fix="nothing to do: asrd started a new ledger and takes finished recordings back from "
                          "their outputs beside them")
        self._held = hold_open(self.path)  # no checkpoint and WAL deletion after every transaction

    # -- connections and transactions

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, holding the write lock from its first statement."""
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _read(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[Job]:
        with closing(self._connect()) as conn:
            return [_row_job(r) for r in conn.execute(sql, params).fetchall()]

    @staticmethod
    def _fetch(conn: sqlite3.Connection, job_id: int) -> Job:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFound(job_id)
        return _row_job(row)

    @staticmethod
    def _update(conn: sqlite3.Connection, job_id: int, fields: dict[str, Any]) -> None:
        unknown = set(fields) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"not job columns: {sorted(unknown)}")
        if "outputs" in fields:
            fields = {**fields, "outputs": json.dumps(fields["outputs"], ensure_ascii=False)}
        assignments = ", ".join(f"{name} = ?" for name in fields)
        conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*fields.values(), job_id))

    def _transition(
        self, job_id: int, allowed: tuple[str, ...], to: str, changes: Callable[[Job], dict[str, Any]]
    ) -> Job:
        """Move a job from one of `allowed` states to `to`, atomically; anything else raises."""
        with self._write() as conn:
            job = self._fetch(conn, job_id)
            if job.state not in allowed:
                raise IllegalTransition(job_id, job.state, to)
            self._update(conn, job_id, {"state": to, **changes(job)})
            return self._fetch(conn, job_id)

    # -- hash cache

    def cached_hash(self, path: str | os.PathLike[str], size: int, mtime_ns: int) -> str | None:
        """The sha256 recorded for this path if it was hashed with the same size and mtime."""
        with closing(self._connect()) as conn:
            return self._cached(conn, path_key(path), size, mtime_ns)

    @staticmethod
    def _cached(conn: sqlite3.Connection, key: str, size: int, mtime_ns: int) -> str | None:
        row = conn.execute(
            "SELECT sha256 FROM hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
            (key, size, mtime_ns),
        ).fetchone()
        return row[0] if row else None

    def remember_hash(self, path: str | os.PathLike[str], size: int, mtime_ns: int, sha256: str) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO hashes (path, size, mtime_ns, sha256, hashed_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (path_key(path), size, mtime_ns, sha256, self._clock()),
            )

    # -- offering content

    def offer(
        self, path: str | os.PathLike[str], size: int, mtime_ns: int, sha256: str
    ) -> tuple[Job, bool]:
        """(job, True) for content never seen, else (its existing job, False) whatever its state.

        A known content seen under a new path was renamed or moved if its recorded path no longer
        holds it: the job follows it. If the recorded path still holds it, the new one is a copy and
        the job stays where it is.
        """
        key = path_key(path)
        with self._write() as conn:
            row = conn.execute(
                "SELECT * FROM jobs WHERE size = ? AND sha256 = ?", (size, sha256)
            ).fetchone()
            if row is None:
                cur = conn.execute(
                    "INSERT INTO jobs (path, size, mtime_ns, sha256, state, queued_at, not_before)"
                    " VALUES (?, ?, ?, ?, 'queued', ?, 0)",
                    (key, size, mtime_ns, sha256, self._clock()),
                )
                return self._fetch(conn, cur.lastrowid), True
            job = _row_job(row)
            if job.state == "retired":  # its content is back: a recording again, with a fresh start
                self._update(conn, job.id, {**_FRESH_TRY, "state": "queued", "path": key, "mtime_ns": mtime_ns,
                                            "missing_since": None, "queued_at": self._clock()})
                return self._fetch(conn, job.id), True
            if job.path != key and not self._still_holds(conn, job, key):
                self._update(conn, job.id, {"path": key, "mtime_ns": mtime_ns, "missing_since": None})
                job = self._fetch(conn, job.id)
            elif job.path == key and job.missing_since is not None:  # back where it was
                self._update(conn, job.id, {"mtime_ns": mtime_ns, "missing_since": None})
                job = self._fetch(conn, job.id)
            return job, False

    def _still_holds(self, conn: sqlite3.Connection, job: Job, new_key: str) -> bool:
        """Does the job's recorded path still hold its content, as a copy? Decided without hashing.

        Gone, not a regular file, another size, a cached hash that differs, or the very file now
        offered (a case-only rename on a case-insensitive volume): no. Otherwise it is taken to be
        a copy (hashing it here would hold the write lock for the length of a read).
        """
        try:
            recorded = on_disk(job.path)  # keys are NFC; on Linux an NFD name opens only as NFD
            st = os.stat(recorded)
            if os.path.samefile(recorded, on_disk(new_key)):
                return False
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != job.size:
            return False
        cached = self._cached(conn, job.path, st.st_size, st.st_mtime_ns)
        return cached is None or cached == job.sha256

    # -- the queue

    def next_due(self, now: float, under: str | os.PathLike[str] | None = None) -> Job | None:
        """The oldest queued job (by file mtime, then id) whose backoff has passed and whose
        recording is not missing; with `under`, only recordings in that folder (the daemon's inbox)."""
        sql = "SELECT * FROM jobs WHERE state = 'queued' AND not_before <= ? AND missing_since IS NULL"
        params: tuple[Any, ...] = (now,)
        if under is not None:
            prefix = path_key(under).rstrip(os.sep) + os.sep
            sql += " AND substr(path, 1, ?) = ?"
            params += (len(prefix), prefix)
        jobs = self._read(sql + " ORDER BY mtime_ns, id LIMIT 1", params)
        return jobs[0] if jobs else None

    def has_pending(self, under: str | os.PathLike[str]) -> bool:
        """Is a job in `under` queued, due now or after its backoff? (One whose recording is missing
        is not: it may never come back.) The daemon keeps the Mac awake while this holds."""
        prefix = path_key(under).rstrip(os.sep) + os.sep
        with closing(self._connect()) as conn:
            return conn.execute(
                "SELECT 1 FROM jobs WHERE state = 'queued' AND missing_since IS NULL"
                " AND substr(path, 1, ?) = ? LIMIT 1", (len(prefix), prefix)).fetchone() is not None

    def queued(self, limit: int | None = None, now: float | None = None) -> list[Job]:
        """Queued jobs in the order next_due would hand them out: due ones oldest first, then the
        ones still backing off, soonest first."""
        now = self._clock() if now is None else now
        return self._read(
            "SELECT * FROM jobs WHERE state = 'queued'"
            " ORDER BY not_before > :now, CASE WHEN not_before > :now THEN not_before END,"
            " mtime_ns, id LIMIT :limit",
            {"now": now, "limit": -1 if limit is None else limit},
        )

    def claim(self, job_id: int, owner_pid: int | None = None) -> Job:
        """queued -> running, owned by this process (or `owner_pid`)."""
        pid = os.getpid() if owner_pid is None else owner_pid
        now = self._clock()
        return self._transition(
            job_id, ("queued",), "running",
            lambda job: {"started_at": now, "finished_at": None, "owner_pid": pid},
        )  # fmt: skip

    def complete(
        self, job_id: int, outputs: list[str], audio_s: float, processing_s: float, rtf: float
    ) -> Job:
        """running -> done, with what was written and how long it took (last_error is cleared)."""
        now = self._clock()
        return self._transition(
            job_id, ("running",), "done",
            lambda job: {
                "outputs": [str(o) for o in outputs], "audio_s": audio_s,
                "processing_s": processing_s, "rtf": rtf, "finished_at": now,
                "last_error": None, "owner_pid": None,
            },
        )  # fmt: skip

    def requeue(
        self, job_id: int, reason: str | None, count: str | None = None, delay_s: float = 0.0
    ) -> Job:
        """running -> queued. count: None (asrd stopping, not the file's fault), "attempt" or
        "crash" (the counter it adds one to); not before now + delay_s."""
        if count not in REQUEUE_COUNTS:
            raise ValueError(f"count must be one of {REQUEUE_COUNTS}, not {count!r}")
        now = self._clock()

        def changes(job: Job) -> dict[str, Any]:
            fields: dict[str, Any] = {
                "attempts": job.attempts + (count == "attempt"),
                "crashes": job.crashes + (count == "crash"),
                "not_before": now + delay_s, "started_at": None, "owner_pid": None,
            }  # fmt: skip
            if reason is not None:
                fields["last_error"] = reason
            return fields

        return self._transition(job_id, ("running",), "queued", changes)

    def fail(self, job_id: int, reason: str, count: str | None = None) -> Job:
        """queued or running -> failed (a queued one may fail before it starts, e.g. file gone);
        count: the counter the last try adds one to, as in requeue."""
        if count not in REQUEUE_COUNTS:
            raise ValueError(f"count must be one of {REQUEUE_COUNTS}, not {count!r}")
        now = self._clock()
        return self._transition(
            job_id, ("queued", "running"), "failed",
            lambda job: {"last_error": reason, "finished_at": now, "owner_pid": None,
                         "attempts": job.attempts + (count == "attempt"),
                         "crashes": job.crashes + (count == "crash")},
        )  # fmt: skip

    def recover_running(self, include_live: bool = False, crashed_pid: int | None = None) -> list[Job]:
        """running -> queued for every job whose owner process is gone; returns them.

        A job held by a live process (a one-shot `asrd transcribe` beside the daemon) is left
        alone unless include_live, so this is also safe to call periodically. A job whose owner
        was `crashed_pid` (the daemon that died holding the lock) counts a crash: a recording that
        kills the daemon itself must end as failed, not as a respawn loop under launchd.
        """
        def orphans_in(rows: list[sqlite3.Row]) -> list[Job]:
            return [job for job in map(_row_job, rows)
                    if include_live or not _owner_alive(job.owner_pid, job.started_at)]

        running = "SELECT * FROM jobs WHERE state = 'running' ORDER BY id"
        with closing(self._connect()) as conn:  # the usual answer is "none": no write transaction then
            if not orphans_in(conn.execute(running).fetchall()):
                return []
        with self._write() as conn:
            orphans = orphans_in(conn.execute(running).fetchall())
            for job in orphans:
                counted = crashed_pid is not None and job.owner_pid == crashed_pid
                self._update(conn, job.id, {"state": "queued", "started_at": None, "owner_pid": None,
                                            "crashes": job.crashes + counted})
            return [self._fetch(conn, job.id) for job in orphans]

    def retry(self, path: str | os.PathLike[str] | None = None, failed: bool = False) -> list[Job]:
        """Requeue, with attempts, crashes, backoff and last_error reset; returns the requeued jobs.

        path: the newest job for it, whatever its state (done too: the user asks for a redo), except
        a running one, which is left alone (requeueing it would run it twice). failed: every failed
        job (with path as well: that path's job only if it failed).
        """
        if path is None and not failed:
            raise ValueError("retry needs a path or failed=True")
        with self._write() as conn:
            if path is None:
                rows = conn.execute("SELECT * FROM jobs WHERE state = 'failed' ORDER BY id").fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM jobs WHERE path = ? ORDER BY id DESC LIMIT 1", (path_key(path),)
                ).fetchall()
            jobs = [j for j in map(_row_job, rows) if j.state not in ("running", "retired")]
            jobs = [j for j in jobs if not failed or j.state == "failed"]
            for job in jobs:
                self._update(conn, job.id, {"state": "queued", **_FRESH_TRY})
            return [self._fetch(conn, job.id) for job in jobs]

    def retry_job(self, job_id: int) -> Job:
        """One done or failed job back to queued, counters reset (a redo the user asked for)."""
        return self._transition(job_id, ("done", "failed"), "queued", lambda job: _FRESH_TRY)

    def mark_missing(self, job_id: int, reason: str) -> Job:
        """queued or running -> queued and waiting: its recording is not at its path (moved out of
        reach, its volume away). Not an attempt; offer() resumes it when the content is seen again."""
        now = self._clock()
        return self._transition(
            job_id, ("queued", "running"), "queued",
            lambda job: {"missing_since": job.missing_since or now, "started_at": None, "owner_pid": None,
                         "last_error": reason},
        )  # fmt: skip

    def missing(self) -> list[Job]:
        return self._read("SELECT * FROM jobs WHERE state = 'queued' AND missing_since IS NOT NULL ORDER BY id")

    def found(self, job_id: int, path: str | os.PathLike[str] | None = None) -> Job:
        """The job's recording is where it was, or at `path` (it moved): no longer waiting."""
        fields: dict[str, Any] = {"missing_since": None, **({"path": path_key(path)} if path else {})}
        with self._write() as conn:
            job = self._fetch(conn, job_id)
            if job.state not in ("queued", "running"):
                raise IllegalTransition(job_id, job.state, job.state)
            if job.missing_since is not None:
                fields["last_error"] = None
            self._update(conn, job_id, fields)
            return self._fetch(conn, job_id)

    def retire(self, job_id: int, reason: str) -> Job:
        """queued or running -> retired: no path holds this content any more, so there is nothing
        to transcribe (the path now holds a newer recording, which is a job of its own)."""
        now = self._clock()
        return self._transition(
            job_id, ("queued", "running"), "retired",
            lambda job: {"last_error": reason, "finished_at": now, "owner_pid": None, "missing_since": None},
        )  # fmt: skip

    def set_outputs(self, job_id: int, outputs: list[str]) -> None:
        """Where a done job's outputs are now (they moved along with their recording)."""
        with self._write() as conn:
            self._update(conn, job_id, {"outputs": [str(o) for o in outputs]})

    def paths_with_content(self, size: int, sha256: str) -> list[str]:
        """Paths whose last hash (at their recorded size) was this content: where a recording may be now."""
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT path FROM hashes WHERE sha256 = ? AND size = ? ORDER BY hashed_at DESC", (sha256, size)
            ).fetchall()
        return [r[0] for r in rows]

    def abandon(self, job_id: int) -> None:
        """A queued job nobody will finish (its one-shot `asrd transcribe` was killed, the file is
        outside the inbox): back to done if it was a redo of a done recording, else forgotten."""
        with self._write() as conn:
            job = self._fetch(conn, job_id)
            if job.state != "queued":
                return
            if job.outputs:
                self._update(conn, job_id, {"state": "done", "finished_at": job.finished_at or self._clock(),
                                            "started_at": None, "owner_pid": None})
            else:
                conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    def drop(self, job_id: int) -> None:
        """Forget a running job entirely: a one-shot `asrd transcribe` of a recording outside the
        inbox that its caller abandoned (Ctrl-C, a closed terminal) must not be finished by anyone."""
        with self._write() as conn:
            conn.execute("DELETE FROM jobs WHERE id = ? AND state = 'running'", (job_id,))

    def restore(self, before: Job) -> Job:
        """Put a running job back as `before` was read (a redo its caller abandoned): a done
        recording stays done with its outputs, a failed one failed."""
        fields = {name: getattr(before, name) for name in _COLUMNS if name != "id"}
        return self._transition(before.id, ("running",), before.state, lambda job: fields)

    # -- looking things up

    def get(self, job_id: int) -> Job:
        with closing(self._connect()) as conn:
            return self._fetch(conn, job_id)

    def by_path(self, path: str | os.PathLike[str]) -> Job | None:
        """The newest job recorded at this path (older ones are earlier contents of the same name)."""
        jobs = self._read("SELECT * FROM jobs WHERE path = ? ORDER BY id DESC LIMIT 1", (path_key(path),))
        return jobs[0] if jobs else None

    def by_content(self, size: int, sha256: str) -> Job | None:
        jobs = self._read("SELECT * FROM jobs WHERE size = ? AND sha256 = ?", (size, sha256))
        return jobs[0] if jobs else None

    def running(self) -> list[Job]:
        return self._read("SELECT * FROM jobs WHERE state = 'running' ORDER BY started_at, id")

    def counts(self) -> dict[str, int]:
        """Jobs per state, every state present (0 when none)."""
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {state: 0 for state in STATES} | {r[0]: r[1] for r in rows}

    def recent(self, limit: int = 10) -> list[Job]:
        """Finished jobs (done or failed), newest first."""
        return self._read(
            "SELECT * FROM jobs WHERE state IN ('done', 'failed')"
            " ORDER BY finished_at DESC, id DESC LIMIT ?",
            (limit,),
        )
