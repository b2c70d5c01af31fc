"""Console sessions and sign-in throttling, held server-side in one SQLite
file of the data directory, so every worker process sees the same sessions.

The cookie carries a random session id; the file holds only its SHA-256,
so a copy of the file opens no session. A session remembers how its
account signed in (a fingerprint of the account's wrapped secret, or the
token's digest): a new secret, a revoked token or a deleted account ends it
at the next request. Sessions need not outlive the server: `kms server`
removes the file at start (reset()).

Times come from the service clock, so tests fast-forward expiry with the
test clock instead of sleeping.
"""
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from typing import NamedTuple, Optional, Tuple

from kms.clock import Clock

IDLE_TIMEOUT = 15 * 60
ABSOLUTE_TIMEOUT = 8 * 3600
# Sign-in throttling: after FREE_FAILURES failures from one address, each
# further attempt waits twice as long as the last (1 s, 2 s, ... up to
# MAX_WAIT) counted from the latest failure; FAILURE_MEMORY of quiet forgets.
FREE_FAILURES = 5
MAX_WAIT = 300.0
FAILURE_MEMORY = 15 * 60
FILE_NAME = "console-sessions.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    digest TEXT PRIMARY KEY, secret_id TEXT NOT NULL, proof TEXT NOT NULL,
    csrf TEXT NOT NULL, created REAL NOT NULL, seen REAL NOT NULL, flash TEXT);
CREATE TABLE IF NOT EXISTS failures (
    address TEXT PRIMARY KEY, count INTEGER NOT NULL, last REAL NOT NULL);
"""


class Session(NamedTuple):
    digest: str
    secret_id: str
    proof: str  # "secret:<fingerprint>" or "token:<digest>"
    csrf: str
    created: float


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def reset(data_dir: str) -> None:
    """Forget every session and make the file anew (at server start, before
    the workers open it: switching a new file to WAL needs it to oneself,
    and workers doing so at once would fail with "database is locked")."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(os.path.join(data_dir, FILE_NAME + suffix))
        except FileNotFoundError:
            pass
    _connect(os.path.join(data_dir, FILE_NAME)).close()


def _connect(path: str, patience: float = 10.0) -> sqlite3.Connection:
    # SQLite makes its -wal and -shm files with the database's mode.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    db = sqlite3.connect(path, timeout=patience, isolation_level=None, check_same_thread=False)
    deadline = time.monotonic() + patience
    while True:
        # Switching to WAL does not wait out SQLite's busy timeout: another
        # process making the file at the same moment is waited for here.
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            return db
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.05)


class SessionStore:
    def __init__(self, data_dir: str, clock: Clock) -> None:
        self.path = os.path.join(data_dir, FILE_NAME)
        self.clock = clock
        self._db = _connect(self.path)
        self._lock = threading.Lock()  # one connection, used from the thread pool

    # ---- sessions -----------------------------------------------------------

    def open(self, secret_id: str, proof: str) -> str:
        """A new session; returns the id for the cookie (shown nowhere else)."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock.now()
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE seen < ? OR created < ?",
                             (now - IDLE_TIMEOUT, now - ABSOLUTE_TIMEOUT))
            self._db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, NULL)",
                             (digest(session_id), secret_id, proof, secrets.token_urlsafe(32),
                              now, now))
        return session_id

    def find(self, session_id: Optional[str], touch: bool = True) -> Optional[Session]:
        """The live session of this cookie value (its idle time restarted),
        or None: unknown, idle too long, or past its absolute lifetime."""
        if not session_id or len(session_id) > 128:
            return None
        key = digest(session_id)
        now = self.clock.now()
        with self._lock:
            row = self._db.execute("SELECT digest, secret_id, proof, csrf, created, seen "
                                   "FROM sessions WHERE digest = ?", (key,)).fetchone()
            if row is None:
                return None
            if row[5] < now - IDLE_TIMEOUT or row[4] < now - ABSOLUTE_TIMEOUT:
                self._db.execute("DELETE FROM sessions WHERE digest = ?", (key,))
                return None
            if touch:
                self._db.execute("UPDATE sessions SET seen = ? WHERE digest = ?", (now, key))
        return Session(*row[:5])

    def set_flash(self, session: Session, message: str) -> None:
        """A message for the session's next page (an action's success, shown
        after its redirect: kept here, not in the URL, so no link can fake one)."""
        with self._lock:
            self._db.execute("UPDATE sessions SET flash = ? WHERE digest = ?", (message, session.digest))

    def take_flash(self, session: Session) -> Optional[str]:
        with self._lock:
            row = self._db.execute("SELECT flash FROM sessions WHERE digest = ?", (session.digest,)).fetchone()
            if row is None or row[0] is None:
                return None
            self._db.execute("UPDATE sessions SET flash = NULL WHERE digest = ?", (session.digest,))
        return str(row[0])

    def close(self, session: Session) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE digest = ?", (session.digest,))

    def close_account(self, secret_id: str) -> None:
        """End every session of an account (deleted, or given a new secret)."""
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE secret_id = ?", (secret_id,))

    @staticmethod
    def csrf_matches(session: Session, given: Optional[str]) -> bool:
        return bool(given) and hmac.compare_digest(session.csrf.encode(), str(given).encode())

    # ---- sign-in throttling ---------------------------------------------------
    # Failures count against the address and against the SecretId tried: a
    # sign-in that succeeds clears only its own, so signing in to one's own
    # account between guesses at another's does not reset the guessing.

    @staticmethod
    def _counters(address: str, secret_id: Optional[str]) -> Tuple[str, ...]:
        return ("addr:" + address,) + (("id:" + secret_id[:128],) if secret_id else ())

    def wait_before_sign_in(self, address: str, secret_id: Optional[str] = None) -> float:
        """Seconds this address (or this SecretId) must still wait before its next attempt."""
        now = self.clock.now()
        wait = 0.0
        for counter in self._counters(address, secret_id):
            with self._lock:
                row = self._db.execute("SELECT count, last FROM failures WHERE address = ?",
                                       (counter,)).fetchone()
            if row is None or row[0] < FREE_FAILURES or row[1] < now - FAILURE_MEMORY:
                continue
            wait = max(wait, row[1] + min(2.0 ** (row[0] - FREE_FAILURES), MAX_WAIT) - now)
        return max(0.0, wait)

    def sign_in_failed(self, address: str, secret_id: Optional[str] = None) -> None:
        now = self.clock.now()
        with self._lock:
            self._db.execute("DELETE FROM failures WHERE last < ?", (now - FAILURE_MEMORY,))
            for counter in self._counters(address, secret_id):
                self._db.execute("INSERT INTO failures VALUES (?, 1, ?) ON CONFLICT(address) "
                                 "DO UPDATE SET count = count + 1, last = excluded.last",
                                 (counter, now))

    def sign_in_succeeded(self, address: str, secret_id: Optional[str] = None) -> None:
        with self._lock:
            for counter in self._counters(address, secret_id):
                self._db.execute("DELETE FROM failures WHERE address = ?", (counter,))
