"""Several people from one video, through the capture's own path (``capture_people`` /
``takes_from_detections`` with ``Settings(people=...)``).

    python benchmarks/people.py [--scenes N] [--markdown FILE] [--json FILE]

(i) **Synthetic scenes** (needs ``../shared/data``): two Human3.6M test-subject sequences (S9, S11)
placed in one world, their mean pelvises 1-4 m apart; the first always a walk (Walking, WalkDog,
WalkTogether: they cross the capture area), the second any other sequence. One virtual camera at 30
frames/s stands on the line through both, within 30 degrees, 3-6 m beyond the nearer person, 0.8-1.8 m
high, 55-85 degree lens, 16:9 or 9:16: one person stands in front of the other and the walker passes
behind and beside them, so their pictures cross. The hidden person's joints are dropped as a detector
drops them: a joint of the farther person that falls (in the picture) on the nearer person's body, each
bone a limb as wide as an adult's (``BONE_RADIUS``), gets confidence 0, and with more than 60 % of their
joints hidden the detector loses them for that frame. Everyone's joints are given in a random order each
frame (a detector has no order), with the default lens (the user does not know it). Scored per person
against the truth they followed: protocol 1 and 2 (root-relative, mm); the root-to-root distance error
(mm and % of the true distance, per scene the median over frames); identity switches (a captured
person whose 2D changes from one true person to the other, or two captured people following one);
and, on the same scenes and cameras, each person captured alone (no one else in the picture): what the
other person costs.

(ii) **Real clips**: the handshake, the two children, people coming one by one (``../shared/media/real``)
and the sample, with ``Settings(people=0)`` (``posemoe capture --people all``): people captured,
person-frames against the reference (MediaPipe's PoseLandmarker, ``benchmarks/detect.py``'s cached
run), frames with fewer people than the reference, and identity against labels made once by looking
(``tests/data/people_labels.json``: points on each person at some frames; a switch is a person whose
points fall in two captured people, or a captured person holding two people's points).
Speed: the capture's stages with one person and with everyone, on the same clip.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from posemoe import metrics
from posemoe.camera import DEFAULT_FOV_DEGREES
from posemoe.lift import Lifter
from posemoe.machine import describe_machine
from posemoe.normalize import resample_track
from posemoe.pipeline import Settings, Timings, capture_people, takes_from_detections
from posemoe.rotations import look_at
from posemoe.skeleton import BONES
from posemoe.video import VideoInfo, probe
from training.data import TEST_SUBJECTS, action_name

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data" / "h36m_3d_17j_mm.npz"
REAL = SHARED / "media" / "real"
LABELS = ROOT / "tests" / "data" / "people_labels.json"
SAMPLE = ROOT / "samples" / "walk.mp4"
FPS = 30.0
SECONDS = 8.0
WALKS = ("Walking", "WalkDog", "WalkTogether")
#: Half the width of the body part around each bone (by the bone's child joint, Human3.6M order), as a
#: share of the body's height: an adult of 1.7 m has a torso 35 cm wide, thighs 16 cm, shins 10 cm,
#: upper arms 9 cm, forearms 7 cm, a neck 12 cm and a head 20 cm across.
BONE_RADIUS = np.array([0.0, 0.06, 0.045, 0.03, 0.06, 0.045, 0.03, 0.10, 0.10, 0.035, 0.06, 0.05, 0.027, 0.02,
                        0.05, 0.027, 0.02])
LOST_SHARE = 0.6  # more hidden joints than this: the detector loses the person in that frame


# ----------------------------------------------------------------------------------------------------
# (i) Synthetic scenes

def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """points (J, 2), segments a, b (S, 2) -> (J, S) distance from each point to each segment, px."""
    ab = b - a
    t = np.clip(((points[:, None] - a[None]) * ab[None]).sum(-1) / np.maximum((ab ** 2).sum(-1), 1e-9)[None], 0, 1)
    return np.linalg.norm(points[:, None] - (a[None] + t[..., None] * ab[None]), axis=-1)


def film_pair(first: np.ndarray, second: np.ndarray, rng: np.random.Generator, tries: int = 100) -> dict | None:
    """Two world sequences (M, 17, 3) metres, z up, at the camera's rate, already placed -> the scene as
    one camera sees it: pixels (2, M, 17, 2), confidence (2, M, 17) (out of the picture or hidden: 0),
    lost (2, M) bool (the detector loses them), truth (2, M, 17, 3) camera metres, width, height; None
    when no draw keeps both people in front of the lens and in the picture."""
    centres = np.stack([first[:, 0, :2].mean(0), second[:, 0, :2].mean(0)])
    middle = centres.mean(0)
    along = np.arctan2(*(centres[1] - centres[0])[::-1])  # from the first person to the second
    for _ in range(tries):
        yaw = along + np.radians(rng.uniform(-30, 30))
        beyond = np.linalg.norm(centres[1] - middle) + rng.uniform(3.0, 6.0)
        position = np.array([*(middle + beyond * np.array([np.cos(yaw), np.sin(yaw)])), rng.uniform(0.8, 1.8)])
        forward = np.array([*middle, 1.0]) - position
        rotation = look_at(forward, (0.0, 0.0, 1.0))  # z up, no roll
        portrait = rng.random() < 0.5
        width, height = (1080, 1920) if portrait else (1920, 1080)
        focal = 0.5 * max(width, height) / np.tan(np.radians(rng.uniform(55, 85)) / 2)
        truth = np.stack([(person - position) @ rotation.T for person in (first, second)])
        if truth[..., 2].min() < 0.5:
            continue
        pixels = focal * truth[..., :2] / truth[..., 2:3] + np.array([width, height]) / 2
        inside = ((pixels >= 0) & (pixels <= (width, height))).all(-1)
        if inside[:, :, 0].mean(1).min() < 0.8:
            continue
        confidence = inside.astype(float)
        lost = np.zeros(inside.shape[:2], dtype=bool)
        parents, children = np.array(BONES).T
        for i in range(len(truth[0])):
            near = int(np.argmin(truth[:, i, 0, 2]))
            far = 1 - near
            body = np.ptp(pixels[near, i, :, 1])
            hidden = (_segment_distance(pixels[far, i], pixels[near, i, parents], pixels[near, i, children])
                      < BONE_RADIUS[children] * body).any(1)
            confidence[far, i, hidden] = 0.0
            lost[far, i] = hidden.mean() > LOST_SHARE
        # Whether their pictures cross: the pelvises change sides, left to right, while both are seen.
        side = np.sign(pixels[0, :, 0, 0] - pixels[1, :, 0, 0])[inside[:, :, 0].all(0)]
        crossed = bool(len(side)) and bool((side != side[0]).any())
        return dict(pixels=pixels, confidence=confidence, lost=lost, truth=truth, width=width, height=height,
                    crossed=crossed, focal_px=float(focal))
    return None


def _follows(take, pixels: np.ndarray) -> np.ndarray:
    """Which true person (0/1) a take's 2D follows at each of its detected frames (-1 where bridged)."""
    frames = take.first_frame + np.arange(len(take))
    distance = np.stack([np.nanmedian(np.linalg.norm(take.keypoints_2d - person[frames], axis=-1), axis=1)
                         for person in pixels])
    return np.where(take.filled, -1, np.argmin(distance, axis=0))


