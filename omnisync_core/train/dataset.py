"""Training samples: (target segment, source segment of the same clip, audio windows, sigma, noise).

Every sample is a pure function of ``(seed, index)``: the clip, the segments, sigma, the noise,
the audio drop and the augmentation all come from a generator seeded with both. The data order
is the index order (``StepSampler``), so resuming at step s replays exactly what an
uninterrupted run would have seen, on any number of processes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from ..errors import OmniSyncError
from ..model.hide_mouth import needs_reference
from .config import TrainConfig
from .shards import Shard, read_manifest, read_shard


def load_shards(roots: str | list[str]) -> tuple[list[Shard], list[dict]]:
    shards, records = [], []
    for root in [roots] if isinstance(roots, (str, Path)) else roots:
        manifest = read_manifest(root)
        for record in manifest["clips"]:
            if record.get("status") == "ok":
                shards.append(read_shard(Path(root) / record["shard"]))
                records.append(record)
    if not shards:
        raise OmniSyncError(f"no usable clips in {roots}; check the manifest's skip reasons")
    return shards, records


def shard_lips(shard: Shard) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A shard's landmarks -> (normalised lip shapes [T, P, 2], anchors [T, 2] crop px, face widths [T] crop px,
    measured [T] bool), as motion.measure normalises them."""
    from ..motion.measure import SHAPE_POINTS, normalise_landmarks

    if shard.landmarks is None:
        raise OmniSyncError("this model draws lip maps and the dataset has no landmarks; rebuild it with "
                            "`omnisync data build` (this version stores them)")  # fmt: skip
    marks = shard.landmarks.numpy()
    t = len(marks)
    shapes = np.full((t, len(SHAPE_POINTS), 2), np.nan, np.float32)
    anchor = np.full((t, 2), np.nan, np.float32)
    width = np.full(t, np.nan, np.float32)
    ok = np.isfinite(marks).all(axis=(1, 2))
    identity = np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    for i in np.nonzero(ok)[0]:
        shapes[i], anchor[i], width[i] = normalise_landmarks(marks[i], identity)
    return shapes, anchor, width, ok


def window_starts(valid: torch.Tensor, frames: int) -> np.ndarray:
    """Start frames of every fully valid window of ``frames`` frames -> int64 [K]."""
    v = valid.numpy().astype(np.int64)
    if len(v) < frames:
        return np.zeros(0, np.int64)
    run = np.convolve(v, np.ones(frames, np.int64), mode="valid")  # [T - frames + 1]
    return np.nonzero(run == frames)[0]


def check_shards_fit(shards: list[Shard], model_config) -> None:
    """The dataset's crop size and audio features must be the model's (clear error otherwise)."""
    crop = shards[0].crops.shape[-1]
    if crop != model_config.crop_size:
        raise OmniSyncError(f"the dataset has {crop} px crops but the model wants {model_config.crop_size} px; "
                            "rebuild the dataset with --crop-size or change the model config")  # fmt: skip
    kind = model_config.audio_features.get("kind")
    if shards[0].audio_kind != kind or shards[0].audio.shape[1] != model_config.audio_dim:
        raise OmniSyncError(f"the dataset holds {shards[0].audio_kind} audio features "
                            f"(dim {shards[0].audio.shape[1]}) but the model wants {kind} "
                            f"(dim {model_config.audio_dim}); rebuild with --audio-features {kind}")  # fmt: skip


def sample_sigma(gen: torch.Generator, config: TrainConfig) -> float:
    if config.sigma_sampling == "uniform":
        s = torch.rand((), generator=gen).item()
    else:
        n = torch.randn((), generator=gen).item()
        s = 1.0 / (1.0 + math.exp(-(config.logit_mean + config.logit_std * n)))
    k = config.sigma_shift
    return float(k * s / (1 + (k - 1) * s))


