"""Left and right put back where a detector swapped them, from the continuity of the 2D keypoints.

BlazePose sometimes labels a whole body mirrored for a stretch of frames (a person seen from behind is
read as facing the camera: 20 frames and more in a row, and the lifted body turns round and back), or
swaps the labels of one arm or one leg (on the bundled sample, seen from the side, it flickers the
legs' labels for a frame or a few as they pass each other). Within such a stretch every frame looks as
consistent as any other; what gives it away is its two ends, where a limb's labels jump across the
body from one frame to the next while the body itself moves smoothly.

So each pair of limbs (the legs: hip, knee, foot; the arms: shoulder, elbow, wrist) gets a hidden state
per frame, "as detected" or "swapped", and the most likely sequence of states is found with the Viterbi
algorithm. A frame costs :data:`SWAP_COST` swapped and nothing as detected (the detector is usually
right); a frame also costs how far its joints lie from the straight line through the same joints in the
last :data:`HISTORY_S` seconds of frames before it, under the labels the states give them (squared, in
units of a joint's typical step, capped, weighted by the detector's confidence). Distance travelled
alone is not enough: where two legs pass each other in a side view, a crossing and a bounce travel
equally far, and only the legs' motion over several frames tells them apart. A whole-body swap is both
pairs swapped at once. Frames without a detection are skipped; across a gap longer than
:data:`MAX_GAP_S` the chain starts afresh. ``python benchmarks/swaps.py`` measures it on the sample's
real detections and, held out, on the Human3.6M Stacked Hourglass detections.

Half of what this relabels on the Stacked Hourglass detections is not a real swap; a judge that keeps
only the runs it is sure of repairs too few of the real ones (``docs/decisions.md``, "Left/right swap
repair"; figures in ``docs/benchmarks.md``).

Written here, not taken from a library: a Viterbi over 2^(frames of history) states with a cost
specific to our skeleton is a few lines of NumPy.
"""

from __future__ import annotations

import numpy as np

from .skeleton import ARMS, LEGS

#: Limb pairs that a detector swaps, each as (right joints, left joints) in our 17-joint order.
PAIRS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "legs": LEGS,
    "arms": ARMS,
}
#: A joint's typical step from one frame to the next, as a share of the body's height (walking at
#: 30 frames/s moves a foot by about 4 %); distances are measured in these units.
STEP = 0.04
#: The most one joint may cost in one frame (squared steps): a detector's occasional wild joint
#: cannot force a relabelling on its own.
MAX_JOINT_COST = 100.0
#: Cost of one frame in the swapped state (squared steps): it breaks ties, as where nothing moves, and
#: decides which side of a jump is the detector's fault (the shorter). Chosen on the Human3.6M training
#: subjects' Stacked Hourglass detections (S1, S5-S8: ``benchmarks/swaps.py --subjects S1 S5 S6 S7
#: S8``) together with the sample's injected swaps, then measured held out (``benchmarks/swaps.py``,
#: S9/S11; the values compared are in ``docs/decisions.md``).
SWAP_COST = 0.5
#: Longest swap put back, seconds: detectors' faults last a moment (BlazePose's whole-body swaps seen
#: from behind: up to about a second).
MAX_SWAP_S = 1.5
#: Seconds without a detection after which continuity says nothing.
MAX_GAP_S = 0.5
#: Seconds of straight-line motion that predict the next frame: shorter tell a crossing from a bounce
#: less well (on the sample's injected swaps at 30 frames/s, 3 frames left many where 5 leave a few;
#: on the current detector's output, 6 frames repair 98-100 % where 5 repair 92-97 %), longer start to
#: relabel the wrong frames in the held-out Human3.6M detections (at 25 frames/s, 6 frames relabel a
#: third more pair-frames, with fewer of them right, than 5). In frames: this times the frame rate,
#: within :data:`HISTORY_FRAMES` (the Viterbi has 2^frames states).
HISTORY_S = 0.2
HISTORY_FRAMES = (3, 6)
#: Most repair passes: relabelling a stretch changes the history later frames are judged by, so one
#: pass is not always its own fixed point; passes repeat until one changes nothing.
MAX_PASSES = 4
BLOCK = 4096  # frames whose costs are computed at once


