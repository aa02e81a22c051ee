"""The ``.kws`` file format: compressed, indexed, versioned snapshots and recordings (spec: docs/format.md).

Why this package exists: every stage of kwoksnap exchanges cluster state and recorded events through one file
format that streams both ways with flat memory, seeks to one resource, survives crashes (atomic writes, salvage
scan) and says precisely where a damaged file broke. Records are plain dicts with string keys, so any msgpack
reader can turn a .kws file into JSON. This package must never talk to a cluster or import a higher layer.
"""

from kwoksnap.store.compat import DEFAULT_REGISTRY, Converter, ConverterRegistry, UpgradePlan
from kwoksnap.store.format import (
    CONTENT_TYPES,
    DEFAULT_LEVEL,
    END_MAGIC,
    FORMAT_VERSION,
    FRAME_MAX_RECORDS,
    FRAME_TARGET_BYTES,
    MAGIC,
)
from kwoksnap.store.reader import KwsReader, ScanReport, scan
from kwoksnap.store.writer import KwsWriter

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_LEVEL",
    "DEFAULT_REGISTRY",
    "END_MAGIC",
    "FORMAT_VERSION",
    "FRAME_MAX_RECORDS",
    "FRAME_TARGET_BYTES",
    "MAGIC",
    "Converter",
    "ConverterRegistry",
    "KwsReader",
    "KwsWriter",
    "ScanReport",
    "UpgradePlan",
    "scan",
]
