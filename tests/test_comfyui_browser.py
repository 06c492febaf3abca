"""Every template opened and run as a user does it, in a real browser against a real ComfyUI.

For each template: open it from the template browser (its card shows the thumbnail and title), no
missing-node or other dialog, no empty widget, the graph exactly as the file holds it, no console
error from the pack; choose the inputs with the loaders' upload buttons, press Run, wait for the
output video and check its frames, fps and sound (the new speech, not the clip's own).

Needs Debian's ``chromium`` (``apt-get install chromium``; OMNISYNC_CHROMIUM names another) and
Playwright for Python (``pip install playwright``; it drives the installed browser, it cannot
download its own here), plus the ComfyUI settings of tests/comfyui_server.py; the VideoHelperSuite
template also needs ComfyUI-VideoHelperSuite in OMNISYNC_COMFYUI_NODE_PACKS. Screenshots of each
template as loaded and after its run go to OMNISYNC_SCREENSHOTS (default: pytest's tmp folder).
Run: ``pytest -m comfyui tests/test_comfyui_browser.py``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.comfyui_server import SKIP_REASON, configured, running_comfyui

pytestmark = pytest.mark.comfyui

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.make_workflows import TEMPLATES  # noqa: E402

CHROMIUM = os.environ.get("OMNISYNC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
WINDOW = {"width": 1600, "height": 1000}
CATEGORY = "OmniSync lip sync"  # locales/en/main.json
CLIP_FRAMES, CLIP_SIZE = 16, 288  # of ../shared/media/retalk_face1.mp4 (1350/61 fps): 0.72 s
PORTRAIT_FPS = 25
RUN_TIMEOUT_S = 1200

if not configured():
    pytest.skip(SKIP_REASON, allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory):
    with running_comfyui(tmp_path_factory.mktemp("comfy_base")) as server:
        yield server


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("OMNISYNC_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _read_audio(path: Path, rate: int = 16000) -> np.ndarray:
    """Mono float samples at ``rate``."""
    import av

    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = [o.to_ndarray().reshape(-1) for f in container.decode(audio=0) for o in resampler.resample(f)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    import av

    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A short real clip (with its own sound), new speech of the same length, and a still."""
    import av
    from PIL import Image

    media = ROOT.parent / "shared" / "media"
    if not (media / "retalk_face1.mp4").is_file() or not (media / "eng.wav").is_file():
        pytest.skip("../shared/media/retalk_face1.mp4 and eng.wav are needed")
    folder = tmp_path_factory.mktemp("inputs")
    paths = {"video": folder / "browser_clip.mp4", "audio": folder / "browser_speech.wav",
             "image": folder / "browser_face.png", "own_audio": folder / "own.wav"}  # fmt: skip
    with av.open(str(media / "retalk_face1.mp4")) as source:
        rate = source.streams.video[0].average_rate
        frames = []
        for frame in source.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24", width=CLIP_SIZE, height=CLIP_SIZE))
            if len(frames) == CLIP_FRAMES:
                break
    seconds = CLIP_FRAMES / rate
    own = _read_audio(media / "retalk_face1.mp4", 48000)[: round(seconds * 48000)]
    with av.open(str(paths["video"]), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width = video.height = CLIP_SIZE
        video.pix_fmt = "yuv420p"
        sound = out.add_stream("aac", rate=48000, layout="mono")
        for array in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        out.mux(video.encode())
        chunk = av.AudioFrame.from_ndarray(own.astype(np.float32).reshape(1, -1), format="flt", layout="mono")
        chunk.sample_rate = 48000
        for packet in [*sound.encode(chunk), *sound.encode()]:
            out.mux(packet)
    speech = _read_audio(media / "eng.wav", 16000)
    _write_wav(paths["audio"], speech[8000 : 8000 + round(seconds * 16000)], 16000)
    _write_wav(paths["own_audio"], own, 48000)
    Image.fromarray(frames[0]).save(paths["image"])
    return {**paths, "fps": Fraction(rate), "seconds": float(seconds)}


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


class Page:
    """One browser tab on the ComfyUI page, with what went wrong in it recorded."""

    def __init__(self, browser, url: str) -> None:
        self.url = url
        self.page = browser.new_page(viewport=WINDOW)
        self.console_errors: list[str] = []
        self.failed_requests: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        self.page.on(
            "response", lambda r: r.status >= 400 and self.failed_requests.append(f"{r.status} {r.url}")
        )
        self.page.goto(url)
        self.page.wait_for_function("window.app && window.app.graph && window.LiteGraph", timeout=120_000)
        self.page.wait_for_timeout(1000)
        # frontend 1.27.10 throws once while it starts ("reading 'id'" in a settings onChange), before
        # any template: errors count from here on
        self.startup_errors, self.console_errors = list(self.console_errors), []

    def js(self, script: str, arg=None):
        return self.page.evaluate(script, arg)

    def open_template(self, title: str) -> None:
        page = self.page
        category = page.get_by_text(CATEGORY, exact=True).first
        try:  # a new user's first visit opens the template browser by itself
            category.wait_for(state="visible", timeout=5_000)
        except playwright_api.TimeoutError:
            page.locator("button.templates-tab-button").first.click()
        category.click()
        card = page.locator(".template-card").filter(has_text=title).first
        card.wait_for(timeout=30_000)
        card.locator("img").first.wait_for(timeout=30_000)
        page.wait_for_function("(c) => [...c.querySelectorAll('img')].some(i => i.complete && i.naturalWidth > 0)",
                               arg=card.element_handle(), timeout=30_000)  # fmt: skip
        card.click()

    def visible_dialogs(self) -> list[str]:
        dialogs = self.page.locator(".p-dialog:visible")
        return [dialogs.nth(i).inner_text() for i in range(dialogs.count())]

    def widget_problems(self) -> list[str]:
        """Widgets showing nothing: null, undefined, NaN, or an empty string where a value is needed."""
        return self.js("""() => {
          const bad = [];
          for (const n of app.graph.nodes) for (const w of n.widgets ?? []) {
            if (w.type === 'button' || w.serialize === false || w.name.endsWith('preview')) continue;
            const v = w.value, where = `${n.type}.${w.name}`;
            if (v === null || v === undefined || Number.isNaN(v)) bad.push(`${where} = ${v}`);
            else if (w.type === 'combo' && (v === '' || v === 'undefined')) bad.push(`${where} is empty`);
            else if (w.type === 'number' && typeof v !== 'number') bad.push(`${where} = ${JSON.stringify(v)}`);
          }
          return bad; }""")

    def upload(self, node_id: int, path: Path) -> None:
        """Click the node's upload button (as drawn on the canvas) and choose ``path``."""
        for _ in range(3):  # the button moves while the node settles (previews, DOM widgets)
            point = self.js("""(id) => {
              const n = app.graph.getNodeById(id);
              const w = n.widgets.find(w => w.type === 'button');
              const c = app.canvas.ds.convertOffsetToCanvas([n.pos[0] + n.size[0] / 2, n.pos[1] + w.y + 10]);
              const r = app.canvas.canvas.getBoundingClientRect();
              return [c[0] + r.left, c[1] + r.top]; }""", node_id)  # fmt: skip
            try:
                with self.page.expect_file_chooser(timeout=10_000) as chooser:
                    self.page.mouse.click(*point)
            except playwright_api.TimeoutError:
                self.page.wait_for_timeout(1000)
                continue
            chooser.value.set_files(str(path))
            self.page.wait_for_function("([id, name]) => app.graph.getNodeById(id).widgets[0].value === name",
                                        arg=[node_id, path.name], timeout=60_000)  # fmt: skip
            return
        raise AssertionError(f"node {node_id}'s upload button opened no file chooser")


LOADERS = {"LoadVideo": "video", "VHS_LoadVideo": "video", "LoadImage": "image", "LoadAudio": "audio",
           "VHS_LoadAudioUpload": "audio"}  # fmt: skip


def _finished_prompt(url: str, before: set[str]) -> dict:
    import requests

    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        history = requests.get(url + "/history", timeout=30).json()
        new = [entry for key, entry in history.items() if key not in before]
        if new and (new[0].get("status") or {}).get("status_str") in ("success", "error"):
            return new[0]
        time.sleep(2)
    raise AssertionError(f"no prompt finished within {RUN_TIMEOUT_S} s of pressing Run")


def _probe(path: Path) -> tuple[int, Fraction, float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate)
        frames = sum(1 for _ in container.decode(stream))
    with av.open(str(path)) as container:
        assert container.streams.audio, f"{path.name} has no sound"
        audio = container.streams.audio[0]
        seconds = sum(f.samples for f in container.decode(audio)) / audio.rate
    return frames, fps, seconds


def _envelope(samples: np.ndarray, rate: int = 16000, hop_s: float = 0.02) -> np.ndarray:
    hop = round(rate * hop_s)
    n = len(samples) // hop
    return np.log(np.sqrt((samples[: n * hop].reshape(n, hop) ** 2).mean(axis=1)) + 1e-4)


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    ea, eb = _envelope(a), _envelope(b)
    n = min(len(ea), len(eb))
    return float(np.corrcoef(ea[:n], eb[:n])[0, 1])


def _new_speech(template, inputs) -> np.ndarray:
    """The speech the output should carry: the uploaded file, or the line a Text To Speech node speaks."""
    spoken = [values for t, values in template.nodes.values() if t == "OmniSyncTextToSpeech"]
    if not spoken:
        return _read_audio(inputs["audio"])
    from omnisync_core.audio.decode import resample
    from omnisync_core.speech.tts import synthesize

    speech = synthesize(spoken[0]["text"])
    return resample(speech.waveform, speech.sample_rate, 16000)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.name)
