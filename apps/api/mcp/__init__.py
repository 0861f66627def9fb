"""The studio as an MCP server: the same API key, the same scopes and the same answers as the REST API.

Every tool, resource and prompt is answered by the REST endpoint that owns it
(`rest.py` dispatches to the endpoint in process, with the caller's key), so the
key check, project scoping, write scope, throttle, error codes, audit actor and
the release gate are the REST API's own, and stay so when it changes.
"""
