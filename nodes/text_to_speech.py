"""OmniSyncTextToSpeech: STRING -> AUDIO + the phoneme timings it was spoken with (offline, eSpeak NG)."""

from __future__ import annotations

from omnisync_core.speech.tts import DEFAULT_PITCH, DEFAULT_RATE, DEFAULT_VOICE, synthesize

from .convert import track_to_audio
from .runtime import CATEGORY

PHONEMES = "OMNISYNC_PHONEMES"  # wire: list[omnisync_core.speech.PhonemeTiming], seconds from the audio's start


def speak(text: str, voice: str, rate: int, pitch: int):
    """-> (AUDIO {"waveform": [1, 1, N], "sample_rate": 22050}, list[PhonemeTiming])."""
    speech = synthesize(text, voice, rate, pitch)
    return track_to_audio(speech.track()), speech.phonemes


class OmniSyncTextToSpeech:
    DESCRIPTION = ("Speak a text offline with eSpeak NG (over 100 languages and voices, nothing to download). "
                   "Gives the speech as AUDIO and the IPA phonemes with their times, so the mouth can follow "
                   "exactly what is said.")
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("AUDIO", PHONEMES)
    RETURN_NAMES = ("audio", "phonemes")
    OUTPUT_TOOLTIPS = ("The speech, mono at 22050 Hz.",
                       "When each phoneme (IPA; '' = pause) sounds, in seconds from the start of the audio.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text": ("STRING", {"multiline": True, "default": "Hello! This face is speaking a brand new line.",
                                "tooltip": "What to say. Newlines are spaces; punctuation makes pauses."}),
            "voice": ("STRING", {"default": DEFAULT_VOICE,
                                 "tooltip": "eSpeak NG voice or language: en-us, en-gb, de, fr, es, it, pt, hi, "
                                            "cmn, ja ...; a variant after '+' (en-us+f3 is a female voice)."}),
            "rate": ("INT", {"default": DEFAULT_RATE, "min": 80, "max": 450, "step": 5,
                             "tooltip": "Speaking rate in words per minute."}),
            "pitch": ("INT", {"default": DEFAULT_PITCH, "min": 0, "max": 100,
                              "tooltip": "Voice pitch, 0 to 100 (50 is the voice's own)."}),
        }}  # fmt: skip

    def run(self, text, voice=DEFAULT_VOICE, rate=DEFAULT_RATE, pitch=DEFAULT_PITCH):
        return speak(text, voice, rate, pitch)


NODES = {"OmniSyncTextToSpeech": (OmniSyncTextToSpeech, "OmniSync Text To Speech")}
