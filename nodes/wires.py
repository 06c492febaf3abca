"""What the custom wires carry: small dataclasses passed between OmniSync nodes."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch

from omnisync_core.audio.decode import AudioTrack
from omnisync_core.audio.features import AudioFeatures
from omnisync_core.face import FaceTrack
from omnisync_core.hub import LoadedModel


@dataclass
class OmniSyncModel:  # wire OMNISYNC_MODEL
    loaded: LoadedModel
    device: torch.device
    dtype: torch.dtype
    name: str

    @property
    def crop_size(self) -> int:
        return self.loaded.config.crop_size


@dataclass
class OmniSyncAudio:  # wire OMNISYNC_AUDIO
    features: AudioFeatures  # values [N, D] at features.rate per second
    fps: Fraction
    frame_count: int  # video frames the audio covers
    track: AudioTrack  # the waveform, cut / padded to frame_count / fps


@dataclass
class OmniSyncFaces:  # wire OMNISYNC_FACES
    track: FaceTrack  # one chosen face over T frames
    crops: torch.Tensor  # [T, 3, S, S] 0..1, aligned face crops


# wire OMNISYNC_MOTION: omnisync_core.motion.MouthMotion (values [T, K] named lip-shape components, fps)


@dataclass
class OmniSyncLatent:  # wire OMNISYNC_LATENT
    z_src: torch.Tensor  # [T, C, h, w] source crops in the model's latent space
    x: torch.Tensor  # [T, C, h, w] current sample at noise level `sigma`
    sigma: float  # 0 = denoised
    seed: int
    mouth_centre: torch.Tensor  # [T, 2] crop px
    face_width: torch.Tensor  # [T] crop px
    track: FaceTrack | None = None  # the faces' track (landmarks): where the lip map of a motion is drawn
    # [T, C, h, w] the source the model sees, when not z_src (init "warp": the source warped to the motion's
    # shape); z_src stays what the sampler keeps outside the edit region
    z_seen: torch.Tensor | None = None
