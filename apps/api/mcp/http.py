"""MCP's streamable HTTP transport at /mcp/, served by the studio's own WSGI processes.

The studio runs under gunicorn's sync workers (WSGI). Rather than move it to
ASGI for one endpoint, this view hands each request to the MCP SDK's own
stateless streamable HTTP handler (`StreamableHTTPSessionManager(stateless=True,
json_response=True)`), as an ASGI call run to completion inside the request:
every POST carries one JSON-RPC message and gets its JSON answer, no session
lives between requests, so any web process can answer any request and nothing
is lost when one restarts. The SDK does the protocol (initialize, versions,
Accept and Content-Type checks, batching, errors); this view does the key check
first, with the REST API's own authentication. What stateless JSON mode gives
up is server-to-client streaming (progress notifications, server requests; a
GET for that stream answers 405, as the transport specifies for "not offered"),
which none of the tools need: a long experiment is polled with get_experiment.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.api.auth import AUTH_HEADER, authenticate_request
from apps.api.errors import ApiError, not_authenticated
from apps.api.mcp.rest import RestCaller

MAX_BODY_BYTES = 4 * 1024 * 1024


def _error(exc: ApiError) -> JsonResponse:
    response = JsonResponse({"code": exc.get_codes(), "detail": str(exc.detail), **exc.extra}, status=exc.status_code)
    if exc.status_code == 401:
        response["WWW-Authenticate"] = AUTH_HEADER
    return response


def _scope(request: HttpRequest, body: bytes) -> dict[str, Any]:
    headers = [
        (name[5:].replace("_", "-").lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in request.META.items()
        if name.startswith("HTTP_") and isinstance(value, str)
    ]
    if request.META.get("CONTENT_TYPE"):
        headers.append((b"content-type", request.META["CONTENT_TYPE"].encode("latin-1")))
    headers.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.path.encode(),
        "root_path": "",
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "headers": headers,
        "server": (request.get_host().rsplit(":", 1)[0], int(request.get_port())),
        "client": (request.META.get("REMOTE_ADDR", ""), 0),
    }


async def _serve(server, scope: dict[str, Any], body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    manager = StreamableHTTPSessionManager(app=server, stateless=True, json_response=True)
    delivered = False
    status, headers, chunks = 500, [], []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    async with manager.run():
        await manager.handle_request(scope, receive, send)
    return status, headers, b"".join(chunks)


@csrf_exempt
def endpoint(request: HttpRequest) -> HttpResponse:
    try:
        key = authenticate_request(request)
        if key is None:
            raise not_authenticated()
    except ApiError as exc:
        return _error(exc)
    if request.method != "POST":
        # No server-to-client stream (GET) and no session to end (DELETE) in stateless mode: the transport's
        # answer for "not offered" is 405, which clients take as "POST only" instead of reconnecting.
        response = JsonResponse(
            {"code": "method_not_allowed", "detail": "This MCP endpoint is stateless: send each message as a POST."},
            status=405,
        )
        response["Allow"] = "POST"
        return response
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
        return JsonResponse({"code": "too_large", "detail": "An MCP message is at most 4 MB."}, status=413)
    from apps.api.mcp.server import build_server  # the SDK is imported on the first MCP request, not at start

    body = request.body
    rest = RestCaller(request.headers["Authorization"].partition(" ")[2].strip(), host=request.get_host())
    server = build_server(rest, can_write=key.can_write)
    status, headers, content = async_to_sync(_serve)(server, _scope(request, body), body)
    response = HttpResponse(content, status=status)
    for name, value in headers:
        if name.lower() not in (b"content-length", b"connection"):
            response[name.decode("latin-1")] = value.decode("latin-1")
    return response
