"""Faults and bad input on the real code: broken and odd videos through the CLI and ``capture`` with the
real BlazePose detector and the shipped lifter, detectors that misbehave, unwritable outputs, cancelling
at every stage, and random degenerate keypoints through everything after detection.

Clips are short stretches of the bundled sample at half size (884x497), so the module stays quick.
"""

from __future__ import annotations

import os
import tracemalloc

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from posemoe import Cancelled, PoseMoEError
from posemoe.camera import DEFAULT_FOV_DEGREES
from posemoe.cli import main
from posemoe.export.bvh import write_bvh
from posemoe.lift import Lifter
from posemoe.motion.clean import clean
from posemoe.pipeline import Settings, capture, take_from_detections
from posemoe.preview import write_preview
from posemoe.skeleton import bone_lengths
from posemoe.video import VideoInfo

from conftest import REST_POSE_MM, ROOT

SAMPLE = ROOT / "samples" / "walk.mp4"
HALF = (884, 497)  # the sample at half size
FIRST = 60  # sample frame of clip frame 0: the walker is in view from here on
# A standing person seen from the front, (17, 2) in body heights, y down: soles at 0, the head at -1.
POSE_2D = REST_POSE_MM[:, [0, 2]] * np.array([1.0, -1.0]) / 1650.0


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Sample frames 60..149 at half size, BGR: the walker crosses from the right to the left."""
    source = cv2.VideoCapture(str(SAMPLE))
    source.set(cv2.CAP_PROP_POS_FRAMES, FIRST)
    out = []
    for _ in range(90):
        ok, image = source.read()
        assert ok
        out.append(cv2.resize(image, HALF, interpolation=cv2.INTER_AREA))
    source.release()
    return out


def write_clip(path, images, fps: float = 30.0):
    """Write BGR images as an MP4 (OpenCV's mp4v, which keeps its index at the end of the file)."""
    height, width = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for image in images:
        writer.write(image)
    writer.release()
    return path


@pytest.fixture(scope="module")
def lifter() -> Lifter:
    return Lifter(backend="onnx", device="cpu")


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory, frames):
    """Ten frames, fewer than the lifting window of 27."""
    return write_clip(tmp_path_factory.mktemp("short") / "short.mp4", frames[:10])


@pytest.fixture(scope="module")
def short_take(short_clip, lifter):
    """The short clip's take, for the writers."""
    return capture(short_clip, lifter=lifter)


def assert_sound(take, frames: int | None = None, in_front: bool = True) -> None:
    """Every array of the take is finite and shaped alike; with ``frames``, that many frames; with
    ``in_front``, every joint in front of the camera (true of a real person in a real video)."""
    n = len(take)
    assert n >= 1 and (frames is None or n == frames)
    for name, shape in (("keypoints_2d", (n, 17, 2)), ("confidence", (n, 17)), ("filled", (n,)),
                        ("long_gap", (n,)), ("joints_camera", (n, 17, 3)), ("joints_world", (n, 17, 3))):
        value = getattr(take, name)
        assert value.shape == shape, name
        assert np.isfinite(value.astype(float)).all(), name
    assert np.isfinite(take.world_rotation).all() and np.isfinite(take.world_origin).all()
    assert ((take.confidence >= 0) & (take.confidence <= 1)).all()
    assert not in_front or (take.joints_camera[..., 2] > 0).all(), "every joint in front of the camera"


def cli_error(capsys) -> tuple[str, str]:
    """The CLI's last stderr line (its error sentence) and all of stderr."""
    err = capsys.readouterr().err
    return err.strip().splitlines()[-1], err


