"""Where the cluster token comes from: lookup order, token files, key derivation.

The lookup tests use real files and a private HOME; the end-to-end ones run real
driver processes against a real head."""
from __future__ import annotations

import os

import pytest

from actorium.core.wire import auth
from actorium.exceptions import AuthenticationError

TOKEN_A = "a" * 64
TOKEN_B = "b" * 64
TOKEN_C = "c" * 64


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A private HOME and no token variables: ``~/.actorium/token`` is ours."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)
    monkeypatch.delenv(auth.TOKEN_FILE_ENV, raising=False)
    os.makedirs(tmp_path / "home")
    return tmp_path / "home"


def _file(path, value: str, mode: int = 0o600) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, mode)
    return str(path)


def test_explicit_token_argument_wins_over_everything(home, tmp_path, monkeypatch):
    _file(home / ".actorium" / "token", TOKEN_C)
    monkeypatch.setenv(auth.TOKEN_ENV, TOKEN_B)
    monkeypatch.setenv(auth.TOKEN_FILE_ENV, _file(tmp_path / "f", TOKEN_C))
    token, created = auth.find_token(token=TOKEN_A)
    assert (token.value, created) == (TOKEN_A, False)


def test_explicit_token_file_wins_over_the_environment(home, tmp_path, monkeypatch):
    monkeypatch.setenv(auth.TOKEN_ENV, TOKEN_B)
    explicit = _file(tmp_path / "explicit", TOKEN_A)
    assert auth.find_token(token_file=explicit)[0].value == TOKEN_A


def test_token_variable_wins_over_token_file_variable(home, tmp_path, monkeypatch):
    monkeypatch.setenv(auth.TOKEN_ENV, TOKEN_B)
    monkeypatch.setenv(auth.TOKEN_FILE_ENV, _file(tmp_path / "f", TOKEN_C))
    token = auth.find_token()[0]
    assert token.value == TOKEN_B and token.source == "$ACTORIUM_TOKEN"


def test_token_file_variable_wins_over_the_home_file(home, tmp_path, monkeypatch):
    _file(home / ".actorium" / "token", TOKEN_A)
    monkeypatch.setenv(auth.TOKEN_FILE_ENV, _file(tmp_path / "f", TOKEN_C))
    assert auth.find_token()[0].value == TOKEN_C


def test_home_token_file_is_the_last_resort(home):
    _file(home / ".actorium" / "token", TOKEN_A)
    assert auth.find_token()[0].value == TOKEN_A


def test_no_token_anywhere_is_a_clear_error(home):
    with pytest.raises(AuthenticationError, match="no cluster token found.*--token-file"):
        auth.find_token()


def test_missing_explicit_token_file_is_an_error_not_a_fallback(home, tmp_path):
    _file(home / ".actorium" / "token", TOKEN_A)
    with pytest.raises(AuthenticationError, match="does not exist"):
        auth.find_token(token_file=str(tmp_path / "missing"))


def test_token_file_readable_by_others_is_refused(home):
    path = _file(home / ".actorium" / "token", TOKEN_A, mode=0o644)
    with pytest.raises(AuthenticationError, match="chmod 600"):
        auth.find_token()
    os.chmod(path, 0o600)
    assert auth.find_token()[0].value == TOKEN_A


def test_short_token_is_refused(home):
    with pytest.raises(AuthenticationError, match="too short"):
        auth.find_token(token="short")


def test_create_writes_a_fresh_owner_only_token_file(home):
    token, created = auth.find_token(create=True)
    path = home / ".actorium" / "token"
    assert created and token.source == f"the token file {path}"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert len(token.value) == 64 and path.read_text().strip() == token.value


def test_create_keeps_an_existing_token_file(home):
    _file(home / ".actorium" / "token", TOKEN_A)
    token, created = auth.find_token(create=True)
    assert (token.value, created) == (TOKEN_A, False)


def test_token_value_never_appears_in_its_repr():
    token = auth.Token(TOKEN_A, "somewhere")
    assert TOKEN_A not in repr(token)
    assert TOKEN_A not in repr(auth.curve_keys(token))


