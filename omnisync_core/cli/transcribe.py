"""``omnisync transcribe``: speech to text with word timings (Whisper through faster-whisper)."""

from __future__ import annotations

import argparse

from ..speech.transcribe import DEFAULT_WHISPER


def add_whisper_options(p, models_dir: bool = True) -> None:
    """--whisper / --language / ..., shared by every command that listens (``models_dir`` False where
    the command has its own --models-dir)."""
    p.add_argument("--whisper", default=DEFAULT_WHISPER, metavar="MODEL",
                   help="Whisper model: a size (tiny, base.en, small ...: Systran/faster-whisper-<size>), a Hub "
                   f"repository or a local faster-whisper folder (default {DEFAULT_WHISPER})")
    p.add_argument("--language", help="spoken language code (en, de, ...); default: detected")
    p.add_argument("--whisper-revision", help="Hub revision to pin the Whisper model to")
    if models_dir:
        p.add_argument("--models-dir", help="folder searched before the Hugging Face cache (<owner>--<name>/)")
    p.add_argument("--beam-size", type=int, default=5, help="beam search width (default 5; 1 is fastest)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcribe",
        help="speech to text with word timings (Whisper)",
        description="Transcribe AUDIO (any audio file or a video with sound); the text goes to stdout. "
        "--srt writes subtitles, --json the segments and every word with its start and end.",
    )
    p.add_argument("audio", help="audio file, or a video with sound")
    p.add_argument("--srt", help="write subtitles (SubRip) here")
    p.add_argument("--json", help="write text, segments and word timings (JSON) here")
    add_whisper_options(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 (default auto)")
    p.add_argument("--vad", action="store_true", help="skip silence with Silero VAD first (long recordings)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=_transcribe)


def transcribe_with_progress(audio, args: argparse.Namespace, **extra):
    """Transcribe with a tqdm bar over the seconds of audio (shared with talk / run --subtitles)."""
    from tqdm import tqdm

    from ..speech.transcribe import transcribe

    bar = None

    def progress(done: float, total: float) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=round(total, 1), unit="s", desc="transcribing", dynamic_ncols=True)
        bar.update(round(done, 1) - bar.n)

    try:
        return transcribe(audio, args.whisper, language=args.language, beam_size=args.beam_size,
                          revision=args.whisper_revision, models_dir=args.models_dir, progress=progress, **extra)
    finally:
        if bar is not None:
            bar.close()


def _transcribe(args: argparse.Namespace) -> int:
    import json

    from ..filemode import atomic_file
    from ..speech.subtitles import write_srt
    from ..video import check_output_path

    for path in (args.srt, args.json):
        if path:
            check_output_path(path, args.overwrite)
    transcript = transcribe_with_progress(args.audio, args, device=args.device, vad=args.vad)
    print(transcript.text)
    if args.srt:
        write_srt(args.srt, transcript)
    if args.json:
        with atomic_file(args.json, suffix=".json.tmp") as tmp:
            tmp.write_text(json.dumps(transcript.to_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return 0
