"""From 3D joints to motion: root trajectory and world frame (more arrives with the skeleton solve)."""
