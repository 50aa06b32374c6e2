"""Capture settings: what :func:`posemoe.pipeline.capture` is asked to do, stored in every take.

Apart from the pipeline so that code which only describes a capture (the Blender add-on, which hands
it to a worker Python) imports neither OpenCV nor ONNX Runtime nor torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from .camera import DEFAULT_FOV_DEGREES

#: How the capture treats the camera (:attr:`Settings.camera`): here, not in the pipeline, so that the
#: command line and the Blender panel list them without importing the capture.
CAMERA_CHOICES = ("auto", "static", "moving")


@dataclass
class Settings:
    """Capture settings, stored in every take.

    start, stop: video frame range (stop None: to the end). people: how many people to capture, the
    largest first (0: everyone seen long enough, see :func:`posemoe.track.select_people`). picks:
    (x px, y px, video frame) points, each picking the person there (they override ``people``).
    max_gap_s: longer detection gaps are flagged
    ``long_gap``. fov_degrees: camera field of view across the longer side, used when focal_px is None
    (the default, a phone's main camera, counts as not knowing the lens: see :attr:`lens_given`).
    flip, stride: lifting options (see :meth:`posemoe.lift.Lifter.lift`). max_people: people the
    detector looks for in each frame. workers: threads that share the default detector's work, each
    on its own stretch of the video (0: one per CPU core, at least 60 frames each, see
    :func:`posemoe.detect.parallel.auto_workers`; 1: all in the calling thread). hands: also capture
    each person's hands (21 landmarks each, ``Take.hands_2d``), for finger keys. camera: "static"
    takes the camera as fixed; "moving" solves its turn from the background in every frame
    (:mod:`posemoe.camera_motion`) and carries each frame's joints into the first frame's camera;
    "auto" solves it and keeps it only where the camera turned more than
    :data:`posemoe.camera_motion.STATIC_DEGREES`.
    """

    start: int = 0
    stop: int | None = None
    people: int = 1
    picks: tuple[tuple[float, float, int], ...] = ()
    max_gap_s: float = 0.5
    fov_degrees: float = DEFAULT_FOV_DEGREES
    focal_px: float | None = None
    flip: bool = True
    stride: int | None = None
    max_people: int = 3
    workers: int = 0
    hands: bool = False
    camera: str = "auto"

    @property
    def lens_given(self) -> bool:
        """Whether the user told us the lens (a focal length, or a field of view other than the
        default). The lifting network is told so (``ModelConfig.lens_input``): a guessed lens needs a
        more cautious reading of the picture than a known one. Blender keeps the default in single
        precision, hence the tolerance."""
        return self.focal_px is not None or abs(self.fov_degrees - DEFAULT_FOV_DEGREES) > 1e-4
