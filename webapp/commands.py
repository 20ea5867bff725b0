"""Command-line tools: `flask --app webapp create-user NAME`, `create-token`, `set-password`."""

from __future__ import annotations

import click
from flask import Flask

from webapp.accounts import AccountError
from webapp.extensions import accounts


def register(app: Flask) -> None:
    @app.cli.command("create-user")
    @click.argument("username")
    @click.password_option(help="The password (asked for when not given).")
    def create_user(username: str, password: str) -> None:
        """Add an analyst who can log in to the dashboard."""
        try:
            user = accounts().create_user(username, password)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Created user {user.username}.")

    @app.cli.command("set-password")
    @click.argument("username")
    @click.password_option(help="The new password (asked for when not given).")
    def set_password(username: str, password: str) -> None:
        """Change a user's password."""
        try:
            accounts().set_password(username, password)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"Password of {username} changed.")

    @app.cli.command("create-token")
    @click.argument("username")
    @click.option("--name", default="script", help="What the token is for, to tell tokens apart.")
    def create_token(username: str, name: str) -> None:
        """Create an API token for USERNAME and print it (it is shown only this once)."""
        try:
            _, secret = accounts().create_token(username, name)
        except AccountError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(secret)
