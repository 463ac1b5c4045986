"""The ``actorium`` command: start, inspect and stop a long-running local cluster.

    actorium start --head [--port N] [--host H] [--num-cpus N] [--num-gpus N]
                          [--resources JSON] [--object-store-memory BYTES] [--token-file F]
                          [--http-port N] [--http-host H]
    actorium start --head --restart       (a crashed head, on its address, with its tables)
    actorium start --head --autoscale local [--min-nodes N] [--max-nodes N]
                          [--node-cpus N] [--idle-timeout S]   (add/remove nodes on demand)
    actorium start --address HEAD_HOST:PORT [--host H] [--num-cpus N] [--resources JSON]
                          [--token-file F]
    actorium status [--address host:port] [--token-file F]
    actorium list nodes|actors|objects|deployments [--address host:port] [--token-file F]
    actorium stop [--token-file F]

``start --head`` launches a head node (gcs + raylet + workers) detached from this
process and records it in ``current_cluster`` (under ``$ACTORIUM_TMPDIR``, default
``/tmp/actorium-sessions``), which is what ``actorium.init(address="auto")`` reads.
It uses the cluster token found by the usual lookup (``--token-file``,
``$ACTORIUM_TOKEN``, ``$ACTORIUM_TOKEN_FILE``, ``~/.actorium/token``), creating the
token file (mode 0600) with a fresh random token when it does not exist yet.
Expected failures print one ``actorium: ...`` line on stderr and exit with code 1.
"""
from __future__ import annotations

import argparse
import sys

from actorium.cli.common import DEFAULT_PORT, CliError
from actorium.cli.lifecycle import cmd_start, cmd_stop
from actorium.cli.report import cmd_list, cmd_status
from actorium.core.wire import transport

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="actorium",
                                description="Start, inspect and stop a local actorium cluster.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("start", help="start a head node that keeps running after this "
                                     "command exits")
    s.add_argument("--head", action="store_true", help="start a head node (a new cluster)")
    s.add_argument("--address", default=None,
                   help="HOST:PORT of a running head: start a node that joins it")
    s.add_argument("--restart", action="store_true",
                   help="with --head: restart a head that died, on its address and with "
                        "its tables (live nodes and drivers reconnect)")
    s.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"gcs TCP port (default {DEFAULT_PORT}; 0 picks a free port)")
    s.add_argument("--host", default=None, help="address to listen on (default: "
                   "127.0.0.1 for a head, the interface towards the head for a node)")
    s.add_argument("--num-cpus", type=float, default=None, help="CPUs (default: all)")
    s.add_argument("--num-gpus", type=float, default=None, help="GPUs (default 0)")
    s.add_argument("--resources", default=None, help="custom resources as JSON, "
                                                     "e.g. '{\"TPU\": 2}'")
    s.add_argument("--object-store-memory", type=int, default=None,
                   help="object store capacity in bytes (default: 30%% of RAM)")
    s.add_argument("--http-port", type=int, default=None,
                   help="with --head: serve deployments over HTTP on this port (0: any "
                        "free port); needs the serve extra (pip install actorium[serve])")
    s.add_argument("--http-host", default="127.0.0.1",
                   help="with --http-port: address the HTTP ingress listens on")
    a = s.add_argument_group("node autoscaling (with --head; docs/elasticity.md)")
    a.add_argument("--autoscale", default=None, metavar="PROVIDER",
                   help="run the node autoscaler with this provider ('local': node "
                        "processes on this machine)")
    a.add_argument("--min-nodes", type=int, default=0,
                   help="autoscaled nodes kept even when idle (default 0; the head is "
                        "not counted)")
    a.add_argument("--max-nodes", type=int, default=1,
                   help="most autoscaled nodes at once (default 1; the head is not counted)")
    a.add_argument("--node-cpus", type=float, default=1.0,
                   help="CPUs of each autoscaled node (default 1)")
    a.add_argument("--idle-timeout", type=float, default=60.0,
                   help="seconds a node stays idle before it is drained and removed "
                        "(default 60)")
    _token_arg(s)
    s.set_defaults(func=cmd_start)

    st = sub.add_parser("status", help="nodes, resources, object store and actors")
    st.add_argument("--address", default=None, help="host:port of the gcs (default: the "
                                                    "cluster started by 'actorium start')")
    _token_arg(st)
    st.set_defaults(func=cmd_status)

    ls = sub.add_parser("list", help="list nodes, actors, stored objects or deployments as a table")
    ls.add_argument("what", choices=["nodes", "actors", "objects", "deployments"])
    ls.add_argument("--address", default=None)
    _token_arg(ls)
    ls.set_defaults(func=cmd_list)

    sp = sub.add_parser("stop", help="stop the cluster started by 'actorium start'")
    _token_arg(sp)
    sp.set_defaults(func=cmd_stop)
    return p


def _token_arg(parser) -> None:
    parser.add_argument("--token-file", default=None,
                        help="file holding the cluster token (default: $ACTORIUM_TOKEN, "
                             "then $ACTORIUM_TOKEN_FILE, then ~/.actorium/token)")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Create the ZeroMQ context before the first rpc: creating it lazily inside
    # transport.thread_dealer clears that thread's socket cache mid-call.
    transport.context()
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    if getattr(args, "command", "") == "start":
        args.host_given = args.host is not None
        args.host = args.host or "127.0.0.1"
    try:
        return args.func(args) or 0
    except CliError as exc:
        print(f"actorium: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("actorium: interrupted", file=sys.stderr)
        return 130
    finally:
        try:
            transport.close_thread_sockets()
        except Exception:
            pass
