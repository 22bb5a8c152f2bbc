"""Stock python-socketio client scenarios against a Socket.IO server, for the Swift SocketIOServerTests.

Usage: client.py URL SCENARIO [TRANSPORT] [ARG]
  TRANSPORT: default (polling, then the upgrade), websocket, or polling.
Prints one line per step; exits 0 when the scenario held, 1 (with the reason on stderr) when it did not.

The server side is the tests' echo handler: token "good" is user "alice"; "echo" answers its ack with its
arguments (or emits "echo" back without an ack); "pleaseEmit" emits "greeting" to the user; "bye" makes the
server disconnect the socket.
"""

from __future__ import annotations

import sys
import threading
import time

import socketio

TIMEOUT = 10.0


def say(line: str) -> None:
    print(line, flush=True)


def fail(reason: str) -> None:
    print(reason, file=sys.stderr, flush=True)
    sys.exit(1)


def transports_for(name: str) -> list[str] | None:
    return {"default": None, "websocket": ["websocket"], "polling": ["polling"]}[name]


def connected_client(url: str, transport: str, auth: dict | None = None) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    client.connect(url, auth=auth if auth is not None else {"token": "good"}, transports=transports_for(transport),
                   wait_timeout=TIMEOUT)
    return client


def wait_for_transport(client: socketio.Client, expected: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while client.transport() != expected:
        if time.monotonic() > deadline:
            fail(f"transport stayed {client.transport()}, expected {expected}")
        time.sleep(0.02)


def expected_transport(transport: str) -> str:
    return "polling" if transport == "polling" else "websocket"


def scenario_connect(url: str, transport: str, _: str | None) -> None:
    client = connected_client(url, transport)
    say(f"connected sid={client.get_sid()}")
    wait_for_transport(client, expected_transport(transport))
    say(f"transport={client.transport()}")
    answer = client.call("echo", {"n": 1, "text": "héllo"}, timeout=TIMEOUT)
    if answer != {"n": 1, "text": "héllo"}:
        fail(f"ack carried {answer!r}")
    say("ack ok")
    client.disconnect()
    say("disconnected")


def scenario_header_auth(url: str, transport: str, _: str | None) -> None:
    client = socketio.Client(reconnection=False)
    client.connect(url, headers={"Authorization": "Bearer good"}, transports=transports_for(transport), wait_timeout=TIMEOUT)
    say("connected with header")
    client.disconnect()


def scenario_refused(url: str, transport: str, _: str | None) -> None:
    client = socketio.Client(reconnection=False)
    errors: list = []
    client.on("connect_error", lambda data: errors.append(data))
    try:
        client.connect(url, auth={"token": "bad"}, transports=transports_for(transport), wait_timeout=TIMEOUT)
    except socketio.exceptions.ConnectionError as error:
        say(f"refused: {error}")
    else:
        fail("the connection was accepted")
    if errors != [{"message": "unauthorized"}]:
        fail(f"connect_error carried {errors!r}")
    say("connect_error unauthorized")


def scenario_server_emit(url: str, transport: str, _: str | None) -> None:
    client = connected_client(url, transport)
    greeted = threading.Event()
    received: list = []

    def on_greeting(*args):
        received.append(list(args))
        greeted.set()

    client.on("greeting", on_greeting)
    client.emit("pleaseEmit")
    if not greeted.wait(TIMEOUT):
        fail("no greeting arrived")
    if received != [["hello"]]:
        fail(f"greeting carried {received!r}")
    say("greeting received")
    client.disconnect()


def scenario_order(url: str, transport: str, count: str | None) -> None:
    total = int(count or "20")
    client = connected_client(url, transport)
    wait_for_transport(client, expected_transport(transport))
    echoed: list = []
    done = threading.Event()

    def on_echo(value):
        echoed.append(value)
        if len(echoed) == total:
            done.set()

    client.on("echo", on_echo)
    for index in range(total):
        client.emit("echo", index)
    if not done.wait(TIMEOUT):
        fail(f"only {len(echoed)} of {total} echoes arrived: {echoed!r}")
    if echoed != list(range(total)):
        fail(f"echoes out of order: {echoed!r}")
    say(f"{total} echoes in order")
    client.disconnect()


def scenario_stay(url: str, transport: str, seconds: str | None) -> None:
    client = connected_client(url, transport)
    wait_for_transport(client, expected_transport(transport))
    disconnects: list = []
    client.on("disconnect", lambda *reason: disconnects.append(reason))
    time.sleep(float(seconds or "2"))
    if disconnects or not client.connected:
        fail(f"dropped while idle: {disconnects!r}")
    answer = client.call("echo", "still here", timeout=TIMEOUT)
    if answer != "still here":
        fail(f"ack carried {answer!r}")
    say(f"still connected over {client.transport()}")
    client.disconnect()


def scenario_hang(url: str, transport: str, _: str | None) -> None:
    client = connected_client(url, transport)
    wait_for_transport(client, expected_transport(transport))
    say(f"connected over {client.transport()}")
    # The test kills or stops this process now.
    time.sleep(120)


def scenario_server_disconnect(url: str, transport: str, _: str | None) -> None:
    client = connected_client(url, transport)
    wait_for_transport(client, expected_transport(transport))
    gone = threading.Event()
    reasons: list = []

    def on_disconnect(*reason):
        reasons.append(reason)
        gone.set()

    client.on("disconnect", on_disconnect)
    client.emit("bye")
    if not gone.wait(TIMEOUT):
        fail("the server did not disconnect the socket")
    say(f"disconnected by server {reasons!r}")


SCENARIOS = {
    "connect": scenario_connect,
    "header-auth": scenario_header_auth,
    "refused": scenario_refused,
    "server-emit": scenario_server_emit,
    "order": scenario_order,
    "stay": scenario_stay,
    "hang": scenario_hang,
    "server-disconnect": scenario_server_disconnect,
}


def main() -> None:
    url, scenario = sys.argv[1], sys.argv[2]
    transport = sys.argv[3] if len(sys.argv) > 3 else "default"
    argument = sys.argv[4] if len(sys.argv) > 4 else None
    SCENARIOS[scenario](url, transport, argument)


if __name__ == "__main__":
    main()
