"""``omnisync talk``: answer a spoken question with a talking face (Whisper -> chat model -> TTS -> lip-sync)."""

from __future__ import annotations

import argparse

from ..speech.chat import DEFAULT_KEY_ENV
from .run import add_render_options
from .transcribe import add_whisper_options
from .tts import add_voice_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "talk",
        help="answer a spoken question with the face: transcribe, ask a chat model, speak, lip-sync",
        description="Transcribe the question in AUDIO, ask a chat model through an OpenAI-compatible endpoint "
        "(llama.cpp server, Ollama, vLLM, LM Studio or a hosted service), speak its answer sentence by sentence "
        "as it streams in, and lip-sync the answer onto VIDEO.",
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--video", required=True, help="the face that answers: a video or a still image")
    io.add_argument("--audio", required=True, help="the spoken question (any audio file or a video with sound)")
    io.add_argument("--out", required=True, help="output video file (.mp4)")
    io.add_argument("--overwrite", action="store_true", help="replace OUT if it already exists")
    io.add_argument("--timings", help="also write the answer's phonemes and words with their times (JSON)")

    llm = p.add_argument_group("chat model")
    llm.add_argument("--llm-url", required=True, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 "
                     "(llama.cpp), http://127.0.0.1:11434/v1 (Ollama), https://api.openai.com/v1")
    llm.add_argument("--llm-model", required=True, help="model name as the server knows it")
    llm.add_argument("--llm-key-env", default=DEFAULT_KEY_ENV,
                     help=f"environment variable with the API key (default {DEFAULT_KEY_ENV}; unset: no key sent)")
    llm.add_argument("--system", help="system prompt (default: short spoken answers, no markdown)")
    llm.add_argument("--llm-timeout", type=float, default=60.0,
                     help="seconds to wait for the server to connect and for each piece of the answer (default 60)")
    llm.add_argument("--max-tokens", type=int, default=400, help="longest answer in tokens (default 400)")

    voice = p.add_argument_group("speech in and out")
    add_whisper_options(voice, models_dir=False)
    add_voice_options(voice)
    add_render_options(p)
    p.set_defaults(func=_talk)


def _talk(args: argparse.Namespace) -> int:
    import sys

    from ..devices import set_cpu_threads
    from ..speech.chat import DEFAULT_SYSTEM, ChatSettings
    from ..speech.talk import TalkSettings, talk
    from ..speech.timing import write_timings_json
    from ..video import check_output_path
    from .run import StageBars, print_report, run_settings

    set_cpu_threads()
    if args.timings:
        check_output_path(args.timings, args.overwrite)
    chat = ChatSettings(args.llm_url, args.llm_model, args.llm_key_env, args.system or DEFAULT_SYSTEM,
                        args.llm_timeout, args.max_tokens)
    settings = TalkSettings(chat, args.whisper, args.language, args.whisper_revision, args.beam_size, args.voice,
                            args.rate, args.pitch, run_settings(args))
    bars = StageBars()

    def question(text: str) -> None:
        print(f"question: {text}", flush=True)
        print("answer:", end="", flush=True)

    def sentence(text: str, part) -> None:
        print(f" {text}", end="", flush=True)

    try:
        report = talk(args.video, args.audio, args.out, settings, on_question=question, on_sentence=sentence,
                      progress=bars)
    finally:
        bars.close()
        sys.stdout.flush()
    print()
    print_report(report.run)
    print(f"times: question heard {report.heard_s:.1f} s, first sentence spoken {report.first_speech_s:.1f} s, "
          f"answer spoken {report.answered_s:.1f} s, video written {report.total_s:.1f} s")
    if args.timings:
        write_timings_json(args.timings, report.run.phonemes, report.speech.words)
        print(f"wrote {args.timings}")
    return 0
