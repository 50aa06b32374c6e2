"""A take's hands on its solved body: the finger solve's camera-space hands carried into the body's world.

:func:`body_hands` turns each hand's landmarks into a :class:`~posemoe.motion.fingers.HandMotion`
(:func:`posemoe.motion.fingers.solve_hand`) and hangs it on the body's forearm: the bones of
:data:`HAND_BONES`, their rest frames on the T-pose and their rotations in the body's world, what the
armature writer (``blender_addon/rig.py``) and the BVH export key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..skeleton import ELBOW, WRIST  # the body's joints by side; fingers.WRIST is a hand landmark, not imported here
from .fingers import (CHAINS, MIDDLE_MCP, SIDES, FingerSettings, HandMotion, HandShape, camera_points, forward,
                      frame_from_y_z, segment_rotations, solve_hand)

#: The bones of one hand on a rig, parents first: the hand (wrist to the middle finger's MCP: the palm's
#: frame) and three per finger, base to tip (the thumb's metacarpal, proximal and distal phalanx; a
#: finger's proximal, middle and distal phalanx). Rigify's names; the side suffix is the rig's.
HAND_BONES: tuple[str, ...] = ("hand",) + tuple(
    f"{name}.{k:02d}" for name in ("thumb", "f_index", "f_middle", "f_ring", "f_pinky") for k in (1, 2, 3))
#: Each bone's parent in :data:`HAND_BONES` (-1: the forearm).
HAND_PARENTS: tuple[int, ...] = (-1,) + tuple(0 if k == 0 else 1 + 3 * f + k - 1 for f in range(5) for k in range(3))


@dataclass
class BodyHands:
    """Both hands of a take on its solved body, in the body's world (Z up, facing -Y, metres: the
    armature space of a PoseMoE rig). Index 0 is the left hand, 1 the right (:data:`SIDES`); per hand the
    16 bones of :data:`HAND_BONES`.

    rest (2, 16, 3, 3): each bone's frame in the body's rest (T-pose, palms down), columns x (the
    flexion axis), y (along the bone), z (out of its back; the hand's is the palm frame's z); heads
    (2, 16, 3) the rest heads relative to the wrist and lengths (2, 16), metres; rotations
    (T, 2, 16, 3, 3) each bone's world rotation from its rest (its frame at t is ``rotations[t] @
    rest``), the hand's from the palm, turned into the forearm's where the hand was not seen (by
    :attr:`HandMotion.weight`); motions: the two :class:`HandMotion` (camera space, ``shape`` in metres).
    """

    rest: np.ndarray
    heads: np.ndarray
    lengths: np.ndarray
    rotations: np.ndarray
    motions: tuple[HandMotion, HandMotion]

    def local_rotations(self, body: np.ndarray) -> np.ndarray:
        """(T, 2, 16, 3, 3) each bone's rotation relative to its parent's (both world rotations from the
        rest); ``body`` (T, 17, 3, 3) the body's world rotations give the hands' parent, the forearm."""
        out = np.empty_like(self.rotations)
        for k, side in enumerate(SIDES):
            for b, parent in enumerate(HAND_PARENTS):
                up = body[:, ELBOW[side]] if parent < 0 else self.rotations[:, k, parent]
                out[:, k, b] = np.swapaxes(up, -1, -2) @ self.rotations[:, k, b]
        return out


def rest_palm(forearm: np.ndarray) -> np.ndarray:
    """(3, 3) the palm frame of a T-pose hand, palm down, continuing the rest forearm (3,) (elbow to
    wrist, world: Z up): y along the forearm, z up (the back of the hand), x = y cross z."""
    return frame_from_y_z(np.asarray(forearm, dtype=np.float64), np.array([0.0, 0.0, 1.0]))


def hand_rest(shape: HandShape, side: str, palm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A hand of ``shape`` (metres) with straight fingers (all angles zero) on a palm frame ``palm``
    (3, 3) -> (frames (16, 3, 3), heads (16, 3) relative to the wrist, lengths (16,)), in
    :data:`HAND_BONES` order."""
    zero = np.zeros((1, 5, 4))
    points = forward(zero, palm[None], np.zeros((1, 3)), shape, side)[0]
    segments = segment_rotations(zero, side, shape)[0]  # (5, 3, 3, 3)
    frames = np.concatenate([palm[None], (palm @ segments).reshape(15, 3, 3)])
    heads = np.concatenate([points[:1], points[CHAINS[:, :3]].reshape(15, 3)])
    tails = np.concatenate([points[MIDDLE_MCP:MIDDLE_MCP + 1], points[CHAINS[:, 1:]].reshape(15, 3)])
    return frames, heads, np.linalg.norm(tails - heads, axis=-1)


