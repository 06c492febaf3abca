"""Does the generated mouth follow the speech, or copy the reference? A probe on a dataset of
held-out clips (``omnisync data build``), read by the mouth reader of the lip loss.

For each segment i (``frames`` consecutive frames) the model generates its frames in one step
at noise level ``sigma`` (the clean-frame guess ``x0_hat = x - sigma v``), with i's own frames
as reference, as at inference, and either i's own audio or the audio of a segment j of another
clip. The reader measures the mouth opening of every generated and real frame, and each figure
is a Pearson r pooled over segments, each segment centred on its own mean:

- ``own``: own audio, against i's real opening;
- ``follow``: j's audio, against j's real opening (the mouth that spoke that audio);
- ``copy``: j's audio, against i's real opening (the reference mouth it may copy);
- with ``shift``, the same with the reference taken ``shift`` frames away in the same clip
  (same pose, an unrelated mouth): ``own_shifted``, ``follow_shifted``, ``copy_shifted``.

A model that lip-syncs scores high ``follow`` and low ``copy``; chance is ``chance``
(r between i's and j's real openings).
"""

from __future__ import annotations

import torch

from ..model.hide_mouth import MouthReference, prepare_source
from ..train.lip import MouthReader, mouth_patches


def centred_r(a: torch.Tensor, b: torch.Tensor) -> float:
    """[N, T] x [N, T] -> Pearson r of the per-row-centred values, pooled over rows."""
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    denominator = float(a.norm() * b.norm())
    return float((a * b).sum()) / denominator if denominator > 0 else 0.0


def probe_segments(shards: list, frames: int, max_segments: int | None = None) -> list[tuple[int, int]]:
    """(clip, start) of non-overlapping windows of ``frames`` usable frames, in clip order."""
    from ..train.dataset import window_starts

    segments = []
    for c, shard in enumerate(shards):
        usable = {int(s) for s in window_starts(shard.valid, frames)}
        segments += [(c, k) for k in range(0, len(shard) - frames + 1, frames) if k in usable]
    return segments[:max_segments] if max_segments else segments


@torch.no_grad()
def follow_probe(
    loaded,  # hub.LoadedModel
    shards: list,  # train.shards.Shard
    reader: MouthReader,
    frames: int = 8,
    sigma: float = 1.0,
    shift: int = 0,
    max_segments: int | None = None,
    seed: int = 0,
    batch: int = 8,
) -> dict[str, float | int]:
    from ..audio.features import AudioFeatures, frame_windows
    from ..train.dataset import check_shards_fit

    model, config, space = loaded.model.eval(), loaded.config, loaded.latent_space
    check_shards_fit(shards, config)
    segments = probe_segments(shards, frames, max_segments)
    clips = torch.tensor([c for c, _ in segments])
    if len(segments) < 2 or len(set(clips.tolist())) < 2:
        from ..errors import OmniSyncError

        raise OmniSyncError(f"the probe needs segments of {frames} usable frames from at least two clips; "
                            f"found {len(segments)} from {len(set(clips.tolist()))}")  # fmt: skip
    n, t = len(segments), frames

    def segment(c: int, k: int):
        s = shards[c]
        audio = frame_windows(AudioFeatures(s.audio, s.audio_rate, s.audio_kind), s.fps, t, config.audio_window,
                              start_frame=k)  # fmt: skip
        return s.crops[k : k + t].float() / 255, audio, s.mouth_centre[k : k + t].float(), s.face_width[k : k + t]

    parts = [segment(c, k) for c, k in segments]
    crops = torch.stack([p[0] for p in parts])  # [N, T, 3, S, S]
    audio = torch.stack([p[1] for p in parts])  # [N, T, W, D]
    mouth = torch.stack([p[2] for p in parts]).flatten(0, 1)  # [N*T, 2]
    width = torch.stack([p[3] for p in parts]).float().flatten(0, 1)  # [N*T]
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    driver = torch.tensor([next(j for j in order.roll(i).tolist() if clips[j] != clips[i]) for i in range(n)])
    real = reader(mouth_patches(crops.flatten(0, 1), mouth, width)).view(n, t)  # [N, T]
    source = space.encode(crops.flatten(0, 1)).unflatten(0, (n, t))  # [N, T, C, h, w]
    # models that fill the source mouth from a reference frame get each segment's first frame
    ref = MouthReference(source[:, 0], mouth.view(n, t, 2)[:, 0], width.view(n, t)[:, 0])
    source = prepare_source(config, source, mouth.view(n, t, 2), width.view(n, t), ref)  # as the sampler sees it
    noise = torch.randn(source.shape, generator=gen)

    def opening(reference: torch.Tensor, speech: torch.Tensor) -> torch.Tensor:  # -> [N, T]
        x = (1 - sigma) * source + sigma * noise  # the frames' own latents under noise, as the sampler starts
        out = []
        for i in range(0, n, batch):
            s = torch.full((len(x[i : i + batch]),), sigma)
            v = model(x[i : i + batch], s, reference[i : i + batch], speech[i : i + batch]).float()
            out.append(space.decode((x[i : i + batch] - sigma * v).flatten(0, 1)).clamp(0, 1))
        return reader(mouth_patches(torch.cat(out), mouth, width)).view(n, t)

    own, dub = opening(source, audio), opening(source, audio[driver])
    result = {"segments": n, "clips": len(set(clips.tolist())), "sigma": sigma,
              "chance": centred_r(real, real[driver]), "own": centred_r(own, real),
              "follow": centred_r(dub, real[driver]), "copy": centred_r(dub, real)}  # fmt: skip
    if shift:
        index = {seg: i for i, seg in enumerate(segments)}
        moved = torch.tensor([index.get((c, k + shift), index.get((c, k - shift), i))
                              for i, (c, k) in enumerate(segments)])  # fmt: skip
        own_s, dub_s = opening(source[moved], audio), opening(source[moved], audio[driver])
        result.update(shifted=int((moved != torch.arange(n)).sum()), own_shifted=centred_r(own_s, real),
                      follow_shifted=centred_r(dub_s, real[driver]), copy_shifted=centred_r(dub_s, real))  # fmt: skip
    return result