def score_scene(takes, scene: dict) -> dict:
    """Identity, per-person accuracy and the distance between the two people of one scene's takes."""
    follows = [_follows(take, scene["pixels"]) for take in takes]
    identity = [int(np.bincount(f[f >= 0], minlength=2).argmax()) if (f >= 0).any() else -1 for f in follows]
    changes = sum(int((np.diff(f[f >= 0]) != 0).sum()) for f in follows)
    switched = changes > 0 or len(takes) != 2 or len(set(identity)) != len(identity)
    people = []
    for take, who in zip(takes, identity):
        frames = take.first_frame + np.arange(len(take))
        truth = scene["truth"][who, frames]
        pred = take.joints_camera - take.joints_camera[:, :1]
        people.append({"mpjpe": metrics.mpjpe(pred, truth - truth[:, :1]), "p_mpjpe": metrics.p_mpjpe(pred, truth - truth[:, :1])})
    distance = None
    if len(takes) == 2 and not switched:
        span = [np.arange(t.first_frame, t.first_frame + len(t)) for t in takes]
        both = np.intersect1d(*span)
        if len(both):
            found = np.linalg.norm(takes[0].joints_camera[both - takes[0].first_frame, 0]
                                   - takes[1].joints_camera[both - takes[1].first_frame, 0], axis=-1)
            true = np.linalg.norm(scene["truth"][identity[0], both, 0] - scene["truth"][identity[1], both, 0], axis=-1)
            distance = {"error_mm": 1000 * float(np.median(np.abs(found - true))),
                        "error_pct": 100 * float(np.median(np.abs(found - true) / true)),
                        "true_m": float(np.median(true))}
    return {"switched": bool(switched), "changes": changes, "people": people, "distance": distance,
            "captured": len(takes)}


