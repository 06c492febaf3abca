"""Live lip-sync: speech arrives in chunks, lip-synced frames leave with a bounded delay.

    live = LiveLipSync(video, loaded, fps=..., settings=LipSyncSettings.from_config(loaded.config))
    for chunk in chunks:                    # 16 kHz mono float32, any chunk length
        for frame in live.push(chunk):      # uint8 [H, W, 3] frames, in order
            show(frame)
    for frame in live.close():              # the frames of the last partial window
        show(frame)

The source video plays back and forth (ping-pong) for as long as speech comes, tracked once at the
start. A window of ``settings.window`` frames is generated as soon as the speech covers it and the
audio window of its last frame (half the model's audio window later); its frames up to where the next
window starts are handed out at once, the overlap is cross-faded with the next window as
``omnisync run`` does. Delay of a frame (not counting compute): at most one window plus half an audio
window (:attr:`LiveLipSync.delay_seconds`). Log-mel features are computed on a tail of the speech aligned
to the feature hop, so they equal those of the whole recording; windows and noise follow
``lipsync.window_starts`` and the frame index, so the frames equal ``omnisync run`` on the whole speech
with ``--length pingpong`` except in the last window (which here starts where the one before ends).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from .audio.decode import FEATURE_RATE
from .audio.features import AudioFeatures, features_for, frame_windows
from .errors import OmniSyncError
from .lipsync import LipSyncSettings, encode_reference, generate_window
from .model.hide_mouth import needs_reference, reference_frame
from .model.lip_map import motion_gain
from .streaming import BlendSettings, blend_stream, crop_frames, crop_lips, crop_nose
from .timeline import LengthPolicy, iter_planned_frames, plan_length
from .video import iter_frames, probe_video


class LiveLipSync:
    def __init__(
        self,
        video: str | os.PathLike,  # the face to make speak (played back and forth)
        loaded: Any,  # hub.LoadedModel
        settings: LipSyncSettings | None = None,
        blend: BlendSettings = BlendSettings(),
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        max_seconds: float = 3600.0,  # the longest stream (the source plan is made this long up front)
        backend: str = "auto",
        detect_every: int = 5,
    ) -> None:
        from .pipeline import RunSettings, track_source

        info = probe_video(video)
        self.loaded, self.blend, self.device, self.dtype = loaded, blend, device, dtype
        self.settings = settings or LipSyncSettings.from_config(loaded.config)
        self.fps: Fraction = info.fps
        run = RunSettings(backend=backend, detect_every=detect_every, sampler={"crop_size": loaded.config.crop_size})
        source = track_source(video, info, run)  # [n_source]
        plan = plan_length(info.frame_count, info.fps, max_seconds, LengthPolicy.PINGPONG)
        self.track = source.take(plan.frame_indices, fade=run.fade)  # one entry per possible output frame
        self._frames = iter_planned_frames(video, plan)
        self.reference = None
        i = reference_frame(source)
        if needs_reference(loaded.config):
            crop = crop_frames([next(iter_frames(video, i, 1))], source.slice(i, i + 1))[0]
            nose = crop_nose(source.slice(i, i + 1))  # [1, 2] or None
            self.reference = encode_reference(loaded, torch.from_numpy(crop).permute(2, 0, 1),
                                              torch.from_numpy(source.mouth_centre[i]),
                                              torch.from_numpy(np.asarray(source.face_width[i])), device,
                                              crop_lips(source, i), None if nose is None else nose[0])  # fmt: skip
        self._mouth = None
        if loaded.config.motion_map:  # the model draws the mouth it is given: motion of the speech so far
            self._mouth = LiveMotion(source, self.track, i, self.fps, motion_gain(loaded.config))
        spec = loaded.audio_spec
        self._feature_rate = float(spec.get("rate", 100.0))
        self._hop = round(FEATURE_RATE / self._feature_rate)  # samples per feature frame
        self._audio = np.zeros(0, np.float32)  # speech from sample self._audio_start on
        self._audio_start = 0
        self._received = 0  # samples received in all
        self._held: list[np.ndarray] = []  # source frames of output frames [first, first + len(held))
        self._crops: list[np.ndarray] = []  # generated crops for the same frames, once known
        self._first = 0
        self._next = 0  # start of the next window
        self._closed = False

    @property
    def delay_seconds(self) -> float:
        """The longest wait of a frame for speech (a window and half an audio window), compute aside."""
        return self.settings.window / float(self.fps) + self._lookahead

    @property
    def _lookahead(self) -> float:
        return (self.loaded.config.audio_window / 2 + 1) / self._feature_rate

    @property
    def frames_out(self) -> int:
        return self._first

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        """Add speech (16 kHz mono) and return the frames it completes (maybe none)."""
        if self._closed:
            raise OmniSyncError("this live lip-sync is closed; start a new one")
        samples = np.asarray(samples, np.float32).reshape(-1)
        self._audio = np.concatenate([self._audio, samples])
        self._received += samples.size
        out: list[np.ndarray] = []
        window = self.settings.window
        while self._speech_seconds() >= (self._next + window) / float(self.fps) + self._lookahead:
            if self._next + window > len(self.track):
                raise OmniSyncError("the stream is longer than max_seconds; start it with a larger max_seconds")
            out += self._window(self._next, self._next + window, last=False)
        return out

    def close(self) -> list[np.ndarray]:
        """No more speech: generate and return the frames still owed (as many as the speech lasts)."""
        if self._closed:
            return []
        self._closed = True
        n = min(int(self._speech_seconds() * float(self.fps)), len(self.track))
        out: list[np.ndarray] = []
        while n - self._next > self.settings.window:
            out += self._window(self._next, self._next + self.settings.window, last=False)
        if n > self._first:  # the rest (at most one window), cross-faded with the frames held
            out += self._window(self._first, n, last=True)
        return out

    # ----------------------------------------------------------------------------------------------
    def _speech_seconds(self) -> float:
        return self._received / FEATURE_RATE

    def _features(self, start: int, stop: int) -> AudioFeatures:
        """Features covering output frames [start, stop), indexed from time 0 (rows before the tail are the
        floor value and never read: frame_windows reads only the frames' windows)."""
        margin = self.loaded.config.audio_window + 8  # feature frames of context before the first window
        first = max(int(start / float(self.fps) * self._feature_rate) - margin, 0)
        keep = first * self._hop  # absolute sample the tail starts at: a multiple of the hop
        tail = self._audio[keep - self._audio_start :]
        features = features_for(tail, self.loaded.audio_spec, device="cpu")
        values = torch.cat([features.values.new_full((first, features.values.shape[1]), float(features.values.min())),
                            features.values])  # fmt: skip
        self._audio, self._audio_start = tail, keep  # what is before is never needed again
        return AudioFeatures(values, features.rate, features.kind)

    def _window(self, start: int, stop: int, last: bool) -> list[np.ndarray]:
        while self._first + len(self._held) < stop:
            self._held.append(next(self._frames))
        window_track = self.track.slice(start, stop)
        new = crop_frames(self._held[start - self._first : stop - self._first], window_track)  # [S, S, 3] each
        if window_track.edit_weight.any():
            audio = frame_windows(self._features(start, stop), self.fps, stop - start, self.loaded.config.audio_window,
                                  start)  # fmt: skip
            x = torch.from_numpy(np.stack(new)).permute(0, 3, 1, 2).contiguous()  # [n, 3, S, S]
            lips = None
            if self._mouth is not None:  # the tail of the speech that _features kept
                lips = self._mouth.lips(self._audio, self._audio_start / FEATURE_RATE, start, stop)
            nose = crop_nose(window_track)  # [n, 2] or None
            x = generate_window(self.loaded, x, audio, torch.from_numpy(window_track.mouth_centre),
                                torch.from_numpy(window_track.face_width), start, self.settings, self.device,
                                self.dtype, None, None, self.reference, lips,
                                None if nose is None else torch.from_numpy(nose))  # fmt: skip
            new = list(x.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy())
        shared = len(self._crops) - (start - self._first)  # frames the previous window also produced
        base = start - self._first
        if shared > 0:
            ramp = np.arange(1, shared + 1, dtype=np.float32) / np.float32(shared + 1)
            for i in range(shared):  # linear cross-fade, as lipsync_stream does
                self._crops[base + i] = (1 - ramp[i]) * self._crops[base + i] + ramp[i] * new[i]
        self._crops.extend(new[max(shared, 0) :])
        final = stop if last else start + self.settings.window - self.settings.overlap  # the next window starts
        count = final - self._first
        out = list(blend_stream(self._held[:count], self._crops[:count], self.track.slice(self._first, final),
                                self.blend))  # fmt: skip
        self._held, self._crops, self._first, self._next = self._held[count:], self._crops[count:], final, final
        return out


class LiveMotion:
    """The target lip points of a live stream: the built-in motion model on the speech received so far (a tail
    with context), on the face's own resting mouth, drawn from the reference frame's lips."""

    def __init__(self, source, track, reference: int, fps: Fraction, gain: float = 1.0) -> None:
        from .model.lip_map import lip_basis
        from .motion.make import face_rest
        from .motion.measure import shapes_from_track
        from .motion.predict import load_motion_model

        self.weights, self.basis, self.fps, self.gain = load_motion_model(), lip_basis(), fps, gain
        self.shapes = shapes_from_track(track)  # [T] per output frame
        own = shapes_from_track(source.slice(reference, reference + 1))
        self.own = own.points[0] if own.valid[0] else None
        self.rest = face_rest(track, fps, len(track), self.weights.basis) if self.shapes.valid.any() else None

    def lips(self, tail: np.ndarray, tail_start: float, start: int, stop: int) -> np.ndarray:  # [n, P, 2] crop px
        from .model.lip_map import target_points
        from .motion.predict import predict_motion

        n = stop - start
        if self.own is None or tail.size == 0:
            return np.full((n, len(self.basis.mean_shape), 2), np.nan, np.float32)
        frames = int(np.ceil((stop / float(self.fps) - tail_start) * float(self.fps))) + 1
        delta = predict_motion(self.weights, tail, self.fps, frames=frames).values - self.weights.neutral.numpy()
        delta *= self.gain  # the model's motion gain, as lips_for applies it
        at = np.clip(np.round(np.arange(start, stop) - tail_start * float(self.fps)).astype(int), 0, frames - 1)
        span = slice(start, stop)
        values = self.rest[span] + delta[at]
        points = target_points(values, self.shapes.anchor[span], self.shapes.face_width[span], self.own, self.basis)
        points[~self.shapes.valid[span]] = np.nan
        return points


def pcm_chunks(stream, rate: int, chunk_seconds: float = 0.1) -> Iterator[np.ndarray]:
    """16-bit little-endian mono PCM at ``rate`` from a binary stream -> 16 kHz float32 chunks."""
    from .audio.decode import resample

    size = max(2, int(rate * chunk_seconds) * 2)
    while True:
        data = stream.read(size)
        if not data:
            return
        samples = np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float32) / 32768.0
        yield resample(samples, rate, FEATURE_RATE) if rate != FEATURE_RATE else samples
