"""Who may use the workstation: a token printed at start (as Jupyter does) or a users file.

A users file holds one ``name:scrypt$...`` line per user (``fuselens passwd NAME`` prints
one); passwords are checked with the reader-study server's scrypt hashing, in constant time.
``--no-auth`` is accepted only on a loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Callable
from pathlib import Path

from fuselens.app.study.auth import hash_password, verify_password

TOKEN_USER = "fuselens"
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_check(token: str) -> Callable[[str, str], bool]:
    """Gradio's ``auth``: user :data:`TOKEN_USER`, the token as the password."""

    def check(username: str, password: str) -> bool:
        user_ok = hmac.compare_digest(username.encode(), TOKEN_USER.encode())
        token_ok = hmac.compare_digest(password.encode(), token.encode())
        return user_ok and token_ok

    return check


def users_line(name: str, password: str) -> str:
    """One line of a users file."""
    name = name.strip()
    if not name or ":" in name or any(ch.isspace() for ch in name):
        raise ValueError(f"user name {name!r}: no spaces or ':' allowed")
    return f"{name}:{hash_password(password)}"


def read_users(path: str | Path) -> dict[str, str]:
    """User name -> password hash from a users file (a malformed line is an error, by line)."""
    users: dict[str, str] = {}
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not name or not stored.startswith("scrypt$"):
            raise ValueError(f"{path}, line {number}: expected NAME:scrypt$... (fuselens passwd)")
        users[name] = stored
    if not users:
        raise ValueError(f"{path}: no users")
    return users


def users_check(users: dict[str, str]) -> Callable[[str, str], bool]:
    """Gradio's ``auth`` over a users file; an unknown name costs as much as a wrong password."""
    decoy = hash_password(secrets.token_hex(8))

    def check(username: str, password: str) -> bool:
        stored = users.get(username)
        ok = verify_password(password, stored or decoy)
        return ok and stored is not None

    return check