# 1. Missing, empty, truncated and non-video files --------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "empty", "folder", "cut_index", "cut_frames"])
def test_cli_refuses_a_bad_video_and_writes_nothing(tmp_path, capsys, short_clip, kind):
    video = tmp_path / "clip.mp4"
    if kind == "empty":
        video.write_bytes(b"")
    elif kind == "folder":
        video.mkdir()
    elif kind == "cut_index":  # an mp4v file keeps its index last: a download cut short has none
        data = short_clip.read_bytes()
        video.write_bytes(data[: len(data) // 2])
    elif kind == "cut_frames":  # the sample keeps its index first: cut after it, before any whole frame
        video.write_bytes(SAMPLE.read_bytes()[:8192])
    out = tmp_path / "out"
    out.mkdir()
    code = main(["capture", str(video), "-o", str(out / "take.npz"), "--bvh", str(out / "take.bvh"),
                 "--preview", str(out / "preview.mp4")])
    message, _ = cli_error(capsys)
    assert code == 1
    # One sentence that names the file and says what to do.
    assert message.startswith("error: ") and str(video) in message
    assert "check the path" in message or "give the path" in message or "ffmpeg" in message
    assert list(out.iterdir()) == [], "no output, not even a temporary file"
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out"] if kind == "missing" else ["clip.mp4", "out"])


# 2. The person leaves the picture for a second and comes back ----------------------------------------


@pytest.mark.slow
def test_a_person_out_of_view_for_a_second_is_bridged_and_flagged(tmp_path, frames, lifter):
    # Frames 30..59 show only the background (the median over the clip, where the walker never
    # stays): the walker vanishes for one second at x ~ 580 px and comes back at x ~ 420 px.
    background = np.median(np.stack(frames[::3]), axis=0).astype(np.uint8)
    clip = write_clip(tmp_path / "gap.mp4", [background if 30 <= i < 60 else f for i, f in enumerate(frames)])
    take = capture(clip, lifter=lifter)
    assert_sound(take)
    # The take covers the walker before and after the gap, as one person.
    assert take.first_frame <= 2 and take.first_frame + len(take) >= 88
    gap = np.arange(30, 60) - take.first_frame
    assert take.filled[gap].all() and take.long_gap[gap].all()  # 1 s > --max-gap 0.5 s: flagged
    assert take.filled.sum() <= 34 and take.long_gap.sum() <= 34
    pelvis_x = take.keypoints_2d[:, 0, 0]
    before, after = pelvis_x[gap[0] - 1], pelvis_x[gap[-1] + 1]
    assert 500 < before < 650 and 350 < after < 480 and pelvis_x[-1] < after
    # Across the gap the 2D is a straight line from where they left to where they came back.
    np.testing.assert_allclose(np.diff(pelvis_x[gap[0] - 1: gap[-1] + 2]), (after - before) / 31, atol=1e-6)


# 3. A portrait video ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rotated", "upright"])
def test_a_portrait_video_is_captured(tmp_path, frames, lifter, kind):
    if kind == "rotated":  # the landscape frames turned on their side, the walker lying down
        images = [cv2.rotate(f, cv2.ROTATE_90_CLOCKWISE) for f in frames[:30]]
    else:  # a 9:16 phone picture of the walker, upright
        images = [np.ascontiguousarray(f[:, 500:780]) for f in frames[:30]]
    take = capture(write_clip(tmp_path / "portrait.mp4", images), lifter=lifter)
    assert_sound(take)
    assert take.width < take.height and take.height >= 490
    assert len(take) >= 25
    # The focal length follows the longer side, the height (the default field of view across 496 px or so).
    assert take.focal_px == pytest.approx(0.5 * take.height / np.tan(np.radians(DEFAULT_FOV_DEGREES / 2)))
    if kind == "upright":
        world = take.joints_world
        assert 1.2 < np.median(world[:, 10, 2]) < 2.0 and np.median(world[:, [3, 6], 2].min(1)) < 0.3


# 4. 4K input ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_4k_video_is_captured_one_frame_at_a_time(tmp_path, frames, lifter):
    size = (3840, 2160)
    clip = write_clip(tmp_path / "uhd.mp4", [cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in frames[30:50]])
    frame_bytes = size[0] * size[1] * 3
    tracemalloc.start()  # NumPy reports its buffers, the decoded frames among them
    try:
        take = capture(clip, lifter=lifter)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_sound(take)
    assert (take.width, take.height) == size and len(take) >= 15
    # Streaming keeps the frame in hand and a copy or two of it (RGB, the preview's): not the clip's 20
    # frames (500 MB).
    print(f"peak traced memory {peak / 1e6:.0f} MB, {peak / frame_bytes:.1f} frames of 4K")
    assert peak < 4 * frame_bytes


# 5. Clips shorter than the lifting window --------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 10])
def test_a_clip_shorter_than_the_window_gives_a_take_of_its_frames(tmp_path, frames, short_clip, lifter, count):
    assert count < lifter.frames
    clip = short_clip if count == 10 else write_clip(tmp_path / "one.mp4", frames[:1])
    take = capture(clip, lifter=lifter)
    assert_sound(take, frames=count)
    assert take.first_frame == 0 and not take.filled.any()
    lengths = bone_lengths(take.joints_camera)
    assert (lengths > 0.02).all() and (lengths < 0.7).all()  # a body, not a point or an explosion


# 6. Detectors that return NaN, nobody, or the wrong shape -------------------------------------------------


def standing_person(frame: int) -> np.ndarray:
    """A person 300 px tall walking right at 4 px per frame across a 884x497 picture, (17, 2) px."""
    return POSE_2D * 300 + (200 + 4 * frame, 450)


class FlakyDetector:
    """Sees the person, but some frames give NaN keypoints, some nobody, in every empty form."""

    name = "flaky"
    nan_frames = {3, 4, 11}  # all joints NaN (a detector's "lost" marker)
    partial_frames = {7}  # some joints NaN
    empty_frames = {5, 12, 13, 14}  # zero people, as (0, 17, 2), as [], as a (0,) array

    def __init__(self):
        self.frame = 0

    def detect(self, image, time):
        i, self.frame = self.frame, self.frame + 1
        if i in self.empty_frames:
            return [(np.zeros((0, 17, 2)), np.zeros((0, 17))), ([], []), (np.zeros(0), np.zeros(0))][i % 3]
        keypoints, confidence = standing_person(i)[None], np.full((1, 17), 0.9)
        if i in self.nan_frames:
            keypoints = np.full_like(keypoints, np.nan)
        if i in self.partial_frames:
            keypoints[0, [3, 13, 16]] = np.nan
            confidence[0, [3, 13]] = np.nan  # a detector with no score for a joint
        return keypoints, confidence

    def close(self):
        pass


def test_nan_and_empty_detections_are_bridged(tmp_path, frames, lifter):
    clip = write_clip(tmp_path / "clip.mp4", frames[:20])
    take = capture(clip, detector=FlakyDetector(), lifter=lifter)
    assert_sound(take, frames=20)
    bad = sorted(FlakyDetector.nan_frames | FlakyDetector.partial_frames | FlakyDetector.empty_frames)
    assert np.flatnonzero(take.filled).tolist() == bad
    assert not take.long_gap.any()  # the longest gap, 3 frames, is under --max-gap's 15
    # Bridged frames lie on the straight line between their neighbours.
    expected = np.array([standing_person(i) for i in range(20)])
    np.testing.assert_allclose(take.keypoints_2d, expected, atol=1e-6)
    assert take.settings["detector"] == "flaky"


def test_the_lifter_is_told_the_lens_only_when_the_user_gave_one(short_clip, lifter):
    """The default field of view is a guess, not the user's lens: the Lifter gets no ``focal_px``
    for it, so a network with the lens channel reads the picture as a guess."""
    told = []

    class Recording:
        def __getattr__(self, name):
            return getattr(lifter, name)

        def lift(self, *args, **kwargs):
            told.append(kwargs["focal_px"])
            return lifter.lift(*args, **kwargs)

    takes = [capture(short_clip, s, lifter=Recording()) for s in (Settings(), Settings(fov_degrees=50.0), Settings(focal_px=900.0))]
    assert told[0] is None and told[2] == 900.0
    assert told[1] == pytest.approx(takes[1].focal_px) and takes[1].focal_px > takes[0].focal_px
    assert not Settings(fov_degrees=float(np.float32(DEFAULT_FOV_DEGREES))).lens_given  # the add-on's default, in single precision


class NobodyDetector:
    name = "nobody"

    def __init__(self, people: int = 0):
        self.people, self.calls = people, 0

    def detect(self, image, time):
        self.calls += 1
        # people > 0: someone is reported, but with zero confidence in every joint.
        return np.tile(standing_person(0), (self.people, 1, 1)), np.zeros((self.people, 17))

    def close(self):
        pass


@pytest.mark.parametrize("people", [0, 1])
def test_a_detector_that_finds_nobody_is_a_clear_error(short_clip, lifter, people):
    detector = NobodyDetector(people)
    with pytest.raises(PoseMoEError, match="No person was detected") as error:
        capture(short_clip, detector=detector, lifter=lifter)
    assert not isinstance(error.value, Cancelled) and detector.calls == 10


class WrongShapeDetector(NobodyDetector):
    """Returns one person without the people axis: (17, 2) and (17,)."""

    def detect(self, image, time):
        self.calls += 1
        return standing_person(0), np.ones(17)


def test_a_detector_breaking_the_protocol_is_named_at_once(short_clip, lifter):
    detector = WrongShapeDetector()
    with pytest.raises(PoseMoEError, match=r"detector gave keypoints shaped \(17, 2\)"):
        capture(short_clip, detector=detector, lifter=lifter)
    assert detector.calls == 1, "it fails on the first frame, not after the whole video"


@pytest.mark.parametrize("bad", [{"focal_px": -500.0}, {"focal_px": float("nan")}, {"fov_degrees": 500.0},
                                 {"max_gap_s": float("nan")}])
def test_impossible_settings_are_refused_before_detection(short_clip, lifter, bad):
    detector = NobodyDetector()
    with pytest.raises(PoseMoEError, match="is not (possible|plausible)") as error:
        capture(short_clip, Settings(**bad), detector=detector, lifter=lifter)
    assert "detected" not in str(error.value) and detector.calls == 0


# 7. Outputs that cannot be written ----------------------------------------------------------------------

OUTPUTS = {"-o": "take.npz", "--bvh": "take.bvh", "--preview": "preview.mp4"}


def _capture_args(video, outputs: dict[str, object]) -> list[str]:
    return ["capture", str(video), *[a for option, path in outputs.items() for a in (option, str(path))]]


@pytest.mark.parametrize("option", list(OUTPUTS))
def test_a_read_only_output_folder_fails_before_any_work(tmp_path, capsys, short_clip, option):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root, where a read-only folder can still be written: "
                        "test_an_output_under_a_file_or_on_a_folder_fails_before_any_work covers it")
        good = tmp_path / "good"
        outputs = {o: good / name for o, name in OUTPUTS.items()} | {option: locked / OUTPUTS[option]}
        code = main(_capture_args(short_clip, outputs))
        message, err = cli_error(capsys)
        assert code == 1 and str(locked) in message and "not writable" in message
        assert "detect" not in err, "refused before detection started"
        assert list(locked.iterdir()) == [] and not good.exists()
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("option", list(OUTPUTS))
@pytest.mark.parametrize("kind", ["under_a_file", "on_a_folder"])
def test_an_output_under_a_file_or_on_a_folder_fails_before_any_work(tmp_path, capsys, short_clip, option, kind):
    # Neither can be written, not even by root.
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    good = tmp_path / "good"
    outputs = {o: good / name for o, name in OUTPUTS.items()}
    if kind == "under_a_file":
        outputs[option] = blocker / OUTPUTS[option]
    else:
        outputs[option] = tmp_path / OUTPUTS[option]
        outputs[option].mkdir()
    code = main(_capture_args(short_clip, outputs))
    message, err = cli_error(capsys)
    assert code == 1 and message.startswith("error: Cannot write") and str(outputs[option]) in message
    assert "detect" not in err, "refused before detection started"
    assert not good.exists() and blocker.read_text() == "a file, not a folder"
    expected = ["notes.txt"] + ([OUTPUTS[option]] if kind == "on_a_folder" else [])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected)
    if kind == "on_a_folder":
        assert list(outputs[option].iterdir()) == []