def make_scene(index: int, data, keys: list[str], walks: list[str], seed: int = 0) -> tuple[dict, str, str, float]:
    """Scene ``index`` (its own random stream, so any scene can be made again alone): the scene as
    :func:`film_pair` gives it, the two sequences' keys and how far apart they stand (m)."""
    rng = np.random.default_rng([seed, index])
    frames = int(SECONDS * FPS)
    while True:
        a = walks[rng.integers(len(walks))]
        b = keys[rng.integers(len(keys))]
        if a == b:
            continue
        worlds = []
        for key in (a, b):
            world = data[key].astype(np.float64) / 1000.0
            start = rng.integers(0, max(len(world) - int(SECONDS * 50), 1))
            world = resample_track(world[start:], 50.0, FPS, frames)
            worlds.append(world - np.array([*world[:, 0, :2].mean(0), 0.0]))
        apart = rng.uniform(1.0, 4.0)
        heading = rng.uniform(0, 2 * np.pi)
        worlds[1] = worlds[1] + np.array([apart * np.cos(heading), apart * np.sin(heading), 0.0])
        scene = film_pair(worlds[0], worlds[1], rng)
        if scene is not None:
            scene["detections"] = []
            for i in range(frames):
                people = [p for p in rng.permutation(2) if not scene["lost"][p, i]]
                scene["detections"].append((scene["pixels"][people, i], scene["confidence"][people, i]))
            return scene, a, b, apart


def _sequences() -> tuple[object, list[str], list[str]]:
    data = np.load(DATA)
    keys = sorted(k for k in data.files if "/" in k and k.split("/", 1)[0] in TEST_SUBJECTS)
    return data, keys, [k for k in keys if action_name(k.split("/", 1)[1]) in WALKS]


