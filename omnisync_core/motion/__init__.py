"""The mouth-motion stage: which lip shape each video frame should show.

- :mod:`.measure`: 68-point landmarks -> normalised lip + jaw points (aligned crop, face widths);
- :mod:`.basis`: named components (opening, width, jaw, rounding, smile, asymmetry) and back;
- :mod:`.track`: :class:`MouthMotion`, the ``OMNISYNC_MOTION`` wire, and its JSON form;
- :mod:`.predict`: speech -> motion with the trained model (:mod:`.model`, :mod:`.speech`);
- :mod:`.phonemes`: phoneme timings -> visemes -> motion;
- :mod:`.sources`: motion measured from a video, or transferred from another speaker;
- :mod:`.controls`: strength, smoothing, resting mouth, re-timing;
- :mod:`.make`: one request (the command line's) -> one track; :mod:`.plot`: pictures of tracks.
"""

from .basis import COMPONENTS, LipBasis
from .track import MouthMotion, read_motion_json, write_motion_json

__all__ = ["COMPONENTS", "LipBasis", "MouthMotion", "read_motion_json", "write_motion_json"]
