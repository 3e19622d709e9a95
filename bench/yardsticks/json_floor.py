"""The orjson floor: read a JSON nested list, ReLU, write `{"output": {"shape", "data"}}` as JSON to stdout.

The yardstick for `cnnops relu X.json --json`: orjson both ways, NumPy in between, nothing else.
Usage: python json_floor.py X.json"""

import sys

import numpy as np
import orjson

with open(sys.argv[1], "rb") as f:
    x = np.asarray(orjson.loads(f.read()), dtype=np.float32)
y = np.maximum(x, 0)
sys.stdout.buffer.write(orjson.dumps({"output": {"shape": list(y.shape), "data": y}}, option=orjson.OPT_SERIALIZE_NUMPY))
sys.stdout.buffer.write(b"\n")