def synthetic(count: int, lifter: Lifter, seed: int = 0) -> dict:
    data, keys, walks = _sequences()
    frames = int(SECONDS * FPS)
    rows, alone, hidden = [], [], []
    for index in range(count):
        scene, a, b, apart = make_scene(index, data, keys, walks, seed)
        info = VideoInfo(path=f"scene-{index}", fps=FPS, width=scene["width"], height=scene["height"], frame_count=frames)
        takes = takes_from_detections(scene["detections"], info, Settings(people=2), lifter=lifter)
        row = score_scene(takes, scene)
        row.update(scene=index, first=a, second=b, apart_m=apart, crossed=scene["crossed"],
                   lost_pct=100 * float(scene["lost"].mean()))
        # The same scene for a user who gives the lens: the distance along the line of sight scales with it.
        lens = score_scene(takes_from_detections(scene["detections"], info, Settings(people=2, focal_px=scene["focal_px"]),
                                                 lifter=lifter), scene)
        row["true_lens"] = {k: lens[k] for k in ("switched", "people", "distance")}
        rows.append(row)
        hidden.append(float((scene["confidence"] == 0).mean()))
        for p in range(2):  # the same person and camera, nobody else in the picture
            inside = ((scene["pixels"][p] >= 0) & (scene["pixels"][p] <= (scene["width"], scene["height"]))).all(-1)
            only = [(scene["pixels"][[p], i], inside[None, i].astype(float)) for i in range(frames)]
            (take,) = takes_from_detections(only, info, Settings(people=1), lifter=lifter)
            truth = scene["truth"][p, take.first_frame:take.first_frame + len(take)]
            pred = take.joints_camera - take.joints_camera[:, :1]
            alone.append({"mpjpe": metrics.mpjpe(pred, truth - truth[:, :1]),
                          "p_mpjpe": metrics.p_mpjpe(pred, truth - truth[:, :1])})
    together = [p for row in rows for p in row["people"]]
    distances = [row["distance"] for row in rows if row["distance"] is not None]
    lens_people = [p for row in rows for p in row["true_lens"]["people"]]
    lens_distances = [row["true_lens"]["distance"] for row in rows if row["true_lens"]["distance"] is not None]
    return {
        "scenes": len(rows), "switch_free_pct": 100 * float(np.mean([not r["switched"] for r in rows])),
        "mpjpe_mm": 1000 * float(np.mean([p["mpjpe"] for p in together])),
        "p_mpjpe_mm": 1000 * float(np.mean([p["p_mpjpe"] for p in together])),
        "alone_mpjpe_mm": 1000 * float(np.mean([p["mpjpe"] for p in alone])),
        "alone_p_mpjpe_mm": 1000 * float(np.mean([p["p_mpjpe"] for p in alone])),
        "distance_error_mm_median": float(np.median([d["error_mm"] for d in distances])),
        "distance_error_pct_median": float(np.median([d["error_pct"] for d in distances])),
        "distance_error_pct_p90": float(np.percentile([d["error_pct"] for d in distances], 90)),
        "true_distance_m_median": float(np.median([d["true_m"] for d in distances])),
        "true_lens_mpjpe_mm": 1000 * float(np.mean([p["mpjpe"] for p in lens_people])),
        "true_lens_distance_error_pct_median": float(np.median([d["error_pct"] for d in lens_distances])),
        "true_lens_distance_error_pct_p90": float(np.percentile([d["error_pct"] for d in lens_distances], 90)),
        "true_lens_distance_error_mm_median": float(np.median([d["error_mm"] for d in lens_distances])),
        "true_lens_switch_free_pct": 100 * float(np.mean([not r["true_lens"]["switched"] for r in rows])),
        "mpjpe_mm_switch_free": 1000 * float(np.mean([p["mpjpe"] for r in rows if not r["switched"] for p in r["people"]])),
        "hidden_joint_share_pct": 100 * float(np.mean(hidden)),
        "crossed_pct": 100 * float(np.mean([r["crossed"] for r in rows])),
        "switch_free_crossed_pct": 100 * float(np.mean([not r["switched"] for r in rows if r["crossed"]] or [np.nan])),
        "lost_pct": float(np.mean([r["lost_pct"] for r in rows])),
        "rows": rows,
    }


# ----------------------------------------------------------------------------------------------------
# (ii) Real clips

def _box(keypoints: np.ndarray) -> np.ndarray:
    seen = keypoints[np.isfinite(keypoints).all(-1)]
    return np.concatenate([seen.min(0), seen.max(0)]) if len(seen) else np.full(4, np.nan)


def _holder(boxes: list[np.ndarray], x: float, y: float) -> int | None:
    """The box (x0, y0, x1, y1) that contains the point (of several, the one whose centre is nearest)."""
    best, best_distance = None, np.inf
    for k, box in enumerate(boxes):
        if np.isfinite(box).all() and box[0] <= x <= box[2] and box[1] <= y <= box[3]:
            distance = np.hypot(x - (box[0] + box[2]) / 2, y - (box[1] + box[3]) / 2)
            if distance < best_distance:
                best, best_distance = k, distance
    return best


