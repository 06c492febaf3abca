"""Speak-back: a question (speech) -> Whisper -> a chat model -> eSpeak NG -> lip-sync onto a face.

The chat model's answer streams in; each sentence is spoken as soon as it is complete, so the first
words are ready while the model is still writing (``TalkReport.first_speech_s``). The video is made
when the answer is whole, through the same ``run_file`` as ``omnisync run``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import OmniSyncError
from ..video import check_output_path, probe_video
from .chat import ChatSettings, ask
from .tts import DEFAULT_PITCH, DEFAULT_RATE, DEFAULT_VOICE, Speech, join_speech, resolve_voice, synthesize


@dataclass
class TalkSettings:
    chat: ChatSettings
    whisper: str = "tiny"
    language: str | None = None
    whisper_revision: str | None = None
    beam_size: int = 5
    voice: str = DEFAULT_VOICE
    rate: int = DEFAULT_RATE
    pitch: int = DEFAULT_PITCH
    run: object = None  # pipeline.RunSettings


@dataclass(frozen=True)
class TalkReport:
    question: str
    answer: str
    speech: Speech
    heard_s: float  # seconds from the start until the question was transcribed
    first_speech_s: float  # ... until the first sentence of the answer was spoken (synthesised)
    answered_s: float  # ... until the whole answer was spoken
    total_s: float  # ... until the video was written
    run: object  # pipeline.RunReport


def speak_stream(sentences, voice: str, rate: int, pitch: int,
                 on_sentence: Callable[[str, Speech], None] | None = None) -> list[Speech]:
    """Speak each sentence as it arrives."""
    parts = []
    for sentence in sentences:
        part = synthesize(sentence, voice, rate, pitch)
        parts.append(part)
        if on_sentence:
            on_sentence(sentence, part)
    return parts


def talk(video: str | os.PathLike, question_audio: str | os.PathLike, out: str | os.PathLike, settings: TalkSettings,
         on_question: Callable[[str], None] | None = None, on_sentence: Callable[[str, Speech], None] | None = None,
         progress=None, transcribe_progress=None, cancelled=None) -> TalkReport:
    from ..pipeline import RunSettings, run_file
    from .transcribe import transcribe

    began = time.perf_counter()
    run_settings = settings.run or RunSettings()
    check_output_path(out, run_settings.overwrite)  # every mistake the user can fix, before the slow parts
    probe_video(video)
    resolve_voice(settings.voice)
    heard = transcribe(question_audio, settings.whisper, language=settings.language, beam_size=settings.beam_size,
                       revision=settings.whisper_revision, models_dir=run_settings.models_dir,
                       progress=transcribe_progress, cancelled=cancelled)
    question = heard.text.strip()
    if not question:
        raise OmniSyncError(f"no words were heard in '{question_audio}'; give a recording of the question")
    heard_s = time.perf_counter() - began
    if on_question:
        on_question(question)
    first: list[float] = []

    def spoken(sentence: str, part: Speech) -> None:
        if not first:
            first.append(time.perf_counter() - began)
        if on_sentence:
            on_sentence(sentence, part)

    parts = speak_stream(ask(question, settings.chat), settings.voice, settings.rate, settings.pitch, spoken)
    if not parts:
        raise OmniSyncError("the chat model gave an empty answer; nothing to say")
    speech = join_speech(parts)
    answered_s = time.perf_counter() - began
    report = run_file(video, speech.track(), out, run_settings, progress=progress, cancelled=cancelled,
                      phonemes=speech.phonemes)
    return TalkReport(question, speech.text, speech, heard_s, first[0], answered_s, time.perf_counter() - began,
                      report)
