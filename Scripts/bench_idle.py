#!/usr/bin/env python3
"""Opens N client connections to pushgw, authenticates each, then holds them idle (for `Scripts/bench idle`).

Prints one JSON line {"connected": N, "seconds": S} on stdout once all N got AUTH_REPLY code 0, then holds
them, sending a HEARTBEAT on each every 60 s, until SIGTERM/SIGINT, `--hold` seconds, or its parent exits.
Exits 1 if a connection fails or is closed, or if connecting and authenticating takes over `--timeout`.
Python 3 standard library only.
"""
import argparse
import errno
import json
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time

# SPEC §2: packet length (whole frame), header length 16, version 1, operation, sequence; big-endian.
HEADER = struct.Struct(">IHHII")
OP_HEARTBEAT, OP_DISCONNECT, OP_AUTH, OP_AUTH_REPLY, OP_ERROR = 2, 6, 7, 8, 28
SOURCE_ADDRESSES = [f"127.0.0.{k}" for k in range(1, 5)]  # four times the ephemeral ports of one address
HEARTBEAT_EVERY = 60.0


def frame(op, seq, body=b""):
    return HEADER.pack(HEADER.size + len(body), HEADER.size, 1, op, seq) + body


def fail(message):
    print(f"bench_idle: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


class Conn:
    __slots__ = ("index", "sock", "inbuf", "outbuf", "connected", "authed")

    def __init__(self, index, sock):
        self.index, self.sock = index, sock
        self.inbuf, self.outbuf = bytearray(), bytearray()
        self.connected = self.authed = False


class Client:
    def __init__(self, host, port):
        self.address = (host, port)
        self.selector = selectors.DefaultSelector()
        self.conns = []
        self.authed = 0

    def open(self, index):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((SOURCE_ADDRESSES[index % len(SOURCE_ADDRESSES)], 0))
        err = sock.connect_ex(self.address)
        if err not in (0, errno.EINPROGRESS):
            fail(f"connection {index}: connect: {os.strerror(err)}")
        conn = Conn(index, sock)
        self.conns.append(conn)
        self.selector.register(sock, selectors.EVENT_WRITE, conn)

    def send(self, conn, data):
        conn.outbuf += data
        self.flush(conn)

    def flush(self, conn):
        try:
            sent = conn.sock.send(conn.outbuf)
            del conn.outbuf[:sent]
        except BlockingIOError:
            pass
        except OSError as e:
            fail(f"connection {conn.index}: send: {e}")
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        self.selector.modify(conn.sock, events, conn)

    def on_writable(self, conn):
        if not conn.connected:
            err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                fail(f"connection {conn.index}: connect: {os.strerror(err)}")
            conn.connected = True
            body = json.dumps({"mid": f"u{conn.index}", "key": f"k{conn.index}", "platform": "bench"})
            conn.outbuf += frame(OP_AUTH, 1, body.encode())
        self.flush(conn)

    def on_readable(self, conn):
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            fail(f"connection {conn.index}: recv: {e}")
        if not data:
            fail(f"connection {conn.index} closed by the server")
        conn.inbuf += data
        while len(conn.inbuf) >= HEADER.size:
            length, _, _, op, _ = HEADER.unpack_from(conn.inbuf)
            if length < HEADER.size:
                fail(f"connection {conn.index}: bad frame length {length}")
            if len(conn.inbuf) < length:
                break
            body = bytes(conn.inbuf[HEADER.size:length])
            del conn.inbuf[:length]
            if op == OP_AUTH_REPLY:
                reply = json.loads(body or b"{}")
                if reply.get("code") != 0:
                    fail(f"connection {conn.index}: AUTH_REPLY {body!r}")
                if not conn.authed:
                    conn.authed = True
                    self.authed += 1
            elif op in (OP_ERROR, OP_DISCONNECT):
                fail(f"connection {conn.index}: op {op} {body!r}")
            # HEARTBEAT_REPLY and anything else: read and ignored

    def poll(self, timeout):
        for key, events in self.selector.select(timeout):
            if events & selectors.EVENT_READ:
                self.on_readable(key.data)
            if events & selectors.EVENT_WRITE:
                self.on_writable(key.data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the gateway's client TCP port")
    parser.add_argument("--count", type=int, default=15000, help="connections to open (default 15000)")
    parser.add_argument("--batch", type=int, default=500, help="connections in flight at once (default 500)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds for connect+auth (default 120)")
    parser.add_argument("--hold", type=float, default=0, help="seconds to hold; 0 (default): until signalled")
    args = parser.parse_args()

    # Every connection is a file: raise the soft limit to the hard one, and check N fits.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and args.count + 64 > hard:
        fail(f"--count {args.count} needs more files than the limit of {hard} allows")

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    parent = os.getppid()

    # Connect and authenticate, at most `batch` connections waiting for AUTH_REPLY at a time.
    client = Client(args.host, args.port)
    start = time.monotonic()
    while client.authed < args.count:
        while len(client.conns) < args.count and len(client.conns) - client.authed < args.batch:
            client.open(len(client.conns))
        client.poll(0.5)
        if stop:
            fail(f"signalled after {client.authed} of {args.count} connections")
        if time.monotonic() - start > args.timeout:
            fail(f"timed out after {args.timeout:.0f} s with {client.authed} of {args.count} authenticated")
    seconds = time.monotonic() - start
    print(json.dumps({"connected": client.authed, "seconds": round(seconds, 3)}), flush=True)

    # Hold: read whatever comes, heartbeat every 60 s, stop on a signal, --hold, or the parent's exit.
    held = time.monotonic()
    next_heartbeat = held + HEARTBEAT_EVERY
    heartbeat_seq = 1
    while not stop and os.getppid() == parent and not (args.hold and time.monotonic() - held >= args.hold):
        client.poll(1.0)
        if time.monotonic() >= next_heartbeat:
            heartbeat_seq += 1
            for conn in client.conns:
                client.send(conn, frame(OP_HEARTBEAT, heartbeat_seq))
            next_heartbeat += HEARTBEAT_EVERY
    for conn in client.conns:
        conn.sock.close()


if __name__ == "__main__":
    main()
