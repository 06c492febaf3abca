"""The whole job, file to file, streaming: decode -> match length -> lip-sync -> encode.

Pass 1 tracks the face through the source (keeping only the small per-frame track); pass 2
decodes again and streams frames through the lip-sync windows, the blend and the encoder, so
memory does not grow with the length of the video. The stages are plain functions from the
other modules; this file only wires them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .audio.decode import FEATURE_RATE, AudioTrack, load_audio_track, resample
from .cancel import check
from .containers import container_for
from .devices import resolve_device
from .errors import OmniSyncError, warn
from .face import FaceTrack
from .provenance import provenance_tags
from .run_checks import check_run_settings
from .streaming import BlendSettings, lipsync_stream
from .timeline import LengthPolicy, fit_audio, iter_planned_frames, plan_length
from .video import VideoInfo, VideoWriter, check_output_path, iter_frames, probe_video

Progress = Callable[[int, int], None]


@dataclass
class RunSettings:
    """Everything ``omnisync run`` can be told; the defaults are what a user should get."""

    model: str | None = None  # folder, Hub repository, "renderer" or "starter"; None: the shipped default; "none": none
    revision: str | None = None
    models_dir: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    sampler: dict = field(default_factory=dict)  # LipSyncSettings overrides (steps, tau, w_peak, seed, ...)
    backend: str = "auto"  # face detector
    detect_every: int = 5
    face: str = "largest"
    fade: int = 3
    blend: BlendSettings = field(default_factory=BlendSettings)
    length_policy: LengthPolicy = LengthPolicy.PINGPONG
    chunk_frames: int = 32  # frames decoded and written at a time when no model runs
    crf: int = 18
    preset: str = "medium"
    overwrite: bool = False
    resume: bool = False  # keep finished frames (resume.ResumeJournal) so that a rerun continues
    motion: str | None = None  # a mouth motion track JSON (omnisync motion) to draw; None: made from the speech
    motion_strength: float = 1.0  # scale the mouth's movements around its resting shape (1 as made)
    runtime: str = "torch"  # what runs the DiT: "torch" | "onnx" (onnxruntime, onnx_runtime.with_onnx)
    onnx_dir: str | None = None  # runtime "onnx": an `omnisync export onnx` folder; None: exported once, cached


@dataclass(frozen=True)
class RunReport:
    out: Path
    frames: int
    fps: object
    duration: float
    source: VideoInfo
    faces_found: float  # fraction of output frames with a face
    model: str | None  # what re-generated the mouth; None: faces passed through unchanged
    phonemes: list | None = None  # list[PhonemeTiming] of the output's speech, when known (text to speech)


NO_MODEL = "none"  # RunSettings.model / --model value: no re-generation


def default_model() -> str | None:
    """The default weights shipped inside the package (``hub.default_builtin``: the renderer), when this version
    has them."""
    from .hub import default_builtin

    folder = default_builtin()
    return str(folder) if folder is not None else None


def track_source(video: str | os.PathLike, info: VideoInfo, settings: RunSettings,
                 progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> FaceTrack:
    """Pass 1: detect and track the chosen face over the source frames (small: no pixels kept)."""
    from .face import FaceTracker, make_detector

    tracker = FaceTracker(make_detector(settings.backend), crop_size=settings_crop_size(settings),
                          detect_every=settings.detect_every, choose=settings.face, fps=float(info.fps))
    records = []
    for i, frame in enumerate(iter_frames(video)):
        check(cancelled)
        records.append(tracker.update(frame))
        if progress:
            progress(i + 1, info.frame_count)
    if not records:
        raise OmniSyncError(f"'{video}' has no frames")
    tracker.check_choice()
    return FaceTrack.from_frames(records, tracker.crop_size, tracker.frame_size, fade=settings.fade)


def settings_crop_size(settings: RunSettings) -> int:
    return settings.sampler.get("crop_size", 256)


def run_file(
    video: str | os.PathLike,
    audio: str | os.PathLike | AudioTrack,
    out: str | os.PathLike,
    settings: RunSettings | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    phonemes: list | None = None,
) -> RunReport:
    """Re-voice ``video`` with ``audio`` (a file, or samples already in memory, e.g. from text to
    speech) into ``out`` (written atomically). ``phonemes`` (list[PhonemeTiming] of that audio) come
    back on the report, fitted to the output's length.

    ``progress(stage, done, total)`` is called with stage ``faces`` (pass 1: tracking the
    source) and ``lipsync`` (pass 2: generating, blending and writing)."""
    settings = settings or RunSettings()
    check_run_settings(settings)
    check_output_path(out, settings.overwrite)
    container_for(out)
    info = probe_video(video)
    if info.truncation_warning():
        warn(info.truncation_warning())
    speech: AudioTrack = audio if isinstance(audio, AudioTrack) else load_audio_track(audio)
    plan = plan_length(info.frame_count, info.fps, speech.duration, settings.length_policy)
    speech = AudioTrack(fit_audio(speech.samples, plan.audio_samples(speech.sample_rate)), speech.sample_rate)
    if phonemes is not None:
        from .speech.timing import fit_timings

        phonemes = fit_timings(phonemes, plan.duration)

    device, dtype = resolve_device(settings.device, settings.dtype)
    model_name = settings.model or default_model()
    if model_name and str(model_name).strip().lower() == NO_MODEL:
        model_name = None  # track and blend back unchanged: a quick check of faces and I/O
    loaded, lipsync = None, None
    if model_name:
        from .hub import load_omnisync

        loaded = load_omnisync(model_name, device=device, dtype=dtype, revision=settings.revision,
                               models_dir=settings.models_dir)
        if settings.runtime == "onnx":
            from .onnx_runtime import with_onnx

            loaded = with_onnx(loaded, settings.onnx_dir)
        settings.sampler.setdefault("crop_size", loaded.config.crop_size)
        from .lipsync import LipSyncSettings

        # built before tracking, so bad sampler settings fail at once, not after a long first pass
        overrides = {k: v for k, v in settings.sampler.items() if k != "crop_size"}
        lipsync = LipSyncSettings.from_config(loaded.config, **overrides)
    stage = (lambda name: (lambda done, total: progress(name, done, total))) if progress else (lambda name: None)
    source_track = track_source(video, info, settings, stage("faces"), cancelled)
    track = source_track.take(plan.frame_indices, fade=settings.fade)

    features = None
    if loaded is not None:
        from .audio.features import features_for

        wav16k = resample(speech.mono(), speech.sample_rate, FEATURE_RATE)
        features = features_for(wav16k, loaded.audio_spec, device=device, models_dir=settings.models_dir)

    lips = None
    if loaded is not None and loaded.config.motion_map:  # the model draws the mouth it is given
        from .model.lip_map import motion_gain

        lips = target_lips(track, info.fps, wav16k, settings, phonemes, motion_gain(loaded.config))

    journal = _journal(video, audio, out, settings, model_name, info) if settings.resume else None
    done = journal.done if journal is not None else 0
    lipsync_progress = stage("lipsync")

    def handed_on(finished: int, total: int) -> None:  # a hand-out of the stream is complete
        if journal is not None:
            journal.flush()
        if lipsync_progress is not None:
            lipsync_progress(finished, total)

    frames = iter_planned_frames(video, plan, settings.chunk_frames)
    from .model.hide_mouth import needs_reference, reference_frame

    reference = None
    if loaded is not None and needs_reference(loaded.config) and track.edit_weight.any():
        # the reference frame can lie anywhere in the clip: read it apart, so the stream holds no frames up to it
        reference = next(iter_frames(video, int(plan.frame_indices[reference_frame(track)]), 1))
    output = lipsync_stream(frames, track, features, info.fps, loaded, lipsync, settings.blend, device, dtype,
                            handed_on, cancelled, skip_before=done, lips=lips, reference_image=reference)  # fmt: skip
    with VideoWriter(out, info.fps, speech, overwrite=settings.overwrite, crf=settings.crf, preset=settings.preset,
                     metadata=provenance_tags(model_name if loaded is not None else None)) as writer:
        if journal is not None:
            for frame in journal.frames():  # what an interrupted run finished, bit for bit
                writer.write(frame)
        for frame in output:
            writer.write(frame)
            if journal is not None:
                journal.add(frame)
    if journal is not None:
        journal.discard()
    return RunReport(Path(out), plan.frame_count, info.fps, plan.duration, info, float(track.valid.mean()),
                     model_name, phonemes)


def target_lips(track: FaceTrack, fps, wav16k, settings: RunSettings, phonemes: list | None = None,
                gain: float = 1.0):  # fmt: skip
    """The lip points [T, P, 2] (crop px) the model draws in each output frame: the given motion track, else
    the one the built-in motion model makes of the speech (phoneme timings when known), on this face's own
    resting mouth, scaled by ``motion_strength`` and the model's ``gain``."""
    from .model.lip_map import lips_for
    from .motion.track import read_motion_json

    motion = read_motion_json(settings.motion) if settings.motion else None
    return lips_for(track, fps, motion, wav16k, phonemes, settings.motion_strength, gain)


def _journal(video, audio, out, settings: RunSettings, model_name: str | None, info: VideoInfo):
    """The resume journal of this exact command (inputs by identity, every setting, the version)."""
    from dataclasses import asdict

    from . import __version__
    from .resume import ResumeJournal, file_identity

    chosen = {k: v for k, v in asdict(settings).items() if k not in ("overwrite", "resume")}
    state = {"version": __version__, "video": file_identity(video), "audio": file_identity(audio),
             "model": model_name, "settings": chosen}  # fmt: skip
    journal = ResumeJournal(out, state, info.fps)
    journal.start()
    return journal