def body_hands(take, motion, settings: FingerSettings = FingerSettings()) -> BodyHands | None:
    """The hands of ``take`` (a :class:`posemoe.take.Take`: ``hands_2d``, ``hand_presence``, its camera)
    on ``motion`` (its solved body, a :class:`posemoe.motion.solve.SkeletonMotion`, e.g. the cleaned
    one), or None when the take holds no hand in any frame.

    Each hand's landmarks become camera-space points (:func:`camera_points`, the take's focal length,
    principal point at the picture's centre) and are solved (:func:`solve_hand`, its shape scaled to the
    body's forearm); the palm turns into the world with each frame's camera (``Take.camera_poses``) and, weighted by
    how much of each frame was seen, away from the forearm's own rotation (a hand never seen simply
    continues its forearm, its fingers relaxed).
    """
    presence = np.nan_to_num(np.asarray(take.hand_presence, dtype=np.float64))
    if not (presence > 0).any():
        return None
    landmarks = np.asarray(take.hands_2d, dtype=np.float64)
    rotation = take.camera_poses()[0]  # (T, 3, 3) each frame's camera axes -> the world's
    offsets = np.asarray(motion.offsets, dtype=np.float64)
    body = Rotation.from_quat(np.asarray(motion.quaternions, dtype=np.float64).reshape(-1, 4)).as_matrix()
    body = body.reshape(len(motion.quaternions), -1, 3, 3)
    principal = (0.5 * float(take.width), 0.5 * float(take.height))
    n = len(body)
    rest = np.empty((2, 16, 3, 3))
    heads, lengths = np.empty((2, 16, 3)), np.empty((2, 16))
    rotations = np.empty((n, 2, 16, 3, 3))
    motions = []
    for k, side in enumerate(SIDES):
        forearm = offsets[WRIST[side]]
        points = camera_points(landmarks[:, k], float(take.focal_px), principal)
        hand = solve_hand(points, presence[:, k], side, float(motion.fps), settings,
                          forearm_length=float(np.linalg.norm(forearm)))
        motions.append(hand)
        palm_rest = rest_palm(forearm)
        rest[k], heads[k], lengths[k] = hand_rest(hand.shape, side, palm_rest)
        # The palm in the world, as a rotation from its rest, blended with the forearm's by the weight.
        seen = Rotation.from_matrix(rotation @ hand.palm @ palm_rest.T)
        guess = Rotation.from_matrix(body[:, ELBOW[side]])
        palm = guess * Rotation.from_rotvec((guess.inv() * seen).as_rotvec() * hand.weight[:, None])
        palm = palm.as_matrix()
        rotations[:, k, 0] = palm
        segments = hand.segment_rotations().reshape(n, 15, 3, 3)
        # A finger's frame at t is palm(t) @ palm_rest @ segment(t); its rotation from rest takes rest^T.
        rotations[:, k, 1:] = palm[:, None] @ palm_rest @ segments @ np.swapaxes(rest[k, 1:], -1, -2)[None]
    return BodyHands(rest, heads, lengths, rotations, tuple(motions))
