"""Calls into the REST API in process: a request built for the endpoint's URL, answered by its view."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote, urlencode

from django.core.handlers.wsgi import WSGIRequest
from django.urls import Resolver404, resolve

API_ROOT = "/api/v1/"


class RestError(Exception):
    """The REST API answered an error: its status, stable code and detail (and any extra fields)."""

    def __init__(self, status: int, body: dict[str, Any]):
        self.status = status
        self.body = body
        self.code = str(body.get("code", "error"))
        self.detail = str(body.get("detail", "The studio refused the request."))
        super().__init__(f"{self.code}: {self.detail}")


def segment(value: str) -> str:
    """One path segment (a prompt or dataset name) quoted so it cannot reach another endpoint."""
    return quote(str(value), safe="")


class RestCaller:
    """Calls the REST API with one API key, as an app would over HTTP, without the network."""

    def __init__(self, raw_key: str, *, host: str = "localhost"):
        self.raw_key = raw_key
        self.host = host

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.call("GET", path, query=query)

    def post(self, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        return self.call("POST", path, body=body, query=query)

    def call(self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        full_path = API_ROOT + path.lstrip("/")
        payload = b"" if body is None else json.dumps(body).encode()
        query_string = urlencode({k: v for k, v in (query or {}).items() if v is not None})
        request = WSGIRequest(
            {
                "REQUEST_METHOD": method,
                "PATH_INFO": full_path,
                "SCRIPT_NAME": "",
                "QUERY_STRING": query_string,
                "SERVER_NAME": self.host,
                "SERVER_PORT": "80",
                "HTTP_HOST": self.host,
                "HTTP_AUTHORIZATION": f"Bearer {self.raw_key}",
                "CONTENT_TYPE": "application/json",
                "CONTENT_LENGTH": str(len(payload)),
                "REMOTE_ADDR": "127.0.0.1",
                "wsgi.input": io.BytesIO(payload),
                "wsgi.url_scheme": "http",
            }
        )
        try:
            match = resolve(full_path)
        except Resolver404:
            raise RestError(404, {"code": "not_found", "detail": f"No API endpoint at {full_path}."}) from None
        response = match.func(request, *match.args, **match.kwargs)
        if hasattr(response, "render"):
            response.render()
        data = json.loads(response.content) if response.content else {}
        if response.status_code >= 400:
            raise RestError(response.status_code, data if isinstance(data, dict) else {"detail": str(data)})
        return data
