"""The ComfyUI motion nodes, called as ComfyUI calls them (no ComfyUI needed), on a real clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nodes import NODE_CLASS_MAPPINGS
from omnisync_core.audio.decode import load_audio_track
from omnisync_core.motion.controls import rest_values
from omnisync_core.motion.track import MouthMotion
from omnisync_core.video import read_frames


@pytest.fixture(scope="module")
def clip():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "grid_bbaf2n.mp4"
    if not path.exists():
        pytest.skip(f"{path} is not available")
    frames = torch.from_numpy(read_frames(path, count=50)).float() / 255.0  # [T, H, W, 3] IMAGE
    track = load_audio_track(path)
    audio = {"waveform": torch.from_numpy(track.samples)[None], "sample_rate": track.sample_rate}
    return frames, audio


def test_mouth_motion_node_makes_a_track_and_its_plot(clip):
    _, audio = clip
    motion, plot = NODE_CLASS_MAPPINGS["OmniSyncMouthMotion"]().run(audio, 25.0)
    assert isinstance(motion, MouthMotion) and len(motion) == 75 and motion.source == "speech"
    assert plot.shape[0] == 1 and plot.shape[-1] == 3 and plot.dtype == torch.float32 and plot.max() <= 1
    short, _ = NODE_CLASS_MAPPINGS["OmniSyncMouthMotion"]().run(audio, 30.0, frame_count=40, strength=0.0)
    assert len(short) == 40 and float(short.fps) == 30.0
    assert np.ptp(short.values, axis=0).max() < 1e-6  # strength 0: a still resting mouth


def test_motion_sits_on_the_faces_own_resting_mouth(clip):
    frames, audio = clip
    faces, _ = NODE_CLASS_MAPPINGS["OmniSyncFaceDetect"]().run(frames, detect_every=5)
    plain, _ = NODE_CLASS_MAPPINGS["OmniSyncMouthMotion"]().run(audio, 25.0, frame_count=50)
    own, _ = NODE_CLASS_MAPPINGS["OmniSyncMouthMotion"]().run(audio, 25.0, frame_count=50, faces=faces)
    measured, _ = NODE_CLASS_MAPPINGS["OmniSyncMotionFromVideo"]().run(frames, 25.0, faces=faces)
    width = own.names.index("width")
    opening = own.names.index("opening")
    assert np.corrcoef(own.values[:, opening], plain.values[:, opening])[0, 1] > 0.9  # the same movements
    # the movements sit on this face's own resting mouth, not on an average speaker's
    rest = rest_values(measured.values)
    np.testing.assert_allclose(rest_values(own.values)[width], rest[width], atol=0.01)


def test_motion_from_video_node_retimes(clip):
    frames, _ = clip
    motion, plot = NODE_CLASS_MAPPINGS["OmniSyncMotionFromVideo"]().run(frames, 25.0, target_fps=50.0)
    assert len(motion) == 100 and float(motion.fps) == 50.0 and motion.source == "transfer"
    assert motion.values[:, 0].std() > 0.003 and plot.shape[0] == 1


def test_phonemes_from_text_to_speech_give_exact_visemes():
    tts = NODE_CLASS_MAPPINGS.get("OmniSyncTextToSpeech")
    if tts is None:
        pytest.skip("no text to speech node")
    outputs = tts().run("Bob bought a big map.")
    audio, phonemes = outputs[0], outputs[1]
    motion, _ = NODE_CLASS_MAPPINGS["OmniSyncMouthMotion"]().run(audio, 25.0, phonemes=phonemes)
    assert motion.source == "phonemes"
    opening = motion.component("opening")
    closed = [opening[min(len(opening) - 1, int((p.start + p.end) / 2 * 25))] for p in phonemes if p.phoneme in "bpm"
              and p.phoneme]  # fmt: skip
    vowels = [opening[int((p.start + p.end) / 2 * 25)] for p in phonemes if p.phoneme in ("a", "ɑ", "æ", "ɔː", "ɔ")]
    assert closed and vowels and max(closed) < min(vowels)
