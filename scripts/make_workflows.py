"""Write workflows/*.json (UI format) and workflows/api/*.json (API format) from one description
per graph, so the two twins always hold the same nodes and links. Run: python scripts/make_workflows.py"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nodes import NODE_CLASS_MAPPINGS  # noqa: E402
from omnisync_core.speech.chat import DEFAULT_SYSTEM as CHAT_SYSTEM  # noqa: E402

KNOWN = json.loads((ROOT / "tests" / "data" / "core_nodes.json").read_text())["nodes"]
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
MODEL = "starter"
VHS_COMBINE = {"frame_rate": 25.0, "loop_count": 0, "filename_prefix": "video/omnisync", "format": "video/h264-mp4",
               "pix_fmt": "yuv420p", "crf": 19, "save_metadata": True, "trim_to_audio": False, "pingpong": False,
               "save_output": True}  # fmt: skip


def spec(node_type: str) -> tuple[list[tuple[str, str, bool]], list[tuple[str, str]]]:
    """([(input, type, is_widget)], [(output name, type)]) of a node type."""
    if node_type in NODE_CLASS_MAPPINGS:
        cls = NODE_CLASS_MAPPINGS[node_type]
        declared, outputs = cls.INPUT_TYPES(), list(zip(cls.RETURN_NAMES, cls.RETURN_TYPES, strict=True))
    else:
        declared = KNOWN[node_type]["input"]
        outputs = list(zip(KNOWN[node_type]["output_name"], KNOWN[node_type]["output"], strict=True))
    inputs = []
    for section in ("required", "optional"):
        for name, value in declared.get(section, {}).items():
            kind = "COMBO" if isinstance(value[0], list) else value[0]
            inputs.append((name, kind, kind in WIDGET_TYPES))
    return inputs, outputs


def model_loader(x, y):
    return ("OmniSyncModelLoader", (x, y), {"model": MODEL, "revision": "", "dtype": "auto", "device": "auto",
                                            "attention": "auto"})  # fmt: skip


def save_video(video, x, y):
    return ("SaveVideo", (x, y), {"video": video, "filename_prefix": "video/omnisync", "format": "auto",
                                  "codec": "auto"})  # fmt: skip


GRAPHS = {
    "lipsync_basic": {
        1: ("LoadVideo", (0, 0), {"file": "input.mp4"}),
        2: ("GetVideoComponents", (0, 400), {"video": (1, 0)}),
        3: ("LoadAudio", (0, 600), {"audio": "speech.wav"}),
        4: model_loader(0, 850),
        5: ("OmniSyncLipSync", (450, 200), {"images": (2, 0), "audio": (3, 0), "fps": (2, 2), "steps": 10, "seed": 0,
                                            "model": (4, 0)}),  # fmt: skip
        6: ("CreateVideo", (900, 200), {"images": (5, 0), "fps": (2, 2), "audio": (5, 1)}),
        7: save_video((6, 0), 1250, 200),
    },
    "lipsync_stages": {
        1: ("LoadVideo", (0, 0), {"file": "input.mp4"}),
        2: ("GetVideoComponents", (0, 400), {"video": (1, 0)}),
        3: ("LoadAudio", (0, 600), {"audio": "speech.wav"}),
        4: model_loader(0, 850),
        5: ("OmniSyncMatchLength", (400, 400), {"images": (2, 0), "audio": (3, 0), "fps": (2, 2),
                                                "policy": "pingpong"}),  # fmt: skip
        6: ("OmniSyncFaceDetect", (800, 0), {"images": (5, 0), "backend": "auto", "face": "largest",
                                             "detect_every": 5, "crop_size": 256, "model": (4, 0), "fps": (2, 2)}),
        7: ("OmniSyncAudioFeatures", (800, 500), {"audio": (5, 1), "model": (4, 0), "fps": (2, 2), "frame_count": 0}),
        8: ("OmniSyncNoiseInit", (1200, 0), {"model": (4, 0), "faces": (6, 0), "tau": 0.92, "seed": 0}),
        9: ("OmniSyncDenoise", (1550, 0), {"model": (4, 0), "latent": (8, 0), "audio_features": (7, 0), "steps": 10,
                                           "w_base": 1.0, "w_peak": 5.0, "spread": 0.25, "gamma": 1.5, "window": 8,
                                           "overlap": 2, "shift": 3.0, "solver": "euler",
                                           "edit_region": 1.5}),  # fmt: skip
        10: ("OmniSyncDecode", (1900, 0), {"model": (4, 0), "latent": (9, 0)}),
        11: ("OmniSyncBlend", (2200, 200), {"images": (5, 0), "faces": (6, 0), "crops": (10, 0), "mask": "lower",
                                             "feather": 0.04, "color_match": "lab", "poisson": False}),  # fmt: skip
        12: ("CreateVideo", (2550, 200), {"images": (11, 0), "fps": (2, 2), "audio": (5, 1)}),
        13: save_video((12, 0), 2900, 200),
    },
    "lipsync_vhs": {
        1: ("VHS_LoadVideo", (0, 0), {"video": "input.mp4", "force_rate": 25.0, "custom_width": 0, "custom_height": 0,
                                      "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 1}),
        2: ("VHS_LoadAudioUpload", (0, 500), {"audio": "speech.wav", "start_time": 0.0, "duration": 0.0}),
        3: model_loader(0, 750),
        4: ("OmniSyncLipSync", (450, 200), {"images": (1, 0), "audio": (2, 0), "fps": 25.0, "steps": 10, "seed": 0,
                                            "model": (3, 0)}),  # fmt: skip
        5: ("VHS_VideoCombine", (900, 200), {"images": (4, 0), **VHS_COMBINE, "audio": (4, 1)}),
    },
    "portrait_image": {
        1: ("LoadImage", (0, 0), {"image": "portrait.png"}),
        2: ("LoadAudio", (0, 400), {"audio": "speech.wav"}),
        3: model_loader(0, 650),
        4: ("OmniSyncMatchLength", (400, 100), {"images": (1, 0), "audio": (2, 0), "fps": 25.0, "policy": "loop"}),
        5: ("OmniSyncLipSync", (800, 200), {"images": (4, 0), "audio": (4, 1), "fps": 25.0, "steps": 10, "seed": 0,
                                            "model": (3, 0)}),  # fmt: skip
        6: ("CreateVideo", (1250, 200), {"images": (5, 0), "fps": 25.0, "audio": (5, 1)}),
        7: save_video((6, 0), 1600, 200),
    },
    "text_to_speech": {
        1: ("LoadVideo", (0, 0), {"file": "input.mp4"}),
        2: ("GetVideoComponents", (0, 400), {"video": (1, 0)}),
        3: ("OmniSyncTextToSpeech", (0, 600), {"text": "Hello! This face is speaking a brand new line.",
                                               "voice": "en-us", "rate": 175, "pitch": 50}),
        4: model_loader(0, 900),
        5: ("OmniSyncLipSync", (450, 200), {"images": (2, 0), "audio": (3, 0), "fps": (2, 2), "steps": 10, "seed": 0,
                                            "model": (4, 0)}),  # fmt: skip
        6: ("CreateVideo", (900, 200), {"images": (5, 0), "fps": (2, 2), "audio": (5, 1)}),
        7: save_video((6, 0), 1250, 200),
    },
    "speak_back": {  # needs a chat server (OmniSync Chat's url) and a Whisper model
        1: ("LoadVideo", (0, 0), {"file": "input.mp4"}),
        2: ("GetVideoComponents", (0, 400), {"video": (1, 0)}),
        3: ("LoadAudio", (0, 600), {"audio": "question.wav"}),
        4: ("OmniSyncTranscribe", (350, 600), {"audio": (3, 0), "model": "tiny", "language": "", "beam_size": 5}),
        5: ("OmniSyncChat", (700, 600), {"text": (4, 0), "url": "http://127.0.0.1:8080/v1", "model": "local",
                                         "system": CHAT_SYSTEM, "key_env": "OPENAI_API_KEY", "timeout": 60.0,
                                         "max_tokens": 400}),  # fmt: skip
        6: ("OmniSyncTextToSpeech", (1050, 600), {"text": (5, 0), "voice": "en-us", "rate": 175, "pitch": 50}),
        7: model_loader(1050, 900),
        8: ("OmniSyncLipSync", (1400, 200), {"images": (2, 0), "audio": (6, 0), "fps": (2, 2), "steps": 10,
                                             "seed": 0, "model": (7, 0)}),  # fmt: skip
        9: ("CreateVideo", (1800, 200), {"images": (8, 0), "fps": (2, 2), "audio": (8, 1)}),
        10: save_video((9, 0), 2150, 200),
    },
}


def is_link(value) -> bool:
    return isinstance(value, tuple)


def api_graph(graph: dict) -> dict:
    return {
        str(i): {
            "class_type": t,
            "inputs": {k: [str(v[0]), v[1]] if is_link(v) else v for k, v in values.items()},
            "_meta": {"title": t},
        }
        for i, (t, _, values) in graph.items()
    }


def ui_graph(name: str, graph: dict) -> dict:
    links, nodes = [], []
    out_links: dict[tuple[int, int], list[int]] = {}
    for i, (t, _, values) in graph.items():
        inputs, _ = spec(t)
        kinds = {n: k for n, k, _ in inputs}
        for key, value in values.items():
            if is_link(value):
                src_type = spec(graph[value[0]][0])[1][value[1]][1]
                links.append([len(links) + 1, value[0], value[1], i, key, src_type])
                out_links.setdefault(value, []).append(len(links))
                assert kinds[key] in (src_type, "COMBO") or kinds[key] in WIDGET_TYPES, (name, i, key)
    for order, (i, (t, pos, values)) in enumerate(graph.items()):
        inputs, outputs = spec(t)
        ui_inputs, widgets = [], []
        for n, kind, widget in inputs:
            link = next((lk for lk in links if lk[3] == i and lk[4] == n), None)
            if widget:
                widgets.append(values.get(n))
                if n == "seed":
                    widgets.append("fixed")  # the frontend's control_after_generate widget
                if link:
                    ui_inputs.append({"name": n, "type": kind, "widget": {"name": n}, "link": link[0]})
            elif n in values or link:
                ui_inputs.append({"name": n, "type": kind, "link": link[0] if link else None})
        if t == "VHS_VideoCombine":
            widgets = {k: v for k, v in values.items() if not is_link(v)}
            widgets["videopreview"] = {"hidden": False, "paused": False, "params": {}}
        if t in ("LoadImage", "LoadVideo"):
            widgets.append("image")  # the upload button widget
        if t == "LoadAudio":
            widgets += [None, None]  # the upload button and the player
        nodes.append({
            "id": i, "type": t, "pos": list(pos), "size": [340, 200 if t.startswith("OmniSync") else 120],
            "flags": {}, "order": order, "mode": 0, "inputs": ui_inputs,
            "outputs": [{"name": n, "type": k, "links": out_links.get((i, s), []), "slot_index": s}
                        for s, (n, k) in enumerate(outputs)],
            "properties": {"Node name for S&R": t},
            "widgets_values": widgets,
        })  # fmt: skip
    for link in links:  # target slot: index among the target node's UI inputs
        target = next(n for n in nodes if n["id"] == link[3])
        link[4] = next(s for s, inp in enumerate(target["inputs"]) if inp["name"] == link[4])
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"omnisync/{name}")),
        "revision": 0,
        "last_node_id": max(graph),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}},
        "version": 0.4,
    }


def main() -> None:
    (ROOT / "workflows" / "api").mkdir(parents=True, exist_ok=True)
    for name, graph in GRAPHS.items():
        (ROOT / "workflows" / f"{name}.json").write_text(json.dumps(ui_graph(name, graph), indent=1) + "\n")
        (ROOT / "workflows" / "api" / f"{name}.json").write_text(json.dumps(api_graph(graph), indent=1) + "\n")


if __name__ == "__main__":
    main()
