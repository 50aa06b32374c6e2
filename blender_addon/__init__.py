"""PoseMoE for Blender: the extension that turns a captured take into an animated armature.

``rig.py`` builds the armature, writes the keyframes and exports BVH/FBX through Blender's own
exporters; the panel, operators and registration arrive with the add-on itself.
"""
