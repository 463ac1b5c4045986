"""Cluster authentication: the cluster token, where it is found, and the CURVE keys
derived from it.

Every TCP socket of a cluster speaks ZeroMQ CURVE (encrypted and authenticated). Both
CURVE keypairs — the one servers present and the one clients present — are derived
deterministically from the token, so holding the token is exactly holding the secret
keys: a peer without it can neither complete a handshake with a server (it cannot
encrypt to the server key it does not know) nor impersonate one. The guard
(``core/wire/guard.py``) additionally accepts only the cluster's client key over ZAP and logs
every refused connection. ``transport`` applies all of this to every ``tcp://`` socket.

Where a process finds its token, first match wins (``find_token``):

1. an explicit argument: ``actorium.init(token=...)`` or ``--token-file PATH``;
2. ``$ACTORIUM_TOKEN`` (the token itself);
3. ``$ACTORIUM_TOKEN_FILE`` (a path);
4. ``~/.actorium/token``.

A node process receives its token from its launcher over an inherited pipe
(``--token-fd``), never on its command line or in its environment.

Invariants: a token value is never printed, logged or put in an exception message;
token files are read only when nobody but their owner can read or write them.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import threading
from dataclasses import dataclass, field
from functools import lru_cache

import zmq
from zmq.utils import z85

from actorium.exceptions import AuthenticationError

TOKEN_ENV = "ACTORIUM_TOKEN"
TOKEN_FILE_ENV = "ACTORIUM_TOKEN_FILE"
MIN_TOKEN_CHARS = 16
_KDF_LABEL = b"actorium cluster curve key v1:"
_DATA_LABEL = b"actorium object data path hmac key v1"


def default_token_file() -> str:
    return os.path.join(os.path.expanduser("~"), ".actorium", "token")


@dataclass(frozen=True)
class Token:
    """A cluster token and where it came from (``source`` is safe to show users)."""
    value: str = field(repr=False)
    source: str


@dataclass(frozen=True)
class CurveKeys:
    """z85-encoded CURVE keypairs derived from one token."""
    server_public: bytes
    server_secret: bytes = field(repr=False)
    client_public: bytes
    client_secret: bytes = field(repr=False)


def generate_token() -> str:
    """A fresh random token: 256 bits as 64 hex characters."""
    return secrets.token_hex(32)


def check_token(value: str, source: str) -> str:
    value = value.strip() if isinstance(value, str) else value
    if not isinstance(value, str) or len(value) < MIN_TOKEN_CHARS:
        raise AuthenticationError(
            f"the cluster token from {source} is too short: it must be a string of at least "
            f"{MIN_TOKEN_CHARS} characters (a generated token has 64)")
    return value


def read_token_file(path: str, source: str = "") -> str:
    """Read a token file; refuse one that others can read or write (as ssh does)."""
    source = source or f"the token file {path}"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise AuthenticationError(f"{source} does not exist") from None
    except OSError as exc:
        raise AuthenticationError(f"cannot read {source}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AuthenticationError(f"{source} is not a regular file")
        if st.st_mode & 0o077:
            raise AuthenticationError(
                f"{source} is accessible by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
                f"run: chmod 600 {path}")
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise AuthenticationError(f"{source} does not hold a text token") from None
    return check_token(text, source)


def write_token_file(path: str, value: str) -> bool:
    """Create ``path`` (mode 0600, parent 0700 if created) holding ``value``.
    Returns False, writing nothing, if the file already exists."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (value + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def find_token(token: str | None = None, token_file: str | None = None, *,
               create: bool = False) -> tuple[Token, bool]:
    """The token this process should use, in the documented lookup order.

    With ``create`` (``actorium start --head``), a token *file* that the lookup reaches
    and that does not exist yet is created with a fresh token. Returns ``(token,
    created)``. Raises AuthenticationError, saying what was tried, when nothing is found.
    """
    if token is not None:
        return Token(check_token(token, "the token= argument"), "the token= argument"), False
    candidates = []
    if token_file:
        candidates.append((os.path.expanduser(token_file), f"--token-file {token_file}"))
    else:
        env_value = os.environ.get(TOKEN_ENV)
        if env_value:
            return Token(check_token(env_value, f"${TOKEN_ENV}"), f"${TOKEN_ENV}"), False
        env_file = os.environ.get(TOKEN_FILE_ENV)
        if env_file:
            candidates.append((os.path.expanduser(env_file), f"${TOKEN_FILE_ENV} ({env_file})"))
        else:
            candidates.append((default_token_file(), default_token_file()))
    path, where = candidates[0]
    source = f"the token file {path}"
    if create and write_token_file(path, generate_token()):
        return Token(read_token_file(path, source), source), True
    if not os.path.exists(path):
        raise AuthenticationError(
            f"no cluster token found: {where} does not exist. Pass the token file of the "
            f"cluster (printed by 'actorium start --head') with --token-file, "
            f"actorium.init(token=...), ${TOKEN_ENV} or ${TOKEN_FILE_ENV}, or copy it to "
            f"{default_token_file()}")
    return Token(read_token_file(path, source), source), False


