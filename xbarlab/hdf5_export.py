"""Export of a stored run to HDF5, for analysis in any tool that reads HDF5.

Kept apart from :mod:`xbarlab.store` so that opening a store never imports h5py;
:func:`export_hdf5` is also available as ``xbarlab.store.export_hdf5``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from xbarlab.store import RunInfo, RunStore


def export_hdf5(store: RunStore, run_id: str, path: str | os.PathLike) -> Path:
    """Write one run (and, for a campaign, its children) to an HDF5 file.

    Layout: root attributes hold the run's metadata (:meth:`RunInfo.to_dict`;
    dicts as JSON strings, None values left out; times are unix times in s).
    Each record is a group ``/records/<seq:05d>_<step_id>`` with attributes
    ``seq``, ``step_id`` and ``time`` (unix time, s), one dataset per array field
    and one attribute per other field (numbers and strings as they are, lists,
    dicts and None as JSON strings). A campaign's children go to
    ``/children/<child run id>`` with the same layout, oldest first.

    The file is written beside ``path`` under a temporary name and renamed, so
    ``path`` never holds a partial file, even if the export fails.

    Parameters
    ----------
    store : RunStore
        The store holding the run.
    run_id : str
        The run's id, or a unique prefix of it.
    path : str or os.PathLike
        The HDF5 file to write (replaced if it exists).

    Returns
    -------
    Path
        ``path``.
    """
    import h5py

    path = Path(path)
    info = store.run(run_id)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            _write_run(f, store, info)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_run(group, store: RunStore, info: RunInfo) -> None:
    """Metadata, records and (recursively) children of one run into ``group``."""
    for key, value in info.to_dict().items():
        if value is not None:
            group.attrs[key] = json.dumps(value) if isinstance(value, dict) else value
    records = group.create_group("records")
    for rec in store.records(info.run_id):
        g = records.create_group(f"{rec.seq:05d}_{rec.step_id.replace('/', '_')}")
        g.attrs.update({"seq": rec.seq, "step_id": rec.step_id, "time": rec.time})
        for name, value in rec.data.items():
            if isinstance(value, np.ndarray):
                _write_array(g, name, value)
            elif isinstance(value, (bool, int, float, str)):
                g.attrs[name] = value
            else:
                g.attrs[name] = json.dumps(value)
    children = store.runs(parent=info.run_id)
    if children:
        kids = group.create_group("children")
        for child in reversed(children):  # runs() is newest first
            _write_run(kids.create_group(child.run_id), store, child)


def _write_array(group, name: str, value: np.ndarray) -> None:
    """One dataset; unicode arrays (which HDF5 lacks) become UTF-8 strings."""
    import h5py

    if value.dtype.kind == "U":
        group.create_dataset(name, data=value.astype(object), dtype=h5py.string_dtype())
    else:
        group.create_dataset(name, data=value)
