"""Bone maps: which bone of someone else's armature our joints drive, read from JSON. No bpy.

A **bone map** (JSON, shipped in ``maps/``) says, for every target bone it drives:

- ``joint``: our joint whose world rotation turns the bone (``posemoe.skeleton.JOINT_NAMES``);
- ``segment`` (optional): the pair of our joints, ``[joint, child]``, whose direction the bone takes.
  Bones without one (feet, hands, clavicles, Rigify's torso controls) keep their rest angle to the
  nearest mapped bone above them;

plus the ``root`` bone (it also gets ``location``), the ``essential`` bones without which there is
nothing sensible to key, optional constant custom ``properties`` to key (Rigify's IK/FK switches), and
an optional ``fingers`` table, {target bone: our hand or finger bone}, which a take with hands keys
(the finger work lives in :mod:`fingers`).

Shipped maps: ``rigify_metarig`` (the human meta-rig, ``Add > Armature > Human (Meta-Rig)``),
``rigify_fk`` (the FK controls of a rig Rigify generated from it) and ``mixamo`` (``mixamorig:Hips``
and friends; any other prefix, or none, is accepted). :func:`detect` picks the one that fits an
armature's bone names; :mod:`retarget` applies it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from posemoe import PoseMoEError
from posemoe.motion.fingers import SIDES
from posemoe.skeleton import (JOINT_NAMES, L_ANKLE, L_ELBOW, L_HIP, L_KNEE, L_SHOULDER, PARENTS, R_ANKLE, R_ELBOW,
                              R_HIP, R_KNEE, R_SHOULDER)

from .rig_layout import hand_bone_names

#: The folder of the shipped bone maps (``<name>.json``).
MAPS_DIR = Path(__file__).resolve().parent / "maps"
#: The shipped maps, in the order :func:`detect` prefers them on a tie.
MAP_NAMES: tuple[str, ...] = ("rigify_fk", "rigify_metarig", "mixamo")
SUPPORTED_RIGS = ("Rigify's human meta-rig, a rig Rigify generated from it (its FK controls), "
                  "Mixamo (mixamorig: or any other prefix, or none)")

#: Both thighs and both shins must be driven along their segments: they give the leg length and the
#: hips centre, and with them the root's path.
LEGS: dict[str, tuple[int, int]] = {"thigh.R": (R_HIP, R_KNEE), "shin.R": (R_KNEE, R_ANKLE),
                                    "thigh.L": (L_HIP, L_KNEE), "shin.L": (L_KNEE, L_ANKLE)}
#: The upper arms' segments: with the thighs, they show which way a rig stands.
ARMS: dict[str, tuple[int, int]] = {"upper_arm.R": (R_SHOULDER, R_ELBOW), "upper_arm.L": (L_SHOULDER, L_ELBOW)}
#: Our hand and finger bones a map's ``fingers`` may name, and where they sit in
#: :class:`posemoe.motion.hands.BodyHands` (hand, bone).
OUR_HAND_BONES: dict[str, tuple[int, int]] = {
    name: (k, b) for k, side in enumerate(SIDES) for b, name in enumerate(hand_bone_names(side))}

# Characters that end a name prefix: "mixamorig:Hips", "Armature_Hips", "ORG-spine", "rig|Hips".
_SEPARATORS = ":_-|. "


@dataclass(frozen=True)
class Driver:
    """What drives one target bone: ``joint`` (index into JOINT_NAMES) whose world rotation turns it,
    and ``segment`` (joint, child joint) whose direction it takes, or None to keep its rest angle to
    the nearest mapped bone above it."""

    joint: int
    segment: tuple[int, int] | None = None


@dataclass(frozen=True)
class BoneMap:
    """A bone map: ``bones`` {target bone name: Driver}, ``root`` (gets location), ``essential`` (the
    bones a retarget cannot do without), ``properties`` ((bone, custom property, value) keyed once),
    ``prefix`` (what :func:`match` found in front of the names; already part of every name here),
    ``fingers`` {target bone: our hand or finger bone} (keyed when the take has hands)."""

    name: str
    description: str
    root: str
    bones: dict[str, Driver]
    essential: tuple[str, ...]
    properties: tuple[tuple[str, str, float], ...] = ()
    prefix: str = ""
    fingers: dict[str, str] = field(default_factory=dict)

    def with_prefix(self, prefix: str) -> BoneMap:
        """The same map with ``prefix`` put in front of every bone name."""
        return replace(self, prefix=self.prefix + prefix, root=prefix + self.root,
                       bones={prefix + k: v for k, v in self.bones.items()},
                       essential=tuple(prefix + b for b in self.essential),
                       properties=tuple((prefix + b, p, v) for b, p, v in self.properties),
                       fingers={prefix + k: v for k, v in self.fingers.items()})

    def bone_of_segment(self, segment: tuple[int, int]) -> str | None:
        """The first mapped bone that takes ``segment``'s direction, or None."""
        return next((b for b, d in self.bones.items() if d.segment == segment), None)

    def lacking_essential(self, missing: Sequence[str]) -> list[str]:
        """The essential bones among ``missing`` (bones an armature lacks), in the map's order."""
        return [b for b in self.essential if b in missing]


