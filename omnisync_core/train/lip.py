"""Mouth-opening loss: teach the model the one number the sync metric reads.

The flow-matching loss alone barely teaches the audio: on the starter data the audio explains a
few per cent of the mouth's pixels (ridge regression from the log-mel window to the mouth patch,
held-out clips: R^2 0.02) but a fifth of how open the mouth is (the same regression to the mouth's
darkness: r 0.47). Weighted into all the pixels, that signal drowned; the first starter weights
scored the same loss with true, another clip's and no audio. So training adds a loss on how open
the mouth is, read from the predicted clean frame by a small network fitted to dlib landmarks:

    x0_hat = x - sigma * v                          (the model's clean-frame guess, flow matching)
    L_lip  = mean_t ( R(x0_hat_t) - R(target_t) )^2  (R: `MouthReader`, frozen)

At high sigma nothing in x shows the mouth, so the model can only lower L_lip by listening.

    omnisync data mouth-reader --data DATA --out reader.safetensors   # labels + fit, a few minutes on CPU
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import OmniSyncError

PATCH = (24, 40)  # (h, w) of the mouth patch the reader sees
PATCH_SIZE = (0.6, 0.9)  # (h, w) of the patch as fractions of the face width


def mouth_patches(
    crops: torch.Tensor,  # [N, 3, S, S] 0..1
    mouth: torch.Tensor,  # [N, 2] (x, y) crop px
    width: torch.Tensor,  # [N] face width, crop px
) -> torch.Tensor:  # [N, 1, 24, 40] grey 0..1, differentiable in crops
    n, _, s, _ = crops.shape
    grey = crops.mean(dim=1, keepdim=True)  # [N, 1, S, S]
    ys = torch.linspace(-0.5, 0.5, PATCH[0], device=crops.device)
    xs = torch.linspace(-0.5, 0.5, PATCH[1], device=crops.device)
    w = width.to(crops).view(n, 1, 1)
    py = mouth[:, 1].to(crops).view(n, 1, 1) + ys.view(1, -1, 1) * PATCH_SIZE[0] * w  # [N, h, 1] crop px
    px = mouth[:, 0].to(crops).view(n, 1, 1) + xs.view(1, 1, -1) * PATCH_SIZE[1] * w  # [N, 1, w]
    grid = torch.stack(torch.broadcast_tensors((px + 0.5) / s * 2 - 1, (py + 0.5) / s * 2 - 1), dim=-1)
    return F.grid_sample(grey, grid, mode="bilinear", padding_mode="border", align_corners=False)


class MouthReader(nn.Module):
    """Mouth patch [N, 1, 24, 40] -> inner-lip opening / inter-ocular distance [N] (dlib's definition)."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.SiLU(), nn.AvgPool2d(2),  # 12 x 20
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.SiLU(), nn.AvgPool2d(2),  # 6 x 10
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.SiLU(),
            nn.Flatten(), nn.Linear(2 * c * 6 * 10, 64), nn.SiLU(), nn.Linear(64, 1),
        )  # fmt: skip

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        centred = patches - patches.mean(dim=(-2, -1), keepdim=True)  # lighting-free: shape, not brightness
        return self.net(centred).squeeze(-1)


def label_openings(crops: torch.Tensor, detect_every: int = 8) -> np.ndarray:
    """dlib 68-point inner-lip opening of every crop (uint8 [T, 3, S, S]) -> [T] float32, NaN where none."""
    from ..evaluate.landmarks import LandmarkTracker, mouth_opening

    tracker = LandmarkTracker(detect_every=detect_every)
    rows = [tracker.update(np.ascontiguousarray(frame.permute(1, 2, 0).numpy())) for frame in crops]
    points = np.stack([r if r is not None else np.full((68, 2), np.nan, np.float32) for r in rows])
    return mouth_opening(points).astype(np.float32)


