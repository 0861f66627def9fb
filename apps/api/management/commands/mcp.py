"""manage.py mcp: the studio as an MCP server over stdio, for editors and agents on this machine."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from apps.api.auth import key_info_for

KEY_VARIABLE = "PROMPT_STUDIO_KEY"


class Command(BaseCommand):
    help = (
        "Serve the studio over MCP on stdin/stdout with a project API key "
        f"(--key, or the {KEY_VARIABLE} environment variable); the key's scope decides the write tools."
    )

    def add_arguments(self, parser):
        parser.add_argument("--key", default=os.environ.get(KEY_VARIABLE, ""), help=f"Default: ${KEY_VARIABLE}.")

    def handle(self, *args, key: str, **options):
        import anyio
        from mcp.server.stdio import stdio_server

        from apps.api.mcp.rest import RestCaller
        from apps.api.mcp.server import build_server

        key = key.strip()
        if not key:
            raise CommandError(f"Give an API key: --key ps_... or {KEY_VARIABLE}=ps_... (create one under API keys).")
        info = key_info_for(key) if len(key) <= 200 else None
        if info is None:
            raise CommandError("This API key is not valid.")
        if info.revoked:
            raise CommandError(f"The API key {info.prefix}… was revoked.")
        close_old_connections()
        server = build_server(RestCaller(key), can_write=info.can_write, before_call=close_old_connections)

        async def serve() -> None:
            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, server.create_initialization_options())

        anyio.run(serve)
