"""``omnisync tts``: speak a text offline with eSpeak NG; write the WAV and, if asked, its phoneme timings."""

from __future__ import annotations

import argparse

from ..speech.tts import DEFAULT_PITCH, DEFAULT_RATE, DEFAULT_VOICE


def add_voice_options(p: argparse.ArgumentParser) -> None:
    """--voice / --rate / --pitch, shared by every command that speaks."""
    p.add_argument("--voice", default=DEFAULT_VOICE, help="eSpeak NG voice or language: en-us, en-gb, de, fr, es, "
                   "hi, cmn ...; a variant after '+' (en-us+f3). Default en-us; --list-voices shows all")
    p.add_argument("--rate", type=int, default=DEFAULT_RATE,
                   help=f"words per minute, 80 to 450 (default {DEFAULT_RATE})")
    p.add_argument("--pitch", type=int, default=DEFAULT_PITCH, help=f"0 to 100 (default {DEFAULT_PITCH})")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tts",
        help="text to speech (offline, eSpeak NG) with phoneme timings",
        description="Speak TEXT (or --text-file) and write a 16-bit mono WAV; --timings writes when each "
        "phoneme (IPA) and word sounds, as JSON. Nothing is downloaded.",
    )
    p.add_argument("text", nargs="?", help="the text to speak (quote it)")
    p.add_argument("--text-file", help="read the text from this UTF-8 file instead")
    p.add_argument("--out", help="output .wav file")
    p.add_argument("--timings", help="also write phoneme and word timings here (.json)")
    add_voice_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--list-voices", action="store_true", help="list the voices and languages, then exit")
    p.set_defaults(func=_tts)


def _list_voices() -> int:
    from ..speech.tts import list_voices

    for voice in sorted(list_voices(), key=lambda v: v.languages[:1] or ("",)):
        print(f"{', '.join(voice.languages):<24} {voice.name:<40} {voice.identifier}")
    from ..speech.espeak import ENGINE

    names = sorted(v.identifier.rsplit("/", 1)[-1] for v in ENGINE.voices(variants=True))
    print(f"\nvariants (after '+', e.g. en-us+f3): {', '.join(names)}")
    return 0


def _tts(args: argparse.Namespace) -> int:
    import time

    from ..errors import OmniSyncError
    from ..speech.timing import write_timings_json
    from ..speech.tts import resolve_voice, synthesize, text_from, write_wav
    from ..video import check_output_path

    if args.list_voices:
        return _list_voices()
    if not args.out:
        raise OmniSyncError("no output: give --out speech.wav")
    if not args.out.lower().endswith(".wav"):
        raise OmniSyncError(f"--out '{args.out}' must be a .wav file")
    text = text_from(args.text, args.text_file)
    resolve_voice(args.voice)  # a wrong voice is reported before anything else
    check_output_path(args.out, args.overwrite)
    if args.timings:
        check_output_path(args.timings, args.overwrite)
    began = time.perf_counter()
    speech = synthesize(text, args.voice, args.rate, args.pitch)
    took = time.perf_counter() - began
    write_wav(args.out, speech)
    if args.timings:
        write_timings_json(args.timings, speech.phonemes, speech.words)
    sounds = sum(1 for p in speech.phonemes if not p.is_pause)
    print(f"wrote {args.out}: {speech.duration:.2f} s at {speech.sample_rate} Hz, voice {speech.voice}, "
          f"{len(speech.words)} words, {sounds} phonemes ({took / speech.duration:.3f}x real time)")
    if args.timings:
        print(f"wrote {args.timings}")
    return 0
