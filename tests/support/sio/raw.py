"""Engine.IO wire scenarios (requests + websocket-client) for the Swift SocketIOServerTests.

Usage: raw.py URL SCENARIO [ARG]
Prints one line per step; exits 0 when the scenario held, 1 (with the reason on stderr) when it did not.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import requests
import websocket

TIMEOUT = 10.0


def say(line: str) -> None:
    print(line, flush=True)


def fail(reason: str) -> None:
    print(reason, file=sys.stderr, flush=True)
    sys.exit(1)


def expect(condition: bool, reason: str) -> None:
    if not condition:
        fail(reason)


def ws_url(url: str, query: str) -> str:
    return url.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket" + query


def poll_url(url: str, sid: str | None = None) -> str:
    return url + "/socket.io/?EIO=4&transport=polling" + (f"&sid={sid}" if sid else "")


def recv_text(ws: websocket.WebSocket) -> str:
    """The next text frame, skipping nothing: Engine.IO sends one packet per frame."""
    opcode, data = ws.recv_data(control_frame=True)
    expect(opcode == websocket.ABNF.OPCODE_TEXT, f"expected a text frame, got opcode {opcode} {data[:80]!r}")
    return data.decode()


def scenario_oversize(url: str, argument: str | None) -> None:
    """Direct WebSocket session: a message above 16 KiB goes through, one above maxPayload closes with 1009."""
    max_payload = int(argument or "100000")
    ws = websocket.create_connection(ws_url(url, ""), timeout=TIMEOUT)
    opening = recv_text(ws)
    expect(opening.startswith("0"), f"expected the open packet, got {opening[:80]!r}")
    handshake = json.loads(opening[1:])
    expect(handshake["upgrades"] == [], f"a WebSocket session offered upgrades {handshake['upgrades']!r}")
    expect(handshake["maxPayload"] == max_payload, f"maxPayload {handshake['maxPayload']}")
    ws.send('40{"token":"good"}')
    accepted = recv_text(ws)
    expect(accepted.startswith('40{"sid":'), f"expected 40{{sid}}, got {accepted!r}")
    say("connected")
    large = "y" * (max_payload // 2)
    ws.send(f'421["echo","{large}"]')
    answer = recv_text(ws)
    expect(answer == f'431["{large}"]', f"the large echo came back as {answer[:40]!r}… ({len(answer)} bytes)")
    say(f"echoed {len(large)} bytes")
    ws.send('42["echo","' + "x" * (max_payload + 1) + '"]')
    try:
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                say(f"closed {code}")
                return
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError) as error:
        # Still sending when the server closed: the kernel may report a reset before the close frame is read.
        say(f"closed without a close frame read ({type(error).__name__})")


def read_close_code(ws: websocket.WebSocket) -> int | None:
    """Reads until the server's close frame; its code."""
    while True:
        opcode, data = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return int.from_bytes(data[:2], "big") if len(data) >= 2 else None


def connected_socket(url: str) -> websocket.WebSocket:
    """A direct WebSocket session with a connected Socket.IO socket."""
    ws = websocket.create_connection(ws_url(url, ""), timeout=TIMEOUT)
    expect(recv_text(ws).startswith("0"), "expected the open packet")
    ws.send('40{"token":"good"}')
    expect(recv_text(ws).startswith('40{"sid":'), "expected 40{sid}")
    return ws


