"""A Take: one person's captured motion, everything later stages need, saved as a plain ``.npz``.

One file holds the takes of everyone captured from one video (:func:`save_takes`, :func:`load_takes`),
all in one world; a one-person capture is a file with one take. The file holds only arrays and one
JSON string (no pickles), so it loads in any NumPy without running code. Frame ``i`` of a take is frame
``first_frame + i`` of the source video; each person's take covers their own frames.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import PoseMoEError, __version__
from .camera import CameraPath
from .files import atomic_output
from .skeleton import NUM_JOINTS

#: Version 3 adds the camera's pose in every frame; version 2 (several people, arrays named
#: ``person<k>.<name>``) and version 1 (one person's arrays under their plain names) still read, as
#: filmed by a static camera.
FORMAT = "posemoe-take/3"
_SEVERAL = ("posemoe-take/2", FORMAT)
_ONE_PERSON = "posemoe-take/1"

_ARRAYS = {  # name: trailing shape after the frame axis
    "keypoints_2d": (NUM_JOINTS, 2),
    "confidence": (NUM_JOINTS,),
    "filled": (),
    "long_gap": (),
    "repaired": (2,),
    "joints_camera": (NUM_JOINTS, 3),
    "joints_world": (NUM_JOINTS, 3),
    "hands_2d": (2, 21, 3),
    "hand_presence": (2,),
    "camera_rotation": (3, 3),
    "camera_translation": (3,),
}
#: Arrays added to the format after takes were first saved, and what an older take reads instead (a
#: static camera: identity rotations, no travel).
_ADDED = {"repaired": False, "hands_2d": np.nan, "hand_presence": 0.0, "camera_rotation": np.eye(3),
          "camera_translation": 0.0}


@dataclass
class Take:
    """keypoints_2d (N, 17, 2) detected pixels (interpolated where ``filled``); confidence (N, 17) the
    detector's, 0 where it saw nothing; filled (N,) frames bridged by interpolation; long_gap (N,)
    frames inside a gap too long to trust; repaired (N, 2) frames whose legs (column 0) or arms
    (column 1) the detector had labelled left for right, put back by :func:`posemoe.swaps.repair_swaps`
    (keypoints_2d and confidence are the repaired ones); hands_2d (N, 2, 21, 3) each hand's 21 landmarks
    in MediaPipe's order (hand 0 the person's left, 1 the right): x, y pixels and z, the hand model's
    depth relative to the wrist in the same pixel scale (towards the camera negative), NaN where the
    hand was not captured; hand_presence (N, 2) in [0, 1], 0 where not captured or not asked for;
    joints_camera (N, 17, 3) metres, each frame's own camera space, OpenCV axes
    (x right, y down, z forward); camera_rotation (N, 3, 3) and camera_translation (N, 3) metres the
    camera's pose in each frame, taking the video's first frame's camera to this frame's
    (:class:`posemoe.camera.CameraPath`; identities and zeros for a static camera); joints_world
    (N, 17, 3) metres, Z up, floor at Z = 0, Y away from the first frame's camera; world_rotation (3, 3)
    and world_origin (3,) map the first frame's camera to the world (``world = (camera - origin) @
    rotation.T``); focal_px the focal length used. person: this
    person's number in the capture (1 is the largest, or the first picked; everyone captured from one
    video shares the camera, the world and the numbering); notes: sentences for the user about the
    capture (people left out, for example)."""

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
    person: int = 1
    notes: list[str] = field(default_factory=list)
    hands_2d: np.ndarray | None = None
    hand_presence: np.ndarray | None = None
    camera_rotation: np.ndarray | None = None
    camera_translation: np.ndarray | None = None

    def __post_init__(self):
        # A capture without hands (or from before hands existed): no hand seen in any frame.
        n = len(self.joints_world)
        if self.hands_2d is None:
            self.hands_2d = np.full((n, 2, 21, 3), np.nan, dtype=np.float32)
        if self.hand_presence is None:
            self.hand_presence = np.zeros((n, 2), dtype=np.float32)
        if self.camera_rotation is None:  # a static camera
            self.camera_rotation = np.tile(np.eye(3), (n, 1, 1))
        if self.camera_translation is None:
            self.camera_translation = np.zeros((n, 3))

    def camera_poses(self) -> tuple[np.ndarray, np.ndarray]:
        """The camera in the world in every frame: (rotations (N, 3, 3) taking that frame's camera axes
        (OpenCV) to the world's, centres (N, 3) world metres)."""
        rotation = np.asarray(self.world_rotation, dtype=np.float64)
        turns = np.asarray(self.camera_rotation, dtype=np.float64)
        centres = CameraPath(turns, np.asarray(self.camera_translation, dtype=np.float64), np.zeros(len(turns), bool)).centres()
        return rotation @ np.swapaxes(turns, -1, -2), (centres - self.world_origin) @ rotation.T

    def camera_moved(self) -> bool:
        """Whether the camera turned or travelled away from its first frame's pose in some frame."""
        turned = np.any(np.asarray(self.camera_rotation) != np.eye(3))
        return bool(turned or np.any(np.asarray(self.camera_translation) != 0))

    def __len__(self) -> int:
        return len(self.joints_world)

    @property
    def duration(self) -> float:
        """Seconds."""
        return len(self) / self.fps

    def save(self, path: str | Path) -> Path:
        """Write this one take (see :func:`save_takes`)."""
        return save_takes(path, [self])

    @classmethod
    def load(cls, path: str | Path) -> "Take":
        """Read a file holding one person's take; raises PoseMoEError for a wrong or damaged file, or
        one with several people (read those with :func:`load_takes`)."""
        takes = load_takes(path)
        if len(takes) != 1:
            raise PoseMoEError(f"{path} holds {len(takes)} people; read it with posemoe.take.load_takes.")
        return takes[0]


def save_takes(path: str | Path, takes: list[Take]) -> Path:
    """Write everyone's takes to one ``.npz`` atomically (a temporary file renamed into place): no
    partial file on failure."""
    path = Path(path)
    if path.suffix != ".npz":
        raise PoseMoEError(f"A take is saved as .npz; {path} has another extension.")
    if not takes:
        raise PoseMoEError("There is no take to save: nobody was captured.")
    people, arrays = [], {}
    for k, take in enumerate(takes):
        people.append({k: v for k, v in asdict(take).items() if k not in _ARRAYS and k not in ("world_rotation", "world_origin")})
        for name in (*_ARRAYS, "world_rotation", "world_origin"):
            arrays[f"person{k}.{name}"] = getattr(take, name)
    meta = {"format": FORMAT, "posemoe": __version__, "people": people}
    with atomic_output(path) as tmp:
        np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
    return path


def load_takes(path: str | Path) -> list[Take]:
    """Read everyone's takes from a file written by :func:`save_takes` (or a one-person take of
    format version 1); a wrong or damaged file raises PoseMoEError."""
    path = Path(path)
    if not path.is_file():
        raise PoseMoEError(f"There is no take at {path}: check the path.")
    names = (*_ARRAYS, "world_rotation", "world_origin")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            version = meta.get("format")
            if version == _ONE_PERSON:
                people = [{k: v for k, v in meta.items() if k not in ("format", "posemoe")}]
                prefixes = [""]
            elif version in _SEVERAL:
                people = meta["people"]
                prefixes = [f"person{k}." for k in range(len(people))]
            else:
                raise PoseMoEError(f"{path} is not a {FORMAT} file; capture the video again with this version.")
            arrays = []
            for prefix in prefixes:
                found = {name: data[prefix + name] for name in names if prefix + name in data or name not in _ADDED}
                for name, fill in _ADDED.items():  # takes saved before the array existed
                    found.setdefault(name, np.broadcast_to(fill, (len(found["joints_world"]), *_ARRAYS[name])).copy())
                arrays.append(found)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
        raise PoseMoEError(f"{path} is not a PoseMoE take or is damaged ({error}); capture the video again.") from error
    takes = []
    for found, person in zip(arrays, people):
        n = len(found["joints_world"])
        for name, shape in _ARRAYS.items():
            if found[name].shape != (n, *shape):
                raise PoseMoEError(f"{path} is damaged: {name} has shape {found[name].shape}, expected {(n, *shape)}.")
        takes.append(Take(**found, **person))
    return takes
