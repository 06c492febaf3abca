"""The mouth-motion track: basis, JSON, controls, re-timing, phonemes (no weights, no media)."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from omnisync_core.errors import OmniSyncError
from omnisync_core.motion.basis import COMPONENTS, LipBasis, explained_variance, fit_basis, measurement_matrix
from omnisync_core.motion.controls import rest_track, rest_values, retargeted, retimed, smoothed, with_strength
from omnisync_core.motion.measure import LIP_POINTS, SHAPE_POINTS, centre_mouth
from omnisync_core.motion.phonemes import motion_from_phonemes, viseme_of
from omnisync_core.motion.track import MouthMotion, fill_gaps, read_motion_json, write_motion_json

K = len(COMPONENTS)


def mouth(opening: float, width: float, chin: float = 0.5) -> np.ndarray:
    """A schematic lip + jaw shape [29, 2] with a known inner gap and corner distance (face widths)."""
    pts = np.zeros((68, 2), np.float32)
    half = width / 2
    outer_x = np.linspace(-half, half, 7)
    pts[48:55, 0], pts[48:55, 1] = outer_x, 0.30 - 0.02 * np.cos(np.linspace(0, np.pi, 7))  # upper outer
    pts[54:60, 0] = np.linspace(half, -half, 7)[:6]
    pts[55:60, 1] = 0.36 + opening  # lower outer
    pts[60:65, 0] = np.linspace(-half * 0.8, half * 0.8, 5)
    pts[60:65, 1] = 0.32  # inner upper
    pts[65:68, 0] = np.linspace(half * 0.4, -half * 0.4, 3)
    pts[65:68, 1] = 0.32 + opening  # inner lower
    pts[4:13, 0] = np.linspace(-0.35, 0.35, 9)
    pts[4:13, 1] = chin - 0.1 * np.abs(np.linspace(-1, 1, 9))
    return centre_mouth(pts[list(SHAPE_POINTS)])


def test_components_measure_what_they_are_named_for():
    e = measurement_matrix()
    a, b = mouth(0.02, 0.30).reshape(-1), mouth(0.08, 0.36, chin=0.56).reshape(-1)
    da, db = e @ a, e @ b
    assert db[0] - da[0] == pytest.approx(0.06, abs=1e-6)  # opening: the inner gap
    assert db[1] - da[1] == pytest.approx(0.06, abs=1e-6)  # width: corner to corner
    assert db[2] - da[2] == pytest.approx(0.06, abs=1e-6)  # jaw: the chin below the origin
    assert da[0] == pytest.approx(0.02, abs=1e-6) and da[1] == pytest.approx(0.30, abs=1e-6)


def test_centring_puts_the_outer_lips_at_x_zero_and_is_idempotent():
    shape = mouth(0.05, 0.3) + np.array([0.1, 0.0], np.float32)
    once = centre_mouth(shape)
    assert once[: len(LIP_POINTS[:12]), 0].mean() == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(centre_mouth(once), once, atol=1e-7)


def _clips(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(4):
        base_w = rng.uniform(0.3, 0.4)
        clips.append(np.stack([mouth(o, base_w + 0.5 * o, 0.5 + 0.6 * o) + rng.normal(0, 1e-3, (29, 2))
                               for o in np.abs(rng.normal(0.04, 0.03, 60))]).astype(np.float32))  # fmt: skip
    return clips


def test_basis_decodes_and_encodes_back_exactly(tmp_path):
    rng = np.random.default_rng(2)
    fields = rng.normal(0, 0.01, (8, 29, 2))  # shapes that move in 8 independent ways
    clips = [mouth(0.04, 0.35) + np.einsum("nf,fpc->npc", rng.normal(0, 1, (50, 8)), fields) for _ in range(3)]
    basis = fit_basis(clips)
    values = basis.encode(clips[0])
    np.testing.assert_allclose(basis.encode(basis.decode(values)), values, atol=1e-5)
    basis.save(tmp_path / "basis.safetensors")
    loaded = LipBasis.load(tmp_path / "basis.safetensors")
    np.testing.assert_array_equal(loaded.decoder, basis.decoder)


def test_basis_explains_shapes_that_its_components_drive():
    basis = fit_basis(_clips())
    assert explained_variance(basis, _clips(1)) > 0.9  # opening drives these shapes: the basis explains them
    random = [np.random.default_rng(3).normal(0, 0.01, (40, 29, 2)) + mouth(0.04, 0.35)]
    assert explained_variance(basis, random) < 0.5  # and not what they do not say


def test_basis_refuses_a_file_that_is_not_one(tmp_path):
    from safetensors.numpy import save_file

    save_file({"mean_shape": np.zeros((29, 2), np.float32)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(OmniSyncError, match="not a lip basis"):
        LipBasis.load(tmp_path / "x.safetensors")


def test_fit_basis_needs_real_shapes():
    with pytest.raises(OmniSyncError, match="needs real shapes"):
        fit_basis([np.full((3, 29, 2), np.nan, np.float32)])


def track(values: np.ndarray, fps=25) -> MouthMotion:
    return MouthMotion(values=values, fps=Fraction(fps), source="video")


def test_json_round_trip_names_every_component(tmp_path):
    rng = np.random.default_rng(0)
    motion = MouthMotion(values=rng.normal(0, 0.05, (12, K)), fps=Fraction(30000, 1001), source="speech",
                         valid=np.arange(12) % 5 != 0)  # fmt: skip
    write_motion_json(tmp_path / "m.json", motion)
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["fps"] == "30000/1001" and data["frames"] == 12 and list(data["components"]) == list(COMPONENTS)
    back = read_motion_json(tmp_path / "m.json")
    np.testing.assert_allclose(back.values, motion.values, atol=1e-5)
    assert back.fps == motion.fps and (back.valid == motion.valid).all()


@pytest.mark.parametrize("data, message", [
    ({"format": "something"}, "not an OmniSync motion track"),
    ({"format": "omnisync-motion", "fps": "25", "components": {"opening": [0.1]}}, "lacks the components"),
    ({"format": "omnisync-motion", "fps": "0", "components": {n: [0.1] for n in COMPONENTS}}, "fps must be"),
    ({"format": "omnisync-motion", "fps": "x", "components": {n: [0.1] for n in COMPONENTS}}, "malformed"),
])  # fmt: skip
def test_bad_json_gets_a_clear_error(tmp_path, data, message):
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(OmniSyncError, match=message):
        read_motion_json(tmp_path / "m.json")


def test_fill_gaps_interpolates_frames_without_a_face():
    values = np.arange(10, dtype=np.float32)[:, None].repeat(K, 1)
    valid = np.ones(10, bool)
    valid[[0, 4, 5, 9]] = False
    filled = fill_gaps(np.where(valid[:, None], values, 99.0), valid)
    np.testing.assert_allclose(filled[4:6, 0], [4, 5])
    assert filled[0, 0] == 1 and filled[9, 0] == 8  # held at the ends


def test_rest_is_the_closed_mouth_and_strength_scales_around_it():
    opening = np.r_[np.zeros(30), np.linspace(0.02, 0.1, 70)].astype(np.float32)
    values = np.zeros((100, K), np.float32)
    values[:, 0] = opening
    values[:, 1] = 0.35
    rest = rest_values(values)
    assert rest[0] == pytest.approx(0.0, abs=1e-6) and rest[1] == pytest.approx(0.35)
    m = track(values)
    np.testing.assert_allclose(with_strength(m, 0.0).values, np.broadcast_to(rest, values.shape), atol=1e-6)
    np.testing.assert_allclose(with_strength(m, 2.0).values[:, 0], 2 * opening, atol=1e-6)


def test_retargeting_moves_the_movements_onto_another_resting_mouth():
    values = np.zeros((50, K), np.float32)
    values[::5, 0] = 0.05  # speaks on a closed rest
    other = np.full(K, 0.2, np.float32)
    moved = retargeted(track(values), other)
    np.testing.assert_allclose(moved.values - other, values, atol=1e-6)


def test_rest_track_follows_slow_changes_not_speech():
    t = np.arange(250)
    values = np.zeros((250, K), np.float32)
    values[:, 1] = 0.30 + 0.05 * (t > 125)  # the rest width changes half way
    values[:, 0] = 0.04 * (np.sin(t * 0.9) > 0.3)  # speech opens and closes
    rest = rest_track(values, np.ones(250, bool), fps=25.0, window_s=2.0)
    assert np.abs(rest[:, 0]).max() < 1e-6  # the rest of a closing mouth is closed
    assert rest[20, 1] == pytest.approx(0.30, abs=1e-3) and rest[230, 1] == pytest.approx(0.35, abs=1e-3)


def test_smoothing_keeps_the_mean_and_lowers_jitter():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, (200, K)).astype(np.float32)
    out = smoothed(track(values), 2.0).values
    assert np.abs(np.diff(out, axis=0)).mean() < 0.3 * np.abs(np.diff(values, axis=0)).mean()
    assert smoothed(track(values), 0).values is values


def test_retiming_keeps_time_not_frame_numbers():
    fps_in, fps_out = Fraction(25), Fraction(30000, 1001)
    t_in = np.arange(100) / 25
    values = np.sin(2 * np.pi * 1.3 * t_in)[:, None].repeat(K, 1).astype(np.float32)
    out = retimed(track(values, fps_in), fps_out, 110)
    t_out = np.arange(110) / float(fps_out)
    inside = t_out <= t_in[-1]
    np.testing.assert_allclose(out.values[inside, 0], np.sin(2 * np.pi * 1.3 * t_out[inside]), atol=0.02)
    assert out.fps == fps_out and len(out) == 110


@pytest.mark.parametrize("symbol, viseme", [
    ("p", "bilabial"), ("b", "bilabial"), ("m", "bilabial"), ("P", "bilabial"), ("M", "bilabial"),
    ("f", "labiodental"), ("V", "labiodental"), ("aɪ", "open"), ("ˈa", "open"), ("AY1", "open"),
    ("uː", "close_round"), ("W", "close_round"), ("iː", "close_front"), ("IY0", "close_front"),
    ("ʃ", "postalveolar"), ("tʃ", "postalveolar"), ("", "rest"), ("sil", "rest"), ("SP", "rest"),
])  # fmt: skip
def test_phonemes_map_to_visemes_in_ipa_and_arpabet(symbol, viseme):
    assert viseme_of(symbol) == viseme


def test_phoneme_motion_closes_on_p_b_m_opens_on_vowels_and_rests_in_pauses():
    # "... pa ... ma ... ba ..." with pauses: 0.1 s consonants, 0.2 s vowels
    timings, t = [], 0.5
    for consonant in "pmb":
        timings += [(t, t + 0.1, consonant), (t + 0.1, t + 0.3, "a")]
        t += 0.8
    scale, rest = np.full(K, 0.02, np.float32), np.zeros(K, np.float32)
    motion = motion_from_phonemes(timings, 25, 75, scale, rest)
    opening = motion.component("opening")
    frame = lambda s: int(s * 25)  # noqa: E731
    for start, end, symbol in timings:
        middle = opening[frame((start + end) / 2)]
        if symbol == "a":
            assert middle > 2.0 * 0.02
        else:
            assert middle < 0.0  # pressed shut: below the resting mouth
    assert abs(opening[frame(0.2)]) < 1e-3 and abs(opening[frame(2.9)]) < 1e-3  # silence before and after: rest
