"""Fingers in 3D: MediaPipe's 21 hand landmarks to a palm rotation and per-finger joint angles.

Input, per hand: points (T, 21, 3) in camera space (OpenCV axes: x right, y down, z forward), any
consistent unit (the hand model's pixels with its relative depth, or metres), in MediaPipe's order:
0 wrist; thumb 1 CMC, 2 MCP, 3 IP, 4 tip; index 5 MCP, 6 PIP, 7 DIP, 8 tip; middle 9-12; ring 13-16;
pinky 17-20. Plus a presence (T,) per frame and which hand it is.

**The palm frame** (T, 3, 3), columns (x, y, z) of the hand in camera space:
- y from the wrist towards the middle finger's knuckle (MCP);
- z the palm's normal out of the *back* of the hand;
- x = y cross z, so the frame is right-handed: on the left hand x points to the thumb side (radial),
  on the right hand to the little-finger side (ulnar). (Radial x distal points out of the back of a
  *left* hand and out of the palm of a right one: hold both up, palms to your face, thumbs out.) The
  formulas below are written for the left hand; the right hand is mirrored into it through camera x.
  The two hands' frames are mirror images, so the same angles are the same pose on either hand.
It is fitted (Kabsch, :func:`posemoe.rotations.similarity_transform`) to the hand's rigid palm points
(wrist and the four MCPs) against a template of the palm measured on the take itself, rather than built
from three points, so knuckle noise averages out; the template is expressed in the axes above, so a
clean hand gets exactly those axes.

**Joint angles** (T, 5, 4) radians, fingers in the order of :data:`FINGERS`, and per finger
:data:`ANGLE_NAMES`: (base flexion, base abduction, middle flexion, end flexion), i.e.
- index..pinky: (MCP flexion, MCP abduction, PIP flexion, DIP flexion);
- thumb: (CMC flexion, CMC abduction, MCP flexion, IP flexion), on the thumb's own axes (below).
Every segment has a frame whose y runs along the bone, x is its flexion axis and z points out of its
back (the nail side), the way Blender's bones point along +Y and bend about X. Each finger starts from
a base frame fixed in the palm frame; then
    proximal = base @ Rx(-flexion) @ Rz(-abduction),  middle = proximal @ Rx(-pip),  end = middle @ Rx(-dip)
(left hand, in its palm frame; Rx, Rz rotations about the segment's own x and z by the signed angle).
- Flexion is positive when it curls the finger towards the palm (the segment turns from +y towards its
  -z), negative for hyperextension. The middle and end joints are hinges about the segment's x; what a
  noisy point has out of that plane is dropped (least squares for a hinge).
- Finger abduction is positive towards the thumb side (radial) for all four fingers. A finger's base
  frame has the palm's z and points along its metacarpal's line in the palm plane (estimated as
  :data:`METACARPAL_FAN` of the way from the palm's y to the wrist-to-MCP ray), so straight fingers
  held together read about zero.
- The thumb's base frame is the palm frame turned :data:`THUMB_SPLAY` towards the thumb side in the palm
  plane, then rolled :data:`THUMB_ROLL` (90 degrees) about its own length so its nail faces the thumb
  side: its x is the palm's -z. CMC flexion (positive) swings the thumb across the palm towards the
  little finger, in the palm plane; CMC abduction (positive) lifts it out of the palm plane on the palm
  side (palmar abduction); MCP and IP flex it towards the palm (towards the little finger when the
  thumb lies in the palm plane).
- Right hand: mirror everything through the hand's own x. In each hand's own frames flexion is always
  Rx(-flexion); abduction is Rz(-abduction) on the left hand and Rz(+abduction) on the right (as
  Blender's pose-flip negates Y and Z rotations). :func:`segment_rotations` returns the frames.
The proximal segment has no twist of its own (two degrees of freedom at MCP and CMC).

**The fit** (:func:`fit_angles`): the direct reading above (:func:`joint_angles`, segment by segment) is
only the start. Each finger's chain, with the take's own segment lengths and the hinges above, is then
fitted by weighted least squares to its four points, depth residuals counting less than image-plane ones
(the hand model's relative depth is the noisier), so a short end segment's bend comes mostly from how
foreshortened it looks in the picture rather than from its depth. What that wins on hands with MediaPipe's
jitter: docs/benchmarks.md, "Hands: finger angles" (``benchmarks/fingers.py --fit-iterations 0`` is the
direct solve).

**Clean-up** (:func:`solve_hand`): clip to human joint limits (:data:`LIMITS_DEG`), fill frames where the
hand is not seen (short gaps hold the last pose and ease into the next; long ones ease to a relaxed
:data:`REST_DEG` and back), then smooth with the One-Euro filter run forwards and backwards (offline,
so its lag cancels and quick finger moves stay on time).

**Lengths** (:func:`hand_shape`): the knuckle positions in the palm frame and three segments per finger,
medians over the frames where the hand is seen, scaled to a forearm length when one is given.
:func:`forward` turns angles + palm + wrist + shape back into 21 points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from .. import PoseMoEError
from ..rotations import continuous_quaternions, similarity_transform
from .filters import one_euro

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
ANGLE_NAMES: tuple[str, ...] = ("base_flexion", "base_abduction", "middle_flexion", "end_flexion")
#: MediaPipe's hand landmarks the solve names (not the body's joints: see posemoe.skeleton for those).
WRIST, INDEX_MCP, MIDDLE_MCP, RING_MCP, PINKY_MCP = 0, 5, 9, 13, 17
#: Per finger: its base joint (thumb CMC or an MCP) and the three points after it, to the tip.
CHAINS: np.ndarray = np.array([(1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20)])
#: The palm's rigid points: wrist and the four MCPs (the thumb's CMC moves with the thumb).
PALM_POINTS: tuple[int, ...] = (WRIST, INDEX_MCP, MIDDLE_MCP, RING_MCP, PINKY_MCP)
SIDES = ("left", "right")
#: The formulas are written for the left hand (x radial, y distal, z dorsal is a left hand's frame);
#: this one is mirrored (camera x negated) into it and back.
_MIRRORED = "right"

#: The thumb's zero: its metacarpal 45 degrees from the palm's y towards the thumb side, in the palm
#: plane, rolled 90 degrees about its length so it bends in the palm plane: on real hands that roll keeps
#: the thumb's MCP and IP bends closest to their hinge plane (docs/decisions.md, Fingers).
THUMB_SPLAY = np.radians(45.0)
THUMB_ROLL = np.radians(90.0)
#: A finger's zero runs this fraction of the way from the palm's y to the ray from the wrist to its MCP:
#: MediaPipe's one wrist point makes the rays fan out about twice as much as the metacarpals do, whose
#: bases spread across the carpus (docs/decisions.md, Fingers).
METACARPAL_FAN = 0.5

# Joint limits, degrees, (low, high) per finger and angle in ANGLE_NAMES order. From the American
# Academy of Orthopaedic Surgeons' "Joint Motion: Method of Measuring and Recording" (1965) and Hume et
# al., "Functional range of motion of the joints of the hand", J. Hand Surg. 1990: MCP flexion 0-90 with
# up to 30 of passive hyperextension; MCP abduction about 20-25 each way; PIP 0-100/110; DIP 0-80/90 with
# 10-30 of hyperextension in lax joints; thumb CMC about 50 radial and 70 palmar abduction, MCP 0-50/56,
# IP 0-80 with 20-30 hyperextension. The ends are a little wider than those averages so a lax or
# flexible hand is not cut off; the limits are there to stop detector blunders, not to grade a hand.
_FINGER_LIMITS = ((-30.0, 90.0), (-25.0, 25.0), (-10.0, 110.0), (-20.0, 90.0))
LIMITS_DEG: np.ndarray = np.array([
    # thumb, relative to its base frame (45 deg radial in the palm plane): CMC flexion -25 swings it out
    # to 70 deg from the middle finger (full radial abduction), 60 across the palm; palmar abduction to
    # 70 and a little behind the palm plane.
    ((-25.0, 60.0), (-15.0, 70.0), (-15.0, 60.0), (-25.0, 85.0)),
    _FINGER_LIMITS, _FINGER_LIMITS, _FINGER_LIMITS, _FINGER_LIMITS,
])
# A relaxed hand, degrees: fingers slightly curled, more towards the little finger (the resting posture
# of the hand in the hand-surgery literature, MCP about 20-45 and PIP 30-45), thumb a little forward.
REST_DEG: np.ndarray = np.array([
    (10.0, 20.0, 15.0, 10.0),
    (25.0, 0.0, 30.0, 15.0),
    (30.0, 0.0, 35.0, 15.0),
    (35.0, 0.0, 40.0, 15.0),
    (40.0, 0.0, 40.0, 15.0),
])
# Wrist to middle-finger knuckle per forearm length (elbow to wrist): hand length 0.108 and forearm
# 0.146 of stature (Drillis and Contini, as tabulated by Winter), and the knuckle at about 0.45 of the
# hand's length (Buchholz, Armstrong and Goldstein 1992).
PALM_PER_FOREARM = 0.33

_MIRROR = np.diag([-1.0, 1.0, 1.0])


# ---------------------------------------------------------------------------------------------- maths

def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _rx(angle: np.ndarray) -> np.ndarray:
    """(...) radians -> (..., 3, 3) rotations about x."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rz(angle: np.ndarray) -> np.ndarray:
    """(...) radians -> (..., 3, 3) rotations about z."""
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(c), np.zeros_like(c)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise PoseMoEError(f"A hand is 'left' or 'right', not {side!r}.")


