"""`aggregator serve`: the venue wall and the moderation page (aggregator.web) on uvicorn."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket

import click

from aggregator.cli.app import get_config
from aggregator.errors import UsageError
from aggregator.logs import watch_secrets
from aggregator.web.auth import TOKEN_ENV


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one line naming the address and what to do instead (exit 2)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise UsageError(f"--host {host}: not an address this machine has") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use: stop what holds it or choose "
                             "another with --port") from None  # fmt: skip
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback shows the pages to the network: put it behind TLS.")  # fmt: skip
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")  # fmt: skip
@click.pass_context
def serve_cmd(ctx: click.Context, host: str, port: int) -> None:
    """Serve the venue wall (/wall: the live session, the latest approved posts, the questions for
    the chair) and the moderation page (/moderate: approve, hide, pin, mute, questions; allow and
    block lists; automatic or manual mode). Moderators sign in with the secret in
    AGGREGATOR_MODERATOR_TOKEN; without it the wall still shows and moderation is off. Runs until
    Ctrl-C. See docs/live.md."""
    import uvicorn

    from aggregator.web.app import create_app

    config = get_config(ctx)
    watch_secrets([TOKEN_ENV])
    token = os.environ.get(TOKEN_ENV) or None
    if token is None:
        click.echo(f"! moderation is off: set {TOKEN_ENV} to a long random secret to turn it on",
                   err=True)  # fmt: skip
        if not _loopback(host):
            click.echo(f"! listening on {host} without {TOKEN_ENV}: anyone who can reach it "
                       "sees the wall, and nobody can moderate it", err=True)  # fmt: skip
    elif not _loopback(host):
        click.echo(f"! listening on {host}: the sign-in travels unencrypted unless a TLS proxy "
                   "is in front", err=True)  # fmt: skip
    sock = _bind(host, port)
    app = create_app(config, token)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Serving the wall on http://{shown}:{port}/wall and moderation on "
               f"http://{shown}:{port}/moderate (Ctrl-C stops)", err=True)  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
