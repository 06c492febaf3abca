"""Speech in: text to speech with phoneme timings (eSpeak NG), and the timing types the motion stage reads.

Heavy or optional pieces (the eSpeak NG library, Whisper) load on first use, never at import."""

from .timing import PhonemeTiming, WordTiming, read_timings_json, write_timings_json

__all__ = ["PhonemeTiming", "WordTiming", "read_timings_json", "write_timings_json"]
