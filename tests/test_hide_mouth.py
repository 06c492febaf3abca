"""hide_source_mouth: the model never sees the source's own mouth, in training or at inference (filled with
skin, or with one reference frame's mouth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from omnisync_core.hub import LoadedModel
from omnisync_core.lipsync import LipSyncSettings, generate_crops
from omnisync_core.model import OmniSyncDiT, preset
from omnisync_core.model.hide_mouth import MouthReference, hide_mouth, mouth_mask, prepare_source, reference_frame
from omnisync_core.vae import make_latent_space

S = 32  # tiny preset crop; pixel latent 16x16 (2x2 unshuffle)


def _faces(t: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    crops = torch.rand(t, 3, S, S, generator=g)
    mouth = torch.tensor([[S / 2, S * 0.68]]) + torch.randn(t, 2, generator=g)  # [T, 2] crop px, moving a little
    width = torch.full((t,), S * 0.55)
    return crops, mouth, width


def _inside(mouth: torch.Tensor, width: torch.Tensor, down: int = 2) -> torch.Tensor:
    """[T, 1, S, S] bool: crop pixels whose latent pixel is fully hidden (mask == 1); down 1 for the reference
    fill of pixel latents, which works in crop pixels."""
    m = mouth_mask((S // down, S // down), mouth / down - 0.5, width / down)  # [T, 1, h, w]
    return (m == 1).repeat_interleave(down, -1).repeat_interleave(down, -2)


def test_the_hidden_source_holds_nothing_of_the_mouth_and_keeps_the_rest():
    space = make_latent_space({"kind": "pixel", "unshuffle": 2})
    crops, mouth, width = _faces(6)
    inside = _inside(mouth, width)
    assert inside.float().mean() > 0.05  # lips and chin: a real part of the crop
    other = torch.where(inside, torch.rand(crops.shape), crops)  # another mouth, same face
    hide = lambda c: hide_mouth(space.encode(c)[None], mouth[None] / 2 - 0.5, width[None] / 2)  # noqa: E731
    assert torch.equal(hide(crops), hide(other))  # nothing of what is inside reaches the model
    far = mouth_mask((S // 2, S // 2), mouth / 2 - 0.5, width / 2) == 0  # [T, 1, h, w]
    z, z_hidden = space.encode(crops), hide(crops)[0]
    assert torch.equal(z_hidden.masked_select(far), z.masked_select(far.expand_as(z)))  # the rest untouched
    # filled from the skin around it: inside values lie within the range of the frame's visible values
    assert float(z_hidden.max()) <= float(z.max()) and float(z_hidden.min()) >= float(z.min())


def test_each_frame_is_hidden_on_its_own():
    """The CLI hides windows of 8 frames, the ComfyUI nodes the whole clip, training 8-frame segments:
    a frame must come out the same in each."""
    space = make_latent_space({"kind": "pixel", "unshuffle": 2})
    crops, mouth, width = _faces(10)
    z = space.encode(crops)[None]
    whole = hide_mouth(z, mouth[None] / 2 - 0.5, width[None] / 2)
    parts = [hide_mouth(z[:, i : i + 3], mouth[None, i : i + 3] / 2 - 0.5, width[None, i : i + 3] / 2)
             for i in range(0, 10, 3)]  # fmt: skip
    assert torch.allclose(whole, torch.cat(parts, 1), atol=1e-6)


def _loaded(hide: bool, fill: str = "skin") -> LoadedModel:
    torch.manual_seed(0)
    cfg = preset("tiny", hide_source_mouth=hide, hide_fill=fill)
    model = OmniSyncDiT(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # the audio path and all heads live
    return LoadedModel(model.eval(), cfg, make_latent_space(cfg.latent), dict(cfg.audio_features), Path("."))


def test_a_dub_does_not_depend_on_the_old_mouth_only_with_hiding_on():
    crops, mouth, width = _faces(5, seed=3)
    other = torch.where(_inside(mouth, width), torch.rand(crops.shape), crops)
    audio = torch.randn(5, 8, 80, generator=torch.Generator().manual_seed(4))
    settings = LipSyncSettings(steps=3, window=8, overlap=2, seed=1)
    hidden = _loaded(True)
    a = generate_crops(hidden, crops, audio, mouth, width, settings)
    b = generate_crops(hidden, other, audio, mouth, width, settings)
    assert torch.allclose(a, b, atol=1e-5)  # the generated frames cannot copy the old mouth
    shown = _loaded(False)
    a = generate_crops(shown, crops, audio, mouth, width, settings)
    b = generate_crops(shown, other, audio, mouth, width, settings)
    assert float((a - b).abs().max()) > 1e-2  # (without hiding they do depend on it)


def test_prepare_source_is_the_identity_when_off():
    z = torch.randn(1, 2, 12, 16, 16)
    mouth, width = torch.full((1, 2, 2), 16.0), torch.full((1, 2), 18.0)
    assert prepare_source(preset("tiny"), z, mouth, width) is z
    assert not torch.equal(prepare_source(preset("tiny", hide_source_mouth=True), z, mouth, width), z)


def test_training_samples_carry_the_source_frames_mouth(tmp_path):
    from omnisync_core.train.config import build_model_config, config_from_dict, load_config
    from omnisync_core.train.dataset import TrainDataset, load_shards
    from omnisync_core.train.loop import flow_matching_loss
    from omnisync_core.train.synthetic import make_synthetic_dataset

    make_synthetic_dataset(tmp_path, clips=2, frames=40, size=32, seed=2)
    shards, _ = load_shards(str(tmp_path))
    for shard in shards:  # code each frame's index into its mouth position
        k = torch.arange(len(shard.mouth_centre), dtype=torch.float32)
        shard.mouth_centre = torch.stack([k, 100 + k], 1)
    base = load_config("configs/train_tiny_cpu.json").to_dict()
    base.update(data=str(tmp_path), output_dir=str(tmp_path / "o"), frames=4, batch_size=2, pairing="near",
                augment={"flip": 0.5}, model={"preset": "tiny", "hide_source_mouth": True})  # fmt: skip
    config = config_from_dict(base)
    model_config = build_model_config(config.model)
    dataset = TrainDataset(shards, config, model_config)
    flipped = 0
    for index in range(16):
        sample = dataset[index]
        frames = sample["source_mouth"][:, 1] - 100  # the source frames' indices
        assert torch.equal(frames, frames[0] + torch.arange(4.0))  # consecutive frames of the source segment
        target = sample["mouth"][:, 1] - 100
        assert abs(float(frames[0] - target[0])) >= config.frames  # ... not the target's
        x = sample["source_mouth"][:, 0]
        flipped += bool(torch.equal(x, S - frames))
        assert torch.equal(x, frames) or torch.equal(x, S - frames)  # flipped with the crops
    assert 0 < flipped < 16
    batch = {k: torch.stack([dataset[i][k] for i in range(2)]) for k in dataset[0]}
    batch["source"] = torch.rand(batch["source"].shape)  # (a textured source, mouths on the crop)
    batch["source_mouth"] = torch.tensor([S / 2, S * 0.68]) + torch.randn(2, 4, 2)
    model = OmniSyncDiT(model_config)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[2]))  # the source the model sees
    space = make_latent_space(model_config.latent)
    loss = flow_matching_loss(model, space, batch)
    assert torch.isfinite(loss) and len(seen) == 1
    encoded = space.encode(batch["source"].flatten(0, 1)).unflatten(0, (2, 4))
    want = prepare_source(model_config, encoded, batch["source_mouth"], batch["source_width"])
    assert torch.allclose(seen[0], want) and not torch.allclose(seen[0], encoded)  # hidden at the source's mouth


# hide_fill "reference": the hidden mouth shows one reference frame's mouth (look kept, motion gone)


def _reference_fill(source, mouth, width, ref, ref_mouth, ref_width, down=2):
    """prepare_source of a reference-filling model on crop-px positions; source [T, C, h, w], ref [C, h, w]."""
    cfg = preset("tiny", hide_source_mouth=True, hide_fill="reference")
    reference = MouthReference(ref[None], ref_mouth.view(1, 2), ref_width.view(1))
    return prepare_source(cfg, source[None], mouth[None], width[None], reference)[0]


def test_the_reference_fill_shows_the_reference_mouth_moved_onto_each_frame():
    """Pixel latents are pasted in crop pixels: a mouth a whole pixel away reads the reference exactly there
    (3 px, not a whole latent pixel of 2), and the rest of the frame is untouched."""
    space = make_latent_space({"kind": "pixel", "unshuffle": 2})
    crops, _, width = _faces(4)
    mouth = torch.tensor([[16.0, 22.0]]).repeat(4, 1)
    mouth[1, 0] += 3  # frame 1's mouth 3 crop px right of the reference's
    ref = torch.rand(3, S, S, generator=torch.Generator().manual_seed(9))
    z, z_ref = space.encode(crops), space.encode(ref[None])[0]

    def filled(z, z_ref, ref_mouth=torch.tensor([16.0, 22.0])):  # -> [T, 3, S, S] crop pixels
        return space.decode(_reference_fill(z, mouth, width, z_ref, ref_mouth, width[0]))

    out = filled(z, z_ref)
    mask = mouth_mask((S, S), mouth - 0.5, width)[:, 0]  # [T, S, S] in crop pixels
    inside, far = mask == 1, mask == 0
    assert inside[0].sum() > 40
    for t in range(4):
        assert torch.allclose(out[t][:, far[t]], crops[t][:, far[t]], atol=1e-6)  # the rest of the frame untouched
    assert torch.allclose(out[0][:, inside[0]], ref[:, inside[0]], atol=1e-5)  # same place: the reference
    moved = torch.roll(ref, 3, dims=-1)  # crop pixel x of frame 1 reads the reference at x - 3
    assert torch.allclose(out[1][:, inside[1]], moved[:, inside[1]], atol=1e-5)
    # the frames' own mouths are gone: any content where they are fully hidden gives the same source
    other = torch.where(inside[:, None], torch.rand(crops.shape), crops)
    assert torch.equal(out, filled(space.encode(other), z_ref))
    # ... and the reference's mouth is what shows
    assert not torch.allclose(out, filled(z, z_ref * 0.5))


def test_a_learned_latent_moves_the_reference_s_latent_pixels():
    """A VAE's latent cannot be unpacked into pixels: there the reference's latent pixels are moved."""
    cfg = preset("tiny", hide_source_mouth=True, hide_fill="reference", latent={"kind": "kl"})
    z, z_ref = torch.randn(1, 3, 12, 16, 16), torch.randn(1, 12, 16, 16)
    mouth, width = torch.tensor([[[16.0, 22.0]]]).repeat(1, 3, 1), torch.full((1, 3), 17.6)
    mouth[0, 1, 0] += 4  # 2 latent px
    out = prepare_source(cfg, z, mouth, width, MouthReference(z_ref, mouth[:, 0], width[:, 0]))
    inside = mouth_mask((16, 16), mouth[0] / 2 - 0.5, width[0] / 2)[:, 0] == 1
    assert inside[1].sum() > 10
    assert torch.allclose(out[0, 1][:, inside[1]], torch.roll(z_ref[0], 2, dims=-1)[:, inside[1]], atol=1e-5)


def test_a_reference_model_needs_its_reference():
    from omnisync_core.errors import OmniSyncError

    cfg = preset("tiny", hide_source_mouth=True, hide_fill="reference")
    z, mouth, width = torch.randn(1, 2, 12, 16, 16), torch.full((1, 2, 2), 16.0), torch.full((1, 2), 18.0)
    with pytest.raises(OmniSyncError, match="reference"):
        prepare_source(cfg, z, mouth, width)
    with pytest.raises(OmniSyncError, match="hide_fill"):
        preset("tiny", hide_fill="blur")


def _track(weights, detail=None, inside=None, mouth_width=None):
    """A track with these per-frame measures; ``mouth_width`` (over a face 100 px wide) gives it landmarks."""
    from types import SimpleNamespace

    def arr(v):
        return None if v is None else np.array(v, np.float32)

    landmarks = None
    if mouth_width is not None:
        landmarks = np.zeros((len(weights), 68, 2), np.float32)
        landmarks[:, 16, 0] = 100.0  # jaw corners 0 and 16: the face width
        landmarks[:, 48, 0] = 50 - np.asarray(mouth_width, np.float32) * 50  # lip corners 48 and 54
        landmarks[:, 54, 0] = 50 + np.asarray(mouth_width, np.float32) * 50
    return SimpleNamespace(edit_weight=arr(weights), mouth_detail=arr(detail), mouth_inside=arr(inside),
                           landmarks=landmarks)  # fmt: skip


def test_the_reference_frame_is_a_focused_open_mouth_with_a_bright_inside():
    nan = float("nan")
    # whole faces (weight 1) are frames 1-7; open mouths are 1, 2, 4, 5, 7, with insides 0.1 0.5 0.3 0.6 0.4:
    # the brighter half (at least the median 0.4) is 2, 5, 7, of details 6, 2, 4 -> the median detail, frame 7.
    # Frame 0 (no face) and frame 8 (fading out at a gap) are not candidates however bright
    weights = [0, 1, 1, 1, 1, 1, 1, 1, 0.5]
    detail = [9, 1, 6, 5, 3, 2, 8, 4, 7]
    inside = [0.9, 0.1, 0.5, nan, 0.3, 0.6, nan, 0.4, 0.9]
    assert reference_frame(_track(weights, detail, inside)) == 7
    # fewer than 3 open mouths: the median detail of all whole faces (details 1 6 5 3 2 8 9: 5, frame 3)
    few = [nan, 0.2, nan, nan, 0.9, nan, nan, nan, nan]
    assert reference_frame(_track(weights, [9, 1, 6, 5, 3, 2, 8, 9, 7], few)) == 3
    # tracks without the inside measure: the median mouth detail among the whole faces
    assert reference_frame(_track([0, 1, 1, 1, 1, 1, 0.5], [9, 1, 5, 3, 8, 2, 7])) == 3
    assert reference_frame(_track([1, 1, 1, 1], [4, 1, 3, 2])) == 3  # an even count: the lower median (2)
    # tracks made without mouth detail, or too few candidates to take a median of: the first whole face
    assert reference_frame(_track([0, 0, 0.5, 1, 1, 0.5])) == 3
    assert reference_frame(_track([0, 1, 1], [0, 5, 1], [nan, 0.9, 0.1])) == 1


def test_the_reference_frame_is_not_a_broad_smile():
    """A broad smile, whose dark mouth corners every narrower mouth of a dub would carry (retalk_face4: dark
    blobs at the mouth corners), is passed over for a mouth of typical width, however bright its inside."""
    nan = float("nan")
    weights = [1] * 9
    detail = [5, 1, 6, 5, 3, 2, 8, 4, 7]
    inside = [0.9, 0.1, 0.5, nan, 0.3, 0.6, nan, 0.4, 0.8]
    width = [0.45, 0.36, 0.38, 0.37, 0.38, 0.37, 0.39, 0.38, 0.44]  # frames 0 and 8 smile
    # without widths the brighter half of the open mouths is 0, 2, 5, 8 (inside >= 0.45), details 5 6 2 7 -> 0
    assert reference_frame(_track(weights, detail, inside)) == 0
    # typical widths (25th-75th percentile, 0.37-0.39) are frames 2-7; open among them 2, 4, 5, 7, the brighter
    # half 2 and 5 (inside >= 0.45), details 6 and 2 -> the lower median, frame 5
    assert reference_frame(_track(weights, detail, inside, width)) == 5
    # frames without landmarks are not of typical width; too few of typical width: the rule is not applied
    assert reference_frame(_track(weights, detail, inside, [nan] * 7 + [0.37, 0.38])) == 0
    assert reference_frame(_track([0.0, 0.0], [1, 2])) == 0 and reference_frame(_track([])) == 0


def test_mouth_look_scores_detail_and_the_open_inside(media):
    import cv2

    from omnisync_core.face.mouth_look import INNER, mouth_look
    from omnisync_core.face.tracker import track_video
    from omnisync_core.video import read_frames

    frames = read_frames(media("retalk_face2.mp4"), 0, 40)
    track = track_video(iter(frames), "dlib", crop_size=128, detect_every=1, landmarks="dlib")
    inside = track.mouth_inside
    assert np.isfinite(inside).any() and np.isnan(inside).any()  # the clip's mouth opens and closes
    i = int(np.nanargmax(inside))
    frame, affine, centre, width = frames[i], track.affines[i], track.mouth_centre[i], track.face_width[i]
    look = mouth_look(frame, affine, centre, width, 128, track.landmarks[i])
    np.testing.assert_allclose(look, (track.mouth_detail[i], inside[i]), rtol=1e-6)  # what the tracker recorded
    blurred = cv2.GaussianBlur(np.ascontiguousarray(frame), (0, 0), 6)
    assert mouth_look(blurred, affine, centre, width, 128).detail < 0.5 * look.detail
    assert np.isnan(mouth_look(frame, affine, centre, width, 128).inside)  # no landmarks: unknown
    # the same open mouth with its inside painted black (a dark cavity instead of teeth) scores darker
    dark = frame.copy()
    cv2.fillPoly(dark, [np.round(track.landmarks[i][INNER]).astype(np.int32)], (0, 0, 0))
    assert mouth_look(dark, affine, centre, width, 128, track.landmarks[i]).inside < 0.5 * look.inside
    # a closed mouth (the inner lips together) is NaN whatever it shows
    shut = track.landmarks[i].copy()
    shut[INNER, 1] = shut[INNER, 1].mean()
    assert np.isnan(mouth_look(frame, affine, centre, width, 128, shut).inside)


def test_a_reference_dub_depends_on_the_reference_mouth_not_the_frames_own():
    crops, mouth, width = _faces(6, seed=3)
    inside = _inside(mouth, width, down=1)
    other = crops.clone()
    other[1:] = torch.where(inside[1:], torch.rand(crops[1:].shape), crops[1:])  # new mouths, reference kept
    audio = torch.randn(6, 8, 80, generator=torch.Generator().manual_seed(4))
    settings = LipSyncSettings(steps=3, window=4, overlap=1, seed=1)
    loaded = _loaded(True, fill="reference")
    a = generate_crops(loaded, crops, audio, mouth, width, settings)
    assert torch.allclose(a, generate_crops(loaded, other, audio, mouth, width, settings), atol=1e-5)
    changed = crops.clone()
    changed[0] = torch.where(inside[0], torch.rand(crops[0].shape), crops[0])  # another reference mouth
    b = generate_crops(loaded, changed, audio, mouth, width, settings)
    assert float((a[3:] - b[3:]).abs().max()) > 1e-2  # every window, not only the reference's own frame


def test_training_fills_the_source_from_its_drawn_frame(tmp_path):
    from omnisync_core.train.config import build_model_config, config_from_dict, load_config
    from omnisync_core.train.dataset import TrainDataset, load_shards
    from omnisync_core.train.loop import flow_matching_loss
    from omnisync_core.train.synthetic import make_synthetic_dataset

    make_synthetic_dataset(tmp_path, clips=2, frames=40, size=32, seed=2)
    shards, _ = load_shards(str(tmp_path))
    base = load_config("configs/train_tiny_cpu.json").to_dict()
    base.update(data=str(tmp_path), output_dir=str(tmp_path / "o"), frames=4, batch_size=2,
                model={"preset": "tiny", "hide_source_mouth": True, "hide_fill": "reference"})  # fmt: skip
    config = config_from_dict(base)
    model_config = build_model_config(config.model)
    dataset = TrainDataset(shards, config, model_config)
    drawn = {int(dataset[i]["source_ref"]) for i in range(24)}
    assert drawn == {0, 1, 2, 3}  # any frame of the source segment
    batch = {k: torch.stack([dataset[i][k] for i in range(2)]) for k in dataset[0]}
    batch["source"] = torch.rand(batch["source"].shape)
    batch["source_mouth"] = torch.tensor([S / 2, S * 0.68]) + torch.randn(2, 4, 2)
    model = OmniSyncDiT(model_config)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(args[2]))
    space = make_latent_space(model_config.latent)
    assert torch.isfinite(flow_matching_loss(model, space, batch))
    encoded = space.encode(batch["source"].flatten(0, 1)).unflatten(0, (2, 4))
    for i in range(2):
        k = int(batch["source_ref"][i])
        ref = MouthReference(encoded[i, k][None], batch["source_mouth"][i, k][None], batch["source_width"][i, k][None])
        want = prepare_source(model_config, encoded[i : i + 1], batch["source_mouth"][i : i + 1],
                              batch["source_width"][i : i + 1], ref)  # fmt: skip
        assert torch.allclose(seen[0][i : i + 1], want, atol=1e-6)


def _dark_centre_y(image: torch.Tensor, x: int) -> float:  # [3, h, w] -> the darkness-weighted row of column x
    dark = (0.5 - image[:, :, x].mean(0)).clamp_min(0)  # [h]: below the grey background
    rows = torch.arange(image.shape[1], dtype=torch.float32)
    return float((dark * rows).sum() / dark.sum())


def test_the_reference_is_pasted_under_each_frames_nose():
    """A mouth centre moves against the nose as the jaw opens or the lips smile. The reference's nostrils (the
    mouth ellipse reaches up to them) land on the frame's own nostrils when the paste keeps the nose, and a
    pixel and a half off them when it aligns the mouth centres, which the output then showed as a second nose."""
    from omnisync_core.model.hide_mouth import paste_centres, paste_reference

    size, width = 64, 60.0
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")  # fmt: skip
    ref_nose, ref_mouth = torch.tensor([32.0, 29.8]), torch.tensor([32.0, 40.0])  # 0.17 face widths apart
    nostril = torch.exp(-((xs - 32) ** 2 + (ys - float(ref_nose[1])) ** 2) / 2)  # [h, w]
    ref_image = (0.5 - 0.4 * nostril).expand(3, size, size)[None]  # [1, 3, h, w] grey with a dark nostril
    reference = MouthReference(ref_image, ref_mouth[None], torch.tensor([width]), None, ref_nose[None])
    frame = torch.full((1, 1, 3, size, size), 0.5)  # the frame's mouth is 0.2 face widths below its nose
    mouth, nose, widths = torch.tensor([[[32.0, 40.0]]]), torch.tensor([[[32.0, 28.0]]]), torch.tensor([[width]])

    at = paste_centres(reference, mouth, widths, nose)
    assert torch.allclose(at, torch.tensor([[[32.0, 38.2]]]))  # x stays the mouth's; y 0.17 widths below the nose
    kept = paste_reference(frame, mouth, widths, ref_image, ref_mouth[None], torch.tensor([width]), at=at)[0, 0]
    centred = paste_reference(frame, mouth, widths, ref_image, ref_mouth[None], torch.tensor([width]))[0, 0]
    assert abs(_dark_centre_y(kept, 32) - 28.0) < 0.3  # on the frame's nose
    assert abs(_dark_centre_y(centred, 32) - 29.8) < 0.3  # where the mouth centres put it: 1.8 px lower

    # frames without a nose (NaN), and references without one, keep the mouth centre; unbatched shapes work
    assert torch.equal(paste_centres(reference, mouth, widths, torch.full_like(nose, float("nan"))), mouth)
    assert torch.equal(paste_centres(reference._replace(nose=None), mouth, widths, nose), mouth)
    assert torch.equal(paste_centres(reference._replace(nose=torch.full((1, 2), float("nan"))), mouth, widths, nose),
                       mouth)  # fmt: skip
    assert torch.allclose(paste_centres(reference, mouth[0], widths[0], nose[0]), at[0])