def scenario_closecodes(url: str, argument: str | None) -> None:
    """RFC 6455's close codes: text that is not UTF-8 closes with 1007; fragments adding up to more than maxPayload
    (each one small) with 1009."""
    max_payload = int(argument or "100000")
    ws = connected_socket(url)
    ws.send_frame(websocket.ABNF.create_frame(b'42["echo","\xff\xfe"]', websocket.ABNF.OPCODE_TEXT))
    say(f"not UTF-8: closed {read_close_code(ws)}")
    ws.close()
    ws = connected_socket(url)
    half = "z" * (max_payload // 2 + 1)
    ws.send_frame(websocket.ABNF.create_frame(half, websocket.ABNF.OPCODE_TEXT, fin=0))
    ws.send_frame(websocket.ABNF.create_frame(half, websocket.ABNF.OPCODE_CONT, fin=0))
    say(f"fragments over maxPayload: closed {read_close_code(ws)}")
    ws.close()


def scenario_stall(url: str, _: str | None) -> None:
    """Two direct WebSocket sessions of one user: the first never reads again, the second reads everything the server
    emits (`42["big",…]`), saying `got N` every 32, until `42["done"]`."""
    stalled = connected_socket(url)
    say("stalled connected")
    bystander = connected_socket(url)
    say("bystander connected")
    count = 0
    while True:
        text = recv_text(bystander)
        if text == '42["done"]':
            say(f"bystander got {count} then done")
            break
        expect(text.startswith('42["big",'), f"unexpected {text[:40]!r}")
        count += 1
        if count % 32 == 0:
            say(f"got {count}")
    bystander.close()
    stalled.close()


def scenario_upgrade(url: str, _: str | None) -> None:
    """Polling handshake, then the probe: the pending GET ends with a noop, queued packets follow over WebSocket."""
    http = requests.Session()
    opening = http.get(poll_url(url), timeout=TIMEOUT)
    expect(opening.status_code == 200 and opening.text.startswith("0"), f"handshake answered {opening.status_code} {opening.text!r}")
    expect(opening.headers["Content-Type"].lower().startswith("text/plain"), f"content type {opening.headers['Content-Type']}")
    handshake = json.loads(opening.text[1:])
    expect(handshake["upgrades"] == ["websocket"], f"upgrades {handshake['upgrades']!r}")
    sid = handshake["sid"]
    posted = http.post(poll_url(url, sid), data='40{"token":"good"}', timeout=TIMEOUT)
    expect(posted.text == "ok", f"POST answered {posted.status_code} {posted.text!r}")
    reply = http.get(poll_url(url, sid), timeout=TIMEOUT).text
    expect(reply.startswith('40{"sid":'), f"expected 40{{sid}}, got {reply!r}")
    say("connected over polling")

    pending: dict = {}

    def long_poll() -> None:
        started = time.monotonic()
        response = requests.get(poll_url(url, sid), timeout=TIMEOUT)
        pending.update(body=response.text, seconds=time.monotonic() - started)

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.2)
    expect(poller.is_alive(), f"the long-poll ended before the probe: {pending!r}")
    ws = websocket.create_connection(ws_url(url, f"&sid={sid}"), timeout=TIMEOUT)
    ws.send("2probe")
    expect(recv_text(ws) == "3probe", "no 3probe")
    poller.join(TIMEOUT)
    expect(not poller.is_alive() and pending.get("body") == "6", f"the pending GET was not answered with a noop: {pending!r}")
    say("probe answered, long-poll ended with noop")
    # Queued while the client is between transports: must arrive over the WebSocket, in order.
    posted = http.post(poll_url(url, sid), data='42["emitMany",5]', timeout=TIMEOUT)
    expect(posted.text == "ok", f"POST during the upgrade answered {posted.text!r}")
    ws.send("5")
    frames = [recv_text(ws) for _ in range(5)]
    expect(frames == [f'42["n",{n}]' for n in range(5)], f"queued packets arrived as {frames!r}")
    say("queued packets arrived in order over websocket")
    late = http.get(poll_url(url, sid), timeout=TIMEOUT)
    expect(late.status_code == 400 and late.json() == {"code": 3, "message": "Bad request"}, f"polling after the upgrade: {late.text!r}")
    ws.send('427["echo","over websocket"]')
    expect(recv_text(ws) == '437["over websocket"]', "no ack over websocket")
    say("ack over websocket")
    ws.send("41")
    ws.close()


SCENARIOS = {"oversize": scenario_oversize, "upgrade": scenario_upgrade, "closecodes": scenario_closecodes, "stall": scenario_stall}


def main() -> None:
    url, scenario = sys.argv[1], sys.argv[2]
    argument = sys.argv[3] if len(sys.argv) > 3 else None
    SCENARIOS[scenario](url, argument)


if __name__ == "__main__":
    main()
