"""Stream payload layouts as the manifest describes them: one entry per field with its offset and width."""
from __future__ import annotations

from amaranth.hdl import Shape
from amaranth.lib import data


def payload_fields(layout) -> list[dict]:
    fields = []
    for name, field in layout:
        entry = {"name": str(name), "offset": field.offset, "width": field.width,
                 "signed": Shape.cast(field.shape).signed if not isinstance(field.shape, data.Layout) else False}
        if isinstance(field.shape, data.ArrayLayout):
            entry.update(count=field.shape.length, elem_width=Shape.cast(field.shape.elem_shape).width)
        fields.append(entry)
    return fields
