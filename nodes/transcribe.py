"""OmniSyncTranscribe: AUDIO -> the spoken text and SubRip subtitles with word timings (faster-whisper)."""

from __future__ import annotations

from pathlib import Path

from omnisync_core.speech.subtitles import cues, srt_text
from omnisync_core.speech.transcribe import DEFAULT_WHISPER, WHISPER_FILES, transcribe

from .convert import audio_to_track
from .runtime import CATEGORY, cancelled, models_dirs, progress_bar


def find_whisper(name: str) -> tuple[str, Path | None]:
    """(model, models_dir): a folder name under models/omnisync, a path, a size or a Hub id."""
    name = name.strip() or DEFAULT_WHISPER
    dirs = models_dirs()
    for folder in [d / name for d in dirs]:
        if all((folder / f).is_file() for f in WHISPER_FILES):
            return str(folder), None
    return name, dirs[0] if dirs else None


class OmniSyncTranscribe:
    DESCRIPTION = ("Transcribe speech with Whisper (faster-whisper, CTranslate2): the text, and subtitles timed "
                   "by the words. Models: a size (tiny, base.en, small ...), a Hub id, or a folder in "
                   "ComfyUI/models/omnisync (downloaded there when missing).")
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("text", "subtitles")
    OUTPUT_TOOLTIPS = ("The transcript as one text.", "SubRip (.srt) subtitles, at most two lines per cue.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": ("AUDIO", {"tooltip": "The speech to transcribe."}),
            "model": ("STRING", {"default": DEFAULT_WHISPER,
                                 "tooltip": "tiny, base, small (multilingual), tiny.en, base.en (English), a Hub id "
                                            "such as Systran/faster-whisper-small, or a folder."}),
            "language": ("STRING", {"default": "", "tooltip": "Language code (en, de, ...); empty = detect."}),
            "beam_size": ("INT", {"default": 5, "min": 1, "max": 16, "tooltip": "Beam search width; 1 is fastest."}),
        }}  # fmt: skip

    def run(self, audio, model=DEFAULT_WHISPER, language="", beam_size=5):
        track = audio_to_track(audio)
        name, models_dir = find_whisper(model)
        bar = progress_bar(max(1, round(track.duration)))
        transcript = transcribe(track, name, language=language.strip() or None, beam_size=beam_size,
                                models_dir=models_dir, progress=lambda done, total: bar(round(done), round(total)),
                                cancelled=cancelled)
        return transcript.text, srt_text(cues(transcript))


NODES = {"OmniSyncTranscribe": (OmniSyncTranscribe, "OmniSync Transcribe")}
