"""The `radbank` executable: `radbank deid` starts without the node's server stack.

A site runs `radbank deid` on workstations where start-up time counts (scripts call it per
export); the other commands need the whole node (FastAPI, SQLAlchemy, alembic), whose
imports take over a second. Everything else goes to `radbank.cli`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["deid"]:
        import typer

        from radbank.offline import deid_command

        command = typer.Typer(add_completion=False)
        command.command()(deid_command)
        sys.argv = [f"{sys.argv[0]} deid", *sys.argv[2:]]
        try:
            command()
        except KeyboardInterrupt:
            sys.exit(130)
        return
    from radbank.cli import main as node_main

    node_main()
