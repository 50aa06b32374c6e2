"""The sidebar panel: 3D Viewport > Sidebar (N) > Mocap."""

from __future__ import annotations

from bpy.types import Panel

from .capture import POSEMOE_OT_cancel_capture, POSEMOE_OT_capture


class VIEW3D_PT_posemoe_capture(Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Mocap"
    bl_label = "PoseMoE Capture"

    def draw(self, context):
        settings = context.scene.posemoe
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False

        column = layout.column(heading="Video")
        column.prop(settings, "source", text="")
        if settings.source == "FILE":
            column.prop(settings, "video", text="")
            row = column.row(align=True)
            row.prop(settings, "start")
            row.prop(settings, "stop")
        elif settings.source == "CLIP":
            column.prop(settings, "clip", text="")
        else:
            editor = context.scene.sequence_editor
            if editor is not None:
                strips = "strips_all" if hasattr(editor, "strips_all") else "sequences_all"  # 4.4 renamed it
                column.prop_search(settings, "strip", editor, strips, text="", icon="SEQUENCE")
            else:
                column.label(text="The scene has no sequencer strips", icon="INFO")

        column = layout.column(heading="People")
        column.prop(settings, "people", text="")
        if settings.people == "PICK":
            column.prop(settings, "pick")
            column.prop(settings, "pick_frame")
        column.prop(settings, "hands")

        column = layout.column(heading="Lifting")
        column.prop(settings, "flip")
        column.prop(settings, "stride")
        column.prop(settings, "fov")
        column.prop(settings, "camera")

        column = layout.column(heading="Clean-up")
        column.prop(settings, "smoothing")
        sub = column.column()
        sub.active = settings.smoothing != "NONE"
        sub.prop(settings, "strength")
        column.prop(settings, "foot_lock")
        column.prop(settings, "root")
        column.prop(settings, "height")

        column = layout.column(heading="Target")
        column.prop(settings, "target", text="")
        if settings.target == "EXISTING":
            column.prop(settings, "armature")
            column.prop(settings, "bone_map")

        column = layout.column(heading="Scene")
        column.prop(settings, "show_video")
        column.prop(settings, "match_scene")

        session = POSEMOE_OT_capture.running
        if session is None:
            layout.operator(POSEMOE_OT_capture.bl_idname, icon="ARMATURE_DATA")
        else:
            layout.progress(factor=session.job.fraction, type="BAR", text=session.job.status)
            layout.operator(POSEMOE_OT_cancel_capture.bl_idname, icon="CANCEL")


CLASSES = (VIEW3D_PT_posemoe_capture,)
