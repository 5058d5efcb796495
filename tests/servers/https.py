"""A real HTTP(S) file server for tests, on a free loopback port, with its own CA.

It serves the files of a directory under `/files/NAME` with an `ETag` (a hash of the
content) and a `Last-Modified` (the file's time), and answers `If-None-Match` and
`If-Modified-Since` with `304 Not Modified`. Leading path segments change how:

* `/basic/…` needs HTTP basic authentication as `USER` / `PASSWORD`;
* `/bearer/…` needs `Authorization: Bearer TOKEN`;
* `/gzip/…` sends the file gzipped on the fly (`Content-Encoding: gzip`, no length);
* `/nolength/…` sends no `Content-Length` and ends the body by closing the connection;
* `/etagonly/…`, `/lastmodonly/…`, `/novalidators/…` send only some validators.

And: `/redirect?to=URL&status=302` redirects to URL; `/loop/N` redirects to `/loop/N+1`
for ever; `/status/CODE` answers CODE; `/slow` never answers (until the server stops).
Every request is kept in `requests` (path, host and headers), so that a test can see
what a client sent."""

from __future__ import annotations

import hashlib
import os
import ssl
import threading
import zlib
from base64 import b64encode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.servers.tls import TlsFiles

USER = "reader"
PASSWORD = "pw-S3cr3t-basic"
TOKEN = "tok-S3cr3t-bearer"
_OPTIONS = {"basic", "bearer", "gzip", "nolength", "etagonly", "lastmodonly", "novalidators"}


@dataclass(frozen=True)
class Seen:
    """A request as the server received it."""

    path: str
    host: str
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path, context: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.context = context
        self.requests: list[Seen] = []
        self.stopping = threading.Event()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)
        try:
            wrapped = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client did not trust us: what the TLS tests want
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up (a size limit, a timeout) is expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.requests.append(Seen(self.path, headers.get("host", ""), headers))
        parts = urlsplit(self.path)
        segments = [s for s in parts.path.split("/") if s]
        query = parse_qs(parts.query)
        if segments[:1] == ["redirect"]:
            status = int(query.get("status", ["302"])[0])
            self._send(status, b"", {"Location": query["to"][0]})
        elif segments[:1] == ["loop"] and len(segments) == 2:
            self._send(302, b"", {"Location": f"/loop/{int(segments[1]) + 1}"})
        elif segments[:1] == ["status"] and len(segments) == 2:
            self._send(int(segments[1]), b"status\n")
        elif segments == ["slow"]:
            self.server.stopping.wait(60)
            self.close_connection = True
        else:
            options = set()
            while segments and segments[0] in _OPTIONS:
                options.add(segments.pop(0))
            if len(segments) != 2 or segments[0] != "files":
                self._send(404, b"not found\n")
            elif self._authorised(options, headers):
                self._file(segments[1], options, headers)

    def _authorised(self, options: set[str], headers: dict[str, str]) -> bool:
        given = headers.get("authorization", "")
        if "basic" in options:
            expected = "Basic " + b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            scheme = 'Basic realm="files"'
        elif "bearer" in options:
            expected, scheme = f"Bearer {TOKEN}", "Bearer"
        else:
            return True
        if given == expected:
            return True
        self._send(401, b"who are you?\n", {"WWW-Authenticate": scheme})
        return False

    def _file(self, name: str, options: set[str], headers: dict[str, str]) -> None:
        path = self.server.root / name
        if not path.is_file():
            self._send(404, b"not found\n")
            return
        info = path.stat()
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        etag = f'"{digest.hexdigest()[:20]}"'
        modified = formatdate(info.st_mtime, usegmt=True)
        extra: dict[str, str] = {}
        if not options & {"lastmodonly", "novalidators"}:
            extra["ETag"] = etag
        if not options & {"etagonly", "novalidators"}:
            extra["Last-Modified"] = modified
        if "ETag" in extra and "if-none-match" in headers:
            tags = [t.strip() for t in headers["if-none-match"].split(",")]
            if etag in tags or "*" in tags:
                self._send(304, None, extra)
                return
        elif "Last-Modified" in extra and "if-modified-since" in headers:
            try:
                since = parsedate_to_datetime(headers["if-modified-since"]).timestamp()
            except (TypeError, ValueError):
                since = -1
            if int(info.st_mtime) <= since:
                self._send(304, None, extra)
                return
        self.send_response(200)
        self.send_header("Content-Type", "text/csv; charset=utf-8")
        for key, value in extra.items():
            self.send_header(key, value)
        packer = None
        if "gzip" in options:
            self.send_header("Content-Encoding", "gzip")
            packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        if "nolength" in options or packer is not None:
            # Gzipped on the fly, so that the server too streams a large file.
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(info.st_size))
        self.end_headers()
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(64 * 1024), b""):
                    self.wfile.write(packer.compress(block) if packer else block)
            if packer is not None:
                self.wfile.write(packer.flush())
        except OSError:
            self.close_connection = True  # the client stopped reading

    def _send(self, status: int, body: bytes | None, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if body is not None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class FileServer:
    """A running server; `url(path)` is where to reach `path` on it."""

    def __init__(self, server: _Server, scheme: str) -> None:
        self._server = server
        self.scheme = scheme
        self.port: int = server.server_address[1]
        self.root = server.root

    @property
    def requests(self) -> list[Seen]:
        return self._server.requests

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def seen(self, fragment: str) -> list[Seen]:
        """The requests whose path holds `fragment`, in order."""
        return [r for r in self.requests if fragment in r.path]

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serve_files(root: Path, tls: TlsFiles | None = None) -> Iterator[FileServer]:
    """Serve `root` on 127.0.0.1 (and `localhost`): over HTTPS with the certificate of
    `tls` (from `tests.servers.tls.make_tls_files`), else over plain HTTP."""
    context = None
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.fspath(tls.cert_file), os.fspath(tls.key_file))
    server = _Server(root, context)
    thread = threading.Thread(target=server.serve_forever, name="file-server", daemon=True)
    thread.start()
    files = FileServer(server, "https" if tls is not None else "http")
    try:
        yield files
    finally:
        files.stop()
        thread.join(10)


__all__ = ["PASSWORD", "TOKEN", "USER", "FileServer", "Seen", "serve_files"]
