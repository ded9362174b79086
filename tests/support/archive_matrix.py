"""Compares a table rebuilt from a sluice Parquet archive (pyarrow) with the
same table read from the source server by the `mariadb` client, value by
value, for every column type. Prints `ok N rows` or `error: ...`.

usage: archive_matrix.py ARCHIVE_ROOT|s3://BUCKET/PREFIX DATABASE TABLE KEY SOURCE_PORT

Each column is read on the source with an SQL expression that gives the
value in the form the archive's value is turned into here: integers and
decimals as text, floats as doubles (compared as numbers), dates and times
formatted (zero dates included, decoded as docs/pipeline-yaml.md says), TIME
as microseconds, text as the hex of its UTF-8 bytes, binary as hex.
"""
import subprocess
import sys

import pyarrow as pa

import parquet_state as ps


def kind(field):
    mysql = (field.metadata or {}).get(b"mysql.type", b"").decode().lower()
    t = field.type
    if isinstance(t, pa.BaseExtensionType):  # JSON: arrow.json over a string
        t = t.storage_type
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "datetime"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_integer(t) and mysql.startswith("time"):
        return "time"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    return "binary"


def source_expr(k, col):
    c = f"`{col}`"
    e = {
        "date": f"DATE_FORMAT({c}, '%Y-%m-%d')",
        "datetime": f"DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')",
        "float": f"CAST({c} AS DOUBLE)",
        "decimal": f"CAST({c} AS CHAR)",
        "time": f"CAST(TIME_TO_SEC({c}) * 1000000 AS SIGNED)",
        "int": f"CAST({c} + 0 AS CHAR)",
        "text": f"HEX(CONVERT(CAST({c} AS CHAR) USING utf8mb4))",
        "binary": f"HEX({c})",
    }[k]
    return f"COALESCE({e}, 'NULL')"


def archive_value(k, field, v):
    if v is None:
        return "NULL"
    if k == "text":
        return v.encode("utf-8").hex().upper()
    if k == "binary":
        return v.hex().upper()
    if k == "float":
        return float(v)
    return ps.text(field, v)


def main():
    root, db, table, key, port = sys.argv[1:6]
    try:
        fields, state = ps.load(root, db, table, key)
    except ps.Broken as e:
        print(f"error: {e}")
        return
    if not fields:
        print("error: no manifest")
        return
    fields = [f for f in fields.values() if not f.name.startswith("_")]
    kinds = [kind(f) for f in fields]
    key_index = [f.name for f in fields].index(key)
    sql = "SET time_zone = '+00:00'; SELECT " + ", ".join(
        source_expr(k, f.name) for k, f in zip(kinds, fields)) + f" FROM `{db}`.`{table}`"
    out = subprocess.run(
        ["mariadb", "-h127.0.0.1", f"-P{port}", "-uroot", "--batch", "--raw",
         "--skip-column-names", "--default-character-set=utf8mb4", "-e", sql],
        capture_output=True, text=True, check=True).stdout
    source = {}
    for line in out.split("\n"):
        if not line:
            continue
        cells = line.split("\t")
        cells = [float(c) if k == "float" and c != "NULL" else c for k, c in zip(kinds, cells)]
        source[cells[key_index]] = cells
    archive = {}
    for r in state.values():
        cells = [archive_value(k, f, r.get(f.name)) for k, f in zip(kinds, fields)]
        archive[cells[key_index]] = cells
    if sorted(source) != sorted(archive):
        print(f"error: keys differ: only in the source {sorted(set(source) - set(archive))[:5]}, "
              f"only in the archive {sorted(set(archive) - set(source))[:5]}")
        return
    for k in source:
        for f, a, b in zip(fields, archive[k], source[k]):
            if a != b:
                print(f"error: row {k} column {f.name} ({kind(f)}): archive {str(a)[:80]!r}, source {str(b)[:80]!r}")
                return
    print(f"ok {len(source)} rows")


if __name__ == "__main__":
    main()
