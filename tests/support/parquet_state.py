"""Rebuilds a table's final state from a sluice Parquet archive, with pyarrow
(an independent reader): the files its _manifest.json lists, the last change
per key by _position, deletes removed. Prints the rows as tab-separated text
sorted by key (NULL as \\N), or `error: ...` on a broken archive (a
file whose row count differs from the manifest, a change listed twice).

usage: parquet_state.py ARCHIVE_ROOT DATABASE TABLE KEY_COLUMN [COLUMN...]
(with columns: only those, so tables whose schema changed compare on the
columns every version has)
"""
import datetime
import decimal
import json
import os
import sys

import pyarrow.parquet as pq

root, db, table, key = sys.argv[1:5]
only = sys.argv[5:]
manifest_path = os.path.join(root, db, table, "_manifest.json")
if not os.path.exists(manifest_path):
    sys.exit(0)
with open(manifest_path) as f:
    manifest = json.load(f)

rows = []
for entry in manifest["files"]:
    path = os.path.join(root, entry["path"])
    t = pq.read_table(path)
    if t.num_rows != entry["rows"]:
        print(f"error: {entry['path']} has {t.num_rows} rows, the manifest says {entry['rows']}")
        sys.exit(0)
    for i, r in enumerate(t.to_pylist()):
        rows.append((r["_position"], len(rows), r))

seen = set()
for _, _, r in rows:
    change = (r["_position"], r[key], r["_op"])
    if change in seen:
        print(f"error: the change {change} is in the archive twice")
        sys.exit(0)
    seen.add(change)

state = {}
for _, _, r in sorted(rows, key=lambda x: (x[0], x[1])):
    if r["_op"] == "delete":
        state.pop(r[key], None)
    else:
        state[r[key]] = r


def text(v):
    if v is None:
        return "\\N"
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


for k in sorted(state):
    r = state[k]
    if only:
        print("\t".join(text(r.get(c)) for c in only))
    else:
        print("\t".join(text(v) for c, v in r.items() if not c.startswith("_")))
