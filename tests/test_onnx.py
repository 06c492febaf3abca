"""ONNX export of the DiT and the motion model, and the onnx runtime of the pipeline, against torch."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from omnisync_core.errors import OmniSyncError  # noqa: E402
from omnisync_core.model import OmniSyncDiT, preset  # noqa: E402
from omnisync_core.onnx_export import dit_inputs, export_dit, export_motion  # noqa: E402
from omnisync_core.onnx_runtime import OnnxDiT, with_onnx  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("motion_map", [False, True])
def test_tiny_dit_matches_torch_for_any_frame_count(tmp_path, motion_map):
    cfg = preset("tiny", motion_map=motion_map, refine_channels=8, source_skip=True, audio_ada=True)
    torch.manual_seed(0)
    model = OmniSyncDiT(cfg).eval()
    for p in model.parameters():  # zero-initialised paths (lip map, gates) get weights, so they count
        p.data.add_(0.05 * torch.randn_like(p))
    export_dit(model, cfg, tmp_path / "dit.onnx")
    onnx = OnnxDiT(tmp_path / "dit.onnx", cfg)
    assert onnx.names[-1] == ("motion" if motion_map else "audio_drop")
    for batch, frames in ((2, 2), (2, 5), (1, 1), (4, 3)):  # other than the traced (2, 2)
        inputs = dit_inputs(cfg, batch, frames, seed=frames)
        with torch.no_grad():
            want = model(**{k: v for k, v in inputs.items()})
        got = onnx(**inputs)
        assert got.shape == want.shape
        assert (got - want).abs().max().item() < 1e-4
    if motion_map:  # the lip map is an input that matters
        inputs = dit_inputs(cfg, 2, 3, seed=1)
        moved = onnx(**{**inputs, "motion": inputs["motion"] + 1})
        assert (moved - onnx(**inputs)).abs().max().item() > 1e-3
    else:
        with pytest.raises(OmniSyncError, match="no lip map"):
            onnx(**dit_inputs(cfg, 1, 1), motion=torch.zeros(1, 1, 12, cfg.latent_size, cfg.latent_size))
    inputs = dit_inputs(cfg, 2, 3)  # no audio: the null condition, as in torch
    with torch.no_grad():
        want = model(inputs["x"], inputs["sigma"], inputs["source"], None)
    assert (onnx(inputs["x"], inputs["sigma"], inputs["source"], None) - want).abs().max().item() < 1e-4


def test_motion_model_matches_torch(tmp_path):
    import onnxruntime as ort

    from omnisync_core.motion.ensemble import members_of
    from omnisync_core.motion.predict import load_motion_model

    model = members_of(load_motion_model(None))[0].model.eval()
    export_motion(model, tmp_path / "motion.onnx")
    session = ort.InferenceSession(str(tmp_path / "motion.onnx"), providers=["CPUExecutionProvider"])
    for n in (100, 737):
        features = torch.randn(1, n, model.config.in_dim)
        with torch.no_grad():
            want = model(features).numpy()
        (got,) = session.run(None, {"features": features.numpy()})
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-4


@pytest.fixture(scope="module")
def default_onnx(tmp_path_factory):
    """`omnisync export onnx` of the shipped default model (the renderer: the DiT and the built-in motion
    model)."""
    from omnisync_core.cli import main
    from omnisync_core.pipeline import default_model

    model = default_model()
    if model is None:
        pytest.skip("no built-in weights in this install")
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("onnx") / "default"
    assert main(["export", "onnx", "--out", str(out)]) == 0
    return model, out


def _real_crops(media, loaded, frames=8):
    from omnisync_core.audio.decode import FEATURE_RATE, load_audio_track, resample
    from omnisync_core.audio.features import features_for, frame_windows
    from omnisync_core.face.detection import make_detector
    from omnisync_core.face.tracker import track_video
    from omnisync_core.streaming import crop_frames
    from omnisync_core.video import iter_frames

    clip = media("lrs2_00001.mp4")
    video = list(iter_frames(clip, 0, frames))
    track = track_video(video, make_detector("auto"), crop_size=loaded.config.crop_size)
    crops = torch.from_numpy(np.stack(crop_frames(video, track))).permute(0, 3, 1, 2)  # [T, 3, S, S]
    speech = load_audio_track(media("eng.wav"))
    features = features_for(resample(speech.mono(), speech.sample_rate, FEATURE_RATE), loaded.audio_spec)
    audio = frame_windows(features, 25, frames, loaded.config.audio_window)  # [T, W, D]
    motion = None
    if loaded.config.motion_map:  # the frames' own lips as the lip map, as a re-synthesis would draw them
        from omnisync_core.lipsync import lip_map_input
        from omnisync_core.streaming import crop_lips

        lips = np.stack([crop_lips(track, t) for t in range(frames)])  # [T, P, 2] crop px
        motion = lip_map_input(loaded.config, lips, "cpu")  # [T, M, h, w]
    return loaded.latent_space.encode(crops).float(), audio.float(), motion


def test_default_dit_on_real_crops_matches_torch(media, default_onnx):
    from omnisync_core.hub import load_omnisync

    model, folder = default_onnx
    files = {"dit.onnx", "motion.onnx", "config.json", "onnx.json"}
    manifest = json.loads((folder / "onnx.json").read_text())
    if "members" in manifest["motion"]:  # the built-in ensemble: one graph per member
        assert [m["features"] for m in manifest["motion"]["members"]] == ["whisper", "logmel"]
        files.add("motion_1.onnx")
    assert {p.name for p in folder.iterdir()} == files
    loaded = load_omnisync(model)
    onnx = with_onnx(loaded, folder)
    z, audio, motion = _real_crops(media, loaded)
    torch.manual_seed(0)
    x = 0.5 * z + 0.5 * torch.randn_like(z)  # the progressive init at sigma = tau
    args = (torch.stack([x, x]), torch.full((2,), 0.5), torch.stack([z, z]), torch.stack([audio, audio]))
    drop = torch.tensor([False, True])  # the guidance pair, as the sampler calls it
    extra = {} if motion is None else {"motion": torch.stack([motion, motion])}  # [2, T, M, h, w]
    with torch.no_grad():
        want = loaded.model(*args, audio_drop=drop, **extra)
        without = loaded.model(*args, audio_drop=drop) if extra else want
    got = onnx.model(*args, audio_drop=drop, **extra)
    diff = (got - want).abs().max().item()
    print(f"default DiT on {z.shape[0]} real crops: max abs difference ONNX Runtime - torch {diff:.2e}")
    assert diff < 1e-4 and want.abs().max() > 0.1
    if extra:  # the lip map reached the exported graph: it changes the conditional half
        assert (want[0] - without[0]).abs().max().item() > 1e-3


@pytest.mark.slow  # whole runs in subprocesses; the parts are tested above
def test_run_with_onnx_runtime_matches_torch(media, default_onnx, tmp_path):
    from scipy.io import wavfile

    from omnisync_core.audio.decode import load_audio_track
    from omnisync_core.video import read_frames

    model, folder = default_onnx
    speech = load_audio_track(media("eng.wav"))
    short = tmp_path / "short.wav"  # 0.48 s: --length trim makes 12 frames
    wavfile.write(short, speech.sample_rate, speech.samples[:, 16000 : 16000 + int(0.48 * speech.sample_rate)].T)
    outs = {}
    for runtime in ("torch", "onnx"):
        outs[runtime] = tmp_path / f"{runtime}.mp4"
        extra = ["--onnx", str(folder)] if runtime == "onnx" else []
        done = subprocess.run([sys.executable, "-m", "omnisync_core", "run", "--video", str(media("lrs2_00001.mp4")),
                               "--audio", str(short), "--out", str(outs[runtime]), "--length", "trim",
                               "--steps", "2", "--runtime", runtime, "--preset", "ultrafast", *extra],
                              capture_output=True, text=True, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
    a, b = read_frames(outs["torch"]).astype(np.int16), read_frames(outs["onnx"]).astype(np.int16)
    assert a.shape == b.shape and len(a) == 12 and np.abs(a - b).mean() < 0.5


def test_onnx_export_of_another_model_is_refused(tmp_path, default_onnx):
    from omnisync_core.hub import load_omnisync, save_pretrained

    save_pretrained(OmniSyncDiT(preset("tiny")), tmp_path / "tiny")
    with pytest.raises(OmniSyncError, match="another model"):
        with_onnx(load_omnisync(tmp_path / "tiny"), default_onnx[1])
    with pytest.raises(OmniSyncError, match="not an ONNX export"):
        with_onnx(load_omnisync(tmp_path / "tiny"), tmp_path)