def test_curve_keys_are_derived_from_the_token_alone():
    a1 = auth.curve_keys(auth.Token(TOKEN_A, "x"))
    a2 = auth.curve_keys(auth.Token(TOKEN_A, "y"))
    b = auth.curve_keys(auth.Token(TOKEN_B, "x"))
    assert a1 == a2
    assert a1.server_public != b.server_public and a1.client_public != b.client_public
    assert a1.server_public != a1.client_public


# -- end to end, against a running head --------------------------------------------------
_CONNECT = ("import actorium\n"
            "try:\n"
            "    actorium.init(address={address!r})\n"
            "    print('CONNECTED')\n"
            "except actorium.exceptions.AuthenticationError as exc:\n"
            "    print('REFUSED', exc)\n")


def _driver_env(head, tmp_path, **variables) -> dict:
    env = dict(head.env, HOME=str(tmp_path / "driver-home"), **variables)
    os.makedirs(env["HOME"], exist_ok=True)
    return env


def test_driver_finds_the_token_through_the_token_file_variable(head, tmp_path):
    env = _driver_env(head, tmp_path, ACTORIUM_TOKEN_FILE=head.token_file)
    out = head.driver(_CONNECT.format(address=head.address), env=env)
    assert "CONNECTED" in out.stdout, out.stdout + out.stderr


def test_driver_token_variable_takes_precedence_over_the_token_file_variable(head, tmp_path):
    env = _driver_env(head, tmp_path, ACTORIUM_TOKEN="w" * 64,
                      ACTORIUM_TOKEN_FILE=head.token_file)
    out = head.driver(_CONNECT.format(address=head.address), env=env)
    assert "REFUSED" in out.stdout and "$ACTORIUM_TOKEN" in out.stdout, out.stdout + out.stderr


def test_driver_falls_back_to_the_home_token_file(head, tmp_path):
    env = _driver_env(head, tmp_path)
    _file(os.path.join(env["HOME"], ".actorium", "token"), head.token)
    out = head.driver(_CONNECT.format(address=head.address), env=env)
    assert "CONNECTED" in out.stdout, out.stdout + out.stderr


def test_driver_without_any_token_gets_an_authentication_error(head, tmp_path):
    out = head.driver(_CONNECT.format(address=head.address), env=_driver_env(head, tmp_path))
    assert "REFUSED no cluster token found" in out.stdout, out.stdout + out.stderr


def test_cli_finds_the_token_through_the_token_file_option(head, tmp_path):
    env = _driver_env(head, tmp_path)
    out = head.cli("list", "nodes", "--token-file", head.token_file, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    without = head.cli("list", "nodes", env=env)
    assert without.returncode == 1 and "no cluster token found" in without.stderr


def test_driver_uses_the_token_of_a_cluster_this_process_started(head, monkeypatch, tmp_path):
    """What ``cluster_utils.Cluster`` relies on: a process that started a cluster (and
    recorded its token) connects to it without naming the token again."""
    import actorium
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(auth.TOKEN_FILE_ENV, raising=False)
    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)
    auth.remember_cluster_token(head.address, auth.Token(head.token, "test"))
    try:
        actorium.init(address=head.address)
        assert actorium.is_initialized()
    finally:
        actorium.shutdown()
        auth.forget_cluster_token(head.address)


def test_a_process_talks_to_a_cluster_it_started_without_a_process_token(head, monkeypatch,
                                                                           tmp_path):
    """``cluster_utils.Cluster`` queries its own gcs before any ``init``: client sockets
    to a remembered address use that cluster's token."""
    from actorium.core.wire import protocol, transport
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(auth.TOKEN_FILE_ENV, raising=False)
    monkeypatch.delenv(auth.TOKEN_ENV, raising=False)
    auth.set_process_token(None)
    gcs = f"tcp://{head.address}"
    with pytest.raises(AuthenticationError, match="no cluster token found"):
        transport.rpc(gcs, protocol.Ping(transport.next_req_id()), timeout=5)
    auth.remember_cluster_token(head.address, auth.Token(head.token, "test"))
    try:
        assert transport.rpc(gcs, protocol.Ping(transport.next_req_id()), timeout=10).startswith("gcs")
    finally:
        auth.forget_cluster_token(head.address)
        transport.close_thread_sockets()