# ----------------------------------------------------------------------------------------------------
# Reading maps.

def _joint(name, where: str) -> int:
    if name not in JOINT_NAMES:
        raise PoseMoEError(f"Bone map {where}: '{name}' is not one of our joints ({', '.join(JOINT_NAMES)}); "
                           "fix the map.")
    return JOINT_NAMES.index(name)


def parse_fingers(data: Mapping, source: str) -> dict[str, str]:
    """A bone map's optional ``fingers`` table, checked: {target bone: our hand or finger bone}."""
    table = data.get("fingers", {})
    if not isinstance(table, Mapping):
        raise PoseMoEError(f"{source}: 'fingers' must map target bones to our finger bones, like "
                           "blender_addon/maps/mixamo.json.")
    unknown = sorted({str(ours) for ours in table.values() if ours not in OUR_HAND_BONES})
    if unknown:
        raise PoseMoEError(f"{source}: {', '.join(unknown)} in its 'fingers' are not our hand bones (hand.L, "
                           "thumb.01.L .. thumb.03.L, f_index.01.L .. f_pinky.03.R); fix the map.")
    return {str(bone): str(ours) for bone, ours in table.items()}


def parse_map(data: Mapping, source: str = "bone map") -> BoneMap:
    """A bone map from its JSON form (see ``maps/*.json``); raises PoseMoEError saying what is wrong."""
    if not isinstance(data, Mapping) or not isinstance(data.get("bones"), Mapping) or not data["bones"]:
        raise PoseMoEError(f"{source} has no 'bones' table; write it like blender_addon/maps/mixamo.json.")
    bones = {}
    for bone, entry in data["bones"].items():
        if not isinstance(entry, Mapping) or "joint" not in entry:
            raise PoseMoEError(f"{source}: bone '{bone}' needs a 'joint'; write it like "
                               "blender_addon/maps/mixamo.json.")
        joint = _joint(entry["joint"], f"{source}, bone '{bone}'")
        segment = None
        if entry.get("segment") is not None:
            seg = entry["segment"]
            if not isinstance(seg, (list, tuple)) or len(seg) != 2:
                raise PoseMoEError(f"{source}: the segment of bone '{bone}' must be two joint names.")
            segment = (_joint(seg[0], f"{source}, bone '{bone}'"), _joint(seg[1], f"{source}, bone '{bone}'"))
            # The joint's rotation turns exactly the segments from it to its children.
            if segment[0] != joint or PARENTS[segment[1]] != joint:
                raise PoseMoEError(f"{source}: bone '{bone}' has segment {seg} but joint '{entry['joint']}'; "
                                   "a segment runs from the bone's joint to one of that joint's children.")
        bones[str(bone)] = Driver(joint, segment)
    root = data.get("root")
    if root not in bones:
        raise PoseMoEError(f"{source}: its root '{root}' is not one of its bones; name the hips bone as root.")
    essential = data.get("essential", [])
    if not isinstance(essential, (list, tuple)):
        raise PoseMoEError(f"{source}: 'essential' must be a list of bone names.")
    essential = tuple(essential)
    unknown = [b for b in essential if b not in bones]
    if unknown:
        raise PoseMoEError(f"{source}: essential bones {', '.join(unknown)} are not in its 'bones'; fix the map.")
    drivers = {d.segment for d in bones.values()}
    lacking = [name for name, seg in LEGS.items() if seg not in drivers]
    if lacking:
        raise PoseMoEError(f"{source} drives no bone along our {', '.join(lacking)}; both thighs and shins "
                           "need a 'segment' (they give the leg length for the root motion).")
    properties = []
    for item in data.get("properties", ()):
        try:
            properties.append((str(item["bone"]), str(item["property"]), float(item["value"])))
        except (KeyError, TypeError, ValueError):
            raise PoseMoEError(f"{source}: each of its 'properties' needs 'bone', 'property' and a number "
                               "'value'.") from None
    return BoneMap(str(data.get("name", source)), str(data.get("description", "")), root, bones,
                   essential, tuple(properties), fingers=parse_fingers(data, source))


