"""``omnisync run``: re-voice a video file with a speech file, streaming file to file."""

from __future__ import annotations

import argparse
import sys

from ..timeline import POLICIES
from .transcribe import add_whisper_options
from .tts import add_voice_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="lip-sync a video to a new speech track",
        description="Lip-sync VIDEO to AUDIO and write OUT (h264 + AAC). Any frame rate, any audio "
        "format; frames without a face pass through unchanged. The output file appears only "
        "when it is complete.",
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--video", required=True, help="talking-face video, or a still / animated image")
    speech = io.add_mutually_exclusive_group(required=True)
    speech.add_argument("--audio", help="new speech: wav, mp3, m4a, flac, ogg, or a video with sound")
    speech.add_argument("--text", help="or a text to speak (offline text to speech, eSpeak NG; see --voice)")
    speech.add_argument("--text-file", help="or a UTF-8 text file to speak")
    io.add_argument("--out", required=True, help="output video file: .mp4, .mov or .mkv (h264 + AAC) or .webm "
                    "(VP9 + Opus)")
    io.add_argument("--overwrite", action="store_true", help="replace OUT if it already exists")
    io.add_argument("--resume", action="store_true",
                    help="keep the finished frames (losslessly, in .OUT.omnisync-resume/ beside OUT) so that, when the "
                    "run is interrupted, the same command with --resume continues where it stopped and gives the "
                    "same video; the folder is removed when OUT is complete")
    voice = p.add_argument_group("text to speech (with --text / --text-file)")
    add_voice_options(voice)
    voice.add_argument("--timings", help="write the spoken phonemes and words with their times (JSON) here")

    subs = p.add_argument_group("subtitles")
    subs.add_argument("--subtitles", action="store_true",
                      help="add the words as a subtitle track (with --text: the words spoken; with --audio: a "
                      "Whisper transcript, see --whisper)")
    subs.add_argument("--srt", help="also write the subtitles as a SubRip file here")
    add_whisper_options(subs, models_dir=False)

    add_render_options(p)
    p.set_defaults(func=_run)


