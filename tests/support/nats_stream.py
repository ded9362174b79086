"""Reads a JetStream stream back, independently of sluice's client: every
message with its Nats-Msg-Id and subject, as JSON lines on stdout; or
creates a stream that refuses messages past MAX_BYTES.

usage: nats_stream.py URL STREAM
       nats_stream.py URL STREAM --count
       nats_stream.py URL STREAM --publish SUBJECT ID VALUE
       nats_stream.py URL STREAM --create SUBJECT MAX_BYTES
"""
import asyncio
import json
import sys

import nats


async def create(url, stream, subject, max_bytes):
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(
        name=stream,
        subjects=[subject],
        max_bytes=int(max_bytes),
        discard=nats.js.api.DiscardPolicy.NEW,
    )
    await nc.close()


async def main(url, stream):
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        info = await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        # Not created yet: no messages.
        await nc.close()
        return
    last = info.state.last_seq
    seq = info.state.first_seq
    while last and seq <= last:
        try:
            msg = await js.get_msg(stream, seq)
        except nats.js.errors.NotFoundError:
            seq += 1
            continue
        headers = msg.headers or {}
        print(json.dumps({
            "seq": msg.seq,
            "subject": msg.subject,
            "id": headers.get("Nats-Msg-Id"),
            "key": headers.get("Sluice-Key"),
            "value": json.loads(msg.data),
        }))
        seq += 1
    await nc.close()


async def count(url, stream):
    nc = await nats.connect(url)
    try:
        print((await nc.jetstream().stream_info(stream)).state.messages)
    except nats.js.errors.NotFoundError:
        print(0)
    await nc.close()


async def publish(url, subject, msg_id, value):
    nc = await nats.connect(url)
    await nc.jetstream().publish(subject, value.encode(), headers={"Nats-Msg-Id": msg_id})
    await nc.close()


if len(sys.argv) > 3 and sys.argv[3] == "--publish":
    asyncio.run(publish(sys.argv[1], sys.argv[4], sys.argv[5], sys.argv[6]))
elif len(sys.argv) > 3 and sys.argv[3] == "--count":
    asyncio.run(count(sys.argv[1], sys.argv[2]))
elif len(sys.argv) > 3 and sys.argv[3] == "--create":
    asyncio.run(create(sys.argv[1], sys.argv[2], sys.argv[4], sys.argv[5]))
else:
    asyncio.run(main(sys.argv[1], sys.argv[2]))