def load_map(name_or_path: str | Path) -> BoneMap:
    """A shipped map by name (one of :data:`MAP_NAMES`) or a JSON file by path."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = MAPS_DIR / f"{name_or_path}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoseMoEError(f"No bone map '{name_or_path}'; use one of {', '.join(MAP_NAMES)} or the path of a "
                           "JSON bone map.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PoseMoEError(f"Bone map {path} cannot be read ({error}); fix or replace the file.") from None
    return parse_map(data, f"Bone map '{path.stem}'")


def as_map(bone_map: BoneMap | Mapping | str | Path) -> BoneMap:
    """A :class:`BoneMap` from itself, its parsed JSON, a shipped map's name or a JSON file's path."""
    if isinstance(bone_map, BoneMap):
        return bone_map
    return parse_map(bone_map, "The bone map") if isinstance(bone_map, Mapping) else load_map(bone_map)


# ----------------------------------------------------------------------------------------------------
# Matching a map to an armature's bone names.

def _prefixes(names: set[str], map_names) -> set[str]:
    """Every prefix that turns some map name into a bone name: "" or text ending in a separator."""
    found = {""}
    for name in names:
        for m in map_names:
            cut = len(name) - len(m)
            if cut > 0 and name.endswith(m) and name[cut - 1] in _SEPARATORS:
                found.add(name[:cut])
    return found


def match(bone_map: BoneMap, bone_names: Sequence[str]) -> tuple[BoneMap, list[str]]:
    """``bone_map`` with the prefix that finds most of its bones among ``bone_names`` (ties: the
    shortest, so "spine" beats "ORG-spine"), and the list of its (prefixed) bones not among them."""
    names = set(bone_names)
    best = max(_prefixes(names, bone_map.bones),
               key=lambda p: (sum(p + m in names for m in bone_map.bones), -len(p), p))
    resolved = bone_map.with_prefix(best)
    return resolved, [b for b in resolved.bones if b not in names]


def detect(bone_names: Sequence[str], armature: str) -> tuple[str, BoneMap, list[str]]:
    """The shipped map that fits the bones ``bone_names`` of the armature named ``armature`` best:
    (its name, the map with the armature's prefix, the mapped bones the armature lacks).

    Best: all essential bones found, then the largest share of the map's bones found, then no prefix
    (a generated Rigify rig also holds the meta-rig's names as ``ORG-...``; its FK controls win), then
    the order of :data:`MAP_NAMES`. Raises PoseMoEError, naming what is missing and the supported rigs,
    when no map finds its essential bones.
    """
    scored = []
    for order, name in enumerate(MAP_NAMES):
        resolved, missing = match(load_map(name), bone_names)
        lacking = resolved.lacking_essential(missing)
        share = 1.0 - len(missing) / len(resolved.bones)
        scored.append(((not lacking, share, resolved.prefix == "", -order), name, resolved, missing, lacking))
    _, name, resolved, missing, lacking = max(scored, key=lambda s: s[0])
    if lacking:
        if all(s[0][1] == 0.0 for s in scored):
            sample = ", ".join(list(bone_names)[:4]) or "none"
            raise PoseMoEError(f"Armature '{armature}' has none of the bone names PoseMoE knows (it has "
                               f"{sample}, ...). Supported rigs: {SUPPORTED_RIGS}. Rename its bones or give "
                               "a bone map (JSON, like blender_addon/maps/mixamo.json).")
        raise PoseMoEError(f"Armature '{armature}' looks like a '{name}' rig but lacks "
                           f"{', '.join(lacking)}. Add those bones, or give a bone map that fits. "
                           f"Supported rigs: {SUPPORTED_RIGS}.")
    return name, resolved, missing


def check_essential(resolved: BoneMap, missing: Sequence[str], armature: str, needed_by: str, advice: str) -> None:
    """Raise PoseMoEError when the armature named ``armature`` lacks essential bones of ``resolved``
    (a matched map; ``missing`` its bones the armature lacks): "... lacks X, which ``needed_by`` needs;
    ``advice``"."""
    lacking = resolved.lacking_essential(missing)
    if lacking:
        raise PoseMoEError(f"Armature '{armature}' lacks {', '.join(lacking)}, which {needed_by} needs; {advice}")


def check_root_motion(resolved: BoneMap, missing: Sequence[str], armature: str) -> None:
    """Raise PoseMoEError when the armature lacks the bones the root motion needs (hips, thighs, shins)."""
    legs = [resolved.bone_of_segment(seg) for seg in LEGS.values()]
    absent = [b for b in [resolved.root, *legs] if b in missing]
    if absent:
        raise PoseMoEError(f"Armature '{armature}' lacks {', '.join(absent)}, which the root motion "
                           "needs (hips, thighs and shins); add them or give a bone map that names them.")
