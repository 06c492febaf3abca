"""Phoneme timings -> :class:`MouthMotion`: visemes with coarticulation, for synthesised speech or
a transcript with timings, on the same wire as the speech model's tracks.

Each phoneme has a viseme target: the change of each component from the resting mouth, in units
of that component's spread in real speech (the motion model's ``scale``), and a dominance (how
firmly it holds its shape against its neighbours; /p b m/ must close, /h/ takes the shape of the
vowel that follows). Frame values blend the targets of nearby phonemes, weighted by dominance
falling off with the distance from each phoneme's middle (Cohen & Massaro's coarticulation
model). Pauses return to the resting mouth.

Phonemes may be IPA (eSpeak NG: ``p``, ``aɪ``, ``ʃ``; stress and length marks are ignored) or
ARPAbet (CMUdict, PocketSphinx: ``P``, ``AY1``, ``SH``).
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

import numpy as np

from .basis import COMPONENTS
from .track import MouthMotion

# target (opening, width, jaw, rounding, smile, asymmetry) in spreads from rest, and dominance
_VISEMES: dict[str, tuple[tuple[float, float, float, float, float, float], float]] = {
    "rest": ((0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 1.0),
    "bilabial": ((-0.4, 0.0, -0.3, -0.6, 0.0, 0.0), 4.0),  # p b m: lips pressed together
    "labiodental": ((0.2, 0.1, 0.1, -0.6, 0.0, 0.0), 4.0),  # f v: lower lip under the teeth
    "dental": ((0.6, 0.2, 0.5, 0.0, 0.0, 0.0), 1.0),  # θ ð
    "alveolar": ((0.5, 0.2, 0.4, 0.0, 0.0, 0.0), 0.7),  # t d n l s z
    "postalveolar": ((0.6, -0.8, 0.4, 1.0, 0.0, 0.0), 2.5),  # ʃ ʒ tʃ dʒ: lips pushed out
    "rhotic": ((0.6, -0.6, 0.4, 0.6, 0.0, 0.0), 1.5),  # r ɹ
    "velar": ((0.8, 0.1, 0.7, 0.0, 0.0, 0.0), 0.4),  # k g ŋ
    "glottal": ((0.8, 0.0, 0.6, 0.0, 0.0, 0.0), 0.15),  # h ʔ: shaped by the next vowel
    "open": ((2.6, 0.3, 2.2, 0.0, 0.0, 0.0), 1.5),  # a ɑ æ ʌ
    "mid": ((1.6, 0.5, 1.3, 0.0, 0.2, 0.0), 1.2),  # e ɛ ə ɜ
    "close_front": ((0.7, 1.2, 0.5, -0.2, 0.6, 0.0), 1.5),  # i ɪ j
    "mid_round": ((1.5, -1.0, 1.2, 1.0, 0.0, 0.0), 2.0),  # o ɔ ɒ
    "close_round": ((0.7, -1.6, 0.5, 1.3, 0.0, 0.0), 2.5),  # u ʊ w y
}
_IPA: dict[str, str] = {}
for _viseme, _symbols in {
    "bilabial": "p b m ɱ",
    "labiodental": "f v",
    "dental": "θ ð",
    "alveolar": "t d n l s z ɾ ɫ ɬ c ɟ ɲ ʎ x ɣ ç",
    "postalveolar": "ʃ ʒ tʃ dʒ ʧ ʤ ɕ ʑ",
    "rhotic": "r ɹ ɻ ʁ ʀ ɚ ɝ",
    "velar": "k g ɡ ŋ q",
    "glottal": "h ɦ ʔ",
    "open": "a ɑ æ ʌ ɐ aɪ aʊ ɑɪ",
    "mid": "e ɛ ə ɜ eɪ ɛə ɘ ɵ œ",
    "close_front": "i ɪ j iː ɨ ɪə",
    "mid_round": "o ɔ ɒ oʊ əʊ ɔɪ ø",
    "close_round": "u ʊ w y ʏ ʉ ɯ uː ʊə",
}.items():
    for _s in _symbols.split():
        _IPA[_s] = _viseme
_ARPABET: dict[str, str] = {
    "P": "bilabial", "B": "bilabial", "M": "bilabial", "F": "labiodental", "V": "labiodental",
    "TH": "dental", "DH": "dental", "T": "alveolar", "D": "alveolar", "N": "alveolar", "L": "alveolar",
    "S": "alveolar", "Z": "alveolar", "SH": "postalveolar", "ZH": "postalveolar", "CH": "postalveolar",
    "JH": "postalveolar", "R": "rhotic", "ER": "rhotic", "K": "velar", "G": "velar", "NG": "velar",
    "HH": "glottal", "AA": "open", "AE": "open", "AH": "open", "AY": "open", "AW": "open", "EH": "mid",
    "EY": "mid", "IH": "close_front", "IY": "close_front", "Y": "close_front", "AO": "mid_round",
    "OW": "mid_round", "OY": "mid_round", "UH": "close_round", "UW": "close_round", "W": "close_round",
    "SIL": "rest", "SP": "rest", "SPN": "rest", "NSN": "rest",
}  # fmt: skip
_MARKS = "ˈˌːˑ'\",.%=_-̩̯̃"
MIN_PAUSE_S = 0.02  # a gap between phonemes longer than this is a pause (the mouth heads for rest)


def viseme_of(phoneme: str) -> str:
    """The viseme class of one IPA or ARPAbet phoneme ("rest" for pauses and unknown symbols)."""
    p = phoneme.strip()
    if not p:
        return "rest"
    arpa = p.rstrip("012").upper()
    if arpa in _ARPABET and p.rstrip("012").isascii() and (p.isupper() or len(p) > 1 or arpa in ("SIL", "SP")):
        return _ARPABET[arpa]
    ipa = "".join(ch for ch in p if ch not in _MARKS)
    while ipa:
        if ipa in _IPA:
            return _IPA[ipa]
        ipa = ipa[:-1]  # diphthongs and affricates not listed: by their first part
    return "rest"


def _timings(phonemes: Iterable, duration: float) -> list[tuple[float, float, str]]:
    """Sorted (start, end, phoneme), with every pause (before, between, after) a resting-mouth entry."""
    items = []
    for p in phonemes:
        start, end, symbol = (p.start, p.end, p.phoneme) if hasattr(p, "phoneme") else p
        if end > start:
            items.append((float(start), float(end), str(symbol)))
    items.sort()
    out, cursor = [], 0.0
    for start, end, symbol in items:
        if start - cursor > MIN_PAUSE_S:
            out.append((cursor, start, ""))
        out.append((start, end, symbol))
        cursor = max(cursor, end)
    if duration - cursor > MIN_PAUSE_S:
        out.append((cursor, duration, ""))
    return out


def motion_from_phonemes(
    phonemes: Iterable,
    fps: Fraction | float,
    frames: int,
    scale: np.ndarray,
    rest: np.ndarray,
    spread_s: float = 0.04,
) -> MouthMotion:
    """Phoneme timings (``start``, ``end`` seconds, ``phoneme``) -> a track of ``frames`` frames at
    ``fps`` on the resting mouth ``rest`` (``[K]`` or ``[frames, K]``); ``scale [K]``: component
    spreads in real speech."""
    fps = Fraction(fps)
    items = _timings(phonemes, frames / float(fps))
    t = (np.arange(frames) + 0.5) / float(fps)  # middle of each frame
    targets, weights = [np.zeros((frames, len(COMPONENTS)))], [np.full(frames, 1e-6)]  # no phoneme at all: rest
    for start, end, symbol in items:
        target, dominance = _VISEMES[viseme_of(symbol)]
        middle, half = (start + end) / 2, (end - start) / 2
        distance = np.maximum(np.abs(t - middle) - half * 0.6, 0.0)  # full weight over most of the phoneme
        w = dominance * np.exp(-distance / spread_s)
        targets.append(w[:, None] * np.asarray(target, np.float64))
        weights.append(w)
    blended = np.sum(targets, axis=0) / np.sum(weights, axis=0)[:, None]  # [T, K] spreads from rest
    values = np.asarray(rest, np.float32) + blended.astype(np.float32) * np.asarray(scale, np.float32)
    return MouthMotion(values=values, fps=fps, source="phonemes")

