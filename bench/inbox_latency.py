"""在线客服, live (#17, "Speed and scale"): a follower's message → visible to the agent who has the conversation open,
p95 < 2 s, in scale-out mode (gunicorn with two workers + ``wxcrm worker`` + PostgreSQL + Redis; the sandbox plays
WeChat on its own gunicorn) — the drill's stack (bench/fault_drill.py).

    .venv/bin/python bench/inbox_latency.py [--messages 200] [--followers 20] [--rate 10]

A driver plays WeChat: each message is a signed, encrypted text callback to the product's gunicorn (whichever worker
takes it answers; the message is durable in that worker's spool and written to PostgreSQL by its batch writer). An
"agent" per follower polls the conversation's messages (``GET /api/v1/conversations/{id}/messages``) every
``--poll`` seconds — the console's page polls its feed the same way — and the latency is the time from sending the
callback to the first answer that shows the text. Reported: median, p95, max; and the part that is the poll itself
(half the poll period on average) against the part that is the write.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(__file__))

from _common import git_rev, machine  # noqa: E402
from fault_drill import AES_KEY, APPID, TOKEN, Stack  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def main():
    import requests

    from wxapp.official_account.simulate import message_xml, signed_request

    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--followers", type=int, default=20)
    ap.add_argument("--rate", type=float, default=10.0, help="messages a second, all followers together")
    ap.add_argument("--poll", type=float, default=1.0, help="the agent page's poll period, seconds")
    args = ap.parse_args()
    print(f"machine: {machine()}  commit: {git_rev()}")
    work = tempfile.mkdtemp(prefix="wxcrm-inbox-")
    stack = Stack(work)
    stack.start()
    web = f"http://127.0.0.1:{stack.web_port}"
    try:
        s = requests.Session()
        h = {"Authorization": "Bearer " + s.post(f"{web}/api/v1/auth/token", json={
            "username": "service.dispatcher", "password": "demo123456"}, timeout=10).json()["access_token"]}
        openids = [f"oINBOX{i:04d}" for i in range(args.followers)]
        stack.introduce(openids)

        def deliver(xml: str) -> None:
            query, body = signed_request(xml, TOKEN, aes_key=AES_KEY, appid=APPID, timestamp=int(time.time()))
            requests.post(f"{web}/wechat/callback?{query}", data=body, headers={"Content-Type": "text/xml"},
                          timeout=10).raise_for_status()

        for o in openids:  # each follower has written once: their conversation exists and the agent has it open
            deliver(message_xml("text", o, content="你好"))
        conv: dict[str, int] = {}
        end = time.monotonic() + 30
        while len(conv) < len(openids) and time.monotonic() < end:
            for item in s.get(f"{web}/api/v1/conversations?per_page=100", headers=h, timeout=10).json()["items"]:
                conv[item["openid"]] = item["id"]
            time.sleep(0.3)
        assert len(conv) >= len(openids), f"only {len(conv)} conversations appeared"

        sent: dict[str, tuple[str, float]] = {}  # text -> (openid, sent at)
        seen: dict[str, float] = {}
        lock, stop = threading.Lock(), threading.Event()

        def agent(openid: str) -> None:
            sess = requests.Session()
            while not stop.is_set():
                t = time.monotonic()
                items = sess.get(f"{web}/api/v1/conversations/{conv[openid]}/messages", headers=h, timeout=10).json()["items"]
                got = time.monotonic()
                texts = {m["text"] for m in items if m["direction"] == "in"}
                with lock:
                    for text, (who, _at) in sent.items():
                        if who == openid and text in texts and text not in seen:
                            seen[text] = got
                stop.wait(max(0.0, args.poll - (got - t)))

        agents = [threading.Thread(target=agent, args=(o,), daemon=True) for o in openids]
        for a in agents:
            a.start()
        t0 = time.monotonic()
        for i in range(args.messages):
            wait = t0 + i / args.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            openid, text = openids[i % len(openids)], f"第 {i} 条：滤芯多久换一次？"
            with lock:
                sent[text] = (openid, time.monotonic())
            deliver(message_xml("text", openid, content=text))
        end = time.monotonic() + 15
        while len(seen) < len(sent) and time.monotonic() < end:
            time.sleep(0.2)
        stop.set()
        lat = [seen[t] - at for t, (_o, at) in sent.items() if t in seen]
        missing = len(sent) - len(lat)
        print(f"  {args.messages} messages from {args.followers} followers at {args.rate:g}/s, agents polling every {args.poll:g} s")
        print(f"  message → visible: median {pct(lat, 0.5):.2f} s, p95 {pct(lat, 0.95):.2f} s, max {max(lat):.2f} s"
              f" (target p95 < 2 s); not seen within 15 s: {missing}")
        print(f"  of which the poll itself: {args.poll / 2:.2f} s on average, up to {args.poll:.2f} s")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
