"""`c2c ui`: the Dagster UI, with the writable one behind a guard, and stopped as a whole.

The writable UI (webserver and daemon, ``dagster dev``) listens on an internal port of 127.0.0.1 and is
reached only through :func:`guard_app`, a small ASGI proxy also bound to 127.0.0.1 that refuses what a
web page the operator happens to open could send it cross-site:

* a GraphQL mutation in a URL's query string (``GET /graphql?query=mutation{...}``, or a form ``POST``
  carrying the query in the URL): 405, nothing reaches Dagster;
* a websocket opened by another origin: refused at the handshake.

Queries over GET and JSON POSTs (what the UI itself sends; cross-site they need a CORS preflight that
the webserver does not grant) pass through unchanged. The read-only UI (``--read-only``, the auditors'
door) runs ``dagster-webserver --read-only`` directly. Either way the Dagster processes run in their
own process group, and SIGTERM or Ctrl-C to ``c2c ui`` stops that whole group (webserver, daemon and
their code servers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import parse_qs

LOOPBACK = "127.0.0.1"
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length", "te", "trailer"}


def is_mutation(query: str) -> bool:
    """True when a GraphQL document holds a mutation, or cannot be parsed (refused to be safe)."""
    from graphql import GraphQLError, OperationType, parse
    from graphql.language import OperationDefinitionNode

    try:
        document = parse(query)
    except GraphQLError:
        return True
    return any(
        isinstance(d, OperationDefinitionNode) and d.operation == OperationType.MUTATION for d in document.definitions
    )


def _url_queries(scope: dict) -> list[str]:
    params = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return params.get("query", [])


def refusal(scope: dict) -> str | None:
    """Why an HTTP request must not reach the writable webserver, or None to let it through."""
    if scope["type"] != "http" or not scope["path"].rstrip("/").endswith("/graphql"):
        return None
    if any(is_mutation(q) for q in _url_queries(scope)):
        return "GraphQL mutations are accepted only as JSON POST requests from the UI itself"
    return None


def _same_origin(scope: dict) -> bool:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    origin = headers.get("origin")
    if origin is None:
        return True  # not a browser (browsers always send Origin on a websocket handshake)
    return origin.split("://", 1)[-1].rstrip("/") == headers.get("host", "")


def guard_app(upstream: str) -> Callable:
    """The ASGI guard in front of the writable webserver at ``upstream`` (``http://127.0.0.1:PORT``)."""
    import httpx

    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(300.0, connect=10.0))

    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "websocket":
            await _proxy_websocket(scope, receive, send, upstream)
            return
        why = refusal(scope)
        if why is not None:
            body = f"refused: {why}\n".encode()
            await send({"type": "http.response.start", "status": 405,
                        "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await _proxy_http(scope, receive, send, client)

    return app


async def _proxy_http(scope: dict, receive: Callable, send: Callable, client) -> None:  # type: ignore[no-untyped-def]
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = [(k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() not in HOP_HEADERS]
    url = scope["path"] + (("?" + scope["query_string"].decode("latin-1")) if scope.get("query_string") else "")
    request = client.build_request(scope["method"], url, headers=headers, content=body)
    response = await client.send(request, stream=True)
    try:
        out = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.multi_items()
               if k.lower() not in HOP_HEADERS]
        await send({"type": "http.response.start", "status": response.status_code, "headers": out})
        async for chunk in response.aiter_raw():  # as sent (still compressed, if it was)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await response.aclose()


async def _proxy_websocket(scope: dict, receive: Callable, send: Callable, upstream: str) -> None:
    import asyncio

    import websockets

    await receive()  # websocket.connect
    if not _same_origin(scope):
        await send({"type": "websocket.close", "code": 1008})
        return
    url = "ws" + upstream.removeprefix("http") + scope["path"]
    protocols = scope.get("subprotocols") or None
    try:
        upstream_ws = await websockets.connect(url, subprotocols=protocols, max_size=None)
    except (OSError, websockets.InvalidHandshake):
        await send({"type": "websocket.close", "code": 1011})
        return
    await send({"type": "websocket.accept", "subprotocol": upstream_ws.subprotocol})

    async def client_to_upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream_ws.close()
                return
            await upstream_ws.send(message["text"] if message.get("text") is not None else message.get("bytes", b""))

    async def upstream_to_client() -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for data in upstream_ws:
                key = "text" if isinstance(data, str) else "bytes"
                await send({"type": "websocket.send", key: data})
        with contextlib.suppress(Exception):
            await send({"type": "websocket.close", "code": 1000})

    tasks = [asyncio.ensure_future(client_to_upstream()), asyncio.ensure_future(upstream_to_client())]
    _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await upstream_ws.close()


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start_group(cmd: list[str], *, env: dict[str, str], cwd: str) -> subprocess.Popen:
    """Start the Dagster processes in a process group of their own (so they can be stopped together)."""
    return subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=True)


def stop_group(proc: subprocess.Popen, grace_s: float = 20.0) -> None:
    """SIGTERM to the whole group, then SIGKILL to whatever is left after ``grace_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        proc.poll()
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def wait_until_serving(url: str, proc: subprocess.Popen, timeout_s: float = 180.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(url + "/server_info", timeout=2)
            return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    return False


def serve(cmd_for_port: Callable[[int], list[str]], *, env: dict[str, str], cwd: str, port: int, guard: bool,
          echo: Callable[[str], None] = print) -> int:
    """Run the Dagster UI until SIGTERM/SIGINT, then stop its whole process group.

    ``guard``: the webserver listens on an internal loopback port and the guard serves ``port``;
    otherwise the webserver serves ``port`` itself."""
    inner = free_port() if guard else port
    proc = start_group(cmd_for_port(inner), env=env, cwd=cwd)
    running: dict = {}

    def on_signal(signum, _frame):  # type: ignore[no-untyped-def]
        server = running.get("server")
        if server is None:
            raise KeyboardInterrupt
        server.should_exit = True

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        if not guard:
            return proc.wait()
        if not wait_until_serving(f"http://{LOOPBACK}:{inner}", proc):
            echo("c2c ui: the Dagster webserver did not start (its messages are above)")
            return 1
        import uvicorn

        config = uvicorn.Config(guard_app(f"http://{LOOPBACK}:{inner}"), host=LOOPBACK, port=port, log_level="warning",
                                lifespan="on", ws="websockets")
        server = running["server"] = uvicorn.Server(config)
        echo(f"c2c ui: serving on http://{LOOPBACK}:{port} (mutations over GET refused)")
        server.run()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        stop_group(proc)