def identity(labels: dict, boxes_at) -> dict:
    """labels: person -> [[frame, x, y]...]; boxes_at(frame) -> [(id, box)...] -> points found and switches."""
    held: dict[str, list] = {}
    found = total = 0
    for person, points in labels.items():
        for frame, x, y in points:
            total += 1
            held_there = boxes_at(frame)
            ids, boxes = zip(*held_there) if held_there else ((), ())
            k = _holder(list(boxes), x, y)
            if k is not None:
                found += 1
                held.setdefault(person, []).append(ids[k])
    switches = sum(len(set(ids)) - 1 for ids in held.values())
    owners: dict = {}
    for person, ids in held.items():
        for i in set(ids):
            owners.setdefault(i, set()).add(person)
    merges = sum(len(people) - 1 for people in owners.values())
    return {"points": total, "found": found, "switches": switches + merges}


def real_clip(video: Path, labels: dict, lifter: Lifter) -> dict:
    if __package__:  # imported as benchmarks.people
        from . import detect as detect_benchmark
    else:  # run as a script (or imported) with this folder on the path
        import detect as detect_benchmark

    info = probe(video)
    timings = {}
    for name, people in (("one", 1), ("all", 0)):
        clock, stages = time.perf_counter(), Timings()
        takes = capture_people(video, Settings(people=people), lifter=lifter, timings=stages)
        timings[name] = {"wall_s": time.perf_counter() - clock, **stages.seconds}
    reference = detect_benchmark.reference(video, fresh=False)
    counts = np.array([len(e) for e in reference["everyone"]])
    frames = len(counts)
    ours = np.zeros(frames, dtype=int)
    for take in takes:
        seen = ~take.filled & (take.confidence.max(1) > 0)
        ours[take.first_frame + np.flatnonzero(seen)] += 1

    def our_boxes(frame: int) -> list:
        return [(take.person, _box(take.keypoints_2d[frame - take.first_frame])) for take in takes
                if 0 <= frame - take.first_frame < len(take) and not take.filled[frame - take.first_frame]]

    def reference_boxes(frame: int) -> list:
        return [(None, _box(k)) for k in reference["everyone"][frame]] if frame < frames else []

    ours_identity = identity(labels, our_boxes)
    return {
        "clip": video.name, "frames": frames, "fps": info.fps, "captured": len(takes), "labelled": len(labels),
        "reference_person_frames": int(counts.sum()), "person_frames": int(ours.sum()),
        "frames_fewer": int((ours < counts).sum()), "frames_more": int((ours > counts).sum()),
        "points": ours_identity["points"], "points_found": ours_identity["found"],
        "reference_points_found": identity(labels, reference_boxes)["found"],
        "switches": ours_identity["switches"], "notes": takes[0].notes, "timings": timings,
        "frames_each": [int((~t.filled).sum()) for t in takes],
    }


