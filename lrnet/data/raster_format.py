"""Rasters annotated by vector files, described by a data YAML: registered as data format `raster`.

    format: raster
    path: survey              # root of the relative paths below
    names: [car, truck]       # the class order shared by every split (needed with a class field)
    class_field: label        # attribute holding each feature's class ('' or absent: one class)
    train:
      - {raster: ortho_a.tif, vector: ortho_a.gpkg}
      - {raster: ortho_b.tif, vector: cars_b.shp, layer: cars, class_field: kind}
    val: {raster: ortho_c.tif, vector: ortho_c.geojson}

Each entry becomes one record: the raster's size from its header and the vector file's polygons as
pixel boxes (`lrnet.data.vector.raster_source`: reprojected to the raster's CRS, bounding boxes of
polygons). Such a split is meant to be trained as windows drawn on the fly (`TrainConfig.windows`,
`lrnet.data.window_dataset`), which read only the windows of a raster. An entry whose raster or
vector file cannot be used (corrupt, another CRS without georeferencing, no usable feature) is
skipped with a warning naming it and counted; a missing file is an error.
"""

from __future__ import annotations

from pathlib import Path

from lrnet.data.data_yaml import YAML_SUFFIXES, read_yaml_split
from lrnet.data.registry import DataFormat, YamlSplit, register_format
from lrnet.data.source import DetectionRecord, DetectionSource, SkipCounter
from lrnet.data.vector import SINGLE_CLASS_NAME, VectorLabels, raster_source
from lrnet.errors import DataError


@register_format
class RasterFormat(DataFormat):
    """Rasters (GeoTIFF, COG, ...) with vector annotations, through a data YAML (module docstring)."""

    name = "raster"
    description = "a data YAML with 'format: raster' (rasters annotated by vector files)"
    split_entry = "{raster: FILE, vector: FILE} (optionally class_field, layer), or a list of those"
    entry_keys = ("raster", "vector", "class_field", "layer")
    optional_keys = ("names", "class_field")
    reads_folders = False  # entries name raster and vector files; their folders may hold outputs

    def read(self, path: Path, split: str) -> DetectionSource:
        if path.suffix.lower() not in YAML_SUFFIXES or not path.is_file():
            raise DataError(
                f"{path}: rasters with vector annotations are read through a data YAML with "
                "'format: raster'; give the .yaml file"
            )
        return read_yaml_split(path, split, verbose=False)

    def read_split(self, spec: YamlSplit) -> DetectionSource:
        entries = spec.entry if isinstance(spec.entry, list) else [spec.entry]
        default_field = str(spec.cfg.get("class_field") or "")
        names = spec.names
        counter = SkipCounter()
        records: list[DetectionRecord] = []
        for k, entry in enumerate(entries):
            where = f"{spec.yaml}: '{spec.split}' entry {k + 1}"
            labels = self._labels(spec, entry, where, default_field)
            if labels.class_field and names is None:
                raise DataError(
                    f"{spec.yaml}: classes come from the attribute '{labels.class_field}', so the YAML needs "
                    "'names' (the class order every split shares); add e.g. names: [car, truck]"
                )
            raster = spec.existing_path(entry["raster"], "raster")
            try:
                source, _info, _boxes = raster_source(raster, labels, names or [SINGLE_CLASS_NAME])
            except DataError as exc:
                counter.skip(raster, "unusable raster or annotations", str(exc))
                continue
            record = source.records[0]
            record.image_id = len(records) + 1
            records.append(record)
        out_names = list(names or [SINGLE_CLASS_NAME])
        return DetectionSource(records, out_names, list(range(len(out_names))), counter=counter)

    @staticmethod
    def _labels(spec: YamlSplit, entry: object, where: str, default_field: str) -> VectorLabels:
        """The `VectorLabels` of one split entry (a mapping with `raster` and `vector`)."""
        if not isinstance(entry, dict) or not entry.get("raster") or not entry.get("vector"):
            raise DataError(
                f"{where} is {entry!r}; a 'format: raster' entry is a mapping "
                "{raster: FILE, vector: FILE} (optionally class_field, layer)"
            )
        unknown = sorted(str(key) for key in entry if key not in RasterFormat.entry_keys)
        if unknown:
            raise DataError(f"{where} has keys {unknown}; its keys are {', '.join(RasterFormat.entry_keys)}")
        return VectorLabels(
            vector=str(spec.existing_path(entry["vector"], "vector")),
            class_field=str(entry.get("class_field", default_field) or ""),
            layer=str(entry.get("layer") or ""),
        )
