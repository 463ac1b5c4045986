"""The serve API is exported from ``actorium`` and its errors from ``actorium.exceptions``."""
from __future__ import annotations

import pickle

import actorium
from actorium import exceptions, serve


def test_serve_names_are_public_and_the_same_objects():
    names = ["Deployment", "DeploymentHandle", "cluster_token", "delete_deployment", "deploy",
             "deployments", "get_deployment_handle", "http_url"]
    assert sorted(serve.__all__) == sorted(names)
    for name in names:
        assert name in actorium.__all__
        assert getattr(actorium, name) is getattr(serve, name)


def test_serve_errors_live_in_the_exception_tree_and_pickle():
    for name in ("BackPressureError", "DeploymentError"):
        assert name in exceptions.__all__
        cls = getattr(exceptions, name)
        assert issubclass(cls, exceptions.ActoriumError)
        back = pickle.loads(pickle.dumps(cls("queue full")))
        assert type(back) is cls and str(back) == "queue full"


def test_importing_actorium_does_not_import_the_http_stack():
    import subprocess
    import sys
    code = ("import sys, actorium; "
            "print(sorted(m for m in ('uvicorn', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_handles_pickle_to_the_same_deployment_and_session():
    h = actorium.DeploymentHandle("chat").options(session="u1")
    back = pickle.loads(pickle.dumps(h))
    assert (back.deployment_name, back._session) == ("chat", "u1")


def test_cluster_token_needs_init():
    import pytest
    with pytest.raises(RuntimeError, match="init"):
        actorium.cluster_token()
