"""Exports that need no Blender: BVH."""
