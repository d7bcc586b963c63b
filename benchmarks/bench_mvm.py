"""Analog MVM through tiles vs numpy's float32 product: prints one JSON object.

Same as ``xbarlab bench mvm --json``. Run: ``.venv/bin/python benchmarks/bench_mvm.py``.
"""

import json

from xbarlab.chipdrivers.mvm_bench import bench

if __name__ == "__main__":
    print(json.dumps(bench()))
