from fractions import Fraction

import numpy as np
import pytest
import torch

from omnisync_core.audio.features import AudioFeatures, frame_times, frame_windows, log_mel, whisper_features
from omnisync_core.errors import OmniSyncError

from .hub_standin import put_folder_in_hub


def test_log_mel_shape_rate_and_normalisation():
    t = np.arange(16000 * 2) / 16000
    wav = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    feats = log_mel(wav)
    assert feats.values.shape == (201, 80) and feats.rate == 100.0 and feats.kind == "logmel"
    assert feats.values.dtype == torch.float32 and feats.values.abs().max() < 2
    # the 440 Hz bin is the loudest in the middle of the clip
    assert 5 < int(feats.values[100].argmax()) < 20
    with pytest.raises(OmniSyncError, match="mono"):
        log_mel(np.zeros((2, 100), np.float32))


@pytest.mark.parametrize("fps", [Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001), Fraction(60)])
@pytest.mark.parametrize("rate", [100.0, 50.0])
def test_frame_windows_one_per_frame_centred(fps, rate):
    n = int(rate * 10)  # 10 s of features; value = feature-frame index (a clock)
    feats = AudioFeatures(torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3), rate, "test")
    n_frames = int(8 * fps)
    for start in (0, 37):
        win = frame_windows(feats, fps, n_frames, window=9, start_frame=start)
        assert win.shape == (n_frames, 9, 3)
        centres = win[:, 4, 0].double()
        expect = frame_times(fps, n_frames, start) * rate
        inside = expect < n - 1
        assert torch.allclose(centres[inside], expect[inside], atol=1e-3)
        assert torch.all(centres[1:] >= centres[:-1])
        # a frame's window spans consecutive feature frames (where it does not touch the ends)
        full = (expect >= 4) & (expect <= n - 5)
        assert full.sum() > n_frames // 2
        assert torch.allclose(win[full][:, 1:, 0] - win[full][:, :-1, 0], torch.ones(1), atol=1e-3)


def test_frame_windows_edge_padded_and_even_window():
    feats = AudioFeatures(torch.arange(10, dtype=torch.float32)[:, None], 100.0, "test")
    win = frame_windows(feats, Fraction(25), 5, window=4)
    assert win.shape == (5, 4, 1)
    assert win[0, :, 0].tolist() == [0.0, 0.0, 0.5, 1.5]  # centred between the two middle samples
    assert torch.all(win[-1] == 9)  # past the end: last feature frame repeated


def test_whisper_tiny_from_hub_standin_long_audio(tmp_path, monkeypatch):
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    cfg = WhisperConfig(
        vocab_size=64, num_mel_bins=80, d_model=16, encoder_layers=2, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=1500, max_target_positions=32, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, decoder_start_token_id=1, suppress_tokens=[], begin_suppress_tokens=[],
    )  # fmt: skip
    folder = tmp_path / "whisper"
    WhisperModel(cfg).save_pretrained(folder, safe_serialization=True)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    cache = tmp_path / "cache"
    put_folder_in_hub(cache, "test/whisper-mini", folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    wav = (np.random.default_rng(0).standard_normal(16000 * 33) * 0.1).astype(np.float32)  # 33 s: 2 chunks
    feats = whisper_features(wav, "test/whisper-mini", layer=-1, cache_dir=cache)
    assert feats.values.shape == (33 * 50, 16) and feats.rate == 50.0 and feats.kind == "whisper"
    first = whisper_features(wav, "test/whisper-mini", layer=1, cache_dir=cache)
    assert not torch.allclose(first.values, feats.values)
    with pytest.raises(OmniSyncError, match="layer 5"):
        whisper_features(wav[:16000], "test/whisper-mini", layer=5, cache_dir=cache)
