#!/usr/bin/env python3
"""Checks a dtaskd /api/status answer (a file) against status_schema.json beside this script.

Exit status 0 if it is valid, 1 with the validation error otherwise."""
import json
import os
import sys

import jsonschema

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "status_schema.json")) as f:
    schema = json.load(f)
with open(sys.argv[1]) as f:
    status = json.load(f)
try:
    jsonschema.validate(status, schema, cls=jsonschema.Draft202012Validator)
except jsonschema.ValidationError as e:
    print(f"check_status: not in the schema: {e.message} at {list(e.absolute_path)}")
    sys.exit(1)
print("check_status: valid")
