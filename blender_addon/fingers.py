"""Fingers on someone else's armature: the hand part of a retarget (:mod:`retarget` calls it).

The take's hands (:class:`posemoe.motion.hands.BodyHands`: our hand and finger bones' rest frames and
world rotations, on the solved body) drive the target's hand and finger bones named in a bone map's
``fingers`` table, ``{target bone: our bone}``, our bones being those of our own rig
(:func:`rig.hand_bone_names`: ``hand.L``, ``thumb.01.L`` .. ``thumb.03.L``, ``f_index.01.L`` ..
``f_pinky.03.R``). E.g. Rigify's meta-rig ``"f_index.01.L": "f_index.01.L"``, Mixamo's
``"LeftHandIndex1": "f_index.01.L"``; Rigify's metacarpals ``palm.01.L`` .. ``palm.04.L`` ride with the
palm: ``"palm.01.L": "hand.L"``.

Rest-pose compensation, as the body's (:mod:`retarget`, step 1), once per bone:

- a bone driven by a finger segment: ``C`` is the smallest rotation that turns the target bone's rest
  direction onto our segment's rest direction (a rig whose fingers rest curled is first straightened
  into ours); its wanted orientation is ``Q(t) @ C @ M_rest``, ``Q`` our segment's world rotation from
  its rest, so it points exactly where our segment points;
- a bone driven by our ``hand``: the palm has a twist that matters (which way the palm faces), so ``C``
  turns the target's whole palm frame onto ours, each frame built by one rule from the rest heads of
  the wrist (the hand bone's head) and of the index, middle and little fingers' first bones: y from the
  wrist to the middle finger, z along (index - wrist) x (little - wrist) made perpendicular. A target
  without those finger bones falls back to the smallest rotation of the hand bone's direction.

The hand's rotation replaces the one the body's map gives it (which only continues the forearm).
Target bones the armature lacks are skipped; a map or armature without finger bones keys the body
only, with a warning when the take has hands.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from posemoe import PoseMoEError
from posemoe.motion.fingers import SIDES
from posemoe.motion.hands import BodyHands
from posemoe.motion.solve import shortest_arc

from .rig import hand_bone_names

#: Our hand and finger bones a map may name, and where they sit in :class:`BodyHands` (hand, bone).
OUR_BONES: dict[str, tuple[int, int]] = {
    name: (k, b) for k, side in enumerate(SIDES) for b, name in enumerate(hand_bone_names(side))}


def parse_fingers(data: Mapping, source: str) -> dict[str, str]:
    """A bone map's optional ``fingers`` table, checked: {target bone: our hand or finger bone}."""
    table = data.get("fingers", {})
    if not isinstance(table, Mapping):
        raise PoseMoEError(f"{source}: 'fingers' must map target bones to our finger bones, like "
                           "blender_addon/maps/mixamo.json.")
    unknown = sorted({str(ours) for ours in table.values() if ours not in OUR_BONES})
    if unknown:
        raise PoseMoEError(f"{source}: {', '.join(unknown)} in its 'fingers' are not our hand bones (hand.L, "
                           "thumb.01.L .. thumb.03.L, f_index.01.L .. f_pinky.03.R); fix the map.")
    return {str(bone): str(ours) for bone, ours in table.items()}


def _palm_frame(wrist: np.ndarray, index: np.ndarray, middle: np.ndarray, little: np.ndarray) -> np.ndarray:
    """(3, 3) columns x, y, z of a palm from four rest points (module docstring)."""
    y = middle - wrist
    y = y / max(float(np.linalg.norm(y)), 1e-12)
    z = np.cross(index - wrist, little - wrist)
    z = z - (z @ y) * y
    z = z / max(float(np.linalg.norm(z)), 1e-12)
    return np.stack([np.cross(y, z), y, z], axis=1)


def _palm_compensation(target: dict[str, str], table, hands: BodyHands, facing: np.ndarray, k: int,
                       hand_bone: str) -> np.ndarray:
    """``C`` for the bones driven by our hand ``k`` (see the module docstring)."""
    side = SIDES[k]
    names = hand_bone_names(side)
    firsts = {ours: bone for bone, ours in target.items() if bone in table}
    wanted = [names[4], names[7], names[13]]  # f_index.01, f_middle.01, f_pinky.01
    ours_rest = facing @ hands.rest[k, 0]
    if all(w in firsts for w in wanted):
        heads = [table[firsts[w]].rest[:3, 3] for w in wanted]
        theirs = _palm_frame(table[hand_bone].rest[:3, 3], *heads)
        mine = facing @ _palm_frame(np.zeros(3), *(hands.heads[k, [4, 7, 13]]))
        return mine @ theirs.T
    return shortest_arc(table[hand_bone].rest[:3, 1], ours_rest[:, 1][None]).as_matrix()[0]


def extend_plan(plan, bone_map, table, hands: BodyHands, depth) -> tuple[dict[str, str], list[str]]:
    """Add the wanted orientations of the map's finger bones present in the armature (and the hand's
    from the palm) to a retarget's plan (``plan.order``, parents first, and ``plan.wanted``, (N, 3, 3)
    armature space). ``table`` the target's bones (``retarget._Bone``: ``rest`` matrix_local); ``depth``
    a bone's depth in the armature. Returns ({target bone: our bone} keyed, warnings)."""
    n = len(plan.root_head)
    if hands.rotations.shape[0] != n:
        raise PoseMoEError(f"The hands hold {hands.rotations.shape[0]} frames and the body {n}; solve both from "
                           "one take.")
    present = {bone: ours for bone, ours in bone_map.fingers.items() if bone in table}
    if not present:
        return {}, ["The take has hands, but the armature has no finger bones the bone map knows; only the "
                    "body was keyed."]
    facing = plan.facing
    # Our world rotations in the rig's armature space: G Q G^T.
    rotations = facing @ hands.rotations @ facing.T  # (N, 2, 16, 3, 3)
    palm_c: dict[int, np.ndarray] = {}
    for bone, ours in sorted(present.items(), key=lambda item: depth(item[0])):
        k, b = OUR_BONES[ours]
        rest = table[bone].rest[:3, :3]
        if b == 0:
            if k not in palm_c:
                # The palm frame hangs on the target bone our hand drives that is highest in the chain.
                hand_bone = min((x for x, o in present.items() if o == ours), key=depth)
                palm_c[k] = _palm_compensation(present, table, hands, facing, k, hand_bone)
            align = palm_c[k]
        else:
            align = shortest_arc(rest[:, 1], (facing @ hands.rest[k, b][:, 1])[None]).as_matrix()[0]
        plan.wanted[bone] = rotations[:, k, b] @ (align @ rest)
        if bone not in plan.order:
            plan.order.append(bone)
    plan.order.sort(key=depth)  # stable: the body's order is kept, the fingers after their parents
    return present, []
