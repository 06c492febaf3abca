"""A small stand-in for a ComfyUI server: real HTTP and websocket on 127.0.0.1 (stdlib only).

It follows ComfyUI's documented routes and messages closely enough for the headless client:
``POST /upload/image``, ``POST /prompt`` (validation with ComfyUI's ``node_errors`` layout),
``GET /ws?clientId=`` (``status``, ``execution_start``, ``execution_cached``, ``executing``,
``progress``, ``executed``, ``execution_success``, ``execution_error``), ``GET /history/{id}``,
``GET /view``, ``GET /object_info``, ``GET|POST /queue``, ``POST /interrupt``.

Nodes (fake, byte-level): LoadVideo / LoadAudio / LoadImage read files from the input folder;
FakeLipSync joins video and audio bytes with ``steps`` progress messages; SaveVideo,
VHS_VideoCombine (``gifs``), SaveAudio (``audio``) and PreviewImage (``temp``) write outputs;
FailNode raises. ``die_after_progress=N`` makes the server vanish (all sockets closed,
listener gone) after its N-th progress message: a server that disappears mid-job.
``history_delay=S`` writes ``/history`` S seconds after ``execution_success`` (as a busy ComfyUI
does: its worker writes history after the executor has sent that message), ``None`` never.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import socket
import struct
import threading
import time
import uuid
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def lipsync_bytes(video: bytes, audio: bytes) -> bytes:
    """What FakeLipSync + SaveVideo produce for the given input files."""
    return b"video:" + video + b"\naudio:" + audio


def _node_defs(files: list[str]) -> dict[str, dict[str, Any]]:
    """``/object_info`` entries (inputs, outputs) of the fake nodes, input file lists filled in."""

    def node(required, outputs=(), output_node=False, category="fake"):
        return {
            "input": {"required": required},
            "input_order": {"required": list(required)},
            "output": list(outputs),
            "output_is_list": [False] * len(outputs),
            "output_name": list(outputs),
            "name": "",
            "display_name": "",
            "description": "",
            "python_module": "nodes",
            "category": category,
            "output_node": output_node,
        }

    defs = {
        "LoadVideo": node({"file": [sorted(files), {"video_upload": True}]}, ["VIDEO"]),
        "LoadAudio": node({"audio": [sorted(files), {"audio_upload": True}]}, ["AUDIO"]),
        "LoadImage": node({"image": [sorted(files), {"image_upload": True}]}, ["IMAGE", "MASK"]),
        "FakeLipSync": node(
            {"video": ["VIDEO"], "audio": ["AUDIO"], "steps": ["INT", {"default": 3, "min": 1, "max": 100}]},
            ["VIDEO"],
        ),
        "SaveVideo": node({"video": ["VIDEO"], "filename_prefix": ["STRING", {}]}, output_node=True),
        "VHS_VideoCombine": node({"images": ["VIDEO"], "filename_prefix": ["STRING", {}]}, output_node=True),
        "SaveAudio": node({"audio": ["AUDIO"], "filename_prefix": ["STRING", {}]}, output_node=True),
        "PreviewImage": node({"images": ["IMAGE"]}, output_node=True),
        "FailNode": node({"video": ["VIDEO"]}, output_node=True),
    }
    for name, entry in defs.items():
        entry["name"] = entry["display_name"] = name
    return defs


class _ExecutionError(Exception):
    def __init__(self, node_id: str, class_type: str, message: str) -> None:
        super().__init__(message)
        self.node_id, self.class_type = node_id, class_type


class FakeComfyUI:
    """``with FakeComfyUI(tmp_path) as server: server.url`` -> ``http://127.0.0.1:PORT``."""

    def __init__(
        self,
        root: Path,
        die_after_progress: int | None = None,
        step_delay: float = 0.01,
        history_delay: float | None = 0.0,
    ) -> None:
        self.input_dir, self.output_dir, self.temp_dir = root / "input", root / "output", root / "temp"
        for folder in (self.input_dir, self.output_dir, self.temp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.die_after_progress, self.step_delay = die_after_progress, step_delay
        self.history_delay = history_delay
        self.history: dict[str, dict[str, Any]] = {}
        self.prompts: list[dict[str, Any]] = []  # every accepted /prompt body, for tests
        self.clients: dict[str, tuple[socket.socket, threading.Lock]] = {}
        self.sockets: set[socket.socket] = set()
        self.queue: queue.Queue[tuple[int, str, dict, str | None] | None] = queue.Queue()
        self.running: str | None = None
        self.interrupted: set[str] = set()
        self.number = 0
        self.progress_sent = 0
        self.gone = False
        self.lock = threading.Lock()
        owner = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request, client_address):
                owner.sockets.add(request)
                super().process_request(request, client_address)

        self.httpd = Server(("127.0.0.1", 0), _make_handler(self))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._threads = [
            threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
            threading.Thread(target=self._worker, daemon=True),
        ]

    def __enter__(self) -> FakeComfyUI:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.vanish()
        self.queue.put(None)

    # -- going away -------------------------------------------------------------------------
    def vanish(self) -> None:
        """Stop listening and drop every open connection (HTTP keep-alive and websockets)."""
        with self.lock:
            if self.gone:
                return
            self.gone = True
        self.httpd.shutdown()
        self.httpd.server_close()
        for sock in list(self.sockets):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    # -- websocket ----------------------------------------------------------------------------
    def send(self, kind: str, data: dict[str, Any], client_id: str | None) -> None:
        payload = json.dumps({"type": kind, "data": data}).encode()
        targets = [self.clients.get(client_id)] if client_id else list(self.clients.values())
        for target in targets:
            if target is None:
                continue
            sock, lock = target
            with lock:
                try:
                    sock.sendall(_frame(payload))
                except OSError:
                    pass

    def queue_remaining(self) -> int:
        return self.queue.qsize() + (1 if self.running else 0)

    def status_data(self, sid: str | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": self.queue_remaining()}}}
        if sid:
            data["sid"] = sid
        return data

    # -- validation ----------------------------------------------------------------------------
    def object_info(self) -> dict[str, dict[str, Any]]:
        files = [p.name for p in self.input_dir.iterdir() if p.is_file()]
        return _node_defs(files)

    def validate(self, prompt: dict[str, Any]) -> tuple[dict | None, dict[str, Any], list[str]]:
        """(error or None, node_errors, output node ids) in ComfyUI's layout."""
        defs = self.object_info()
        for node_id, node in prompt.items():
            if not isinstance(node, dict) or node.get("class_type") not in defs:
                class_type = node.get("class_type") if isinstance(node, dict) else None
                return (
                    {
                        "type": "invalid_prompt",
                        "message": f"Cannot execute because node {class_type} does not exist.",
                        "details": f"Node ID '#{node_id}'",
                        "extra_info": {},
                    },
                    {},
                    [],
                )
        outputs = [i for i, n in prompt.items() if defs[n["class_type"]]["output_node"]]
        if not outputs:
            error = {
                "type": "prompt_no_outputs",
                "message": "Prompt has no outputs",
                "details": "",
                "extra_info": {},
            }
            return error, {}, []
        node_errors: dict[str, Any] = {}
        for node_id, node in prompt.items():
            errors = []
            for name, spec in defs[node["class_type"]]["input"]["required"].items():
                value = node.get("inputs", {}).get(name)
                if value is None:
                    errors.append(_err("required_input_missing", "Required input is missing", name, name))
                elif isinstance(value, list) and len(value) == 2 and str(value[0]) in prompt:
                    continue  # a link
                elif isinstance(spec[0], list) and value not in spec[0]:
                    details = f"{name}: '{value}' not in {spec[0]}"
                    errors.append(_err("value_not_in_list", "Value not in list", details, name))
                elif spec[0] == "INT" and (not isinstance(value, int) or value > spec[1]["max"]):
                    message = f"Value {value} bigger than max of {spec[1]['max']}"
                    errors.append(_err("value_bigger_than_max", message, f"{name}", name))
            if errors:
                node_errors[node_id] = {
                    "errors": errors,
                    "dependent_outputs": outputs,
                    "class_type": node["class_type"],
                }
        if node_errors:
            error = {
                "type": "prompt_outputs_failed_validation",
                "message": "Prompt outputs failed validation",
                "details": "",
                "extra_info": {},
            }
            return error, node_errors, outputs
        return None, {}, outputs

    # -- execution -----------------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            item = self.queue.get()
            if item is None or self.gone:
                return
            number, prompt_id, prompt, client_id = item
            if prompt_id in self.interrupted:
                continue
            self.running = prompt_id
            try:
                self._execute(number, prompt_id, prompt, client_id)
            finally:
                self.running = None
            if not self.gone:
                self.send("status", self.status_data(), None)

    def _execute(self, number: int, prompt_id: str, prompt: dict, client_id: str | None) -> None:
        messages: list[list[Any]] = []

        def emit(kind: str, data: dict[str, Any]) -> None:
            data = {**data, "prompt_id": prompt_id} if kind != "status" else data
            if kind not in ("executing", "progress", "executed"):
                messages.append([kind, data])
            self.send(kind, data, client_id)

        emit("execution_start", {"timestamp": int(time.time() * 1000)})
        emit("execution_cached", {"nodes": [], "timestamp": int(time.time() * 1000)})
        values: dict[str, Any] = {}
        ui_outputs: dict[str, Any] = {}
        defs = self.object_info()
        try:
            for node_id in [i for i, n in prompt.items() if defs[n["class_type"]]["output_node"]]:
                self._eval(node_id, prompt, values, ui_outputs, emit, prompt_id)
                if self.gone:
                    return
        except _ExecutionError as error:
            emit(
                "execution_error",
                {
                    "node_id": error.node_id,
                    "node_type": error.class_type,
                    "executed": list(values),
                    "exception_message": str(error),
                    "exception_type": "RuntimeError",
                    "traceback": ["Traceback (most recent call last):\n", f"RuntimeError: {error}\n"],
                    "current_inputs": {},
                    "current_outputs": {},
                },
            )
            status = {"status_str": "error", "completed": False, "messages": messages}
        except _Interrupted as stop:
            emit(
                "execution_interrupted", {"node_id": stop.node_id, "node_type": "", "executed": list(values)}
            )
            status = {"status_str": "error", "completed": False, "messages": messages}
        else:
            emit("execution_success", {"timestamp": int(time.time() * 1000)})
            status = {"status_str": "success", "completed": True, "messages": messages}
        if self.history_delay is None:
            self.send("executing", {"node": None, "prompt_id": prompt_id}, client_id)
            return
        time.sleep(self.history_delay)
        self.history[prompt_id] = {
            "prompt": [number, prompt_id, prompt, {"client_id": client_id}, list(ui_outputs)],
            "outputs": ui_outputs,
            "status": status,
            "meta": {k: {"node_id": k, "display_node": k} for k in ui_outputs},
        }
        self.send("executing", {"node": None, "prompt_id": prompt_id}, client_id)

    def _eval(self, node_id: str, prompt: dict, values: dict, ui_outputs: dict, emit, prompt_id: str) -> Any:
        if node_id in values or self.gone:
            return values.get(node_id)
        node = prompt[node_id]
        inputs = {}
        for name, value in node.get("inputs", {}).items():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) in prompt:
                inputs[name] = self._eval(str(value[0]), prompt, values, ui_outputs, emit, prompt_id)
                if self.gone:
                    return None
            else:
                inputs[name] = value
        emit("executing", {"node": node_id, "display_node": node_id})
        result, ui = self._run_node(node_id, node["class_type"], inputs, emit, prompt_id)
        if self.gone:
            return None
        values[node_id] = result
        if ui is not None:
            ui_outputs[node_id] = ui
            emit("executed", {"node": node_id, "display_node": node_id, "output": ui})
        return result

    def _run_node(self, node_id: str, class_type: str, inputs: dict, emit, prompt_id: str):
        if class_type in ("LoadVideo", "LoadAudio", "LoadImage"):
            name = inputs[{"LoadVideo": "file", "LoadAudio": "audio", "LoadImage": "image"}[class_type]]
            return (self.input_dir / name).read_bytes(), None
        if class_type == "FakeLipSync":
            steps = int(inputs["steps"])
            for step in range(1, steps + 1):
                if prompt_id in self.interrupted:
                    raise _Interrupted(node_id)
                time.sleep(self.step_delay)
                emit("progress", {"value": step, "max": steps, "node": node_id})
                self.progress_sent += 1
                if self.die_after_progress is not None and self.progress_sent >= self.die_after_progress:
                    self.vanish()
                    return None, None
            return lipsync_bytes(inputs["video"], inputs["audio"]), None
        if class_type == "FailNode":
            raise _ExecutionError(node_id, class_type, "the fake node failed on purpose")
        if class_type == "PreviewImage":
            ref = self._write(self.temp_dir, "", f"preview_{uuid.uuid4().hex[:6]}.png", inputs["images"])
            return None, {"images": [{**ref, "type": "temp"}]}
        prefix = inputs.get("filename_prefix", "ComfyUI")
        subfolder, _, stem = prefix.rpartition("/")
        data = next(v for k, v in inputs.items() if k != "filename_prefix")
        if class_type == "SaveVideo":
            ref = self._write(self.output_dir, subfolder, f"{stem}_00001_.mp4", data)
            return None, {"images": [ref], "animated": [True]}
        if class_type == "VHS_VideoCombine":
            ref = self._write(self.output_dir, subfolder, f"{stem}_00001.mp4", data)
            return None, {"gifs": [{**ref, "format": "video/h264-mp4", "frame_rate": 25.0}]}
        if class_type == "SaveAudio":
            ref = self._write(self.output_dir, subfolder, f"{stem}_00001_.flac", data)
            return None, {"audio": [ref]}
        raise _ExecutionError(node_id, class_type, f"no fake for {class_type}")

    def _write(self, root: Path, subfolder: str, name: str, data: bytes) -> dict[str, str]:
        folder = root / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        return {"filename": name, "subfolder": subfolder, "type": "output"}


