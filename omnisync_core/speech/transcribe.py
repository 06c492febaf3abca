"""Speech to text with word timings: Whisper in CTranslate2 format through ``faster-whisper``.

Models are folders (``model.bin`` + ``config.json`` + the tokenizer) found the project's usual way
(``hub.resolve_model``): a local folder, ``<models_dir>/<owner>--<name>``, or the Hugging Face cache /
a download. Size names (``tiny``, ``base.en``, ``small`` ...) mean ``Systran/faster-whisper-<size>``.
faster-whisper is optional (``pip install faster-whisper``); nothing loads before the first call.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio.decode import FEATURE_RATE, AudioTrack, load_audio, resample
from ..cancel import check
from ..errors import OmniSyncError
from .timing import WordTiming

DEFAULT_WHISPER = "tiny"
SIZES = ("tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en", "large-v1", "large-v2",
         "large-v3", "distil-large-v3")  # fmt: skip
WHISPER_FILES = ("model.bin", "config.json")
TOKENIZER_FILES = ("tokenizer.json", "vocabulary.txt", "vocabulary.json")
Progress = Callable[[float, float], None]  # (seconds transcribed, seconds in all)


@dataclass(frozen=True)
class Segment:
    start: float  # seconds
    end: float
    text: str
    words: list[WordTiming] = field(default_factory=list)


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    duration: float  # seconds of audio
    segments: list[Segment]

    @property
    def words(self) -> list[WordTiming]:
        return [w for s in self.segments for w in s.words]

    def to_dict(self) -> dict:
        return {"text": self.text, "language": self.language, "duration": round(self.duration, 3),
                "segments": [{"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text}
                             for s in self.segments],
                "words": [{"start": round(w.start, 3), "end": round(w.end, 3), "word": w.word}
                          for w in self.words]}  # fmt: skip


def hub_repo(model: str) -> str:
    """A size name -> its Systran/faster-whisper repository; anything else is returned as given."""
    return f"Systran/faster-whisper-{model}" if model in SIZES else model


def check_whisper_folder(folder: Path) -> Path:
    """A folder that holds a Whisper model in CTranslate2 format, or one clear error that says what it is."""
    files = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    config = {}
    if "config.json" in files:
        try:
            config = json.loads((folder / "config.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            config = {}
    if "model.bin" not in files:
        if config.get("model_type") == "whisper":
            what = "a Transformers Whisper checkpoint, not the CTranslate2 format faster-whisper runs"
        elif config.get("format") == "omnisync-dit":
            what = "an OmniSync lip-sync model"
        else:
            what = "not a Whisper model (no model.bin)"
        raise OmniSyncError(f"'{folder}' is {what}; give a faster-whisper model folder (model.bin, config.json, "
                            "tokenizer.json), a size name such as tiny or base.en, or a Hub id such as "
                            "Systran/faster-whisper-tiny")  # fmt: skip
    if not config or not ({"alignment_heads", "lang_ids", "suppress_ids"} & set(config)):
        raise OmniSyncError(f"'{folder}' has a model.bin but its config.json is not a Whisper one; it is not a "
                            "faster-whisper model folder")
    if not files & set(TOKENIZER_FILES):
        raise OmniSyncError(f"'{folder}' lacks the tokenizer (tokenizer.json); copy the whole model repository")
    return folder


def whisper_folder(model: str | os.PathLike = DEFAULT_WHISPER, revision: str | None = None,
                   models_dir: str | os.PathLike | None = None) -> Path:
    from ..hub import resolve_model

    local = Path(model).expanduser()
    if local.is_dir():
        return check_whisper_folder(local)
    folder = resolve_model(hub_repo(str(model)), revision, models_dir, required=WHISPER_FILES,
                           allow_patterns=["*.json", "*.txt", "model.bin"],
                           download_to_models_dir=models_dir is not None)
    return check_whisper_folder(folder)


_MODELS: dict[tuple, object] = {}
_LOCK = threading.Lock()


def load_whisper(model: str | os.PathLike = DEFAULT_WHISPER, revision: str | None = None,
                 models_dir: str | os.PathLike | None = None, device: str = "auto", compute_type: str = "auto",
                 threads: int = 0):
    """A faster_whisper.WhisperModel, kept for reuse. ``compute_type`` auto: int8 on CPU, float16 on CUDA."""
    try:
        import ctranslate2
        from faster_whisper import WhisperModel
    except ImportError as error:
        raise OmniSyncError("transcription needs faster-whisper: pip install faster-whisper") from error
    folder = whisper_folder(model, revision, models_dir)
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device.startswith("cuda") else "int8"
    key = (str(folder.resolve()), device, compute_type, threads)
    with _LOCK:
        if key not in _MODELS:
            kind, _, index = device.partition(":")
            try:
                _MODELS[key] = WhisperModel(str(folder), device=kind, device_index=int(index or 0),
                                            compute_type=compute_type, cpu_threads=threads, local_files_only=True)
            except (RuntimeError, ValueError) as error:
                raise OmniSyncError(f"cannot load the Whisper model in '{folder}': {error}") from error
        return _MODELS[key]


def _samples(audio: str | os.PathLike | AudioTrack | np.ndarray) -> np.ndarray:
    """-> mono float32 [N] at 16 kHz (an ndarray is taken as that already)."""
    if isinstance(audio, AudioTrack):
        samples = resample(audio.mono(), audio.sample_rate, FEATURE_RATE)
    elif isinstance(audio, np.ndarray):
        samples = audio.astype(np.float32, copy=False)
    else:
        samples = load_audio(audio)
    if samples.size == 0:
        raise OmniSyncError("the audio is empty; give a clip with speech")
    return samples


def transcribe(audio: str | os.PathLike | AudioTrack | np.ndarray, model: str | os.PathLike = DEFAULT_WHISPER,
               language: str | None = None, beam_size: int = 5, revision: str | None = None,
               models_dir: str | os.PathLike | None = None, device: str = "auto", vad: bool = False,
               progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
               threads: int = 0) -> Transcript:
    """The words of ``audio`` (a file, an AudioTrack, or 16 kHz mono samples) with their times.
    ``language`` None: detected (multilingual models) or English (``.en`` models). ``threads``: CPU threads
    (0: CTranslate2's default)."""
    whisper = load_whisper(model, revision, models_dir, device, threads=threads)
    samples = _samples(audio)
    duration = len(samples) / FEATURE_RATE
    if language and not whisper.model.is_multilingual and language != "en":
        raise OmniSyncError(f"the Whisper model '{model}' knows English only; for '{language}' use a multilingual "
                            "one such as tiny, base or small")
    if progress:
        progress(0.0, duration)
    try:
        pieces, info = whisper.transcribe(samples, language=language or None, beam_size=beam_size,
                                          word_timestamps=True, vad_filter=vad, condition_on_previous_text=False)
        segments = []
        for piece in pieces:
            check(cancelled)
            words = [WordTiming(float(w.start), float(max(w.end, w.start)), w.word.strip()) for w in piece.words or []]
            segments.append(Segment(float(piece.start), float(piece.end), piece.text.strip(), words))
            if progress:
                progress(min(float(piece.end), duration), duration)
    except ValueError as error:  # e.g. a language code Whisper does not know
        raise OmniSyncError(f"Whisper could not transcribe: {error}") from error
    if progress:
        progress(duration, duration)
    text = " ".join(s.text for s in segments if s.text)
    return Transcript(text, info.language, duration, segments)