def _as_left(points: np.ndarray, side: str) -> np.ndarray:
    """A hand's points (..., 3) as the left hand's, the one the formulas are written for: a right hand's
    are mirrored (camera x negated), a left hand's copied. Both hands share one set of formulas and so
    mirror exactly."""
    _check_side(side)
    points = np.asarray(points, dtype=np.float64)
    return points * (-1.0, 1.0, 1.0) if side == _MIRRORED else points.copy()


def _mirror_frames(frames: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> their mirror images M R M (still rotations)."""
    return _MIRROR @ frames @ _MIRROR


def _left_frames(frames: np.ndarray, side: str) -> np.ndarray:
    """A hand's frames (..., 3, 3) as the left hand's: a right hand's mirrored, a left hand's as they are.
    Mirroring twice is the identity, so the same call takes the left hand's frames back to ``side``."""
    return _mirror_frames(frames) if side == _MIRRORED else frames


def camera_points(landmarks: np.ndarray, focal: float | None = None,
                  principal: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The hand model's output as camera-space points. landmarks (T, 21, 3): x, y image pixels and the
    model's relative depth in the same pixel scale (MediaPipe's z, wrist at 0) -> (T, 21, 3).

    Without ``focal`` it is the weak-perspective hand the model describes (x, y, z as given). With the
    camera's focal length and principal point in pixels, each point's x, y are pushed back out by its own
    depth, undoing the perspective the model cannot see; the result is then in "pixels at the wrist's
    depth" (times wrist depth / focal gives metres). Angles do not depend on that scale. Near the camera
    this matters: a hand 0.3 m away spans about +-30 % of its distance in depth.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if focal is None:
        return landmarks.copy()
    relative = landmarks[..., 2:3] - landmarks[:, WRIST, None, 2:3]
    xy = (landmarks[..., :2] - np.asarray(principal, dtype=np.float64)) * (1.0 + relative / focal)
    return np.concatenate([xy, focal + relative], axis=-1)


# ------------------------------------------------------------------------------------------ the shape

@dataclass
class HandShape:
    """A hand's fixed geometry, in the left hand's palm frame (x to the thumb side, y to the fingers,
    z out of the back; the right hand is its mirror image).

    bases (5, 3): each finger's base joint (thumb CMC, index..pinky MCP) relative to the wrist.
    lengths (5, 3): each finger's three segments, base to tip. Same unit as ``bases``.
    """

    bases: np.ndarray
    lengths: np.ndarray

    @property
    def palm_size(self) -> float:
        """Wrist to middle-finger MCP, the hand's size."""
        return float(np.linalg.norm(self.bases[2]))

    def scaled(self, factor: float) -> HandShape:
        return HandShape(self.bases * factor, self.lengths * factor)

    def template(self) -> np.ndarray:
        """(5, 3) the palm's rigid points (:data:`PALM_POINTS`) in the palm frame."""
        return np.vstack([np.zeros((1, 3)), self.bases[1:]])

    def base_frames(self) -> np.ndarray:
        """(5, 3, 3) each finger's base frame in the left hand's palm frame: a finger's zero points along
        its metacarpal in the palm plane; the thumb's is the fixed splayed, rolled frame."""
        splay = METACARPAL_FAN * np.arctan2(self.bases[:, 0], self.bases[:, 1])
        frames = _rz(-splay)
        frames[0] = _rz(np.array(-THUMB_SPLAY)) @ Rotation.from_rotvec([0.0, THUMB_ROLL, 0.0]).as_matrix()
        return frames

    @staticmethod
    def from_palm_points(bases: np.ndarray, lengths: np.ndarray) -> HandShape:
        """Re-express bases (5, 3) given in the left hand's axes (any frame) in the palm frame that
        :func:`palm_frames` builds from them, so a hand made from this shape solves to the palm it was
        given. lengths (5, 3) pass through."""
        bases = np.asarray(bases, dtype=np.float64)
        pts = np.zeros((1, 21, 3))
        pts[0, CHAINS[:, 0]] = bases
        frame = _constructed_frames(pts)[0]
        return HandShape(bases @ frame, np.asarray(lengths, dtype=np.float64).copy())


def default_shape(palm_size: float = 0.085) -> HandShape:
    """An adult hand (hand length about 0.19 m, wrist to middle MCP 0.085 m at the default), scaled to
    ``palm_size``. Segment lengths are Buchholz, Armstrong and Goldstein's (1992) fractions of the hand's
    length; the knuckles about 2 cm apart, the ring and little ones slightly towards the palm (the palm's
    arch)."""
    hand = 0.19
    bases = np.array([(0.022, 0.030, -0.012), (0.024, 0.082, 0.0), (0.0, 0.085, 0.0),
                      (-0.019, 0.080, -0.003), (-0.036, 0.071, -0.008)])
    ratios = np.array([(0.251, 0.196, 0.158), (0.265, 0.143, 0.097), (0.277, 0.170, 0.108),
                       (0.259, 0.165, 0.107), (0.206, 0.117, 0.093)])
    shape = HandShape.from_palm_points(bases, ratios * hand)
    return shape.scaled(palm_size / shape.palm_size)


# --------------------------------------------------------------------------------------- palm frames

def frame_from_y_z(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The right-handed frame (..., 3, 3), columns x, y, z, with y along ``y`` (..., 3) and z the part of
    ``z`` (..., 3) square to it, x = y cross z: the palm frame's construction, from its points
    (:func:`palm_axes`) or from a rest pose (:func:`posemoe.motion.hands.rest_palm`)."""
    y = _unit(y)
    z = _unit(z - (z * y).sum(-1, keepdims=True) * y)
    return np.stack([np.cross(y, z), y, z], axis=-1)


def palm_axes(wrist: np.ndarray, index: np.ndarray, middle: np.ndarray, pinky: np.ndarray) -> np.ndarray:
    """The left hand's palm frame from four points: wrist, index, middle and pinky MCPs, each (..., 3)
    in any one frame and unit -> (..., 3, 3), columns x, y, z (module docstring): y to the middle MCP,
    z the normal out of the back of a left hand, x = y cross z."""
    # Index x pinky, both from the wrist, points out of the back of a left hand.
    return frame_from_y_z(middle - wrist, np.cross(index - wrist, pinky - wrist))


def _constructed_frames(left_points: np.ndarray) -> np.ndarray:
    """(T, 21, 3) points of a left hand -> (T, 3, 3) palm frames from wrist, index, middle, pinky MCPs."""
    return palm_axes(left_points[:, WRIST], left_points[:, INDEX_MCP], left_points[:, MIDDLE_MCP],
                     left_points[:, PINKY_MCP])


def _fitted_frames(template: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """template (K, 3), observed (T, K, 3) -> (T, 3, 3) rotations R (acting on column vectors)
    minimising |R template - observed| after removing both centroids: the rigid (Kabsch) fit."""
    rotation = similarity_transform(np.broadcast_to(template, observed.shape), observed, scale=False)[1]
    return np.swapaxes(rotation, -1, -2)  # similarity_transform's R acts on row vectors


def palm_frames(points: np.ndarray, side: str, shape: HandShape | None = None) -> np.ndarray:
    """points (T, 21, 3) camera space, any unit -> (T, 3, 3) palm frames (columns x, y, z in camera
    space; see the module's docstring). With a ``shape`` the frame is the best rigid fit of its palm
    template to the wrist and four MCPs; without, it is built from wrist, index, middle and pinky MCPs."""
    left_points = _as_left(points, side)
    if shape is None:
        frames = _constructed_frames(left_points)
    else:
        frames = _fitted_frames(shape.template(), left_points[:, PALM_POINTS])
    return _left_frames(frames, side)


def _local(points: np.ndarray, side: str, frames: np.ndarray) -> np.ndarray:
    """Camera-space points (T, 21, 3) and the hand's palm frames (T, 3, 3) -> (T, 21, 3) left-hand palm
    coordinates relative to the wrist."""
    left_points = _as_left(points, side)
    relative = left_points - left_points[:, WRIST, None]
    return np.einsum("tji,tkj->tki", _left_frames(frames, side), relative)


# -------------------------------------------------------------------------------------------- lengths

def hand_shape(points: np.ndarray, side: str, seen: np.ndarray | None = None,
               forearm_length: float | None = None) -> HandShape:
    """The hand's knuckle positions and segment lengths, medians over the seen frames.

    points (T, 21, 3) camera space, any unit; seen (T,) bool (default: every frame with finite points).
    Each frame is first divided by its own palm size (wrist to middle MCP), so a hand in pixels that
    comes closer does not grow; the result is then in the input's unit at the median palm size, or, with
    ``forearm_length`` (e.g. metres, the lifted body's elbow to wrist), at
    :data:`PALM_PER_FOREARM` times it, in that unit.
    """
    points = np.asarray(points, dtype=np.float64)
    seen = np.isfinite(points).all(axis=(1, 2)) if seen is None else np.asarray(seen, bool) & np.isfinite(points).all(axis=(1, 2))
    if not seen.any():
        raise PoseMoEError("The hand is not seen in any frame, so its size cannot be measured; "
                           "capture without hands or choose a clip where the hands are visible.")
    pts = points[seen]
    local = _local(pts, side, palm_frames(pts, side))
    size = np.maximum(np.linalg.norm(local[:, MIDDLE_MCP], axis=-1), 1e-12)[:, None, None]
    local = local / size
    segments = np.linalg.norm(np.diff(local[:, CHAINS], axis=2), axis=-1)  # (N, 5, 3)
    shape = HandShape.from_palm_points(np.median(local[:, CHAINS[:, 0]], axis=0), np.median(segments, axis=0))
    palm = PALM_PER_FOREARM * forearm_length if forearm_length is not None else float(np.median(size))
    return shape.scaled(palm / shape.palm_size)


# --------------------------------------------------------------------------------------------- angles

def joint_angles(points: np.ndarray, side: str, palm: np.ndarray, shape: HandShape) -> np.ndarray:
    """points (T, 21, 3) camera space, palm (T, 3, 3) from :func:`palm_frames`, shape for the fingers'
    metacarpal lines -> (T, 5, 4) radians, unclipped (see the module's docstring for axes and signs)."""
    local = _local(points, side, palm)
    base = np.broadcast_to(shape.base_frames(), (len(local), 5, 3, 3))
    direction = _unit(np.diff(local[:, CHAINS], axis=2))  # (T, 5, 3, 3): three segment directions
    v = np.einsum("tfji,tfj->tfi", base, direction[:, :, 0])
    flexion = np.arctan2(-v[..., 2], v[..., 1])
    abduction = np.arctan2(v[..., 0], np.hypot(v[..., 1], v[..., 2]))
    frame = base @ _rx(-flexion) @ _rz(-abduction)
    out = [flexion, abduction]
    for s in (1, 2):
        v = np.einsum("tfji,tfj->tfi", frame, direction[:, :, s])
        bend = np.arctan2(-v[..., 2], v[..., 1])
        frame = frame @ _rx(-bend)
        out.append(bend)
    return np.stack(out, axis=-1)


def _chain_offsets(angles: np.ndarray, base: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """angles (..., 5, 4), base frames (5, 3, 3), lengths (..., 5, 3) -> (..., 5, 3, 3) the three
    points after each finger's base joint, relative to it, in the (left-hand) palm frame."""
    first = base @ _rx(-angles[..., 0]) @ _rz(-angles[..., 1])
    second = first @ _rx(-angles[..., 2])
    third = second @ _rx(-angles[..., 3])
    steps = np.stack([first[..., :, 1], second[..., :, 1], third[..., :, 1]], axis=-2) * lengths[..., None]
    return np.cumsum(steps, axis=-2)


def fit_angles(points: np.ndarray, side: str, palm: np.ndarray, shape: HandShape, angles: np.ndarray | None = None,
               depth_weight: float = 1.0, root_weight: float = 1.0, iterations: int = 3) -> np.ndarray:
    """The joint angles that best explain the landmarks: per finger, a weighted least-squares fit of
    the finger's kinematic chain (:func:`forward`'s: the take's own segment lengths from ``shape``,
    scaled per frame to the palm's size, two degrees of freedom at the base and hinges after it) to its
    four points. points (T, 21, 3) camera space, palm (T, 3, 3) :func:`palm_frames`, angles (T, 5, 4)
    the start (default :func:`joint_angles`) -> (T, 5, 4) radians, inside :data:`LIMITS_DEG`.

    Residuals are taken in camera axes with the depth (z) ones times ``depth_weight``: the hand model's
    relative depth is noisier than its image-plane x, y (measured in benchmarks/fingers.py), so a short
    end segment's bend is read mostly from its foreshortening in the picture given its known length
    rather than from its noisy depth. The chain's base joint is free but
    held to where the palm's rigid fit puts it with ``root_weight`` (one observed point's worth at 1).
    Gauss-Newton, a few iterations from the direct solve, projected into the joint limits.
    """
    points = np.asarray(points, dtype=np.float64)
    local = _local(points, side, palm)
    frames = _left_frames(palm, side)  # the left hand's palm -> camera axes
    if angles is None:
        angles = joint_angles(points, side, palm, shape)
    limits = np.radians(LIMITS_DEG)
    # Per frame, the palm's size against the shape (least-squares scale of the rigid palm points).
    template = shape.template() - shape.template().mean(0)
    observed = local[:, PALM_POINTS] - local[:, PALM_POINTS].mean(1, keepdims=True)
    scale = np.einsum("kc,tkc->t", template, observed) / max(float((template ** 2).sum()), 1e-12)
    scale = np.where(scale > 0, scale, np.linalg.norm(local[:, MIDDLE_MCP], axis=-1) / shape.palm_size)
    prior = (local[:, PALM_POINTS].mean(1)[:, None] + scale[:, None, None]
             * (shape.bases - shape.template().mean(0))[None])  # (T, 5, 3) the bases the palm's fit puts
    lengths = scale[:, None, None] * shape.lengths  # (T, 5, 3)
    base = shape.base_frames()
    # Whitening: local residual -> camera axes, depth scaled down. (T, 3, 3) applied to (..., 3).
    white = np.diag([1.0, 1.0, depth_weight]) @ frames
    target = local[:, CHAINS]  # (T, 5, 4, 3)
    x = np.concatenate([np.clip(np.nan_to_num(angles), limits[..., 0], limits[..., 1]), target[:, :, 0]], axis=-1)

    def residuals(x: np.ndarray) -> np.ndarray:
        root = x[..., 4:]
        chain = np.concatenate([root[:, :, None], root[:, :, None] + _chain_offsets(x[..., :4], base, lengths)], 2)
        r = np.concatenate([chain - target, root_weight * (root - prior)[:, :, None]], axis=2)  # (T, 5, 5, 3)
        return np.einsum("tij,tfkj->tfki", white, r).reshape(*x.shape[:2], 15)

    eps = 1e-6
    for _ in range(iterations):
        r = residuals(x)
        jac = np.empty(r.shape + (7,))
        for p in range(4):
            step = x.copy()
            step[..., p] += eps
            jac[..., p] = (residuals(step) - r) / eps
        # The base joint moves every point and its prior alike: the whitening itself.
        jw = np.broadcast_to(white[:, None, None], (len(x), 5, 5, 3, 3)).copy()
        jw[:, :, 4] *= root_weight
        jac[..., 4:] = jw.reshape(len(x), 5, 15, 3)
        jtj = np.swapaxes(jac, -1, -2) @ jac + 1e-9 * np.eye(7)
        delta = np.linalg.solve(jtj, -(np.swapaxes(jac, -1, -2) @ r[..., None]))[..., 0]
        x = x + delta
        x[..., :4] = np.clip(x[..., :4], limits[..., 0], limits[..., 1])
    # A degenerate frame (a hand of no size, all points at one place) keeps its direct solve.
    return np.where(np.isfinite(x[..., :4]), x[..., :4], angles)


def clip_to_limits(angles: np.ndarray) -> np.ndarray:
    """(..., 5, 4) radians -> a copy clipped to :data:`LIMITS_DEG`."""
    limits = np.radians(LIMITS_DEG)
    return np.clip(angles, limits[..., 0], limits[..., 1])


def _segment_frames_left(angles: np.ndarray, shape: HandShape) -> np.ndarray:
    """angles (..., 5, 4) -> (..., 5, 3, 3, 3) each segment's frame in the left hand's palm frame."""
    base = shape.base_frames()
    first = base @ _rx(-angles[..., 0]) @ _rz(-angles[..., 1])
    second = first @ _rx(-angles[..., 2])
    return np.stack([first, second, second @ _rx(-angles[..., 3])], axis=-3)


def segment_rotations(angles: np.ndarray, side: str, shape: HandShape) -> np.ndarray:
    """angles (T, 5, 4) radians -> (T, 5, 3, 3, 3): for each finger and segment (proximal, middle, end;
    the thumb's metacarpal, proximal, distal) its frame in the hand's own palm frame: columns x (flexion
    axis), y (along the bone, base to tip), z (out of its back). A bone's camera-space rotation is
    ``palm @ frame``; a Blender bone along +Y bending about X takes it after its own rest roll."""
    _check_side(side)
    return _left_frames(_segment_frames_left(np.asarray(angles, dtype=np.float64), shape), side)


def forward(angles: np.ndarray, palm: np.ndarray, wrist: np.ndarray, shape: HandShape, side: str) -> np.ndarray:
    """Forward kinematics, the inverse of the solve: angles (T, 5, 4) radians, palm (T, 3, 3) the hand's
    palm frames, wrist (T, 3) camera space, shape in the unit wanted -> (T, 21, 3) MediaPipe-ordered
    points in camera space, that unit. Used by the tests and benchmark, and to place a rig's finger
    bones from the solved (clean, limited) angles."""
    _check_side(side)
    angles = np.asarray(angles, dtype=np.float64)
    frames = _segment_frames_left(angles, shape)  # (T, 5, 3 segments, 3, 3)
    steps = frames[..., :, 1] * shape.lengths[None, :, :, None]  # each segment's y times its length
    local = np.zeros((len(angles), 21, 3))
    local[:, CHAINS[:, 0]] = shape.bases
    local[:, CHAINS[:, 1:]] = shape.bases[None, :, None] + np.cumsum(steps, axis=2)
    if side == _MIRRORED:
        local[..., 0] *= -1.0
    return np.einsum("tij,tkj->tki", np.asarray(palm, dtype=np.float64), local) + np.asarray(wrist)[:, None]


# ------------------------------------------------------------------------------------ gaps, smoothing

def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def gap_weights(seen: np.ndarray, hold_frames: int, ease_frames: int, rest_in_long_gaps: bool = True):
    """How each frame is made from the seen ones. seen (T,) bool -> (prev (T,) int, next (T,) int,
    w_prev (T,), w_next (T,)): the frame is w_prev * value[prev] + w_next * value[next] + the rest of the
    weight (1 - w_prev - w_next) times a rest pose. A seen frame is itself. A gap of up to
    ``hold_frames`` holds the last seen pose and eases into the next one over its last ``ease_frames``;
    a longer gap eases from the last pose to rest and from rest into the next over ``ease_frames`` each
    (with ``rest_in_long_gaps`` false it is held like a short one). Gaps at the ends hold or rest alike."""
    seen = np.asarray(seen, bool)
    n = len(seen)
    prev, nxt = np.arange(n), np.arange(n)
    w_prev, w_next = seen.astype(np.float64), np.zeros(n)
    t = 0
    while t < n:
        if seen[t]:
            t += 1
            continue
        end = t
        while end < n and not seen[end]:
            end += 1
        length, k = end - t, np.arange(end - t)
        has_prev, has_next = t > 0, end < n
        prev[t:end], nxt[t:end] = (t - 1 if has_prev else end), (end if has_next else t - 1)
        if not (has_prev or has_next):
            w_prev[t:end] = 0.0
        elif length > hold_frames and rest_in_long_gaps:
            m = max(1, min(ease_frames, length // 2))
            w_prev[t:end] = (1.0 - _smoothstep((k + 1) / (m + 1))) if has_prev else 0.0
            w_next[t:end] = _smoothstep((k - (length - m) + 1) / (m + 1)) if has_next else 0.0
        elif has_prev and has_next:
            m = max(1, min(ease_frames, length))
            u = _smoothstep((k - (length - m) + 1) / (m + 1))
            w_prev[t:end], w_next[t:end] = 1.0 - u, u
        elif has_prev:
            w_prev[t:end] = 1.0
        else:
            prev[t:end] = end
            w_prev[t:end] = 1.0
        t = end
    return prev, nxt, w_prev, w_next


def fill_angles(angles: np.ndarray, seen: np.ndarray, hold_frames: int, ease_frames: int,
                rest: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """angles (T, 5, 4) radians (unseen frames may hold anything, NaN too), seen (T,) bool -> (filled
    (T, 5, 4) radians, weight (T,) share of the seen data in each frame: 1 seen or held, 0 at rest).
    rest (5, 4) radians, default :data:`REST_DEG`. See :func:`gap_weights`."""
    rest = np.radians(REST_DEG) if rest is None else np.asarray(rest, dtype=np.float64)
    prev, nxt, w_prev, w_next = gap_weights(seen, hold_frames, ease_frames)
    safe = np.where(np.isfinite(angles), angles, 0.0)
    filled = (w_prev[:, None, None] * safe[prev] + w_next[:, None, None] * safe[nxt]
              + (1.0 - w_prev - w_next)[:, None, None] * rest)
    return filled, w_prev + w_next


def fill_rotations(frames: np.ndarray, seen: np.ndarray, ease_frames: int) -> np.ndarray:
    """frames (T, 3, 3) rotations, seen (T,) bool -> (T, 3, 3) with every gap held from the last seen
    frame and slerped into the next over the gap's last ``ease_frames`` (there is no rest orientation
    for a palm; the caller blends in the forearm's with :attr:`HandMotion.weight`). No seen frame: the
    identity."""
    seen = np.asarray(seen, bool)
    if not seen.any():
        return np.tile(np.eye(3), (len(seen), 1, 1))
    prev, nxt, w_prev, w_next = gap_weights(seen, len(seen), ease_frames, rest_in_long_gaps=False)
    safe = np.where(np.isfinite(frames).all(axis=(1, 2))[:, None, None], frames, np.eye(3))
    a, b = Rotation.from_matrix(safe[prev]), Rotation.from_matrix(safe[nxt])
    u = w_next / np.maximum(w_prev + w_next, 1e-12)
    # Slerp per frame: a * exp(u * log(a^-1 b)).
    delta = Rotation.from_rotvec((a.inv() * b).as_rotvec() * u[:, None])
    return (a * delta).as_matrix()


def _zero_lag_one_euro(x: np.ndarray, fps: float, min_cutoff: float, beta: float) -> np.ndarray:
    """One-Euro forwards and backwards, averaged: each pass lags (or leads) a quick move by about the
    same amount, so the mean is on time, and offline we have the whole take."""
    return 0.5 * (one_euro(x, fps, min_cutoff, beta) + one_euro(x[::-1], fps, min_cutoff, beta)[::-1])


def _cutoff(strength: float) -> float:
    # From 6 Hz at rest (light) down to 0.6 Hz (heavy) on a log scale, as filters.smooth does.
    return 6.0 * 10 ** (-strength)


def smooth_angles(angles: np.ndarray, fps: float, strength: float = 0.5) -> np.ndarray:
    """angles (T, 5, 4) radians -> smoothed (T, 5, 4). ``strength`` in [0, 1]; 0 returns a copy. The
    cut-off rises fast with angular speed (beta 1 Hz per rad/s: a 10 rad/s flick, 90 degrees in 0.15 s,
    passes at over 10 Hz) so quick finger motion keeps its timing and its peaks."""
    angles = np.asarray(angles, dtype=np.float64)
    if strength <= 0.0 or len(angles) < 3:
        return angles.copy()
    return _zero_lag_one_euro(angles, fps, _cutoff(strength), beta=1.0)


def smooth_rotations(frames: np.ndarray, fps: float, strength: float = 0.5) -> np.ndarray:
    """frames (T, 3, 3) rotations -> smoothed (T, 3, 3): the zero-lag One-Euro on sign-continuous
    quaternions, renormalised (the palm turns fast, so its beta is per rad/s of quaternion change)."""
    frames = np.asarray(frames, dtype=np.float64)
    if strength <= 0.0 or len(frames) < 3:
        return frames.copy()
    q = continuous_quaternions(Rotation.from_matrix(frames).as_quat())
    q = _zero_lag_one_euro(q, fps, _cutoff(strength), beta=2.0)
    return Rotation.from_quat(q).as_matrix()


# ------------------------------------------------------------------------------------------ the solve

@dataclass(frozen=True)
class FingerSettings:
    """presence: frames below it count as not seen; hold_seconds: gaps up to this long hold the last
    pose, longer ones go to rest; ease_seconds: the ease in and out of a gap; smoothing: One-Euro
    strength in [0, 1] (0: off); fit_iterations: Gauss-Newton steps of the per-finger least-squares fit
    (:func:`fit_angles`; 0: the direct per-segment solve, :func:`joint_angles`); depth_weight: how much a
    depth residual counts against an image-plane one in that fit."""

    presence: float = 0.5
    hold_seconds: float = 0.5
    ease_seconds: float = 0.15
    smoothing: float = 0.5
    fit_iterations: int = 3
    depth_weight: float = 0.7


@dataclass
class HandMotion:
    """One hand over a take. side 'left' or 'right'; angles (T, 5, 4) radians (:data:`FINGERS` x
    :data:`ANGLE_NAMES`, clipped to :data:`LIMITS_DEG`, filled and smoothed); palm (T, 3, 3) the palm
    frame in camera space; wrist (T, 3) camera space, the input's unit; seen (T,) bool where the hand
    was measured; weight (T,) how much of each frame comes from measurements (1) rather than the rest
    pose (0), for blending the palm with the forearm's guess; shape the hand's geometry; fps;
    raw_angles (T, 5, 4) the per-frame solve before limits, gap filling and smoothing (NaN where unseen)."""

    side: str
    angles: np.ndarray
    palm: np.ndarray
    wrist: np.ndarray
    seen: np.ndarray
    weight: np.ndarray
    shape: HandShape
    fps: float
    raw_angles: np.ndarray = field(repr=False, default=None)

    def points(self, shape: HandShape | None = None) -> np.ndarray:
        """(T, 21, 3) camera-space points of the clean hand (:func:`forward`), optionally with another
        shape (e.g. scaled to metres)."""
        return forward(self.angles, self.palm, self.wrist, shape or self.shape, self.side)

    def segment_rotations(self) -> np.ndarray:
        """(T, 5, 3, 3, 3) each segment's frame in the palm frame: see :func:`segment_rotations`."""
        return segment_rotations(self.angles, self.side, self.shape)


def solve_hand(points: np.ndarray, presence: np.ndarray, side: str, fps: float,
               settings: FingerSettings = FingerSettings(), forearm_length: float | None = None) -> HandMotion:
    """MediaPipe hand landmarks to a clean :class:`HandMotion`.

    points (T, 21, 3) camera space (OpenCV axes), any consistent unit, NaN allowed where unseen;
    presence (T,) the hand model's presence or confidence; side 'left' or 'right'; fps frames per second;
    forearm_length: scales :attr:`HandMotion.shape` (see :func:`hand_shape`). The palm frames and wrist
    stay in the input's unit and axes.
    """
    _check_side(side)
    points = np.asarray(points, dtype=np.float64)
    presence = np.asarray(presence, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (21, 3) or presence.shape != points.shape[:1]:
        raise PoseMoEError(f"Hand landmarks must be (frames, 21, 3) with one presence per frame, not "
                           f"{points.shape} and {presence.shape}.")
    if not 0.0 <= settings.smoothing <= 1.0:
        raise PoseMoEError(f"Finger smoothing must be between 0 and 1, not {settings.smoothing}.")
    if not (settings.depth_weight > 0.0 and settings.fit_iterations >= 0):
        raise PoseMoEError(f"The finger fit needs a positive depth weight and no negative step count, not "
                           f"{settings.depth_weight} and {settings.fit_iterations}.")
    n = len(points)
    seen = (presence >= settings.presence) & np.isfinite(points).all(axis=(1, 2))
    hold = int(round(settings.hold_seconds * fps))
    ease = max(1, int(round(settings.ease_seconds * fps)))
    if not seen.any():
        shape = default_shape(PALM_PER_FOREARM * forearm_length if forearm_length else 0.085)
        rest = np.broadcast_to(np.radians(REST_DEG), (n, 5, 4)).copy()
        return HandMotion(side, rest, np.tile(np.eye(3), (n, 1, 1)), np.zeros((n, 3)), seen, np.zeros(n),
                          shape, fps, np.full((n, 5, 4), np.nan))
    shape = hand_shape(points, side, seen)
    safe = np.where(seen[:, None, None], points, points[np.argmax(seen)])
    palm = palm_frames(safe, side, shape)
    raw = joint_angles(safe, side, palm, shape)
    if settings.fit_iterations > 0:
        raw = fit_angles(safe, side, palm, shape, raw, settings.depth_weight, iterations=settings.fit_iterations)
    raw[~seen] = np.nan
    angles, weight = fill_angles(clip_to_limits(raw), seen, hold, ease)
    palm = fill_rotations(palm, seen, ease)
    wrist_prev, wrist_next, w_prev, w_next = gap_weights(seen, n, ease, rest_in_long_gaps=False)
    u = (w_next / np.maximum(w_prev + w_next, 1e-12))[:, None]
    wrist = (1 - u) * safe[wrist_prev, WRIST] + u * safe[wrist_next, WRIST]
    if settings.smoothing > 0:
        angles = clip_to_limits(smooth_angles(angles, fps, settings.smoothing))
        palm = smooth_rotations(palm, fps, settings.smoothing)
        wrist = 0.5 * (one_euro(wrist, fps, _cutoff(settings.smoothing), 0.0)
                       + one_euro(wrist[::-1], fps, _cutoff(settings.smoothing), 0.0)[::-1])
    if forearm_length is not None:
        shape = shape.scaled(PALM_PER_FOREARM * forearm_length / shape.palm_size)
    return HandMotion(side, angles, palm, wrist, seen, weight, shape, fps, raw)