def add_render_options(p: argparse.ArgumentParser) -> None:
    """Length policy, encoder, model, sampler, face and blend options: shared by run and talk."""
    out = p.add_argument_group("output video")
    out.add_argument(
        "--length",
        choices=POLICIES,
        default="pingpong",
        help="when audio and video differ in length: trim (shorter wins), loop or pingpong "
        "(output as long as the audio; the video repeats or plays back and forth), pad "
        "(longer wins: hold the last frame / add silence). Default: pingpong",
    )
    out.add_argument("--crf", type=int, default=18, help="quality 0-51, lower is better (default 18; .webm maps it "
                     "onto VP9's 0-63)")
    out.add_argument("--preset", default="medium", help="x264 speed preset (default medium)")
    out.add_argument("--chunk", type=int, default=32, help="frames decoded at a time; memory stays bounded")

    model = p.add_argument_group("model and sampling")
    model.add_argument("--model", help="OmniSync model: a folder (config.json + model.safetensors), a Hugging "
                       "Face repository id, 'renderer' (the weights shipped with this version that draw the speech's "
                       "mouth motion, the default) or 'starter' (the older shipped weights); "
                       "'none' tracks and blends the faces back unchanged (a quick check of faces and I/O)")
    model.add_argument("--revision", help="Hub revision (branch, tag or commit) to pin the model to")
    model.add_argument("--models-dir", help="folder searched before the Hugging Face cache "
                       "(ComfyUI/models/omnisync layout: <owner>--<name>/)")
    model.add_argument("--steps", type=int, help="denoising steps actually run (default from the model: 10 for "
                       "the shipped weights)")
    model.add_argument("--tau", type=float, help="progressive init: start at sigma = tau from the source "
                       "(default from the model: 0.5 for the renderer; lower keeps more of the source)")
    model.add_argument("--guidance", type=float, dest="w_peak",
                       help="DS-CFG guidance at the mouth centre (w_peak; default from the model)")
    model.add_argument("--guidance-base", type=float, dest="w_base", help="DS-CFG guidance far from the mouth")
    model.add_argument("--spread", type=float, help="DS-CFG Gaussian width as a fraction of the face width")
    model.add_argument("--edit-region", type=float, dest="edit_region",
                       help="how much of the face the model may change: the mouth region of a face this many "
                       "times as wide (default 1.5: from below the nose to below the chin; the rest of the "
                       "face stays exactly). 0 lets it redraw the whole crop")
    model.add_argument("--detail", type=float, help="how much of the finest texture of the source the model saw "
                       "(the reference's lips warped to the target) is put back where the drawn mouth agrees with it: "
                       "0 the drawing as sampled, 1 all of it (default from the model: 1 for the renderer)")
    model.add_argument("--window", type=int, help="frames sampled together (default from the model)")
    model.add_argument("--overlap", type=int, help="frames shared and cross-faded between windows")
    model.add_argument("--seed", type=int, default=0, help="noise seed; the same seed gives the same video")
    model.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default auto)")
    model.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                       help="compute precision (auto: bf16 on CUDA, fp32 elsewhere)")

    model.add_argument("--runtime", default="torch", choices=["torch", "onnx"],
                       help="what runs the DiT: torch (default) or onnx (onnxruntime; exported once and cached)")
    model.add_argument("--onnx", dest="onnx_dir", help="with --runtime onnx: an `omnisync export onnx` folder")
    mouth = p.add_argument_group("mouth motion (models that draw the mouth they are given)")
    mouth.add_argument("--motion", help="draw this mouth motion track (JSON from `omnisync motion`) instead of "
                       "the one made from the speech; re-timed to the video's frames")
    mouth.add_argument("--motion-strength", type=float, default=1.0, dest="motion_strength",
                       help="scale the mouth's movements around its resting shape (1 as made, 1.3 bigger, 0 still)")
    face = p.add_argument_group("faces and blending")
    face.add_argument("--face", default="largest",
                      help="which face to edit: largest, left, right, centre, or index:K (K-th from the left)")
    face.add_argument("--backend", default="auto", choices=["auto", "opencv", "insightface", "dlib"],
                      help="face detector (auto: YuNet when its weights are available, else dlib)")
    face.add_argument("--detect-every", type=int, default=5, help="run the detector every N frames, track between")
    face.add_argument("--mask", default="lower", choices=["lower", "face"], help="region replaced (default lower)")
    face.add_argument("--feather", type=float, default=0.04, help="mask edge softness, fraction of the crop")
    face.add_argument("--color-match", default="lab", choices=["lab", "none"], help="colour matching in the mask")
    face.add_argument("--poisson", action="store_true", help="gradient-domain (Poisson) blending")


def _run(args: argparse.Namespace) -> int:
    from ..devices import set_cpu_threads
    from ..pipeline import run_file

    set_cpu_threads()  # the cores this process may use, or 1 while they are busy with other jobs
    settings = run_settings(args)
    progress = StageBars()
    audio, phonemes, words = _speech(args)
    subtitled = args.subtitles or args.srt
    if subtitled and args.audio is not None:
        from .transcribe import transcribe_with_progress

        words = transcribe_with_progress(audio, args, device=args.device).words  # before the long part
    try:
        if subtitled:
            report, cue_count = _run_with_subtitles(args, audio, phonemes, words, settings, progress)
        else:
            report = run_file(args.video, audio, args.out, settings, progress=progress, phonemes=phonemes)
    except KeyboardInterrupt:
        if not args.resume:
            raise
        progress.close()
        print("omnisync: interrupted; the finished frames are kept: run the same command again to continue",
              file=sys.stderr)  # fmt: skip
        return 130
    finally:
        progress.close()
    if subtitled:
        print(f"subtitles: {cue_count} cue{'' if cue_count == 1 else 's'}" + (" in the video" if args.subtitles else "")
              + (f", written to {args.srt}" if args.srt else ""))
    print_report(report)
    if args.timings and report.phonemes is not None:
        from ..speech.timing import write_timings_json

        write_timings_json(args.timings, report.phonemes, [w for w in words if w.start < report.duration])
        print(f"wrote {args.timings}")
    return 0


