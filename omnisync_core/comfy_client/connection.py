"""One ComfyUI server: its base URL, an HTTP session, and the mapping of network failures to
``ServerGone`` (the job may be retried elsewhere) versus ``OmniSyncError`` (it may not)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from ..errors import OmniSyncError

# (connect, read) seconds for ordinary API calls; uploads and downloads stream.
HTTP_TIMEOUT = (5.0, 60.0)


class ServerGone(Exception):
    """The server could not be reached or dropped the connection: retry on another one."""


def normalise_url(url: str) -> str:
    """``127.0.0.1:8188`` -> ``http://127.0.0.1:8188`` (no trailing slash)."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OmniSyncError(f"--server {url!r} is not an http(s) URL; pass e.g. http://127.0.0.1:8188")
    return url


class ComfyServer:
    """HTTP access to one ComfyUI; every network failure surfaces as ``ServerGone``."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.session = requests.Session()

    def __repr__(self) -> str:
        return f"ComfyServer({self.url})"

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/ws"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call; connection refused / reset / timeout -> ``ServerGone``."""
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        try:
            return self.session.request(method, self.url + path, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise ServerGone(f"ComfyUI at {self.url} is not reachable ({reason(error)})") from error

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        self.raise_for_status(response, f"GET {path}")
        return response.json()

    def raise_for_status(self, response: requests.Response, what: str) -> None:
        if response.status_code >= 500:
            # A proxy in front of a dead ComfyUI answers 502/503: treat as gone.
            if response.status_code in (502, 503, 504):
                raise ServerGone(f"ComfyUI at {self.url} answered {response.status_code} to {what}")
            raise OmniSyncError(f"ComfyUI at {self.url} failed on {what}: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise OmniSyncError(
                f"ComfyUI at {self.url} refused {what}: HTTP {response.status_code} {response.text[:200]}"
            )


def reason(error: Exception) -> str:
    """A short reason such as 'connection refused' from a nested requests/urllib3 error."""
    text = f"{type(error).__name__} {error}".lower()
    for needle, short in (
        ("refused", "connection refused"),
        ("reset", "connection reset"),
        ("remotedisconnected", "connection closed by the server"),
        ("closed", "connection closed by the server"),
        ("aborted", "connection aborted"),
        ("timed out", "timed out"),
        ("name or service not known", "unknown host"),
        ("nodename nor servname", "unknown host"),
    ):
        if needle in text:
            return short
    return type(error).__name__