def test_template_opens_and_runs_in_the_browser(comfyui, browser, inputs, shots, template):
    import requests

    url, log_path = comfyui
    known = requests.get(url + "/object_info", timeout=60).json()
    missing = sorted({t for t, _ in template.nodes.values()} - set(known))
    if missing:
        pytest.skip(f"{template.title} needs node packs that are not installed: {missing} "
                    "(ComfyUI-VideoHelperSuite in OMNISYNC_COMFYUI_NODE_PACKS)")  # fmt: skip
    tab = Page(browser, url)
    tab.open_template(template.title)
    tab.page.wait_for_function("(n) => app.graph.nodes.length === n", arg=len(template.nodes), timeout=60_000)
    tab.page.wait_for_timeout(1500)
    assert tab.visible_dialogs() == [], "a dialog opened with the template (missing nodes?)"
    saved = json.loads((ROOT / "workflows" / f"{template.title}.json").read_text())
    loaded = tab.js("() => app.graph.serialize()")
    by_id = {n["id"]: n for n in loaded["nodes"]}
    for node in saved["nodes"]:
        got = by_id[node["id"]]
        assert got["widgets_values"] == node["widgets_values"], f"{node['type']} did not load as written"
        assert [i["name"] for i in got["inputs"]] == [i["name"] for i in node["inputs"]], node["type"]
        assert list(got["pos"]) == node["pos"] and list(got["size"]) == node["size"], node["type"]
    assert tab.widget_problems() == []
    tab.page.screenshot(path=str(shots / f"{template.name}.png"))

    if any(t == "OmniSyncChat" for t, _ in template.nodes.values()):
        tab.page.close()
        pytest.skip(f"{template.title} opened as written; running it needs a chat server (OmniSync Chat's url)")
    for node in saved["nodes"]:
        if node["type"] in LOADERS:
            tab.upload(node["id"], inputs[LOADERS[node["type"]]])
    before = set(requests.get(url + "/history", timeout=30).json())
    tab.page.get_by_role("button", name="Run", exact=True).click()
    entry = _finished_prompt(url, before)
    tab.page.wait_for_timeout(2000)
    tab.page.screenshot(path=str(shots / f"{template.name}_done.png"))
    status = entry["status"]
    assert status["status_str"] == "success", json.dumps(status["messages"])[-2000:]
    assert tab.visible_dialogs() == [], "an error dialog after Run"
    pack_errors = [e for e in tab.console_errors if "omnisync" in e.lower() or e.startswith("uncaught")]
    assert pack_errors == []
    assert [r for r in tab.failed_requests if "workflow_templates" in r or "omnisync" in r.lower()] == []

    files = [item for out in entry["outputs"].values() for items in out.values() if isinstance(items, list)
             for item in items if isinstance(item, dict) and item.get("filename", "").endswith(".mp4")]  # fmt: skip
    if len(files) > 1:  # Video Combine lists the silent file and the one with sound
        files = [f for f in files if "-audio" in f["filename"]]
    assert len(files) == 1, entry["outputs"]
    video = log_path.parent / files[0].get("type", "output") / files[0].get("subfolder", "") / files[0]["filename"]
    frames, fps, seconds = _probe(video)
    if template.name == "portrait_image":
        want_fps, want_frames = Fraction(PORTRAIT_FPS), round(inputs["seconds"] * PORTRAIT_FPS)
    else:
        want_fps, want_frames = inputs["fps"], CLIP_FRAMES
    assert abs(float(fps) - float(want_fps)) < 0.01, f"{fps} fps, expected {want_fps}"
    assert abs(frames - want_frames) <= 1, f"{frames} frames, expected {want_frames}"
    assert abs(seconds - frames / float(fps)) < 0.1, f"{seconds:.3f} s of sound for {frames} frames"
    sound = _read_audio(video)
    new, own = _similarity(sound, _new_speech(template, inputs)), _similarity(sound, _read_audio(inputs["own_audio"]))
    assert new > 0.8 and new > own + 0.2, f"the sound is not the new speech (r {new:.2f}; clip's own {own:.2f})"
    tab.page.close()