def run_settings(args: argparse.Namespace):
    """RunSettings from the options add_render_options made."""
    from ..pipeline import RunSettings
    from ..streaming import BlendSettings
    from ..timeline import LengthPolicy

    names = ("steps", "tau", "w_peak", "w_base", "spread", "edit_region", "detail", "window", "overlap", "seed")
    sampler = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return RunSettings(
        model=args.model, revision=args.revision, models_dir=args.models_dir, device=args.device,
        dtype=args.dtype, sampler=sampler, backend=args.backend, detect_every=args.detect_every, face=args.face,
        blend=BlendSettings(args.mask, args.feather, args.color_match, args.poisson),
        length_policy=LengthPolicy.parse(args.length),
        chunk_frames=args.chunk,
        crf=args.crf,
        preset=args.preset,
        overwrite=args.overwrite,
        resume=getattr(args, "resume", False),  # talk has no --resume
        runtime=args.runtime,
        onnx_dir=args.onnx_dir,
        motion=getattr(args, "motion", None),
        motion_strength=getattr(args, "motion_strength", 1.0),
    )


class StageBars:
    """progress(stage, done, total) for run_file as one tqdm bar per stage; close() when done."""

    TITLES = {"faces": "tracking faces", "lipsync": "lip-sync"}

    def __init__(self) -> None:
        self.bars: dict = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if stage not in self.bars:  # created on the first frame, so input errors print no empty bar
            self.close()
            self.bars[stage] = tqdm(total=total, unit="frame", desc=self.TITLES.get(stage, stage), dynamic_ncols=True)
        self.bars[stage].update(done - self.bars[stage].n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def print_report(report) -> None:
    print(f"wrote {report.out}: {report.frames} frames at {report.fps} fps, {report.duration:.2f} s; "
          f"face found in {report.faces_found:.0%} of frames")
    if report.model is None:
        print("note: no OmniSync model ran (--model none, or no weights shipped), so the faces were tracked and "
              "blended back unchanged (no lip-sync).")


def _speech(args: argparse.Namespace):
    """(audio file or AudioTrack, phoneme timings or None, word timings) from --audio or --text / --text-file."""
    from ..errors import OmniSyncError
    from ..video import check_output_path

    if args.audio is not None and args.timings:
        raise OmniSyncError("--timings needs --text or --text-file (the timings come from the text to speech)")
    for path in (args.out, args.srt, args.timings):  # before any slow work, so a mistake costs nothing
        if path:
            check_output_path(path, args.overwrite)
    if args.audio is not None:
        return args.audio, None, []
    from ..speech.tts import synthesize, text_from

    text = text_from(args.text, args.text_file)
    speech = synthesize(text, args.voice, args.rate, args.pitch)
    print(f"spoke {len(speech.words)} words with {speech.voice}: {speech.duration:.2f} s")
    return speech.track(), speech.phonemes, speech.words


def _run_with_subtitles(args, audio, phonemes, words, settings, progress):
    """The lip-sync into a hidden file beside --out (``.OUT.nosubs.mp4``), then its streams copied with the
    subtitle track into --out (atomically); --srt writes the same cues. The hidden file's name is fixed, so
    that with --resume an interrupted run's finished frames (kept beside it) are found again."""
    import os
    from pathlib import Path

    from ..filemode import atomic_file
    from ..pipeline import run_file
    from ..speech.subtitles import cues_from_words, fit_cues, mux_subtitles, srt_text

    out = Path(args.out)
    plain = out.parent / f".{out.name}.nosubs.mp4"
    try:
        settings.overwrite = True  # the hidden file is ours; --out itself was checked before
        report = run_file(args.video, audio, plain, settings, progress=progress, phonemes=phonemes)
        cues = fit_cues(cues_from_words(words), report.duration)
        if args.subtitles:
            if out.exists() and not args.overwrite:
                from ..errors import OmniSyncError

                raise OmniSyncError(f"output '{out}' appeared while running; it was left as it is")
            mux_subtitles(plain, cues, out)
        else:
            os.replace(plain, out)
        if args.srt:
            with atomic_file(args.srt, suffix=".srt.tmp") as tmp:
                tmp.write_text(srt_text(cues), encoding="utf-8")
    finally:
        if os.path.exists(plain):
            os.unlink(plain)
    from dataclasses import replace

    return replace(report, out=out), len(cues)