def choose_source(starts: np.ndarray, target: int, sigma: float, config: TrainConfig, gen: torch.Generator) -> int:
    """Start of the source segment (same clip, different time; "self": the target's), by ``config.pairing``."""
    if config.pairing == "self":
        return target
    dist = np.abs(starts - target)
    far, far_dist = starts[dist >= config.gap], dist[dist >= config.gap]
    if far.size == 0:  # clip too short for a separate segment: take the farthest window it has
        return int(starts[int(np.argmax(dist))])
    if config.pairing == "random":
        return int(far[torch.randint(far.size, (1,), generator=gen).item()])
    if config.pairing == "near":
        near = far[far_dist <= config.gap + config.frames]
        near = near if near.size else far[far_dist == far_dist.min()]
        return int(near[torch.randint(near.size, (1,), generator=gen).item()])
    # timestep: the wanted distance grows with sigma from min_gap to the farthest window (+- jitter)
    want = config.gap + sigma * (far_dist.max() - config.gap)
    want += (torch.rand((), generator=gen).item() - 0.5) * config.frames
    return int(far[int(np.argmin(np.abs(far_dist - want)))])


def _affine_jitter(x: torch.Tensor, shift: float, scale: float, gen: torch.Generator) -> torch.Tensor:
    """x [T, 3, S, S]: one random shift / zoom for the whole segment."""
    if shift <= 0 and scale <= 0:
        return x
    r = torch.rand(3, generator=gen) * 2 - 1
    zoom = 1.0 - scale * abs(r[0].item())  # zoom in only: no black borders
    theta = torch.tensor([[zoom, 0, shift * r[1].item() * 2], [0, zoom, shift * r[2].item() * 2]])
    grid = F.affine_grid(theta[None].expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _joint_affine(
    clips: list[torch.Tensor],  # each [T, 3, S, S]: moved together
    points: list[torch.Tensor],  # each [..., 2] crop px: moved with them
    shift: float, scale: float, rotate: float, gen: torch.Generator,
) -> tuple[list[torch.Tensor], list[torch.Tensor], float]:  # (clips, points, zoom factor of lengths)
    """One random shift, zoom (in or out) and rotation for source, target and their lip points at once."""
    r = (torch.rand(4, generator=gen) * 2 - 1).tolist()
    zoom = 1.0 + scale * r[0]  # > 1: the face looks bigger
    angle = math.radians(rotate * r[1])
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    tx, ty = shift * r[2] * 2, shift * r[3] * 2
    theta = torch.tensor([[cos, -sin, tx], [sin, cos, ty]], dtype=torch.float32)  # output -> input, in -1..1
    s = clips[0].shape[-1]
    moved = []
    for x in clips:
        grid = F.affine_grid(theta[None].expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
        moved.append(F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False))
    a, b = theta[:, :2], theta[:, 2]
    inverse = torch.linalg.inv(a)
    out_points = []
    for p in points:
        u = p.float() / s * 2 - 1  # crop px -> -1..1
        out_points.append(((u - b) @ inverse.T + 1) / 2 * s)
    return moved, out_points, zoom


def _colour(x: torch.Tensor, strength: float, r: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation with factors 1 + strength * r (r in -1..1)."""
    if strength <= 0:
        return x
    b, c, s = (1 + strength * r).tolist()
    x = x * b
    mean = x.mean(dim=(-3, -2, -1), keepdim=True)
    x = (x - mean) * c + mean
    grey = x.mean(dim=-3, keepdim=True)
    return ((x - grey) * s + grey).clamp(0, 1)


class TrainDataset(Dataset):
    """Map-style dataset over virtual sample indices 0..length-1 (any index is a fresh random sample)."""

    def __init__(self, shards: list[Shard], config: TrainConfig, model_config, length: int = 2**62) -> None:
        self.shards, self.config, self.model_config, self.length = shards, config, model_config, length
        self.lips = None
        if model_config.motion_map:  # the renderer: each target frame's lip shape, from the shard's landmarks
            self.lips = [shard_lips(s) for s in shards]
            valid = [s.valid & torch.from_numpy(lips[3]) for s, lips in zip(shards, self.lips, strict=True)]
            from ..model.lip_map import lip_basis

            self.basis = lip_basis()
        else:
            valid = [s.valid for s in shards]
        self.starts = [window_starts(v, config.frames) for v in valid]
        weights = np.array([len(s) for s in self.starts], np.float64)
        if weights.sum() == 0:
            raise OmniSyncError(f"no clip has {config.frames} consecutive usable frames; lower `frames` or add clips")
        self.clip_p = torch.from_numpy(weights / weights.sum())
        check_shards_fit(shards, model_config)
        kind = model_config.audio_features.get("kind")
        if kind != "logmel" and (config.augment.get("audio_gain") or config.augment.get("audio_tilt")):
            raise OmniSyncError(f"augment.audio_gain / audio_tilt work on log-mel features only, and this "
                                f"model uses {kind}; set them to 0")  # fmt: skip
        side = model_config.latent_size
        self.noise_shape = (config.frames, model_config.latent_channels, side, side)

    def __len__(self) -> int:
        return self.length

    def generator(self, index: int) -> torch.Generator:
        return torch.Generator().manual_seed(int(self.config.seed) * 1_000_003 + int(index))

    def audio_windows(self, clip: int, start: int, frames: int) -> torch.Tensor:  # [T, W, D]
        from ..audio.features import AudioFeatures, frame_windows

        shard = self.shards[clip]
        features = AudioFeatures(shard.audio, shard.audio_rate, shard.audio_kind)
        return frame_windows(features, shard.fps, frames, self.model_config.audio_window, start_frame=start)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        cfg, gen = self.config, self.generator(index)
        clip = int(torch.multinomial(self.clip_p, 1, generator=gen).item())
        starts, shard = self.starts[clip], self.shards[clip]
        target = int(starts[torch.randint(len(starts), (1,), generator=gen).item()])
        sigma = sample_sigma(gen, cfg)
        source = choose_source(starts, target, sigma, cfg, gen)
        t = cfg.frames
        tgt = shard.crops[target : target + t].float() / 255  # [T, 3, S, S]
        src = shard.crops[source : source + t].float() / 255  # [T, 3, S, S]
        aug = cfg.augment
        mouth = shard.mouth_centre[target : target + t].float().clone()  # [T, 2] crop px (x, y), continuous
        src_mouth = shard.mouth_centre[source : source + t].float().clone()  # [T, 2] the source frames' own
        width = shard.face_width[target : target + t].float()  # [T] crop px
        src_width = shard.face_width[source : source + t].float()  # [T] crop px
        ref = int(torch.randint(t, (), generator=gen).item()) if needs_reference(self.model_config) else None
        far = None  # "self" pairing: the mouth that fills the hidden one comes from another time of the clip
        if ref is not None and cfg.pairing == "self":
            far = self._far_frame(clip, target, t, gen)
            ref_crop = shard.crops[far : far + 1].float() / 255  # [1, 3, S, S]
            ref_mouth, ref_width = shard.mouth_centre[far].float().clone(), shard.face_width[far].float()
        lips = None
        if self.lips is not None:  # the target shape as the renderer gets it at inference (lip_map.target_points)
            own = far if far is not None else source + (ref or 0)
            lips = torch.from_numpy(self._target_points(clip, target, t, own))  # [T, P, 2] crop px
        if cfg.pairing == "self":  # one geometric change for source, target, reference and points
            clips = [tgt, src] + ([ref_crop] if far is not None else [])
            points = [mouth, src_mouth] + ([ref_mouth] if far is not None else [])
            points += [lips] if lips is not None else []
            clips, moved, zoom = _joint_affine(clips, points, aug.get("jitter", 0.0), aug.get("scale", 0.0),
                                               aug.get("rotate", 0.0), gen)  # fmt: skip
            tgt, src = clips[0], clips[1]
            mouth, src_mouth = moved[0], moved[1]
            if far is not None:
                ref_crop, ref_mouth, ref_width = clips[2], moved[2], ref_width * zoom
            lips = moved[-1] if lips is not None else None
            width, src_width = width * zoom, src_width * zoom
        else:
            tgt = _affine_jitter(tgt, aug.get("jitter", 0.0), aug.get("scale", 0.0), gen)
            src = _affine_jitter(src, aug.get("jitter", 0.0), aug.get("scale", 0.0), gen)
        r = torch.rand(3, generator=gen) * 2 - 1  # one colour change for source and target (same clip, same light)
        tgt, src = _colour(tgt, aug.get("colour", 0.0), r), _colour(src, aug.get("colour", 0.0), r)
        if far is not None:
            ref_crop = _colour(ref_crop, aug.get("colour", 0.0), r)
        if torch.rand((), generator=gen).item() < aug.get("flip", 0.0):
            tgt, src = tgt.flip(-1), src.flip(-1)
            if far is not None:
                ref_crop = ref_crop.flip(-1)
                ref_mouth[0] = tgt.shape[-1] - ref_mouth[0]
            mouth[:, 0] = tgt.shape[-1] - mouth[:, 0]
            src_mouth[:, 0] = src.shape[-1] - src_mouth[:, 0]
            if lips is not None:
                lips[..., 0] = tgt.shape[-1] - lips[..., 0]
        sample = {
            "target": tgt,
            "source": src,
            "audio": self.audio_windows(clip, target, t),  # [T, W, D]
            "mouth": mouth,  # [T, 2] crop px (flipped with the crops; jitter/zoom not applied)
            "width": width,  # [T] crop px
            "source_mouth": src_mouth,  # [T, 2] crop px, as "mouth" for the source frames
            "source_width": src_width,  # [T] crop px
            "sigma": torch.tensor(sigma, dtype=torch.float32),
            "noise": torch.randn(self.noise_shape, generator=gen),  # [T, C, h, w]
            "drop": torch.tensor(torch.rand((), generator=gen).item() < cfg.audio_drop),
        }
        if aug.get("audio_gain", 0.0) or aug.get("audio_tilt", 0.0):  # drawn last: older configs keep their stream
            sample["audio"] = _audio_level(sample["audio"], aug.get("audio_gain", 0.0), aug.get("audio_tilt", 0.0), gen)
        if far is not None:  # the frame whose mouth fills the hidden ones
            sample.update(reference=ref_crop[0], reference_mouth=ref_mouth, reference_width=ref_width)
        elif ref is not None:  # the source frame whose mouth fills the others'
            sample["source_ref"] = torch.tensor(ref)
        if lips is not None:
            from ..model.lip_map import draw_lip_maps

            sample["lip_map"] = draw_lip_maps(lips.numpy(), tgt.shape[-1])  # [T, 3, S, S] 0..1
        return sample

    def _far_frame(self, clip: int, target: int, frames: int, gen: torch.Generator) -> int:
        """A frame of the clip with a measured face outside the target segment (another mouth shape, as the
        clip's reference frame is at inference); inside it only when the clip has no other."""
        ok = self.shards[clip].valid.numpy().copy()
        if self.lips is not None:
            ok &= self.lips[clip][3]
        idx = np.nonzero(ok)[0]
        outside = idx[(idx < target - frames) | (idx >= target + 2 * frames)]
        pool = outside if outside.size else idx
        return int(pool[torch.randint(pool.size, (1,), generator=gen).item()])

    def _target_points(self, clip: int, target: int, frames: int, own: int) -> np.ndarray:  # [T, P, 2] crop px
        """Frame ``own``'s lip shape (the reference the model sees) moved to each target frame's components, at
        the target frame's mouth: exactly what lip_map.target_points makes of a motion track at inference."""
        from ..model.lip_map import target_points

        shapes, anchor, width, _ = self.lips[clip]
        span = slice(target, target + frames)
        own_shape = shapes[own] if np.isfinite(shapes[own]).all() else shapes[span][0]
        values = self.basis.encode(shapes[span])
        return target_points(values, anchor[span], width[span], own_shape, self.basis)


def _audio_level(audio: torch.Tensor, gain_db: float, tilt_db: float, gen: torch.Generator) -> torch.Tensor:
    """Another microphone and level: log-mel windows [T, W, D] with a random gain in +-gain_db and a
    random spectral tilt in +-tilt_db (low bands down, high bands up, or back), one per segment.
    Digital silence (the floor) stays silent."""
    from ..audio.features import LOGMEL_FLOOR, LOGMEL_PER_DB

    gain = (torch.rand((), generator=gen).item() * 2 - 1) * gain_db
    tilt = (torch.rand((), generator=gen).item() * 2 - 1) * tilt_db
    shift_db = gain + tilt * torch.linspace(-0.5, 0.5, audio.shape[-1])  # [D] dB per mel band
    shifted = (audio + shift_db * LOGMEL_PER_DB).clamp_min(LOGMEL_FLOOR)
    return torch.where(audio > LOGMEL_FLOOR, shifted, audio)


class StepSampler(Sampler[int]):
    """Indices start, start + 1, ..., start + count - 1: the data order is the index order."""

    def __init__(self, start: int, count: int) -> None:
        self.start, self.count = int(start), int(count)

    def __iter__(self):
        return iter(range(self.start, self.start + self.count))

    def __len__(self) -> int:
        return self.count