# -- the process's token -------------------------------------------------------------
_lock = threading.Lock()
_token: Token | None = None


def set_process_token(token: Token | None) -> None:
    """Use ``token`` for this process's TCP sockets from now on (None: look it up again
    on next use)."""
    global _token
    with _lock:
        _token = token


def process_token() -> Token:
    """The token for this process's TCP sockets, looked up on first use."""
    global _token
    with _lock:
        if _token is None:
            _token = find_token()[0]
        return _token


_known: dict[str, Token] = {}


def remember_cluster_token(address: str, token: Token) -> None:
    """Record the token of a cluster this process started (e.g. a multi-node test
    cluster): client sockets to ``address`` use it, and so does ``init(address=...)``
    without a token argument (it counts as an explicit argument in the lookup order)."""
    with _lock:
        _known[_normal_address(address)] = token


def forget_cluster_token(address: str) -> None:
    with _lock:
        _known.pop(_normal_address(address), None)


def known_cluster_token(address: str) -> Token | None:
    with _lock:
        return _known.get(_normal_address(address))


def _normal_address(address: str) -> str:
    return address[len("tcp://"):] if address.startswith("tcp://") else address


def adopt_token_fd(fd: int) -> None:
    """Read the token a launcher wrote into pipe ``fd`` (then closed) and use it."""
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    set_process_token(Token(check_token(b"".join(chunks).decode(), "the launcher"),
                            "the launcher (inherited pipe)"))


def token_pipe(token: Token) -> int:
    """A pipe's read end holding ``token`` for a child process (the caller passes it
    with ``pass_fds`` and closes it after the child starts)."""
    r, w = os.pipe()
    try:
        os.write(w, token.value.encode())  # far below the pipe buffer: never blocks
    finally:
        os.close(w)
    return r


# -- keys ----------------------------------------------------------------------------
def _derive_secret(value: str, role: bytes) -> bytes:
    raw = hmac.new(value.encode(), _KDF_LABEL + role, hashlib.sha256).digest()
    return z85.encode(raw)


@lru_cache(maxsize=8)
def _keys_for(value: str) -> CurveKeys:
    server_secret = _derive_secret(value, b"server")
    client_secret = _derive_secret(value, b"client")
    return CurveKeys(zmq.curve_public(server_secret), server_secret,
                     zmq.curve_public(client_secret), client_secret)


def curve_keys(token: Token | None = None) -> CurveKeys:
    """The cluster's CURVE keys (of the process token unless ``token`` is given)."""
    return _keys_for((token or process_token()).value)


def data_path_key(token: Token | None = None) -> bytes:
    """The HMAC-SHA256 key of the raylets' object data path (``raylet/data_path.py``),
    derived from the token with its own label, so it is unrelated to the CURVE keys."""
    return hmac.new((token or process_token()).value.encode(), _DATA_LABEL,
                    hashlib.sha256).digest()