def body_height(keypoints: np.ndarray) -> float:
    """keypoints (N, 17, 2) px, NaN where missing -> the body's median height in the picture (px)."""
    y = keypoints[np.isfinite(keypoints[..., 1]).any(1), :, 1]
    heights = np.nanmax(y, axis=1) - np.nanmin(y, axis=1)
    return float(np.median(heights)) if len(heights) else 1.0


def _costs(labelled: np.ndarray, weight: np.ndarray, times: np.ndarray, start: np.ndarray, unit: float,
           history: int) -> np.ndarray:
    """cost[k, h, r]: how far frame k, labelled r (0: as frame k - 1, 1: exchanged), lies from the
    straight line through the frames before it, the history frames before k - 1 labelled as the bits of
    h say (bit i: frame k - 2 - i exchanged relative to k - 1). labelled (2, m, J, 2) px as detected and
    exchanged; weight (m, J); times (m,) frames; start (m,) first frame of each frame's chain; history:
    frames the line is fitted to."""
    m = labelled.shape[1]
    cost = np.zeros((m, 2 ** (history - 1), 2))
    for first in range(1, m, BLOCK):  # in blocks of frames, so an hour of video needs little memory
        k = np.arange(first, min(first + BLOCK, m))
        cost[k] = _block_costs(labelled, weight, times, start, unit, history, k)
    return cost


def _block_costs(labelled: np.ndarray, weight: np.ndarray, times: np.ndarray, start: np.ndarray, unit: float,
                 history: int, k: np.ndarray) -> np.ndarray:
    """:func:`_costs` for the frames ``k`` (all >= 1)."""
    used = np.minimum(history, k - start[k])  # history frames in frame k's chain (0 at a chain's start)
    cost = np.zeros((len(k), 2 ** (history - 1), 2))
    w = np.minimum(weight[k], weight[k - 1])
    for h in range(2 ** (history - 1)):
        # Past frames k - 1 - i, i < history, each in frame k - 1's labels; those outside the chain weigh 0.
        index = np.clip(k[:, None] - 1 - np.arange(history)[None], 0, None)  # (len(k), history)
        bit = np.array([0] + [(h >> i) & 1 for i in range(history - 1)])
        past = labelled[bit[None, :], index]  # (len(k), history, J, 2)
        t = times[index]
        valid = (np.arange(history)[None] < used[:, None]).astype(float)
        # Least-squares line through the valid past frames (a point when there is one), carried to time k.
        count = np.maximum(valid.sum(1), 1.0)
        t_mean = (valid * t).sum(1) / count
        p_mean = (valid[..., None, None] * past).sum(1) / count[:, None, None]
        dt = (t - t_mean[:, None]) * valid
        spread = (dt ** 2).sum(1)
        slope = (dt[..., None, None] * (past - p_mean[:, None])).sum(1) / np.where(spread > 0, spread, 1.0)[:, None, None]
        slope = np.where((spread > 0)[:, None, None], slope, 0.0)
        predicted = p_mean + slope * (times[k] - t_mean)[:, None, None]
        # A line's error grows with how far ahead it reaches; a lone point's with the square root of it.
        ahead = times[k] - times[k - 1]
        scale = unit * np.where(used >= 2, ahead, np.sqrt(ahead))
        for r in (0, 1):
            squared = (np.linalg.norm(labelled[r, k] - predicted, axis=-1) / scale[:, None]) ** 2
            cost[:, h, r] = np.where(used > 0, (w * np.minimum(np.nan_to_num(squared, nan=0.0), MAX_JOINT_COST)).sum(1), 0.0)
    return cost