class _Interrupted(Exception):
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id


def _err(kind: str, message: str, details: str, input_name: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {"input_name": input_name}}


def _frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked server frame."""
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        head += bytes([len(payload)])
    elif len(payload) < 1 << 16:
        head += bytes([126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([127]) + struct.pack("!Q", len(payload))
    return head + payload


def _read_frame(rfile) -> tuple[int, bytes] | None:
    """(opcode, payload) of one masked client frame, or None at end of stream."""
    head = rfile.read(2)
    if len(head) < 2:
        return None
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", rfile.read(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", rfile.read(8))[0]
    mask = rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = rfile.read(length)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _make_handler(server: FakeComfyUI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _json(self, body: Any, status: int = 200) -> None:
            self._bytes(json.dumps(body).encode(), "application/json", status)

        def _bytes(self, data: bytes, content_type: str, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/ws":
                return self._websocket(query.get("clientId") or uuid.uuid4().hex)
            if url.path == "/object_info":
                return self._json(server.object_info())
            if url.path.startswith("/object_info/"):
                name = url.path.rsplit("/", 1)[1]
                info = server.object_info()
                return self._json({name: info[name]} if name in info else {})
            if url.path.startswith("/history/"):
                prompt_id = url.path.rsplit("/", 1)[1]
                entry = server.history.get(prompt_id)
                return self._json({prompt_id: entry} if entry else {})
            if url.path == "/queue":
                running = [[0, server.running, {}, {}, []]] if server.running else []
                pending = [[n, i, p, {}, []] for n, i, p, _ in list(server.queue.queue) if i]
                return self._json({"queue_running": running, "queue_pending": pending})
            if url.path == "/view":
                roots = {"output": server.output_dir, "input": server.input_dir, "temp": server.temp_dir}
                root = roots.get(query.get("type", "output"))
                name = query.get("filename", "")
                if (
                    root is None
                    or not name
                    or "/" in name
                    or ".." in name
                    or ".." in query.get("subfolder", "")
                ):
                    return self._bytes(b"", "text/plain", 400)
                path = root / query.get("subfolder", "") / name
                if not path.is_file():
                    return self._bytes(b"", "text/plain", 404)
                return self._bytes(path.read_bytes(), "application/octet-stream")
            if url.path == "/system_stats":
                return self._json({"system": {"comfyui_version": "fake"}, "devices": []})
            self._bytes(b"404: Not Found", "text/plain", 404)

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            if path == "/upload/image":
                return self._upload()
            body = self._body()
            data = json.loads(body or b"{}")
            if path == "/prompt":
                return self._prompt(data)
            if path == "/queue":
                for prompt_id in data.get("delete", []):
                    server.interrupted.add(prompt_id)
                return self._bytes(b"", "text/plain")
            if path == "/interrupt":
                if data.get("prompt_id"):
                    server.interrupted.add(data["prompt_id"])
                return self._bytes(b"", "text/plain")
            self._bytes(b"404: Not Found", "text/plain", 404)

        def _upload(self) -> None:
            raw = self._body()
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            message = BytesParser(policy=HTTP).parsebytes(head + raw)
            fields: dict[str, Any] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                fields[name] = (part.get_filename(), part.get_payload(decode=True))
            if "image" not in fields or not fields["image"][0]:
                return self._bytes(b"", "text/plain", 400)
            filename, data = fields["image"]
            subfolder = fields.get("subfolder", (None, b""))[1].decode()
            overwrite = fields.get("overwrite", (None, b""))[1].decode() in ("true", "1")
            folder = server.input_dir / subfolder
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / filename
            stem, suffix = target.stem, target.suffix
            index = 1
            while target.exists() and not overwrite and target.read_bytes() != data:
                target = folder / f"{stem} ({index}){suffix}"
                index += 1
            target.write_bytes(data)
            self._json({"name": target.name, "subfolder": subfolder, "type": "input"})

        def _prompt(self, data: dict[str, Any]) -> None:
            if "prompt" not in data:
                error = {
                    "type": "no_prompt",
                    "message": "No prompt provided",
                    "details": "No prompt provided",
                }
                return self._json({"error": {**error, "extra_info": {}}, "node_errors": {}}, 400)
            prompt = data["prompt"]
            error, node_errors, _ = server.validate(prompt)
            if error is not None:
                return self._json({"error": error, "node_errors": node_errors}, 400)
            server.number += 1
            prompt_id = str(data.get("prompt_id") or uuid.uuid4())
            server.prompts.append(data)
            server.queue.put((server.number, prompt_id, prompt, data.get("client_id")))
            server.send("status", server.status_data(), None)
            self._json({"prompt_id": prompt_id, "number": server.number, "node_errors": {}})

        def _websocket(self, client_id: str) -> None:
            key = self.headers.get("Sec-WebSocket-Key", "")
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
            lock = threading.Lock()
            server.clients[client_id] = (self.connection, lock)
            server.send("status", server.status_data(client_id), client_id)
            try:
                while True:
                    frame = _read_frame(self.rfile)
                    if frame is None or frame[0] == 0x8:
                        break
                    if frame[0] == 0x9:
                        with lock:
                            self.connection.sendall(_frame(frame[1], 0xA))
            except OSError:
                pass
            finally:
                server.clients.pop(client_id, None)
                self.close_connection = True

    return Handler
