"""``senti serve --source mastodon`` end to end: a fake instance, the real CLI, a real client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from server.protocol import SUBPROTOCOL_V2
from tests.helpers.fakes.mastodon import FakeMastodon, status

FIRST_LINE = re.compile(r"senti: websocket (ws://127\.0\.0\.1:\d+/track) ")
TIMEOUT = 60.0


async def _serve_and_track(fake: FakeMastodon, tmp_path: Path) -> dict[str, Any]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SENTI_")}
    env |= {"SENTI_MASTODON_URL": fake.url, "SENTI_MASTODON_TIMELINE": "hashtag:senti"}
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "server.cli", "serve", "--source", "mastodon"],
        *["--host", "127.0.0.1", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(TIMEOUT):
            assert process.stdout is not None
            first_line = (await process.stdout.readline()).decode("utf-8")
            match = FIRST_LINE.match(first_line)
            assert match, f"unexpected first line {first_line!r}"
            async with connect(match.group(1), subprotocols=[SUBPROTOCOL_V2]) as ws:  # type: ignore[list-item]
                await ws.send(json.dumps({"type": "track", "query": "mastodon"}))
                assert json.loads(await ws.recv())["type"] == "tracking"
                for n in range(1000):  # until the dataflow has the query
                    fake.publish(
                        status(2 * n, reblog=status(1), tags=["senti"]),
                        status(2 * n + 1, f"<p>I love <b>mastodon</b> {n}</p>", tags=["senti"]),
                    )
                    try:
                        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 0.1))
                    except TimeoutError:
                        continue
                    return message
        raise AssertionError("no post reached the client")
    finally:
        process.terminate()
        await process.wait()


def test_serve_mastodon_delivers_a_matching_post(tmp_path: Path) -> None:
    """A status on the hashtag timeline reaches a client tracking a word of its HTML text."""
    with FakeMastodon() as fake:
        message = asyncio.run(_serve_and_track(fake, tmp_path))
        assert fake.requests[0] == "/api/v1/streaming/hashtag?tag=senti"
    assert message["type"] == "post"
    assert message["query"] == "mastodon"
    assert message["id"].startswith("https://fake.example/users/alice/statuses/")
    assert message["hashtags"] == {"senti": 1}
