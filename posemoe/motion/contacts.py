"""Feet that stay planted: contact detection and foot locking.

A foot is in contact when its ankle is low and slow: within ``on_height`` of its planted height and
slower than ``on_speed``; it leaves when it rises above ``off_height`` or moves faster than twice
``on_speed``. A monocular take's feet never stop dead (depth noise and the root estimate make planted
feet drift at a good part of the body's speed), so by default the speed threshold grows with how fast
the body travels: 0.2 m/s plus 0.6 times the pelvis's median horizontal speed, between 0.35 and 1 m/s
(a swinging foot moves at two to three times the body's speed, so it stays above that), and a foot
only plants while it is the slower of the two, unless both are nearly still. The two thresholds per test (hysteresis) stop contacts from flickering on noise, and
contacts shorter than ``min_frames`` are dropped.

Locking pins each contact's ankle at one place (the median of where it was seen during the contact,
never below the floor) and moves the leg there with a two-bone IK that keeps thigh and shin lengths and
bends the knee towards where it was. The pin fades in and out over ``blend`` frames on each side of
the contact, so the foot eases into and out of its planted spot instead of snapping (FreeMoCap's
attenuation windows do the same).

Modes: "auto" uses height and speed; "always" pins every foot near the floor, whatever its speed (for
takes where the floor under the person is all they touch, such as standing or dancing on the spot);
"never" leaves the feet alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import PoseMoEError
from ..skeleton import ANKLE_HEIGHT, L_ANKLE, L_HIP, L_KNEE, PELVIS, R_ANKLE, R_HIP, R_KNEE

FEET = ((R_ANKLE, R_KNEE, R_HIP), (L_ANKLE, L_KNEE, L_HIP))  # (ankle, knee, hip) of the right and left leg
MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class ContactSettings:
    """Thresholds of :func:`detect_contacts`: heights in metres above the planted ankle height,
    on_speed in metres per second (horizontal; None: from the body's speed), min_frames the shortest
    contact kept."""

    on_height: float = 0.06
    off_height: float = 0.10
    on_speed: float | None = None
    min_frames: int = 3


def foot_speed(ankles: np.ndarray, fps: float) -> np.ndarray:
    """ankles (N, 3) world metres -> (N,) horizontal speed, m/s (central differences)."""
    if len(ankles) < 2:
        return np.zeros(len(ankles))
    return np.linalg.norm(np.gradient(ankles[:, :2], axis=0), axis=-1) * fps


def detect_contacts(joints: np.ndarray, fps: float, mode: str = "auto",
                    settings: ContactSettings = ContactSettings()) -> np.ndarray:
    """joints (N, 17, 3) world metres, floor at Z = 0 -> contacts (N, 2) bool for the right and left foot."""
    if mode not in MODES:
        raise PoseMoEError(f"Unknown foot-locking mode {mode!r}: choose one of {', '.join(MODES)}.")
    n = len(joints)
    contacts = np.zeros((n, 2), dtype=bool)
    if mode == "never":
        return contacts
    on_speed = settings.on_speed
    if on_speed is None:
        on_speed = float(np.clip(0.2 + 0.6 * np.median(foot_speed(joints[:, PELVIS], fps)), 0.35, 1.0))
    speeds = np.stack([foot_speed(joints[:, ankle], fps) for ankle, _, _ in FEET], axis=1)
    if mode == "always":
        speeds[:] = 0.0
    for f, (ankle, _, _) in enumerate(FEET):
        height = joints[:, ankle, 2] - ANKLE_HEIGHT
        speed, other = speeds[:, f], speeds[:, 1 - f]
        down = False
        for t in range(n):
            # Besides being slow, a planted foot is the slower of the two (the other swings past it),
            # unless both are nearly still (standing).
            if down:
                down = (height[t] <= settings.off_height and speed[t] <= 2.0 * on_speed
                        and (speed[t] <= other[t] + 0.3 or speed[t] <= 0.35))
            else:
                down = (height[t] <= settings.on_height and speed[t] <= on_speed
                        and (speed[t] <= other[t] + 0.05 or speed[t] <= 0.2))
            contacts[t, f] = down
        for start, stop in segments(contacts[:, f]):
            if stop - start < settings.min_frames:
                contacts[start:stop, f] = False
    return contacts


def segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """(N,) bool -> [(start, stop), ...] of the runs of True, stop exclusive."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def two_bone_ik(hip: np.ndarray, knee: np.ndarray, target: np.ndarray, upper: float,
                lower: float) -> tuple[np.ndarray, np.ndarray]:
    """Place knee and ankle so the ankle reaches ``target`` (or as near as the leg allows) with bone
    lengths ``upper`` (hip-knee) and ``lower`` (knee-ankle), the knee bending towards ``knee``.

    hip, knee, target: (N, 3) metres. Returns (knee (N, 3), ankle (N, 3)).
    """
    reach = target - hip
    distance = np.linalg.norm(reach, axis=-1, keepdims=True)
    axis = reach / np.maximum(distance, 1e-9)
    d = np.clip(distance, abs(upper - lower) + 1e-6, upper + lower - 1e-6)
    along = (upper**2 - lower**2 + d**2) / (2 * d)
    out = np.sqrt(np.maximum(upper**2 - along**2, 0.0))
    pole = knee - hip
    pole = pole - (pole * axis).sum(-1, keepdims=True) * axis
    # A leg seen perfectly straight has no bend direction: bend forwards (-Y, the character's front).
    fallback = np.array([0.0, -1.0, 0.0]) - axis[:, 1:2] * axis
    pole = np.where(np.linalg.norm(pole, axis=-1, keepdims=True) > 1e-6, pole, fallback)
    pole /= np.maximum(np.linalg.norm(pole, axis=-1, keepdims=True), 1e-9)
    return hip + along * axis + out * pole, hip + d * axis


def lock_feet(joints: np.ndarray, contacts: np.ndarray, lengths: np.ndarray, blend: int = 4) -> np.ndarray:
    """Pin planted feet.

    joints (N, 17, 3) world metres of a constant-length skeleton; contacts (N, 2) from
    :func:`detect_contacts`; lengths (17,) bone lengths (the bone ending at each joint); blend: frames
    of fade on each side of a contact. Returns new joints (N, 17, 3); the input is not changed.
    """
    out = np.array(joints, dtype=np.float64, copy=True)
    n = len(out)
    for f, (ankle, knee, hip) in enumerate(FEET):
        target = out[:, ankle].copy()
        weight = np.zeros(n)
        pinned = out[:, ankle].copy()
        for start, stop in segments(contacts[:, f]):
            spot = np.median(out[start:stop, ankle], axis=0)
            spot[2] = max(spot[2], ANKLE_HEIGHT)
            lo, hi = max(start - blend, 0), min(stop + blend, n)
            ramp = np.ones(hi - lo)
            if blend:
                frames = np.arange(lo, hi)
                ramp = np.clip((np.minimum(frames - (start - blend), (stop - 1 + blend) - frames) + 1) / (blend + 1), 0, 1)
            # Overlapping fades of neighbouring contacts: the stronger pin wins.
            stronger = ramp > weight[lo:hi]
            weight[lo:hi][stronger] = ramp[stronger]
            pinned[lo:hi][stronger] = spot
        moving = weight > 0
        if not moving.any():
            continue
        target[moving] = weight[moving, None] * pinned[moving] + (1 - weight[moving, None]) * out[moving, ankle]
        new_knee, new_ankle = two_bone_ik(out[moving, hip], out[moving, knee], target[moving], lengths[knee], lengths[ankle])
        out[moving, knee], out[moving, ankle] = new_knee, new_ankle
    return out
