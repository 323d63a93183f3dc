"""detectron2.data stand-in: MetadataCatalog returning empty, attribute-settable metadata."""

from __future__ import annotations

from types import SimpleNamespace


class _MetadataCatalog(dict):
    def get(self, name):
        if name not in self:
            self[name] = SimpleNamespace(name=name, thing_dataset_id_to_contiguous_id={})
        return self[name]


MetadataCatalog = _MetadataCatalog()
