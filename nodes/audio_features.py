"""OmniSyncAudioFeatures: AUDIO + model + fps -> OMNISYNC_AUDIO (features at the model's spec)."""

from __future__ import annotations

from omnisync_core.audio.decode import FEATURE_RATE, AudioTrack, resample
from omnisync_core.audio.features import features_for
from omnisync_core.timeline import fit_audio

from .convert import audio_to_track
from .runtime import CATEGORY, check_fps, models_dirs
from .wires import OmniSyncAudio, OmniSyncModel


def audio_features(audio: dict, model: OmniSyncModel, fps: float, frame_count: int = 0) -> OmniSyncAudio:
    rate = check_fps(fps)
    track = audio_to_track(audio)
    frames = int(frame_count) if frame_count > 0 else max(1, round(track.duration * rate))
    track = AudioTrack(fit_audio(track.samples, round(frames / rate * track.sample_rate)), track.sample_rate)
    wav16k = resample(track.mono(), track.sample_rate, FEATURE_RATE)
    dirs = models_dirs()
    features = features_for(wav16k, model.loaded.audio_spec, device=model.device,
                            models_dir=dirs[0] if dirs else None)  # fmt: skip
    return OmniSyncAudio(features, rate, frames, track)


class OmniSyncAudioFeatures:
    DESCRIPTION = ("Turn speech into the audio features the model was trained on (log-mel or Whisper), "
                   "timed to the video's frames. The audio is cut or padded with silence to frame_count / fps.")
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("OMNISYNC_AUDIO",)
    RETURN_NAMES = ("audio_features",)
    OUTPUT_TOOLTIPS = ("Audio features + fps + frame count, for OmniSync Denoise.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": ("AUDIO", {"tooltip": "The speech to lip-sync to (any sample rate, mono or stereo)."}),
            "model": ("OMNISYNC_MODEL", {"tooltip": "Decides which audio features are made."}),
            "fps": ("FLOAT", {"default": 25.0, "min": 0.0, "max": 240.0, "step": 0.001,
                    "tooltip": "Frame rate of the video the audio goes with."}),
            "frame_count": ("INT", {"default": 0, "min": 0, "max": 1_000_000,
                            "tooltip": "Video frames to cover; 0 = as many as the audio lasts."}),
        }}  # fmt: skip

    def run(self, audio: dict, model: OmniSyncModel, fps: float, frame_count: int = 0):
        return (audio_features(audio, model, fps, frame_count),)


NODES = {"OmniSyncAudioFeatures": (OmniSyncAudioFeatures, "OmniSync Audio Features")}
