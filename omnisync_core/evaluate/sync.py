"""Audio-visual sync: mouth opening per frame against the speech envelope.

Sign convention: ``offset`` > 0 means the audio is LATE: the sound heard at frame
``t + offset`` belongs to the mouth shape shown at frame ``t``. Delaying the audio by k
frames therefore raises the reported offset by k; 0 is perfect sync.

``confidence`` is the Pearson correlation (-1..1) of the two high-passed signals at the
best offset; ``margin`` is that peak minus the median over all tried offsets (in the
spirit of SyncNet's LSE-C: a clear peak, not just a good correlation everywhere).

``r_at_zero`` is the correlation at offset 0, with no search. A dub must be in sync at 0, and
unlike the peak (the best of 31 tries, about 0.15-0.3 for unrelated video and speech on
3-11 s clips) it is centred on 0 for a mouth that ignores the speech, so it separates a
model from that baseline on short clips.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from scipy import signal

SAMPLE_RATE = 16000
SPEECH_BAND_HZ = (1000.0, 4000.0)  # F2/F3 region: tracks lip opening best on the shared clips
MIN_WINDOW_S = 0.04  # envelope window: one frame long, at least 40 ms


@dataclass
class SyncResult:
    offset: int | None  # frames, > 0 = audio late; None when there is too little signal
    confidence: float | None  # Pearson r at ``offset``
    margin: float | None  # confidence - median correlation over all offsets
    offsets: list[int] = field(default_factory=list)
    curve: list[float] = field(default_factory=list)  # correlation at each of ``offsets``

    @property
    def r_at_zero(self) -> float | None:
        """Correlation in sync (offset 0), None when it could not be measured."""
        return self.curve[self.offsets.index(0)] if 0 in self.offsets else None


def speech_envelope(
    wav: np.ndarray, fps: Fraction | float, n_frames: int, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Log energy of speech-band audio around each video frame's time: [N] -> [T] float32.

    Frame ``i`` covers ``[i / fps, (i + 1) / fps)``; its value is the log RMS (dB) of the
    band-passed audio in a window centred on that interval. Works at any fps; frames past
    the end of the audio get the silence floor.
    """
    wav = np.asarray(wav, dtype=np.float64).reshape(-1)
    nyquist = sample_rate / 2
    sos = signal.butter(
        4, [SPEECH_BAND_HZ[0] / nyquist, min(SPEECH_BAND_HZ[1] / nyquist, 0.99)], "band", output="sos"
    )
    band = signal.sosfiltfilt(sos, wav) if len(wav) > 64 else wav
    cumulative = np.concatenate([[0.0], np.cumsum(band * band)])
    fps_f = float(fps)
    half = max(0.5 / fps_f, MIN_WINDOW_S / 2)
    centres = (np.arange(n_frames) + 0.5) / fps_f
    start = np.clip(np.round((centres - half) * sample_rate).astype(np.int64), 0, len(band))
    stop = np.clip(np.round((centres + half) * sample_rate).astype(np.int64), 0, len(band))
    energy = (cumulative[stop] - cumulative[start]) / np.maximum(stop - start, 1)
    floor = 1e-8  # -80 dB re full scale: silence
    return (10.0 * np.log10(np.maximum(energy, floor))).astype(np.float32)


def highpass(x: np.ndarray, window: int) -> np.ndarray:
    """Remove slow drift (head motion, loudness): x minus its centred moving average.

    NaN entries are ignored by the average and stay NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    size = min(window | 1, len(x) - 1 + len(x) % 2)  # odd, and no longer than x (a clip under a second)
    kernel = np.ones(max(1, size))
    total = np.convolve(np.where(ok, x, 0.0), kernel, mode="same")
    count = np.convolve(ok.astype(np.float64), kernel, mode="same")
    return np.where(ok, x - total / np.maximum(count, 1.0), np.nan)


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 10:
        return None
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else None


def av_sync(
    mouth_open: np.ndarray, envelope: np.ndarray, fps: Fraction | float, max_offset: int = 15
) -> SyncResult:
    """Best offset in ``-max_offset..max_offset`` frames and its correlation.

    ``mouth_open`` [T] (NaN where no face) and ``envelope`` [T] are high-passed with a
    one-second moving average and differentiated (onsets carry the timing; this also
    whitens the slow, autocorrelated parts), then correlated at every offset over the
    same mouth frames (all but ``max_offset`` at either end).
    """
    n = min(len(mouth_open), len(envelope))
    window = max(3, round(float(fps)))
    video = highpass(np.asarray(mouth_open, dtype=np.float64)[:n], window)
    audio = highpass(np.asarray(envelope, dtype=np.float64)[:n], window)
    video, audio = np.gradient(video) if n > 1 else video, np.gradient(audio) if n > 1 else audio
    # Every offset is scored on the same mouth frames (the middle ``n - 2 * max_offset``),
    # so delaying the audio by k frames shifts the whole curve by exactly k.
    max_offset = max(0, min(max_offset, (n - 10) // 2))
    a = video[max_offset : n - max_offset]
    offsets, curve = [], []
    for k in range(-max_offset, max_offset + 1):
        r = _pearson(a, audio[max_offset + k : n - max_offset + k])  # mouth at t, audio at t + k
        if r is not None:
            offsets.append(k)
            curve.append(r)
    if not curve:
        return SyncResult(offset=None, confidence=None, margin=None)
    best = int(np.argmax(curve))
    return SyncResult(
        offset=offsets[best],
        confidence=curve[best],
        margin=curve[best] - float(np.median(curve)),
        offsets=offsets,
        curve=curve,
    )


def mean_curve(
    curves: Iterable[tuple[Sequence[int], Sequence[float]]],  # per clip: (offsets, correlation at each)
    lags: Sequence[int],
) -> list[float | None]:  # [len(lags)]: mean correlation over the clips that reached each lag
    """Average several clips' :func:`av_sync` curves lag by lag. A mouth in sync with the speech peaks at
    lag 0 with dips a few frames to either side (both signals are differentiated); a mouth that ignores
    the speech averages to about 0 at every lag, so the mean curve shows sync that one short clip's
    peak cannot."""
    sums, counts = np.zeros(len(lags)), np.zeros(len(lags))
    position = {lag: i for i, lag in enumerate(lags)}
    for offsets, curve in curves:
        for offset, r in zip(offsets, curve, strict=True):
            if offset in position and r is not None:
                sums[position[offset]] += r
                counts[position[offset]] += 1
    return [float(s / c) if c else None for s, c in zip(sums, counts, strict=True)]
