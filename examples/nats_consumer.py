"""A consumer of sluice's NATS stream in another language: it reads the
Debezium-format change messages of one table through a durable pull
consumer and keeps the table, rebuilt, in SQLite. Run it again and it
goes on where it stopped (the consumer is durable; each message is
acknowledged after it is applied and committed).

usage: python3 nats_consumer.py NATS_URL STREAM SUBJECT KEY_COLUMN SQLITE_FILE

e.g.   python3 nats_consumer.py nats://127.0.0.1:4222 SLUICE_SHOP \
           shop.shop.customers id customers.db

It stops once it has read everything (no message for a second) and prints
the table as JSON lines, ordered by key. Needs `pip install nats-py`.
"""
import asyncio
import json
import sqlite3
import sys

import nats
from nats.errors import TimeoutError as NoMessages


def apply(db, value, key_column):
    """One Debezium change: `r`, `c` and `u` carry the row as it is after
    the change, `d` the row as it was."""
    op = value["op"]
    if op in ("r", "c", "u"):
        row = value["after"]
        db.execute(
            "INSERT INTO rows (key, row) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET row = excluded.row",
            (json.dumps(row[key_column]), json.dumps(row, sort_keys=True)),
        )
    elif op == "d":
        db.execute("DELETE FROM rows WHERE key = ?", (json.dumps(value["before"][key_column]),))


async def main(url, stream, subject, key_column, path):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, row TEXT NOT NULL)")
    nc = await nats.connect(url)
    js = nc.jetstream()
    durable = "rebuild-" + "".join(c if c.isalnum() else "_" for c in subject)
    sub = await js.pull_subscribe(subject, durable=durable, stream=stream)
    while True:
        try:
            messages = await sub.fetch(500, timeout=1)
        except NoMessages:
            break
        for m in messages:
            apply(db, json.loads(m.data), key_column)
        # Applied and committed, then acknowledged: a crash in between
        # applies them again, which changes nothing (each sets a row).
        db.commit()
        for m in messages:
            await m.ack()
    await nc.close()
    for (row,) in db.execute("SELECT row FROM rows ORDER BY key"):
        print(row)


asyncio.run(main(*sys.argv[1:6]))