def fit_mouth_reader(
    patches: torch.Tensor,  # [N, 1, 24, 40]
    labels: torch.Tensor,  # [N]
    groups: np.ndarray,  # [N] clip index: every fifth clip is held out to report how well it reads
    steps: int = 1500,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[MouthReader, float]:
    """Fit a reader; returns it (fitted on all clips) and its Pearson r on held-out clips (NaN with < 2 clips)."""
    clips = np.unique(groups)
    if len(clips) < 2:
        return _fit(patches, labels, steps, seed, progress), float("nan")
    held = np.isin(groups, clips[::5])
    probe = _fit(patches[~held], labels[~held], steps, seed, None)
    with torch.no_grad():
        pred = probe(patches[held]).numpy()
    r = float(np.corrcoef(pred, labels[held].numpy())[0, 1]) if held.sum() > 2 else float("nan")
    return _fit(patches, labels, steps, seed, progress), r


def _fit(patches, labels, steps, seed, progress) -> MouthReader:
    torch.manual_seed(seed)
    reader = MouthReader()
    opt = torch.optim.AdamW(reader.parameters(), lr=2e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        idx = torch.randint(len(patches), (128,), generator=gen)
        x = patches[idx]
        flip = torch.rand(len(idx), generator=gen) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)  # a mirrored mouth is as open
        x = x * (0.8 + 0.4 * torch.rand(len(idx), 1, 1, 1, generator=gen))  # contrast
        loss = F.smooth_l1_loss(reader(x), labels[idx], beta=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step + 1, steps)
    return reader.eval()


def make_mouth_reader(
    data: str | Path, steps: int = 1500, progress: Callable[[str, int, int], None] | None = None
) -> tuple[MouthReader, float, int]:
    """Label every usable crop of a dataset with dlib landmarks and fit a reader on them.
    Returns (reader, held-out r, labelled frames)."""
    from .dataset import load_shards

    shards, _ = load_shards(str(data))
    patches, labels, groups = [], [], []
    for i, shard in enumerate(shards):
        opening = torch.from_numpy(label_openings(shard.crops))
        ok = torch.isfinite(opening) & shard.valid
        patches.append(mouth_patches(shard.crops[ok].float() / 255, shard.mouth_centre[ok], shard.face_width[ok]))
        labels.append(opening[ok])
        groups += [i] * int(ok.sum())
        if progress is not None:
            progress("label", i + 1, len(shards))
    if not groups:
        raise OmniSyncError(f"no crop in {data} has dlib landmarks, so there is nothing to fit a mouth reader on; "
                            "check the crops (`omnisync data build` output) show faces")  # fmt: skip
    fit_progress = None if progress is None else (lambda done, total: progress("fit", done, total))
    reader, r = fit_mouth_reader(torch.cat(patches), torch.cat(labels), np.array(groups), steps,
                                 progress=fit_progress)  # fmt: skip
    return reader, r, len(groups)


def save_reader(reader: MouthReader, path: str | Path, held_out_r: float) -> None:
    from safetensors.torch import save_file

    from ..filemode import atomic_file

    with atomic_file(path) as tmp:
        save_file({k: v.contiguous() for k, v in reader.state_dict().items()}, str(tmp),
                  metadata={"format": "omnisync-mouth-reader", "held_out_r": f"{held_out_r:.4f}"})  # fmt: skip


def load_reader(path: str | Path) -> MouthReader:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise OmniSyncError(f"mouth reader {path} not found; make one with "
                            "`omnisync data mouth-reader --data DATA --out FILE`")  # fmt: skip
    with safe_open(str(path), "pt") as f:
        if (f.metadata() or {}).get("format") != "omnisync-mouth-reader":
            raise OmniSyncError(f"{path} is not an OmniSync mouth reader")
    reader = MouthReader()
    reader.load_state_dict(load_file(str(path)))
    return reader.eval().requires_grad_(False)


def lip_loss(
    reader: MouthReader,
    x0_hat: torch.Tensor,  # [N, 3, S, S] predicted clean frames (differentiable)
    target: torch.Tensor,  # [N, 3, S, S]
    mouth: torch.Tensor,  # [N, 2] crop px
    width: torch.Tensor,  # [N] crop px
) -> torch.Tensor:
    with torch.no_grad():
        want = reader(mouth_patches(target, mouth, width))  # [N]
    got = reader(mouth_patches(x0_hat, mouth, width))  # [N]
    return F.mse_loss(got.float(), want.float())