def _pair_states(keypoints: np.ndarray, confidence: np.ndarray, right: tuple[int, ...], left: tuple[int, ...],
                 seen: np.ndarray, max_gap: int, max_run: int, unit: float, history: int) -> np.ndarray:
    """The most likely swapped/as-detected state (N,) bool of one limb pair (see the module docstring)."""
    joints = np.array(list(right) + list(left))
    mirrored = np.array(list(left) + list(right))
    frames = np.flatnonzero(seen)
    states = np.zeros(len(keypoints), dtype=bool)
    m = len(frames)
    if m < 2:
        return states
    labelled = np.stack([keypoints[frames][:, joints], keypoints[frames][:, mirrored]])  # (2, m, J, 2)
    linked = np.diff(frames) <= max_gap
    start = np.maximum.accumulate(np.where(np.concatenate([[True], ~linked]), np.arange(m), 0))
    cost = _costs(labelled, confidence[frames][:, joints], frames.astype(float), start, unit, history)
    # Viterbi over the labels of the last history frames: state bit 0 is frame k's label (0 as
    # detected, 1 swapped), bit i frame k - i's.
    count = 2 ** history
    state = np.arange(count)
    # The two states of frame k - 1 that lead to each state of frame k, and the cost index of each move.
    before = np.stack([(state >> 1) | (a << (history - 1)) for a in (0, 1)])  # (2, count)
    label, last = state & 1, (state >> 1) & 1
    relative = np.zeros((2, count), dtype=int)  # history bits of frames k - 2 .. relative to k - 1
    for i in range(history - 1):
        relative |= (((before >> (i + 1)) & 1) ^ last[None]) << i
    step = (label ^ last)[None].repeat(2, 0)
    prior = np.where(label, SWAP_COST, 0.0)
    total = np.where(state >> 1, np.inf, prior)  # frame 0: no frames before it
    back = np.zeros((m, count), dtype=np.int8)
    for k in range(1, m):
        options = total[before] + cost[k][relative, step]  # (2, count)
        choice = np.argmin(options, axis=0)
        back[k] = choice
        total = options[choice, state] + prior
    chosen = np.zeros(m, dtype=bool)
    current = int(np.argmin(total))
    for k in range(m - 1, -1, -1):
        chosen[k] = bool(current & 1)
        current = int(before[back[k, current], current])
    # A detector's fault lasts a moment; a longer "swapped" run is the continuity losing track of which
    # side is which (a turn, limbs passing each other in depth) and flipping everything after (without
    # this cap, every relabelled run over 4 s on the held-out Human3.6M detections was wrong).
    edges = np.flatnonzero(np.diff(np.concatenate([[0], chosen.astype(np.int8), [0]])))
    for first, end in zip(edges[::2], edges[1::2]):
        if frames[end - 1] - frames[first] + 1 > max_run:
            chosen[first:end] = False
    states[frames] = chosen
    return states


def exchange(keypoints: np.ndarray, confidence: np.ndarray, frames: np.ndarray,
             pairs: tuple[str, ...] = tuple(PAIRS)) -> tuple[np.ndarray, np.ndarray]:
    """Copies of keypoints (N, 17, C) and confidence (N, 17) with the left and right labels of the limb
    ``pairs`` (names in :data:`PAIRS`) exchanged in ``frames`` (indices, or an (N,) mask): a detector's
    swap, or its undoing."""
    keypoints, confidence = np.array(keypoints), np.array(confidence)
    for name in pairs:
        right, left = PAIRS[name]
        both, mirrored = list(right) + list(left), list(left) + list(right)
        keypoints[np.ix_(frames, both)] = keypoints[np.ix_(frames, mirrored)]
        confidence[np.ix_(frames, both)] = confidence[np.ix_(frames, mirrored)]
    return keypoints, confidence


def repair_swaps(keypoints: np.ndarray, confidence: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undo a detector's left/right swaps.

    keypoints (N, 17, 2) px with NaN rows where the person was not detected; confidence (N, 17); fps of
    the frames. Returns (keypoints, confidence, repaired): the first two with the swapped limbs'
    labels exchanged back, repaired (N, len(PAIRS)) bool, True where a pair was relabelled (columns in
    the order of :data:`PAIRS`: legs, arms). Passes repeat until one relabels nothing (at most
    :data:`MAX_PASSES`), so the result, repaired again, stays as it is.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    seen = np.isfinite(keypoints).all(axis=(1, 2)) & (confidence.max(1) > 0)
    unit = STEP * body_height(keypoints)
    max_gap = max(1, round(MAX_GAP_S * fps))
    max_run = max(1, round(MAX_SWAP_S * fps))
    history = int(np.clip(round(HISTORY_S * fps), *HISTORY_FRAMES))
    repaired = np.zeros((len(keypoints), len(PAIRS)), dtype=bool)
    for _ in range(MAX_PASSES):
        flips = np.stack([_pair_states(keypoints, confidence, right, left, seen, max_gap, max_run, unit, history)
                          for right, left in PAIRS.values()], axis=1)
        if not flips.any():
            break
        for column, name in enumerate(PAIRS):
            keypoints, confidence = exchange(keypoints, confidence, flips[:, column], (name,))
        repaired ^= flips  # a pair relabelled twice is back as detected
    return keypoints, confidence, repaired
