"""The video reader, the Take file and BVH writing: real files, clear errors, nothing partial."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posemoe import PoseMoEError
from posemoe.take import Take, load_takes, save_takes
from posemoe.video import probe, read_frames

from conftest import ROOT

SAMPLE = ROOT / "samples" / "walk.mp4"


def test_probe_and_stream_the_sample():
    info = probe(SAMPLE)
    assert (info.width, info.height, info.fps, info.frame_count) == (1768, 994, 30.0, 230)
    frames = list(read_frames(SAMPLE, 100, 105))
    assert [f.index for f in frames] == [100, 101, 102, 103, 104]
    assert frames[0].time == pytest.approx(100 / 30)
    assert frames[0].image.shape == (994, 1768, 3) and frames[0].image.dtype == np.uint8


@pytest.mark.parametrize("content", [None, b"", b"this is not a video\n" * 50, "folder"])
def test_bad_video_files_give_clear_errors(tmp_path, content):
    path = tmp_path / "clip.mp4"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(PoseMoEError) as error:
        probe(path)
    assert str(path) in str(error.value)


def test_truncated_video_errors_or_ends_early(tmp_path):
    data = SAMPLE.read_bytes()
    for keep in (0.5, 0.95):
        path = tmp_path / f"cut{keep}.mp4"
        path.write_bytes(data[: int(len(data) * keep)])
        try:
            frames = sum(1 for _ in read_frames(path))
        except PoseMoEError as error:
            assert "ffmpeg" in str(error)
        else:
            assert 0 < frames <= 230


def _take(n: int = 12) -> Take:
    rng = np.random.default_rng(0)
    return Take(
        keypoints_2d=rng.uniform(0, 500, (n, 17, 2)), confidence=rng.uniform(0, 1, (n, 17)),
        filled=np.zeros(n, bool), long_gap=np.zeros(n, bool), repaired=rng.uniform(0, 1, (n, 2)) < 0.2, joints_camera=rng.normal(size=(n, 17, 3)),
        joints_world=rng.normal(size=(n, 17, 3)), world_rotation=np.eye(3), world_origin=np.zeros(3),
        fps=25.0, width=640, height=480, focal_px=500.0, first_frame=3, source="clip.mp4", model="m",
        settings={"flip": True, "person": None},
    )


def test_take_round_trip(tmp_path):
    take = _take()
    loaded = Take.load(take.save(tmp_path / "a" / "take.npz"))
    for name in ("keypoints_2d", "confidence", "repaired", "joints_camera", "joints_world", "world_rotation"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(take, name))
    assert (loaded.fps, loaded.first_frame, loaded.settings, len(loaded)) == (25.0, 3, take.settings, 12)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["take.npz"]  # no temporary left behind


def test_damaged_or_foreign_take_files_are_refused(tmp_path):
    with pytest.raises(PoseMoEError, match="no take"):
        Take.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(PoseMoEError, match="not a PoseMoE take"):
        Take.load(bad)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(PoseMoEError):
        Take.load(foreign)
    with pytest.raises(PoseMoEError, match=".npz"):
        _take().save(tmp_path / "take.txt")


def _save_version_1(take: Take, path, arrays=("keypoints_2d", "confidence", "filled", "long_gap", "repaired",
                                               "joints_camera", "joints_world")):
    """A one-person take as posemoe-take/1 wrote it: plain array names, the fields in the meta."""
    meta = {"format": "posemoe-take/1", "posemoe": "0.1", "fps": take.fps, "width": take.width, "height": take.height,
            "focal_px": take.focal_px, "first_frame": take.first_frame, "source": take.source, "model": take.model,
            "settings": take.settings}
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), world_rotation=take.world_rotation,
                        world_origin=take.world_origin, **{name: getattr(take, name) for name in arrays})
    return path


def test_a_version_1_take_still_reads(tmp_path):
    take = _take()
    loaded = Take.load(_save_version_1(take, tmp_path / "old.npz"))
    np.testing.assert_array_equal(loaded.joints_world, take.joints_world)
    assert (loaded.person, loaded.notes, loaded.first_frame, loaded.settings) == (1, [], 3, take.settings)
    assert [len(t) for t in load_takes(tmp_path / "old.npz")] == [12]


def test_a_take_saved_before_the_repair_flags_loads_without_them(tmp_path):
    names = ("keypoints_2d", "confidence", "filled", "long_gap", "joints_camera", "joints_world")
    loaded = Take.load(_save_version_1(_take(), tmp_path / "take.npz", names))
    assert loaded.repaired.shape == (12, 2) and not loaded.repaired.any()


def test_several_people_share_one_file(tmp_path):
    first, second = _take(12), _take(7)
    second.person, second.first_frame, second.notes = 2, 40, ["one person seen briefly was left out"]
    second.joints_world = second.joints_world + 1.0
    path = save_takes(tmp_path / "two.npz", [first, second])
    loaded = load_takes(path)
    assert [(t.person, len(t), t.first_frame) for t in loaded] == [(1, 12, 3), (2, 7, 40)]
    np.testing.assert_array_equal(loaded[1].joints_world, second.joints_world)
    assert loaded[1].notes == second.notes
    with pytest.raises(PoseMoEError, match="holds 2 people"):
        Take.load(path)
    with pytest.raises(PoseMoEError, match="nobody"):
        save_takes(tmp_path / "none.npz", [])


def test_the_camera_path_round_trips_and_older_takes_read_as_a_static_camera(tmp_path):
    from scipy.spatial.transform import Rotation

    take = _take()
    take.camera_rotation = Rotation.from_rotvec(np.linspace([0, 0, 0], [0, 0.3, 0.05], 12)).as_matrix()
    take.camera_translation = np.linspace([0, 0, 0], [1.0, 0, 0.2], 12)
    loaded = Take.load(take.save(tmp_path / "moving.npz"))
    np.testing.assert_array_equal(loaded.camera_rotation, take.camera_rotation)
    np.testing.assert_array_equal(loaded.camera_translation, take.camera_translation)
    old = Take.load(_save_version_1(take, tmp_path / "old.npz"))
    np.testing.assert_array_equal(old.camera_rotation, np.tile(np.eye(3), (12, 1, 1)))
    np.testing.assert_array_equal(old.camera_translation, np.zeros((12, 3)))


def test_the_camera_poses_place_the_camera_where_the_world_says():
    """A world point seen from each frame's camera comes back to itself through the camera's pose."""
    from scipy.spatial.transform import Rotation

    take = _take()
    take.world_rotation = Rotation.from_rotvec([0.3, -0.2, 0.1]).as_matrix()
    take.world_origin = np.array([0.2, -0.4, 3.0])
    take.camera_rotation = Rotation.from_rotvec(np.linspace([0, 0, 0], [0.1, 0.4, 0.0], 12)).as_matrix()
    take.camera_translation = np.linspace([0, 0, 0], [0.5, 0, -0.3], 12)
    first_camera = np.array([0.4, 0.1, 4.0])  # a fixed point, in the first frame's camera
    seen = np.einsum("tij,j->ti", take.camera_rotation, first_camera) + take.camera_translation
    axes, centres = take.camera_poses()
    world = np.einsum("tij,tj->ti", axes, seen) + centres
    np.testing.assert_allclose(world, np.tile((first_camera - take.world_origin) @ take.world_rotation.T, (12, 1)),
                               atol=1e-12)
