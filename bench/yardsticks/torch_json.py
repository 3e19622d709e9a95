"""Plain torch: read a JSON nested list, ReLU, write `{"output": {"shape", "data"}}` as JSON to stdout.

The torch counterpart of json_floor.py (orjson both ways, torch.relu in between; timed beside it).
Usage: python torch_json.py X.json"""

import sys

import orjson
import torch

with open(sys.argv[1], "rb") as f:
    x = torch.tensor(orjson.loads(f.read()), dtype=torch.float32)
y = torch.relu(x).numpy()
sys.stdout.buffer.write(orjson.dumps({"output": {"shape": list(y.shape), "data": y}}, option=orjson.OPT_SERIALIZE_NUMPY))
sys.stdout.buffer.write(b"\n")
