"""Speed and peak memory of the OmniSync Lip Sync node against ``omnisync run`` on the same clip, in
the same session, each in a fresh process: the CLI on the files, the node on the IMAGE / AUDIO that
ComfyUI's Load Video + Get Video Components and Load Audio hand it (float32 [T, H, W, 3] frames).

    python benchmarks/comfy_node_speed.py --video ../shared/media/yongen.mp4 --audio ../shared/media/yongen.wav \
        --frames 50 [--backend opencv] [--profile]

Prints seconds per frame and peak RSS for both and their ratio; ``--profile`` adds the node's top
functions by cumulative time. ``--comfyui URL --comfyui-pid PID`` also runs workflows/api/lipsync_basic.json
on that (local) ComfyUI through ``omnisync comfy run`` and reports its execution time (from the
prompt's history) and the server's peak RSS. The node's time counts the node alone (in ComfyUI the model loader is
a node of its own and cached); the CLI's counts the whole command (decode, model load, encode).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_measured(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stdout) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    out, err = process.stdout.read(), process.stderr.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({process.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_maxrss / 1024, out


def trimmed_clip(video: Path, audio: Path, frames: int, folder: Path) -> tuple[Path, Path, int, float]:
    """The first ``frames`` frames of the video (h264, its own rate) and as much of the speech."""
    import av
    import numpy as np

    out_video, out_audio = folder / "clip.mp4", folder / "speech.wav"
    with av.open(str(video)) as source, av.open(str(out_video), "w") as out:
        stream = source.streams.video[0]
        rate = stream.average_rate
        target = out.add_stream("libx264", rate=rate)
        target.width, target.height, target.pix_fmt = stream.width, stream.height, "yuv420p"
        count = 0
        for frame in source.decode(stream):
            out.mux(target.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")))
            count += 1
            if count == frames:
                break
        out.mux(target.encode())
    seconds = count / float(rate)
    with av.open(str(audio)) as source:
        sound = source.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sound.rate)
        samples = np.concatenate([o.to_ndarray().reshape(-1) for f in source.decode(sound)
                                  for o in resampler.resample(f)])[: round(seconds * sound.rate)]  # fmt: skip
        sample_rate = sound.rate
    with av.open(str(out_audio), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=sample_rate, layout="mono")
        chunk = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        chunk.sample_rate = sample_rate
        for packet in [*stream.encode(chunk), *stream.encode()]:
            out.mux(packet)
    return out_video, out_audio, count, float(rate)


def node_child(args: argparse.Namespace) -> None:
    """In a fresh process: load the inputs as ComfyUI would, run the node, print JSON figures."""
    import av
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from nodes import NODE_CLASS_MAPPINGS

    with av.open(str(args.video)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        arrays = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    images = torch.from_numpy(np.stack(arrays)).float() / 255.0  # what GetVideoComponents hands on
    del arrays
    with av.open(str(args.audio)) as container:
        sound = container.streams.audio[0]
        wave = np.concatenate([f.to_ndarray().astype(np.float32).reshape(1, -1) for f in container.decode(sound)], 1)
        audio = {"waveform": torch.from_numpy(wave / 32768.0)[None], "sample_rate": sound.rate}
    start = time.perf_counter()
    model = NODE_CLASS_MAPPINGS["OmniSyncModelLoader"]().load("starter")[0]
    loaded_s = time.perf_counter() - start
    node = NODE_CLASS_MAPPINGS["OmniSyncLipSync"]()
    with torch.inference_mode():  # as ComfyUI runs nodes
        start = time.perf_counter()
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
        out, _ = node.run(images, audio, fps, model=model, backend=args.backend)
        node_s = time.perf_counter() - start
        if args.profile:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    assert out.shape == images.shape, (out.shape, images.shape)
    print(json.dumps({"frames": int(images.shape[0]), "node_s": node_s, "loader_s": loaded_s,
                      "image_mib": images.numel() * 4 / 2**20}))  # fmt: skip


def in_comfyui(args: argparse.Namespace, video: Path, audio: Path, folder: Path) -> tuple[float, float]:
    """(execution seconds from the history's timestamps, server peak RSS MiB or nan)."""
    sys.path.insert(0, str(ROOT))
    from omnisync_core.comfy_client import ComfyServer, Job, load_workflow, run_jobs

    workflow = load_workflow(ROOT / "workflows" / "api" / "lipsync_basic.json")
    for node in workflow.values():
        if node["class_type"] == "OmniSyncLipSync":
            node["inputs"]["backend"] = args.backend
    outcome = run_jobs([args.comfyui], [Job("bench", {"video": video, "audio": audio})], workflow,
                       folder / "comfy", show_progress=False)[0]  # fmt: skip
    if not outcome.ok:
        raise SystemExit(f"the ComfyUI run failed: {outcome.error}")
    history = ComfyServer(args.comfyui).get_json("/history")
    entry = max(history.values(), key=lambda e: e["prompt"][0])
    stamps = {kind: data["timestamp"] for kind, data in entry["status"]["messages"] if "timestamp" in data}
    seconds = (stamps["execution_success"] - stamps["execution_start"]) / 1000
    rss = float("nan")
    if args.comfyui_pid:
        for line in Path(f"/proc/{args.comfyui_pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
    return seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--audio", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=50, help="frames of the video to use (default 50)")
    parser.add_argument("--backend", default="auto", help="face detector for both (default auto)")
    parser.add_argument("--profile", action="store_true", help="print the node's top functions (stderr)")
    parser.add_argument("--comfyui", metavar="URL", help="also run the basic API workflow on this ComfyUI")
    parser.add_argument("--comfyui-pid", type=int, help="that server's process id (for its peak RSS)")
    parser.add_argument("--node-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node_child:
        return node_child(args)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video, audio, frames, fps = trimmed_clip(args.video, args.audio, args.frames, folder)
        omnisync = [sys.executable, "-m", "omnisync_core.cli", "run"]
        cli_s, cli_rss, _ = run_measured([*omnisync, "--video", str(video), "--audio", str(audio), "--out",
                                          str(folder / "cli.mp4"), "--backend", args.backend, "--length", "trim"])
        child = [sys.executable, __file__, "--node-child", "--video", str(video), "--audio", str(audio),
                 "--backend", args.backend] + (["--profile"] if args.profile else [])  # fmt: skip
        start = time.perf_counter()
        process = subprocess.Popen(child, stdout=subprocess.PIPE, stderr=None, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        node_wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("the node run failed")
        figures = json.loads(process.stdout.read().strip().splitlines()[-1])
        node_rss = usage.ru_maxrss / 1024
        server = in_comfyui(args, video, audio, folder) if args.comfyui else None
    print(f"clip: {args.video.name}, {frames} frames at {fps:.3f} fps, detector {args.backend}")
    node_s = figures["node_s"]
    print(f"omnisync run:   {cli_s:7.1f} s whole command ({cli_s / frames:.2f} s/frame), peak RSS {cli_rss:6.0f} MiB")
    print(f"Lip Sync node:  {node_s:7.1f} s node alone ({node_s / frames:.2f} s/frame), {node_wall:.1f} s whole "
          f"process, peak RSS {node_rss:6.0f} MiB (the IMAGE it is given: {figures['image_mib']:.0f} MiB)")
    print(f"ratio node / CLI: time {node_s / cli_s:.2f}, peak RSS {node_rss / cli_rss:.2f}")
    if server is not None:
        print(f"ComfyUI {args.comfyui}: prompt executed in {server[0]:.1f} s ({server[0] / frames:.2f} s/frame), "
              f"server peak RSS {server[1]:.0f} MiB; ratio to the CLI: time {server[0] / cli_s:.2f}")


if __name__ == "__main__":
    main()
