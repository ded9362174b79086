"""Rebuilds a table's final state from a sluice Parquet archive, with pyarrow
(an independent reader): the files its _manifest.json lists, the last change
per key by _position, deletes removed. Prints the rows as tab-separated text
sorted by key (NULL as \\N), or `error: ...` on a broken archive (a
file whose row count differs from the manifest, a change listed twice).

usage: parquet_state.py ARCHIVE_ROOT|s3://BUCKET/PREFIX DATABASE TABLE KEY [COLUMN...]
KEY is a column, several joined by `,`, or `-` for a table without a key
(rows then count as a multiset, and an update replaces the row equal to
its `_before_` image). With columns: only those, so tables whose schema
changed compare on the columns every version has.

`s3://` roots use S3_ENDPOINT, S3_KEY and S3_SECRET. With CHECK_NO_STRAY=1
(after a clean stop) it also fails on data files the manifest does not list.
"""
import decimal
import json
import os
import sys

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

DAY_US = 86_400_000_000
# Zero dates (0000-00-00 and the like) are stored below 0000-01-01, which is
# -719528 days from 1970-01-01 (docs/pipeline-yaml.md, "Zero dates").
FIRST_DAY = -719528


class Broken(Exception):
    pass


def open_root(root):
    if root.startswith("s3://"):
        endpoint = os.environ["S3_ENDPOINT"]
        scheme, host = endpoint.split("://", 1)
        fs = pafs.S3FileSystem(
            access_key=os.environ["S3_KEY"],
            secret_key=os.environ["S3_SECRET"],
            endpoint_override=host,
            scheme=scheme,
            region="us-east-1",
        )
        return fs, root[len("s3://"):].rstrip("/")
    return pafs.LocalFileSystem(), root


def raw(t):
    """The table with dates and timestamps as integers (days, microseconds),
    since zero dates fall outside Python's date range."""
    cols = []
    for f, c in zip(t.schema, t.columns):
        if pa.types.is_date32(f.type):
            c = c.cast(pa.int32())
        elif pa.types.is_timestamp(f.type):
            c = c.cast(pa.int64())
        cols.append(c)
    return pa.Table.from_arrays(cols, schema=pa.schema(
        [pa.field(f.name, c.type, metadata=f.metadata) for f, c in zip(t.schema, cols)]))


def load(root, db, table, key, no_stray=False, only=None):
    """({column: field} over every schema version, {key: row dict}) of the
    committed archive."""
    fs, root = open_root(root)
    table_dir = f"{root}/{db}/{table}"
    manifest_path = f"{table_dir}/_manifest.json"
    if fs.get_file_info(manifest_path).type == pafs.FileType.NotFound:
        return {}, {}
    with fs.open_input_stream(manifest_path) as f:
        manifest = json.loads(f.read())
    if no_stray:
        listed = {f"{root}/{e['path']}" for e in manifest["files"]}
        found = fs.get_file_info(pafs.FileSelector(table_dir, recursive=True))
        stray = sorted(i.path for i in found if i.type == pafs.FileType.File
                       and i.path.endswith(".parquet") and i.path not in listed)
        if stray:
            raise Broken(f"files no manifest lists: {stray}")
    rows = []
    fields = {}
    for entry in manifest["files"]:
        t = pq.read_table(f"{root}/{entry['path']}", filesystem=fs)
        if t.num_rows != entry["rows"]:
            raise Broken(f"{entry['path']} has {t.num_rows} rows, the manifest says {entry['rows']}")
        fields.update((f.name, f) for f in t.schema)
        for r in raw(t).to_pylist():
            rows.append((r["_position"], len(rows), r))
    # Rows of a table without a key are told apart by their values: the
    # columns asked for, which every schema version has.
    image = only or [c for c in fields if not c.startswith("_")]
    if key == "-":
        return fields, replay_keyless(rows, image)
    keys = key.split(",")
    seen = set()
    for _, _, r in rows:
        change = (r["_position"], tuple(r[k] for k in keys), r["_op"])
        if change in seen:
            raise Broken(f"the change {change} is in the archive twice")
        seen.add(change)
    state = {}
    for _, _, r in sorted(rows, key=lambda x: (x[0], x[1])):
        k = tuple(r[c] for c in keys)
        if r["_op"] == "delete":
            state.pop(k, None)
        else:
            state[k] = r
    return fields, state


def replay_keyless(rows, image):
    """{(row tuple, n): row} of a table without a key: rows as a multiset."""
    counts = {}
    first = {}

    def add(t, r):
        counts[t] = counts.get(t, 0) + 1
        first.setdefault(t, r)

    def remove(t):
        if counts.get(t, 0) > 0:
            counts[t] -= 1

    for _, _, r in sorted(rows, key=lambda x: (x[0], x[1])):
        t = tuple(r.get(c) for c in image)
        if r["_op"] == "delete":
            remove(t)
        elif r["_op"] == "update":
            if not any(f"_before_{c}" in r for c in image):
                raise Broken("an update of a table without a key, without before images")
            remove(tuple(r.get(f"_before_{c}") for c in image))
            add(t, r)
        else:
            add(t, r)
    return {(t, i): first[t] for t, n in counts.items() for i in range(n)}


def civil(days):
    """(year, month, day) of days since 1970-01-01, any year."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + 1 if m <= 2 else y, m, d)


def date_text(days):
    if days < FIRST_DAY:
        code = FIRST_DAY - 1 - days
        y, m, d = code // 416, code % 416 // 32, code % 32
    else:
        y, m, d = civil(days)
    return f"{y:04}-{m:02}-{d:02}"


def datetime_text(us):
    if us < FIRST_DAY * DAY_US:
        v = FIRST_DAY * DAY_US - 1 - us
        code, tod = v // DAY_US, v % DAY_US
        date = f"{code // 416:04}-{code % 416 // 32:02}-{code % 32:02}"
    else:
        date, tod = date_text(us // DAY_US), us % DAY_US
    s, frac = divmod(tod, 1_000_000)
    return f"{date} {s // 3600:02}:{s % 3600 // 60:02}:{s % 60:02}.{frac:06}"


def text(field, v):
    if v is None:
        return "\\N"
    if pa.types.is_date32(field.type):
        return date_text(v)
    if pa.types.is_timestamp(field.type):
        return datetime_text(v)
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def main():
    root, db, table, key = sys.argv[1:5]
    only = sys.argv[5:]
    try:
        fields, state = load(root, db, table, key, os.environ.get("CHECK_NO_STRAY") == "1", only)
    except Broken as e:
        print(f"error: {e}")
        return
    try:
        order = sorted(state)
    except TypeError:  # NULLs among the keys
        order = sorted(state, key=repr)
    for k in order:
        r = state[k]
        names = only or [c for c in r if not c.startswith("_")]
        print("\t".join(text(fields.get(c), r.get(c)) for c in names))


if __name__ == "__main__":
    main()
