"""OmniSyncLipSync: the whole job in one node: frames + speech -> lip-synced frames + matched audio."""

from __future__ import annotations

from omnisync_core.audio.decode import FEATURE_RATE, resample
from omnisync_core.errors import OmniSyncError
from omnisync_core.lipsync import LipSyncSettings
from omnisync_core.model.hide_mouth import reference_frame
from omnisync_core.model.lip_map import lips_for, motion_gain
from omnisync_core.pipeline import default_model
from omnisync_core.streaming import BlendSettings, lipsync_stream

from .audio_features import audio_features
from .blend import MASK_INPUTS
from .convert import check_image, iter_uint8, track_to_audio, uint8_to_image
from .face_detect import BACKENDS, CHOICES, track_faces
from .model_loader import OmniSyncModelLoader
from .runtime import CATEGORY, cancelled, check_fps, progress_bar


def default_loaded_model():
    name = default_model()
    if name is None:
        raise OmniSyncError("no model connected and this OmniSync has no built-in weights; add an "
                            "'OmniSync Model Loader' node and connect it to the model input")  # fmt: skip
    return OmniSyncModelLoader().load(name)[0]


class OmniSyncLipSync:
    DESCRIPTION = ("Lip-sync a face in a video to new speech, all in one node: track the face, make the mouth "
                   "motion of the speech (or take the wired one), re-generate the mouth in that shape with OmniSync "
                   "window by window, blend it back. The audio comes out cut or "
                   "padded to the frames' length; match lengths first with OmniSync Match Length if needed.")
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE", "AUDIO")
    RETURN_NAMES = ("images", "audio")
    OUTPUT_TOOLTIPS = ("The lip-synced frames.", "The speech, exactly as long as the frames.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Video frames with a face."}),
            "audio": ("AUDIO", {"tooltip": "The new speech."}),
            "fps": ("FLOAT", {"default": 25.0, "min": 0.0, "max": 240.0, "step": 0.001,
                    "tooltip": "Frame rate of the frames (e.g. from Get Video Components)."}),
            "steps": ("INT", {"default": 10, "min": 1, "max": 200, "tooltip": "Denoising steps (the built-in weights "
                      "were measured with 10)."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip": "Noise seed."}),
        }, "optional": {
            "model": ("OMNISYNC_MODEL", {"tooltip": "From OmniSync Model Loader; empty = built-in weights, if any."}),
            "tau": ("FLOAT", {"default": 0.5, "min": 0.01, "max": 1.0, "step": 0.01,
                    "tooltip": "Starting noise level (progressive init)."}),
            "w_peak": ("FLOAT", {"default": 3.0, "min": 0.0, "max": 20.0, "step": 0.1,
                       "tooltip": "Audio guidance at the mouth."}),
            "backend": (BACKENDS, {"default": "auto", "tooltip": "Face detector."}),
            "face": (CHOICES, {"default": "largest", "tooltip": "Which face to edit."}),
            "detect_every": ("INT", {"default": 5, "min": 1, "max": 100, "tooltip": "Detector runs every N frames."}),
            "window": ("INT", {"default": 8, "min": 1, "max": 256, "tooltip": "Frames the model sees at once (memory); "
                       "the built-in weights were trained on 8."}),
            "overlap": ("INT", {"default": 2, "min": 0, "max": 255, "tooltip": "Frames cross-faded between windows."}),
            **MASK_INPUTS,
            "edit_region": ("FLOAT", {"default": 1.5, "min": 0.0, "max": 5.0, "step": 0.1,
                            "tooltip": "How much of the face the model may change: the mouth region of a face "
                            "this many times as wide. Outside it the source stays exactly. 0 = the whole crop."}),
            "motion": ("OMNISYNC_MOTION", {"tooltip": "The mouth shape of every frame (OmniSync Mouth Motion or "
                       "Motion From Video); empty = the built-in motion model makes it from the speech."}),
        }}  # fmt: skip

    def run(self, images, audio, fps=25.0, steps=10, seed=0, model=None, tau=0.5, w_peak=3.0, backend="auto",
            face="largest", detect_every=5, window=8, overlap=2, mask="lower", feather=0.04, color_match="lab",
            poisson=False, edit_region=1.5, motion=None):  # fmt: skip
        rate = check_fps(fps)
        n = check_image(images).shape[0]
        model = model if model is not None else default_loaded_model()
        speech = audio_features(audio, model, fps, n)
        # two passes over the IMAGE, each converting a few frames at a time: no copy of the batch
        track = track_faces(iter_uint8(images), n, backend, face, detect_every, model.crop_size, float(rate))
        settings = LipSyncSettings.from_config(model.loaded.config, steps=steps, seed=seed, tau=tau, w_peak=w_peak,
                                               window=window, overlap=overlap, edit_region=edit_region)  # fmt: skip
        blend = BlendSettings(mask, feather, color_match, poisson)
        lips = None
        if model.loaded.config.motion_map:  # the model draws the mouth it is given: the wired one, else the speech's
            wav = None if motion is not None else resample(speech.track.mono(), speech.track.sample_rate, FEATURE_RATE)
            lips = lips_for(track, rate, motion, wav, gain=motion_gain(model.loaded.config))
        ref = reference_frame(track)
        reference = next(iter_uint8(images[ref : ref + 1]))  # the batch is in memory: read it apart
        out = lipsync_stream(iter_uint8(images), track, speech.features, rate, model.loaded, settings, blend,
                             model.device, model.dtype, progress_bar(n), cancelled, lips=lips,
                             reference_image=reference)  # fmt: skip
        return (uint8_to_image(out, n), track_to_audio(speech.track))  # [T, H, W, 3]


NODES = {"OmniSyncLipSync": (OmniSyncLipSync, "OmniSync Lip Sync")}