def markdown(result: dict) -> str:
    lines = ["# Several people", "",
             f"Generated by `python benchmarks/people.py{' --scenes ' + str(result['scenes_asked']) if result.get('scenes_asked') != 60 else ''}`. "
             f"Machine: {result['machine']}. Lifter: the shipped weights through the capture's own path "
             "(`takes_from_detections` / `capture_people`, every setting at its default, the default lens).", ""]
    s = result.get("synthetic")
    if s is None:
        lines += ["(i) Synthetic scenes: skipped, the Human3.6M files of `../shared/data` are not here.", ""]
    else:
        lines += [
            f"### (i) Synthetic scenes: two Human3.6M S9/S11 people, one virtual camera, 30 frames/s ({s['scenes']} scenes)", "",
            "A walker and someone else 1-4 m apart, filmed along the line through both (within 30 degrees), so one "
            f"passes behind the other; {s['hidden_joint_share_pct']:.1f} % of all joints hidden or out of the picture "
            "(confidence 0). Alone: the same person and camera with nobody else in the picture. See the script's "
            "docstring for the scenes.", "",
            "| | value |", "|---|---:|",
            f"| scenes whose two people cross in the picture (pelvises change sides) | {s['crossed_pct']:.0f} % |",
            f"| frames in which the hidden person is lost altogether | {s['lost_pct']:.1f} % |",
            f"| scenes without an identity switch: all / those that cross | {s['switch_free_pct']:.1f} % / "
            f"{s['switch_free_crossed_pct']:.1f} % |",
            f"| protocol 1 per person, together / alone (mm) | {s['mpjpe_mm']:.1f} / {s['alone_mpjpe_mm']:.1f} |",
            f"| protocol 1 per person, together, scenes without a switch (mm) | {s['mpjpe_mm_switch_free']:.1f} |",
            f"| protocol 2 per person, together / alone (mm) | {s['p_mpjpe_mm']:.1f} / {s['alone_p_mpjpe_mm']:.1f} |",
            f"| root-to-root distance error, median over scenes (mm) | {s['distance_error_mm_median']:.0f} |",
            f"| root-to-root distance error, median / p90 over scenes (% of the true distance) | "
            f"{s['distance_error_pct_median']:.1f} / {s['distance_error_pct_p90']:.1f} |",
            f"| true root-to-root distance, median (m) | {s['true_distance_m_median']:.2f} |",
            f"| with the lens given (`focal_px`): scenes without a switch; protocol 1 per person (mm) | "
            f"{s['true_lens_switch_free_pct']:.1f} %; {s['true_lens_mpjpe_mm']:.1f} |",
            f"| with the lens given: distance error, median (mm); median / p90 (% of the true distance) | "
            f"{s['true_lens_distance_error_mm_median']:.0f}; {s['true_lens_distance_error_pct_median']:.1f} / "
            f"{s['true_lens_distance_error_pct_p90']:.1f} |", "",
            "Most of the distance error is the lens: the camera looks along the line through both people, so "
            "their distance is mostly depth, and depth scales with the focal length the capture assumes (the default "
            f"{DEFAULT_FOV_DEGREES:g} degrees against the cameras' 55-85). The largest per-person errors are a person hidden behind the "
            "other for many frames: with most joints missing the lifter guesses.", ""]
    lines += ["### (ii) Real clips, `Settings(people=0)` (`posemoe capture --people all`)", "",
              "Reference: MediaPipe's PoseLandmarker on every frame (up to 3 people). Person-frames: frames in which "
              "each captured person was detected (not bridged), summed. Labelled points: points on each person at "
              "some frames, labelled once by looking (`tests/data/people_labels.json`); found: inside the box of a captured "
              "person's keypoints (of two, the one centred nearer); switches: a labelled person in two captured people, or two in one. "
              "Seconds: the whole capture (detection included) with one person and with everyone.", "",
              "| clip | frames | people captured (labelled) | frames each | person-frames, ours / reference | "
              "frames with fewer / more people than the reference | labelled points found, ours / reference | "
              "identity switches | seconds, one person / everyone |",
              "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for row in result["real"]:
        t = row["timings"]
        lines.append(f"| {row['clip']} | {row['frames']} | {row['captured']} ({row['labelled']}) | "
                     f"{', '.join(map(str, row['frames_each']))} | {row['person_frames']} / {row['reference_person_frames']} | "
                     f"{row['frames_fewer']} / {row['frames_more']} | {row['points_found']} / {row['reference_points_found']} "
                     f"of {row['points']} | {row['switches']} | {t['one']['wall_s']:.1f} / {t['all']['wall_s']:.1f} |")
    notes = [f"- {row['clip']}: {note}" for row in result["real"] for note in row["notes"]]
    if notes:
        lines += ["", "The captures' own notes:", "", *notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=60, help="synthetic scenes (at least 50 for the issue's figures)")
    parser.add_argument("--markdown")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    lifter = Lifter()
    result = {"machine": describe_machine(), "scenes_asked": args.scenes}
    if DATA.is_file() and args.scenes:
        clock = time.perf_counter()
        result["synthetic"] = synthetic(args.scenes, lifter)
        print(f"synthetic: {time.perf_counter() - clock:.0f} s", file=sys.stderr)
    labels = json.loads(LABELS.read_text())["clips"]
    clips = [REAL / name for name in labels if (REAL / name).is_file()] + [SAMPLE]
    result["real"] = [real_clip(clip, labels[clip.name], lifter) for clip in clips]
    text = markdown(result)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
