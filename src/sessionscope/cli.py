"""The ``sessionscope`` command. Commands build Settings, call factories and print; no logic.

The commands live by concern in :mod:`sessionscope.commands`; this module registers them on
one app, in the order ``--help`` lists them.
"""

from __future__ import annotations

import typer

from sessionscope import forward
from sessionscope.commands.accounts import keys_app, projects_app, users_app
from sessionscope.commands.common import console
from sessionscope.commands.data import ingest, sessions, simulate
from sessionscope.commands.demo import demo, print_demo_help
from sessionscope.commands.importing import import_app
from sessionscope.commands.server import migrate, serve
from sessionscope.commands.transfer import export

__all__ = ["app", "console", "main", "print_demo_help"]

app = typer.Typer(
    help="sessionscope: self-hosted session analytics (collect events, build sessions, serve).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(projects_app, name="projects")
app.add_typer(keys_app, name="keys")
app.add_typer(users_app, name="users")
app.command()(serve)
app.command()(migrate)
app.command()(ingest)
app.command()(export)
app.add_typer(import_app, name="import")
app.command()(simulate)
app.command()(sessions)
app.command()(demo)
app.add_typer(forward.app, name="forward")


def main() -> None:  # pragma: no cover - entry point
    app()
