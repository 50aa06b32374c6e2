"""A Take: one person's captured motion, everything later stages need, saved as a plain ``.npz``.

The file holds only arrays and one JSON string (no pickles), so it loads in any NumPy without running
code. Frame ``i`` of a take is frame ``first_frame + i`` of the source video.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import PoseMoEError, __version__
from .files import atomic_output

FORMAT = "posemoe-take/1"

_ARRAYS = {  # name: trailing shape after the frame axis
    "keypoints_2d": (17, 2),
    "confidence": (17,),
    "filled": (),
    "long_gap": (),
    "repaired": (2,),
    "joints_camera": (17, 3),
    "joints_world": (17, 3),
}
#: Arrays added to the format after takes were first saved: an older take reads them as all False.
_ADDED = {"repaired": (2,)}


@dataclass
class Take:
    """keypoints_2d (N, 17, 2) detected pixels (interpolated where ``filled``); confidence (N, 17) the
    detector's, 0 where it saw nothing; filled (N,) frames bridged by interpolation; long_gap (N,)
    frames inside a gap too long to trust; repaired (N, 2) frames whose legs (column 0) or arms
    (column 1) the detector had labelled left for right, put back by :func:`posemoe.swaps.repair_swaps`
    (keypoints_2d and confidence are the repaired ones); joints_camera (N, 17, 3) metres, OpenCV camera space
    (x right, y down, z forward); joints_world (N, 17, 3) metres, Z up, floor at Z = 0, Y away from
    the camera; world_rotation (3, 3) and world_origin (3,) map camera to world
    (``world = (camera - origin) @ rotation.T``); focal_px the focal length used."""

    keypoints_2d: np.ndarray
    confidence: np.ndarray
    filled: np.ndarray
    long_gap: np.ndarray
    repaired: np.ndarray
    joints_camera: np.ndarray
    joints_world: np.ndarray
    world_rotation: np.ndarray
    world_origin: np.ndarray
    fps: float
    width: int
    height: int
    focal_px: float
    first_frame: int = 0
    source: str = ""
    model: str = ""
    settings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.joints_world)

    @property
    def duration(self) -> float:
        """Seconds."""
        return len(self) / self.fps

    def save(self, path: str | Path) -> Path:
        """Write the take atomically (a temporary file renamed into place): no partial file on failure."""
        path = Path(path)
        if path.suffix != ".npz":
            raise PoseMoEError(f"A take is saved as .npz; {path} has another extension.")
        meta = {k: v for k, v in asdict(self).items() if k not in _ARRAYS and k not in ("world_rotation", "world_origin")}
        meta.update(format=FORMAT, posemoe=__version__)
        with atomic_output(path) as tmp:
            np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), world_rotation=self.world_rotation,
                                world_origin=self.world_origin, **{k: getattr(self, k) for k in _ARRAYS})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Take":
        """Read a take written by :meth:`save`; a wrong or damaged file raises PoseMoEError."""
        path = Path(path)
        if not path.is_file():
            raise PoseMoEError(f"There is no take at {path}: check the path.")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {k: data[k] for k in (*_ARRAYS, "world_rotation", "world_origin") if k in data or k not in _ADDED}
                for name, shape in _ADDED.items():  # takes saved before the array existed
                    arrays.setdefault(name, np.zeros((len(arrays["joints_world"]), *shape), dtype=bool))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise PoseMoEError(f"{path} is not a PoseMoE take or is damaged ({error}); capture the video again.") from error
        if meta.pop("format", None) != FORMAT:
            raise PoseMoEError(f"{path} is not a {FORMAT} file; capture the video again with this version.")
        meta.pop("posemoe", None)
        n = len(arrays["joints_world"])
        for name, shape in _ARRAYS.items():
            if arrays[name].shape != (n, *shape):
                raise PoseMoEError(f"{path} is damaged: {name} has shape {arrays[name].shape}, expected {(n, *shape)}.")
        return cls(**arrays, **meta)
