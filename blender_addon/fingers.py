"""Fingers on someone else's armature: the hand part of a retarget's solve (:mod:`retarget` calls it). No bpy.

The take's hands (:class:`posemoe.motion.hands.BodyHands`: our hand and finger bones' rest frames and
world rotations, on the solved body) drive the target's hand and finger bones named in a bone map's
``fingers`` table, ``{target bone: our bone}``, our bones being those of our own rig
(:func:`rig_layout.hand_bone_names`: ``hand.L``, ``thumb.01.L`` .. ``thumb.03.L``, ``f_index.01.L`` ..
``f_pinky.03.R``). E.g. Rigify's meta-rig ``"f_index.01.L": "f_index.01.L"``, Mixamo's
``"LeftHandIndex1": "f_index.01.L"``; Rigify's metacarpals ``palm.01.L`` .. ``palm.04.L`` ride with the
palm: ``"palm.01.L": "hand.L"``.

Rest-pose compensation, as the body's (:mod:`retarget_solve`, step 1), once per bone:

- a bone driven by a finger segment: ``C`` is the smallest rotation that turns the target bone's rest
  direction onto our segment's rest direction (a rig whose fingers rest curled is first straightened
  into ours); its wanted orientation is ``Q(t) @ C @ M_rest``, ``Q`` our segment's world rotation from
  its rest, so it points exactly where our segment points;
- a bone driven by our ``hand``: the palm has a twist that matters (which way the palm faces), so ``C``
  turns the target's whole palm frame onto ours, each frame built by one rule from the rest heads of
  the wrist (the hand bone's head) and of the index, middle and little fingers' first bones
  (:func:`posemoe.motion.fingers.palm_axes`: y from the wrist to the middle finger, z along
  (index - wrist) x (little - wrist) made perpendicular). A target without those finger bones falls
  back to the smallest rotation of the hand bone's direction.

The hand's rotation replaces the one the body's map gives it (which only continues the forearm).
Target bones the armature lacks are skipped; a map or armature without finger bones keys the body
only, with a warning when the take has hands.
"""

from __future__ import annotations

import numpy as np

from posemoe.motion.fingers import SIDES, palm_axes
from posemoe.motion.hands import HAND_BONES, BodyHands
from posemoe.motion.solve import shortest_arc

from .bone_map import OUR_HAND_BONES, BoneMap
from .checks import check_hands
from .retarget_solve import Bone, Plan, depth
from .rig_layout import hand_bone_names

# The first bones of the index, middle and little fingers, whose heads with the wrist make the palm.
_PALM_BONES = [HAND_BONES.index(name) for name in ("f_index.01", "f_middle.01", "f_pinky.01")]


def _palm_compensation(target: dict[str, str], table: dict[str, Bone], hands: BodyHands, facing: np.ndarray,
                       k: int, hand_bone: str) -> np.ndarray:
    """``C`` for the bones driven by our hand ``k`` (see the module docstring)."""
    names = hand_bone_names(SIDES[k])
    firsts = {ours: bone for bone, ours in target.items() if bone in table}
    wanted = [names[b] for b in _PALM_BONES]
    ours_rest = facing @ hands.rest[k, 0]
    if all(w in firsts for w in wanted):
        heads = [table[firsts[w]].rest[:3, 3] for w in wanted]
        theirs = palm_axes(table[hand_bone].rest[:3, 3], *heads)
        mine = facing @ palm_axes(np.zeros(3), *(hands.heads[k, _PALM_BONES]))
        return mine @ theirs.T
    return shortest_arc(table[hand_bone].rest[:3, 1], ours_rest[:, 1][None]).as_matrix()[0]


def finger_orientations(plan: Plan, bone_map: BoneMap, table: dict[str, Bone],
                        hands: BodyHands) -> tuple[dict[str, np.ndarray], dict[str, str], list[str]]:
    """The wanted orientations of the map's finger bones present in the armature (and the hand's, from
    the palm), for :meth:`Plan.drive`: ({target bone: (N, 3, 3) armature space}, parents first;
    {target bone: our bone} keyed; warnings)."""
    check_hands(hands, plan.frames)
    present = {bone: ours for bone, ours in bone_map.fingers.items() if bone in table}
    if not present:
        return {}, {}, ["The take has hands, but the armature has no finger bones the bone map knows; only the "
                        "body was keyed."]
    facing = plan.facing
    # Our world rotations in the rig's armature space: G Q G^T.
    rotations = facing @ hands.rotations @ facing.T  # (N, 2, 16, 3, 3)
    palm_c: dict[int, np.ndarray] = {}
    wanted = {}
    for bone, ours in sorted(present.items(), key=lambda item: depth(table, item[0])):
        k, b = OUR_HAND_BONES[ours]
        rest = table[bone].rest[:3, :3]
        if b == 0:
            if k not in palm_c:
                # The palm frame hangs on the target bone our hand drives that is highest in the chain.
                hand_bone = min((x for x, o in present.items() if o == ours), key=lambda x: depth(table, x))
                palm_c[k] = _palm_compensation(present, table, hands, facing, k, hand_bone)
            align = palm_c[k]
        else:
            align = shortest_arc(rest[:, 1], (facing @ hands.rest[k, b][:, 1])[None]).as_matrix()[0]
        wanted[bone] = rotations[:, k, b] @ (align @ rest)
    return wanted, present, []
