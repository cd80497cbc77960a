#!/usr/bin/python3
"""An HTTP/2 echo server for PushPosix's HTTP2Client tests: h2 (Debian's python3-h2) over ssl, on asyncio.

Listens on 127.0.0.1 (port 0 unless --port) and prints the port on stdout once listening. Each request is answered
with the status in its `x-want-status` header (200 without one), after `x-delay-ms` milliseconds when given, and a
JSON body echoing it: {"method", "path", "headers": [[name, value], ...], "body": base64, "connection": n,
"stream": id}; or it is reset with the HTTP/2 error code in `x-reset` (7: REFUSED_STREAM, 2: INTERNAL_ERROR).
`GET /stats` answers at once with what the server saw: {"requests", "connections", "max_open", "paths": {path:
count}}; `max_open` is the most streams open at once on one connection (a request received and its answer not all
sent), the figure the concurrency test checks against --max-streams.

--max-streams N   SETTINGS_MAX_CONCURRENT_STREAMS advertised (and enforced by h2)
--goaway-after N  on each connection, answer N requests, then send GOAWAY naming the last stream answered; later
                  streams are never answered (the client must retry them on a new connection)
--alpn P,...      the ALPN protocols offered (default h2; `http/1.1` to test a server without HTTP/2)
--plain           cleartext HTTP/2 with prior knowledge (h2c), no TLS
"""
import argparse
import asyncio
import base64
import json
import ssl
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.settings import SettingCodes

STATS = {"requests": 0, "connections": 0, "max_open": 0, "paths": {}}


class EchoProtocol(asyncio.Protocol):
    def __init__(self, args):
        self.args = args
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.conn.local_settings = h2.settings.Settings(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: args.max_streams,
            SettingCodes.MAX_HEADER_LIST_SIZE: 65536,
        })
        self.requests = {}  # stream id -> (headers, body bytearray) while the request comes in
        self.open = set()  # streams received and not all answered
        self.outgoing = {}  # stream id -> bytes of the answer not sent yet (flow control)
        self.answered = 0
        self.last_answered = 0
        self.closed = False  # GOAWAY sent: input is read and dropped
        self.transport = None
        self.serial = 0

    def connection_made(self, transport):
        STATS["connections"] += 1
        self.serial = STATS["connections"]
        self.transport = transport
        self.conn.initiate_connection()
        self.flush()

    def connection_lost(self, exc):
        self.transport = None

    def data_received(self, data):
        if self.closed:
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            print(f"protocol error: {error}", file=sys.stderr, flush=True)
            self.flush()
            self.transport.close()
            return
        for event in events:
            if self.closed:
                break
            if isinstance(event, h2.events.RequestReceived):
                self.requests[event.stream_id] = (event.headers, bytearray())
                self.open.add(event.stream_id)
                STATS["max_open"] = max(STATS["max_open"], len(self.open))
            elif isinstance(event, h2.events.DataReceived):
                if event.stream_id in self.requests:
                    self.requests[event.stream_id][1].extend(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.request_complete(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.requests.pop(event.stream_id, None)
                self.outgoing.pop(event.stream_id, None)
                self.open.discard(event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated):
                self.send_pending()
        self.flush()

    def request_complete(self, stream_id):
        headers, body = self.requests.pop(stream_id, (None, None))
        if headers is None:
            return
        fields = {}
        for name, value in headers:
            fields.setdefault(name, value)
        path = fields.get(":path", "")
        if path == "/stats":
            self.open.discard(stream_id)
            self.answer(stream_id, 200, json.dumps(STATS).encode())
            return
        if self.args.goaway_after and self.answered >= self.args.goaway_after:
            return  # after the GOAWAY: never answered
        STATS["requests"] += 1
        STATS["paths"][path] = STATS["paths"].get(path, 0) + 1
        self.answered += 1
        echo = json.dumps({
            "method": fields.get(":method"), "path": path, "headers": [[n, v] for n, v in headers],
            "body": base64.b64encode(bytes(body)).decode(), "connection": self.serial, "stream": stream_id,
        }).encode()
        status = int(fields.get("x-want-status", "200"))
        delay = int(fields.get("x-delay-ms", "0")) / 1000
        going_away = self.args.goaway_after and self.answered == self.args.goaway_after
        if "x-reset" in fields:
            self.open.discard(stream_id)
            self.conn.reset_stream(stream_id, error_code=int(fields["x-reset"]))
            return
        if delay > 0 and not going_away:
            asyncio.get_running_loop().call_later(delay, self.answer_later, stream_id, status, echo)
        else:
            self.answer(stream_id, status, echo)
        if going_away:
            self.go_away()

    def answer_later(self, stream_id, status, body):
        if self.transport is None or self.closed or stream_id not in self.open:
            return
        self.answer(stream_id, status, body)
        self.flush()

    def answer(self, stream_id, status, body):
        self.last_answered = max(self.last_answered, stream_id)
        self.conn.send_headers(stream_id, [(":status", str(status)), ("content-type", "application/json"),
                                           ("content-length", str(len(body))), ("x-served-by", "h2-echo")])
        self.outgoing[stream_id] = body
        self.send_pending()

    def send_pending(self):
        """Sends what flow control allows of each answer; the rest waits for a WINDOW_UPDATE."""
        for stream_id in list(self.outgoing):
            data = self.outgoing[stream_id]
            while True:
                try:
                    window = self.conn.local_flow_control_window(stream_id)
                except h2.exceptions.StreamClosedError:
                    del self.outgoing[stream_id]
                    self.open.discard(stream_id)
                    break
                size = min(window, len(data), self.conn.max_outbound_frame_size)
                if size <= 0 and data:
                    self.outgoing[stream_id] = data
                    break
                self.conn.send_data(stream_id, data[:size], end_stream=size == len(data))
                data = data[size:]
                if not data:
                    del self.outgoing[stream_id]
                    self.open.discard(stream_id)
                    break

    def go_away(self):
        """Sends GOAWAY naming the last stream answered, after the answers queued so far (an answer still held
        by flow control or a delay is lost: the tests' GOAWAY requests are small and not delayed). The connection
        stays open, its input read and dropped, until the client closes it, so the GOAWAY is read rather than lost
        to a reset."""
        self.conn.close_connection(last_stream_id=self.last_answered)
        self.closed = True
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--max-streams", type=int, default=100)
    parser.add_argument("--goaway-after", type=int, default=0)
    parser.add_argument("--alpn", default="h2")
    parser.add_argument("--plain", action="store_true")
    args = parser.parse_args()

    context = None
    if not args.plain:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        context.set_alpn_protocols(args.alpn.split(","))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: EchoProtocol(args), "127.0.0.1", args.port, ssl=context,
                                      reuse_address=True)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
