"""Ask a chat model through an OpenAI-compatible HTTP endpoint (llama.cpp's server, Ollama, vLLM,
LM Studio, hosted services): ``POST {url}/chat/completions`` with ``"stream": true``, read as
server-sent events, and cut into sentences so each can be spoken while the rest is still coming.

Every failure is one ``OmniSyncError`` that says what happened: nothing listening, a refused key,
an unknown model, an error from the server, no answer in time, a server that goes away mid-answer.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import OmniSyncError

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_SYSTEM = ("You are a friendly assistant whose answers are spoken aloud by a talking face. Answer in two "
                  "to four short, plain sentences: no lists, no markdown, no emoji.")  # fmt: skip


@dataclass(frozen=True)
class ChatSettings:
    url: str  # http://127.0.0.1:8080/v1 (or the full .../chat/completions)
    model: str
    key_env: str = DEFAULT_KEY_ENV  # the environment variable that holds the API key (unset: no key sent)
    system: str = DEFAULT_SYSTEM
    timeout: float = 60.0  # seconds to connect, and the longest wait for the next piece of the answer
    max_tokens: int = 400
    temperature: float = 0.7


def endpoint(url: str) -> str:
    """The chat-completions address for a base URL as users write it (``.../v1``, a bare host, or the full path)."""
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://[^/]+", url):
        raise OmniSyncError(f"--llm-url '{url}' is not an http(s) address; give e.g. http://127.0.0.1:8080/v1")
    if url.endswith("/chat/completions"):
        return url
    if re.match(r"^https?://[^/]+$", url):
        return url + "/v1/chat/completions"
    return url + "/chat/completions"


def _server_message(response) -> str:
    try:
        data = response.json()
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message") if isinstance(error, dict) else error
        return str(message or response.text)[:300]
    except ValueError:
        return response.text.strip()[:300] or response.reason


def _check_status(response, settings: ChatSettings, url: str) -> None:
    if response.status_code < 400:
        return
    message = _server_message(response)
    if response.status_code in (401, 403):
        has_key = bool(os.environ.get(settings.key_env))
        hint = (f"check the key in ${settings.key_env}" if has_key else
                f"set the API key in the environment variable {settings.key_env} (or name another with --llm-key-env)")
        raise OmniSyncError(f"the chat endpoint {url} refused the request ({response.status_code}: {message}); {hint}")
    if response.status_code == 404:
        raise OmniSyncError(f"the chat endpoint {url} answered 404 ({message}): check --llm-url (it should end in /v1) "
                            f"and --llm-model ('{settings.model}')")
    raise OmniSyncError(f"the chat endpoint {url} answered {response.status_code}: {message}")


def stream_chat(messages: list[dict], settings: ChatSettings) -> Iterator[str]:
    """The answer's text pieces as the server sends them."""
    import requests

    url = endpoint(settings.url)
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    key = os.environ.get(settings.key_env, "").strip()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = {"model": settings.model, "messages": messages, "stream": True, "max_tokens": settings.max_tokens,
            "temperature": settings.temperature}  # fmt: skip
    received = 0
    try:
        with requests.post(url, json=body, headers=headers, stream=True, timeout=settings.timeout) as response:
            _check_status(response, settings, url)
            response.encoding = "utf-8"
            for line in response.iter_lines(decode_unicode=True):
                piece, done = _event(line, url)
                if done:
                    return
                if piece:
                    received += 1
                    yield piece
        if received == 0:
            raise OmniSyncError(f"the chat endpoint {url} closed the answer without any text")
        raise OmniSyncError(f"the chat endpoint {url} went away in the middle of the answer (after {received} "
                            "pieces, without the final [DONE])")
    except requests.exceptions.ConnectTimeout as error:
        raise OmniSyncError(f"the chat endpoint {url} did not accept a connection within {settings.timeout:g} s"
                            ) from error
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
            requests.exceptions.Timeout) as error:
        if isinstance(error, requests.exceptions.Timeout) or "timed out" in str(error):
            # (a timeout while streaming arrives as a ConnectionError wrapping urllib3's ReadTimeoutError)
            raise OmniSyncError(f"the chat endpoint {url} stopped answering for {settings.timeout:g} s (after "
                                f"{received} pieces); the model may be loading or too slow: raise --llm-timeout"
                                ) from error
        if received:
            raise OmniSyncError(f"the chat endpoint {url} went away in the middle of the answer (after {received} "
                                "pieces)") from error
        raise OmniSyncError(f"cannot reach the chat endpoint {url} ({_reason(error)}); is the server running, and "
                            "is --llm-url right?") from error


def _reason(error: Exception) -> str:
    text = str(error)
    for known in ("Connection refused", "Name or service not known", "Connection reset", "No route to host"):
        if known in text:
            return known.lower()
    return type(error).__name__


def _event(line: str | None, url: str) -> tuple[str, bool]:
    """One server-sent-event line -> (text piece, finished)."""
    if not line or not line.startswith("data:"):
        return "", False  # blank separators, comments (": ping"), "event:" lines
    data = line[5:].strip()
    if data == "[DONE]":
        return "", True
    try:
        chunk = json.loads(data)
    except json.JSONDecodeError as error:
        raise OmniSyncError(f"the chat endpoint {url} sent something that is not an OpenAI stream: {data[:80]!r}"
                            ) from error
    if isinstance(chunk, dict) and "error" in chunk:
        error = chunk["error"]
        raise OmniSyncError(f"the chat endpoint {url} failed mid-answer: "
                            f"{error.get('message') if isinstance(error, dict) else error}")
    choices = chunk.get("choices") or [{}] if isinstance(chunk, dict) else [{}]
    delta = choices[0].get("delta") or {}
    return str(delta.get("content") or ""), False


_END = re.compile(r"(?<=[.!?…。！？])[\"')\]]*\s+|\n+")
ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "prof", "st", "vs", "etc", "e.g", "i.e", "no", "jr", "sr", "approx"}


def _ends_sentence(before: str) -> bool:
    """Whether text ending in '.' (etc.) ends a sentence: not after "Dr." or an initial ("J.")."""
    if not before.rstrip().endswith("."):
        return True
    word = before.rstrip()[:-1].rsplit(None, 1)[-1] if before.strip() else ""
    return word.lower() not in ABBREVIATIONS and not (len(word) == 1 and word.isupper())


def sentences(pieces: Iterable[str], min_chars: int = 12) -> Iterator[str]:
    """Text pieces -> whole sentences, each as soon as its end (and the space after it) arrives; a line
    break also ends one. Very short ones ("Hi.", "Dr.") wait for the next, so each TTS chunk says something."""
    buffer = ""
    for piece in pieces:
        buffer += piece
        while True:
            cut = next((m for m in _END.finditer(buffer) if len(buffer[:m.start()].strip()) >= min_chars
                        and ("\n" in m.group() or _ends_sentence(buffer[:m.start()]))), None)
            if cut is None:
                break
            sentence, buffer = buffer[:cut.end()].strip(), buffer[cut.end():]
            if sentence:
                yield sentence
    if buffer.strip():
        yield buffer.strip()


def ask(question: str, settings: ChatSettings) -> Iterator[str]:
    """The answer to ``question``, sentence by sentence as it streams in."""
    if not settings.model.strip():
        raise OmniSyncError("no chat model named: give --llm-model (e.g. llama3.2, qwen2.5:3b, gpt-4o-mini)")
    messages = [{"role": "system", "content": settings.system}, {"role": "user", "content": question}]
    return sentences(stream_chat(messages, settings))
