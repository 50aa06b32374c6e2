"""Virtual phone cameras around Human3.6M's 3D motion: the framings and frame rates users film at.

Human3.6M has four fixed cameras at one height, 50 frames/s. Users film with phones: from any side,
from knee height to overhead, 2-10 m away, 55-85 degree lenses, landscape or portrait, at 24-60
frames/s, the person off-centre and now and then partly out of the picture. :class:`VirtualViews`
draws such a camera for every window, projects the subject's 3D through it (pinhole, no distortion),
and gives the window as the product would see it: sampled at the camera's frame rate and resampled
to the network's rate by the same function the Lifter uses.

Cameras are a pure function of (seed, purpose, index): training draws with :data:`TRAIN_STREAM`,
evaluation with :data:`EVAL_STREAM`, so the two never share a camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posemoe.camera import screen_focal
from posemoe.normalize import NETWORK_FPS, resample_inputs, resample_track
from posemoe.rotations import look_at
from posemoe.skeleton import NUM_JOINTS, PELVIS, ROOT

TRAIN_STREAM = 1
EVAL_STREAM = 2
#: Up in Human3.6M's world (z up): the virtual cameras keep their picture's x axis level against it.
WORLD_UP = (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class ViewRanges:
    """Where a virtual camera may be. Angles in degrees, lengths in metres, rates in frames/s.

    aim_spread: how far from the picture's centre the person's mean pelvis is aimed, as a share of
    the half-width and half-height; out_of_frame_prob: chance the aim may be anywhere in the whole
    picture instead, so that near an edge part of the body leaves it.
    """

    pitch: tuple[float, float] = (-25.0, 10.0)
    height: tuple[float, float] = (0.5, 2.2)
    distance: tuple[float, float] = (2.0, 10.0)
    fov: tuple[float, float] = (55.0, 85.0)
    fps: tuple[float, float] = (20.0, 60.0)
    portrait_prob: float = 0.5
    aim_spread: float = 0.6
    out_of_frame_prob: float = 0.1


@dataclass
class ViewBatch:
    """Windows seen through virtual cameras. screen: (B, T, 17, 3) screen x, y (origin at the picture
    centre, half the width 1) and visibility at the network's rate; target: (B, T, 17, 3) root-relative
    camera metres; focal: (B,) the lens, screen units; default_focal: (B,) the lens the product assumes
    for the picture when not told (:func:`posemoe.camera.screen_focal`); fps: (B,) the camera's rate;
    in_frame: (B, T, 17) bool."""

    screen: np.ndarray
    target: np.ndarray
    focal: np.ndarray
    default_focal: np.ndarray
    fps: np.ndarray
    in_frame: np.ndarray


def load_world(path: str | Path, subjects: tuple[str, ...]) -> dict[str, np.ndarray]:
    """World 3D of every sequence of ``subjects``, by "subject/action" in sorted order: (N, 17, 3)
    metres, z up, 50 frames/s."""
    data = np.load(path)
    return {k: data[k].astype(np.float32) / 1000.0 for k in sorted(data.files) if "/" in k and k.split("/", 1)[0] in subjects}


def sample_cameras(rng: np.random.Generator, pelvis: np.ndarray, ranges: ViewRanges) -> dict:
    """Draw one camera per window around its mean pelvis.

    pelvis: (B, 3) world metres. Returns R (B, 3, 3) world -> camera, centre (B, 3) metres, focal
    (B,) screen units, aspect (B,) height / width.
    """
    b = len(pelvis)
    yaw = rng.uniform(0, 2 * np.pi, b)
    distance = rng.uniform(*ranges.distance, b)
    height = rng.uniform(*ranges.height, b)
    fov = np.radians(rng.uniform(*ranges.fov, b))
    portrait = rng.random(b) < ranges.portrait_prob
    aspect = np.where(portrait, 16 / 9, 9 / 16)  # height / width
    # Focal in screen units (half the width is 1); the field of view spans the longer side.
    focal = np.where(portrait, 16 / 9, 1.0) / np.tan(fov / 2)
    centre = np.stack([pelvis[:, 0] + distance * np.cos(yaw), pelvis[:, 1] + distance * np.sin(yaw), height], axis=1)
    # Aim so that the pelvis lands at a drawn place in the picture (now and then anywhere in it).
    spread = np.where(rng.random((b, 1)) < ranges.out_of_frame_prob, 1.0, ranges.aim_spread)
    target_screen = rng.uniform(-1, 1, (b, 2)) * spread * np.stack([np.ones(b), aspect], axis=1)
    to_pelvis = pelvis - centre
    horizontal = np.linalg.norm(to_pelvis[:, :2], axis=1)
    pelvis_yaw = np.arctan2(to_pelvis[:, 1], to_pelvis[:, 0])
    pelvis_pitch = np.arctan2(to_pelvis[:, 2], horizontal)
    look_yaw = pelvis_yaw + np.arctan(target_screen[:, 0] / focal)
    look_pitch = np.clip(pelvis_pitch + np.arctan(target_screen[:, 1] / focal), *np.radians(ranges.pitch))
    forward = np.stack([np.cos(look_pitch) * np.cos(look_yaw), np.cos(look_pitch) * np.sin(look_yaw), np.sin(look_pitch)], axis=1)
    return {"R": look_at(forward, WORLD_UP), "centre": centre, "focal": focal, "aspect": aspect}


class VirtualViews:
    """Windows of ``frames`` network frames from world 3D sequences, seen through virtual cameras.

    sequences: list of (N, 17, 3) world metres at 50 frames/s (the values of :func:`load_world`).
    """

    def __init__(self, sequences: list[np.ndarray], frames: int, ranges: ViewRanges = ViewRanges()):
        self.frames = frames
        self.ranges = ranges
        self.world = np.concatenate(sequences)
        # Window starts leave 3 frames on either side within their sequence: a 20 frames/s camera's
        # frames reach up to 2.5 frames beyond the window.
        offsets = np.cumsum([0] + [len(s) for s in sequences])
        self.starts = np.concatenate([np.arange(o + 3, o + len(s) - frames - 3) for o, s in zip(offsets, sequences)])

    def __len__(self) -> int:
        return len(self.starts)

    def _at(self, frames: np.ndarray) -> np.ndarray:
        """World joints at fractional frame numbers (...), linearly interpolated: (..., 17, 3)."""
        lo = np.clip(np.floor(frames).astype(np.int64), 0, len(self.world) - 2)
        w = np.clip(frames - lo, 0.0, 1.0)[..., None, None].astype(np.float32)
        return self.world[lo] * (1 - w) + self.world[lo + 1] * w

    def batch(self, rng: np.random.Generator, count: int, fps: float | None = None) -> ViewBatch:
        """Draw ``count`` windows, each through its own camera at its own frame rate (``fps`` fixes
        the rate for all). Returns a :class:`ViewBatch`."""
        r = self.ranges
        t = self.frames
        starts = self.starts[rng.integers(0, len(self.starts), count)]
        rate = np.full(count, float(fps)) if fps else rng.uniform(*r.fps, count)
        # The camera's own frames: sample k at (k + phase - 1) / rate seconds after the window's start
        # (the first just before it), enough of them to span the window at the network's rate.
        n_src = np.ceil((t - 1) / NETWORK_FPS * rate).astype(int) + 1
        src_time = (np.arange(n_src.max())[None, :] + rng.random((count, 1)) - 1) / rate[:, None]  # (B, K) s
        src_world = self._at(starts[:, None] + src_time * 50.0)  # (B, K, 17, 3)
        # The product resamples the camera's frames to the network's rate from the first one on
        # (posemoe.normalize.resample_inputs), so the truth is at those times too.
        grid_time = src_time[:, :1] + np.arange(t)[None, :] / NETWORK_FPS
        truth_world = self._at(starts[:, None] + grid_time * 50.0)  # (B, T, 17, 3)
        cams = sample_cameras(rng, truth_world[:, :, PELVIS].mean(1), r)
        rot, centre, focal = cams["R"], cams["centre"], cams["focal"]
        src_cam = np.einsum("bij,bkmj->bkmi", rot, src_world - centre[:, None, None])
        truth_cam = np.einsum("bij,bkmj->bkmi", rot, truth_world - centre[:, None, None])
        src_xy = src_cam[..., :2] / np.maximum(src_cam[..., 2:3], 0.05) * focal[:, None, None, None]
        screen = np.empty((count, t, NUM_JOINTS, 3), dtype=np.float32)
        for i in range(count):
            seen = np.concatenate([src_xy[i, : n_src[i]], np.ones((n_src[i], NUM_JOINTS, 1))], axis=-1)
            screen[i] = resample_inputs(seen, rate[i], NETWORK_FPS)[:t]
        bounds = np.stack([np.ones(count), cams["aspect"]], axis=1)[:, None, None, :]
        in_frame = (np.abs(screen[..., :2]) <= bounds).all(-1) & (truth_cam[..., 2] > 0.1)
        target = (truth_cam - truth_cam[:, :, ROOT, None]).astype(np.float32)
        default = np.where(cams["aspect"] > 1, screen_focal(1080, 1920), screen_focal(1920, 1080))
        return ViewBatch(screen, target, focal.astype(np.float32), default.astype(np.float32), rate, in_frame)


@dataclass
class ClipView:
    """A whole sequence filmed by one virtual camera, as a user's video would give it.

    pixels: (M, 17, 2) the joints' projections at the camera's ``fps``; in_frame: (M, 17) bool;
    truth: (M, 17, 3) root-relative camera metres at the same instants; width, height: the picture
    in pixels (1920x1080 or 1080x1920); focal_px: the lens; camera: the draw (see :func:`sample_cameras`).
    """

    pixels: np.ndarray
    in_frame: np.ndarray
    truth: np.ndarray
    fps: float
    width: int
    height: int
    focal_px: float
    camera: dict


def film(world: np.ndarray, fps: float, rng: np.random.Generator, ranges: ViewRanges = ViewRanges(),
         tries: int = 50) -> ClipView:
    """Film a whole 50 frames/s world sequence (N, 17, 3) with one camera drawn from ``rng``, at ``fps``.

    A draw is kept when every joint stays at least 0.5 m in front of the lens and the pelvis is in the
    picture in at least 90 % of the frames (so that "partly out of frame" stays now and then).
    """
    count = int(np.floor((len(world) - 1) / 50.0 * fps + 1e-9)) + 1
    seen = resample_track(world, 50.0, fps, count)  # (M, 17, 3) at the camera's instants
    for _ in range(tries):
        cam = {k: v[0] for k, v in sample_cameras(rng, seen[:, PELVIS].mean(0, keepdims=True), ranges).items()}
        local = (seen - cam["centre"]) @ cam["R"].T
        if local[..., 2].min() < 0.5:
            continue
        xy = local[..., :2] / local[..., 2:3] * cam["focal"]
        bounds = np.array([1.0, cam["aspect"]])
        in_frame = (np.abs(xy) <= bounds).all(-1)
        if in_frame[:, PELVIS].mean() < 0.9:
            continue
        portrait = cam["aspect"] > 1
        width, height = (1080, 1920) if portrait else (1920, 1080)
        pixels = (xy + bounds) * width / 2.0
        return ClipView(pixels, in_frame, local - local[:, ROOT, None], fps, width, height, float(cam["focal"] * width / 2), cam)
    raise RuntimeError(f"no camera kept in {tries} draws: the ranges cannot film this sequence")

