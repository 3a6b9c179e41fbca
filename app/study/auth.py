"""Password hashing with scrypt and a random salt; verification in constant time; failed
logins counted per key so a key with too many is refused for a while."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, KEY_BYTES = 16, 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$key`` (base64 salt and key)."""
    if not password:
        raise ValueError("empty password")
    salt = secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_BYTES
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (False for a malformed hash)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


class LoginThrottle:
    """Failed logins per key (a username, a client address) over a sliding window: a key with
    ``limit`` failures in the last ``window_s`` seconds waits until the oldest one ages out."""

    MAX_KEYS = 10_000  # an attacker trying many usernames does not grow the table without end

    def __init__(self, limit: int, window_s: float):
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def attempt(self, key: str, now: float | None = None) -> float:
        """Seconds ``key`` must wait (nothing counted); else 0, and this attempt counts as a
        failure until :meth:`forgive` (so logins in parallel cannot overtake the limit)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            stamps = self._failures.get(key, deque())
            while stamps and stamps[0] <= now - self.window_s:
                stamps.popleft()
            if len(stamps) >= self.limit:
                return stamps[-self.limit] + self.window_s - now
            if key not in self._failures and len(self._failures) >= self.MAX_KEYS:
                del self._failures[next(iter(self._failures))]  # the longest-known key
            stamps.append(now)
            self._failures[key] = stamps
            return 0.0

    def forgive(self, key: str) -> None:
        """Take back the newest attempt of ``key`` (it succeeded, or never ran)."""
        with self._lock:
            stamps = self._failures.get(key)
            if stamps:
                stamps.pop()

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


class VerifierBusy(RuntimeError):
    """Every thread and queue place of the :class:`PasswordVerifier` is taken."""


class PasswordVerifier:
    """:func:`verify_password` on ``threads`` threads of its own, at most ``queue`` waiting.

    scrypt holds 16 MiB per run, and glibc keeps a thread's grown arena, so verifying on the
    web server's own threads grew its memory with every thread that ever ran a login; here
    the memory is bounded by ``threads``, and a login beyond the queue is refused at once.
    """

    def __init__(self, threads: int, queue: int):
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="fuselens-scrypt")
        self._places = threading.BoundedSemaphore(threads + queue)

    def __call__(self, password: str, stored: str) -> bool:
        if not self._places.acquire(blocking=False):
            raise VerifierBusy("too many logins at once")
        try:
            return self._pool.submit(verify_password, password, stored).result()
        finally:
            self._places.release()
