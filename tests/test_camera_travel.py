"""The camera's travel from the floor's image motion, on a rendered scene with a known answer: a
textured floor under a textured sky (at infinity), seen by a camera that travels and turns."""

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from posemoe.camera import CameraPath
from posemoe.camera_motion import TRAVEL_METRES, FloorMotion, TurnSolver, judged_travel, travelled

WIDTH, HEIGHT, FOCAL = 640, 360, 500.0
CAMERA_HEIGHT = 1.3  # metres above the floor
METRES_PER_TEXEL = 0.01


def _textures(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(floor texture (2000, 4000) over x in [-20, 20] m, z in [0, 20] m; sky panorama (720, 1440)), uint8."""
    rng = np.random.default_rng(seed)
    floor = cv2.GaussianBlur(rng.integers(0, 256, (2000, 4000)).astype(np.float32), (0, 0), 2.0)
    sky = cv2.GaussianBlur(rng.integers(0, 256, (720, 1440)).astype(np.float32), (0, 0), 1.5)
    stretch = lambda image: cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)  # noqa: E731
    return stretch(floor), stretch(sky)


def _render(textures: tuple[np.ndarray, np.ndarray], rotation: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """What a camera sees: rotation (3, 3) world -> camera, centre (3,) world metres (OpenCV axes, y down,
    the floor at y = CAMERA_HEIGHT). Returns (HEIGHT, WIDTH) uint8."""
    floor, sky = textures
    u, v = np.meshgrid(np.arange(WIDTH) + 0.5, np.arange(HEIGHT) + 0.5)
    rays = np.stack([(u - WIDTH / 2) / FOCAL, (v - HEIGHT / 2) / FOCAL, np.ones_like(u)], axis=-1) @ rotation
    down = rays[..., 1]
    hit = down > 1e-3
    s = np.where(hit, (CAMERA_HEIGHT - centre[1]) / np.where(hit, down, 1.0), 0.0)
    x, z = centre[0] + s * rays[..., 0], centre[2] + s * rays[..., 2]
    floor_map = np.stack([(x + 20.0) / METRES_PER_TEXEL, z / METRES_PER_TEXEL], axis=-1).astype(np.float32)
    azimuth = np.arctan2(rays[..., 0], rays[..., 2])
    elevation = np.arctan2(-rays[..., 1], np.hypot(rays[..., 0], rays[..., 2]))
    sky_map = np.stack([(azimuth / np.pi + 1) * 720, (0.5 - elevation / np.pi) * 720], axis=-1).astype(np.float32)
    seen_floor = cv2.remap(floor, floor_map[..., 0], floor_map[..., 1], cv2.INTER_LINEAR)
    seen_sky = cv2.remap(sky, sky_map[..., 0], sky_map[..., 1], cv2.INTER_LINEAR)
    return np.where(hit & (s < 18.0), seen_floor, seen_sky)


def _filmed(steps: np.ndarray, pans: np.ndarray, pitch: float = 12.0):
    """A camera pitched down ``pitch`` degrees, travelling by ``steps`` (T, 3) world metres per frame and
    panning to ``pans`` (T,) degrees. Returns (the solver fed every frame, the true path relative to the
    first camera, up in the first camera)."""
    textures = _textures()
    tilt = Rotation.from_euler("x", pitch, degrees=True).as_matrix()
    orientations = [tilt @ Rotation.from_euler("y", pan, degrees=True).as_matrix() for pan in pans]
    centres = np.cumsum(steps, axis=0) + np.array([0.0, 0.0, 2.0])
    solver = TurnSolver(FOCAL, WIDTH, HEIGHT)
    for rotation, centre in zip(orientations, centres):
        solver.add(_render(textures, rotation, centre))
    first = orientations[0]
    rotations = np.stack([q @ first.T for q in orientations])
    first_centres = (centres - centres[0]) @ first.T
    truth = CameraPath.from_centres(rotations, first_centres, np.zeros(len(pans), dtype=bool))
    return solver, truth, first @ np.array([0.0, -1.0, 0.0])


def test_a_camera_travelling_over_a_textured_floor_is_measured_in_metres():
    frames = 40
    steps = np.tile([0.04, 0.0, 0.01], (frames, 1))  # 1.2 m/s at 30 frames/s, sideways and a little forward
    steps[0] = 0.0
    pans = np.linspace(0.0, 4.0, frames)
    solver, truth, up = _filmed(steps, pans)
    # The turn as the far background gives it (this scene's floor fills most of the picture, so the
    # turn solve is not what is tested here).
    turn = CameraPath(truth.rotations, np.zeros((frames, 3)), np.zeros(frames, dtype=bool))
    floor = FloorMotion(np.stack(solver.floor_homographies), solver.intrinsics)
    moved, measured = travelled(turn, floor, up, CAMERA_HEIGHT)
    assert measured.mean() > 0.9
    found, true = moved.centres(), truth.centres()
    distance = np.linalg.norm(true[-1])
    assert distance == pytest.approx(1.6, rel=0.05)
    assert np.linalg.norm(found[-1] - true[-1]) < 0.05 * distance
    assert np.abs(found @ up).max() < 1e-9  # along the floor only
    kept, notes = judged_travel(turn, floor, up, CAMERA_HEIGHT, "auto")
    assert kept is not None and "travelled 1.6 m" in notes[0]


def test_a_fixed_camera_that_only_turns_travels_nowhere_and_auto_keeps_no_travel():
    frames = 30
    solver, truth, up = _filmed(np.zeros((frames, 3)), np.linspace(0.0, 6.0, frames))
    turn = solver.result()  # a camera that only turns: the floor is as far as the sky for the turn
    assert np.abs(turn.turn_degrees() - truth.turn_degrees()).max() < 0.3
    floor = FloorMotion(np.stack(solver.floor_homographies), solver.intrinsics)
    moved, measured = travelled(turn, floor, up, CAMERA_HEIGHT)
    assert measured.mean() > 0.9
    assert np.linalg.norm(moved.centres(), axis=1).max() < 0.05
    assert judged_travel(turn, floor, up, CAMERA_HEIGHT, "auto") == (None, [])
    assert judged_travel(turn, floor, up, CAMERA_HEIGHT, "static") == (None, [])


def test_frames_all_one_colour_give_no_travel_and_moving_says_why():
    solver = TurnSolver(FOCAL, WIDTH, HEIGHT)
    for _ in range(10):
        solver.add(np.full((HEIGHT, WIDTH, 3), 90, dtype=np.uint8))
    turn = solver.result()
    floor = FloorMotion(np.stack(solver.floor_homographies), solver.intrinsics)
    assert not np.isfinite(floor.homographies).any()
    path, notes = judged_travel(turn, floor, np.array([0.0, -1.0, 0.0]), 1.5, "moving")
    assert path is None and "could not be measured" in notes[0]
    assert judged_travel(turn, floor, np.array([0.0, -1.0, 0.0]), 1.5, "auto") == (None, [])


def test_auto_keeps_travel_only_beyond_its_threshold():
    frames = 5
    K = np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1]])
    up, height = np.array([0.0, -1.0, 0.0]), 1.0

    def floor_for(step: float) -> FloorMotion:
        # The floor homography of a camera moving by ``step`` along x: H = K (I + t n^T / h) K^-1.
        metric = np.eye(3) + np.outer([-step, 0.0, 0.0], [0.0, 1.0, 0.0]) / height
        homographies = np.tile(K @ metric @ np.linalg.inv(K), (frames, 1, 1))
        homographies[0] = np.nan
        return FloorMotion(homographies, K)

    path = CameraPath.static(frames)
    small = judged_travel(path, floor_for(0.9 * TRAVEL_METRES / (frames - 1)), up, height, "auto")
    large = judged_travel(path, floor_for(1.1 * TRAVEL_METRES / (frames - 1)), up, height, "auto")
    assert small == (None, [])
    assert large[0] is not None
    assert large[0].centres()[-1] == pytest.approx([1.1 * TRAVEL_METRES, 0.0, 0.0], abs=1e-9)


def test_the_preview_draws_a_camera_that_moved_and_none_that_stood_still():
    from conftest import synthetic_motion
    from posemoe import preview
    from posemoe.skeleton import PELVIS
    from posemoe.take import Take

    frames = 20
    world = synthetic_motion(frames, 2) / 1000.0
    # The world's axes are the first camera's turned so that its forward (+z) is the world's +Y.
    rotation = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    origin = np.array([0.0, 1.2, 2.5])  # the camera 1.2 m up, 2.5 m before the walker

    def take(travel: float) -> Take:
        translations = np.zeros((frames, 3))
        translations[:, 0] = -np.linspace(0.0, travel, frames)  # the camera moves along its x
        return Take(keypoints_2d=np.zeros((frames, 17, 2)), confidence=np.ones((frames, 17)),
                    filled=np.zeros(frames, bool), long_gap=np.zeros(frames, bool), repaired=np.zeros((frames, 2), bool),
                    joints_camera=world @ rotation + origin, joints_world=world, world_rotation=rotation,
                    world_origin=origin, fps=30.0, width=640, height=360, focal_px=500.0, first_frame=0,
                    camera_translation=translations)

    def camera_pixels(t: Take) -> int:
        camera = t.camera_poses() if t.camera_moved() else None
        canvas = preview._draw_3d([t], 15, preview._View(400, distance=6.0), t.joints_world[15, PELVIS], camera)
        return int((np.abs(canvas.astype(int) - preview._CAMERA).sum(-1) < 30).sum())

    assert take(1.0).camera_moved() and not take(0.0).camera_moved()
    assert camera_pixels(take(1.0)) > 100
    assert camera_pixels(take(0.0)) == 0