def test_writing_onto_a_folder_is_a_clear_error_and_leaves_nothing(tmp_path, short_take):
    # What the CLI's early check catches, the writers catch too (for Python callers and the add-on).
    take = short_take
    cleaned = clean(take.joints_world, take.fps)
    for name, write in (("take.npz", take.save), ("take.bvh", lambda p: write_bvh(p, cleaned.motion)),
                        ("preview.mp4", lambda p: write_preview(take, p))):
        (tmp_path / name).mkdir()
        with pytest.raises(PoseMoEError, match=f"Cannot write {tmp_path / name}"):
            write(tmp_path / name)
        assert list((tmp_path / name).iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preview.mp4", "take.bvh", "take.npz"]


# 8. Cancelling at every stage ------------------------------------------------------------------------
# Cancelling during "detect" and "lift" is tests/test_capture.py::test_cancel_stops_the_capture.


def test_cancel_at_the_trajectory_stage_returns_no_take(short_clip, lifter):
    seen = []

    def progress(stage, done, total):
        seen.append(stage)

    before = sorted(short_clip.parent.iterdir())
    with pytest.raises(Cancelled, match="cancelled"):
        capture(short_clip, lifter=lifter, progress=progress, cancel=lambda: "trajectory" in seen)
    assert "trajectory" in seen
    assert sorted(short_clip.parent.iterdir()) == before


def test_cancel_while_writing_the_preview_leaves_no_file(tmp_path, short_take):
    seen = []
    with pytest.raises(Cancelled):
        write_preview(short_take, tmp_path / "preview.mp4", progress=lambda *p: seen.append(p), cancel=lambda: len(seen) >= 3)
    assert len(seen) == 3 and list(tmp_path.iterdir()) == []


# 9. Random and degenerate keypoints through everything after detection ---------------------------------


def _keypoints(kind: str, person: np.ndarray, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """One detection of ``person`` ((17, 2) px) as a detector of a given kind reports it, sane or degenerate."""
    size = np.array([width, height], dtype=float)
    if kind == "person":
        return person + rng.normal(scale=2.0, size=(17, 2))
    if kind == "partial_nan":
        return np.where(rng.random((17, 1)) < 0.4, np.nan, person)
    if kind == "inf":
        return np.where(rng.random((17, 1)) < 0.2, np.inf, person)
    if kind == "zeros":
        return np.zeros((17, 2))
    if kind == "one_point":
        return np.tile(person[0], (17, 1))
    if kind == "tiny":  # a body a ten-thousandth of a pixel tall
        return (person - person[0]) * 1e-4 + person[0]
    if kind == "huge":
        return rng.uniform(-1, 1, (17, 2)) * 10.0 ** rng.uniform(4, 12)
    if kind == "random":
        return rng.uniform(-0.5, 1.5, (17, 2)) * size
    return np.full((17, 2), np.nan)  # "nan"


def _confidence(kind: str, rng: np.random.Generator) -> np.ndarray:
    return {"zero": np.zeros(17), "one": np.ones(17), "low": np.full(17, 0.1), "random": rng.uniform(0, 1, 17),
            "nan": np.where(rng.random(17) < 0.5, np.nan, 0.9)}[kind]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frames=st.integers(1, 40), people=st.integers(1, 3),
       kinds=st.lists(st.sampled_from(["person", "partial_nan", "inf", "zeros", "one_point", "tiny", "huge", "random", "nan"]),
                      min_size=1, max_size=3),
       scores=st.lists(st.sampled_from(["zero", "one", "low", "random", "nan"]), min_size=1, max_size=2),
       size=st.sampled_from([(1, 1), (2, 3), (884, 497), (496, 884), (3840, 2160)]),
       fps=st.sampled_from([1.0, 12.5, 30.0, 240.0]), stride=st.sampled_from([None, 1, 5, 27, 100]),
       flip=st.booleans(), someone=st.booleans(), seed=st.integers(0, 2**32 - 1))
# Cases that once failed: a window step longer than the window (frames between windows came out NaN),
# people whose every joint has zero confidence (an IndexError), keypoints millions of pixels out (a
# singular floor fit).
@example(frames=60, people=1, kinds=["person"], scores=["one"], size=(884, 497), fps=30.0, stride=100, flip=False, someone=False, seed=1)
@example(frames=5, people=1, kinds=["person"], scores=["zero"], size=(884, 497), fps=30.0, stride=None, flip=True, someone=False, seed=0)
@example(frames=8, people=2, kinds=["huge"], scores=["one"], size=(884, 497), fps=30.0, stride=None, flip=False,
         someone=False, seed=34)
@pytest.mark.slow
def test_degenerate_keypoints_give_a_sound_take_or_a_clear_error(lifter, frames, people, kinds, scores, size, fps,
                                                                 stride, flip, someone, seed):
    if someone:  # mixed in with a person now and then, so that half the cases get as far as a take
        kinds, scores = [*kinds, "person"], [*scores, "random"]
    rng = np.random.default_rng(seed)
    width, height = size
    # Up to three people, each walking in a straight line, in view in most frames.
    start = rng.uniform(0, 1, (people, 1, 2)) * size
    velocity = rng.normal(scale=0.01, size=(people, 1, 2)) * size
    scale = rng.uniform(0.05, 1.0, (people, 1, 1)) * height
    detections = []
    for i in range(frames):
        there = np.flatnonzero(rng.random(people) < 0.8)
        people_now = POSE_2D * scale[there] + start[there] + i * velocity[there]
        keypoints = [_keypoints(kinds[rng.integers(len(kinds))], p, rng, width, height) for p in people_now]
        confidence = [_confidence(scores[rng.integers(len(scores))], rng) for _ in there]
        detections.append((np.reshape(keypoints, (len(there), 17, 2)), np.reshape(confidence, (len(there), 17))))
    info = VideoInfo("fuzz.mp4", fps, width, height, frames)
    for step in ("take", "clean-up"):
        try:
            if step == "take":
                take = take_from_detections(detections, info, Settings(stride=stride, flip=flip), lifter=lifter)
            else:
                cleaned = clean(take.joints_world, take.fps)
        except Cancelled:
            raise
        except PoseMoEError as error:
            assert str(error).endswith(".") and "\n" not in str(error)
            event(f"{step} refused: {str(error)[:40]}")
            return
        event(step)
        if step == "take":
            assert_sound(take, in_front=False)
            assert len(take) <= frames
    assert np.isfinite(cleaned.joints).all() and np.isfinite(cleaned.motion.root_positions).all()
