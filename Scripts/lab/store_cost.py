#!/usr/bin/env python3
"""Redis-side cost of store.lua per stored message, without the gateway.

    Scripts/lab/store_cost.py PORT VARIANTS [--users N] [--messages M] [--batch B] [--callgrind]

Talks RESP to a redis-server already listening on 127.0.0.1:PORT (its data is flushed after each variant),
gives N users a session on this node, then pipelines M stored messages in store.lua calls of B messages
(round-robin over the users in random order, the payload and ttl of `Scripts/bench stored`), and prints
per message: evalsha usec (INFO commandstats) and the redis process's CPU (/proc). With --callgrind the
redis-server runs under `valgrind --tool=callgrind` and each variant is bracketed by `callgrind_control -z`
and `-d <variant>`: the instructions per message (Ir / M) of the dump are the figure that does not drift
with the machine's speed.

VARIANTS, comma-separated, each a store.lua source and how its arguments are laid out:
  current            this checkout's prelude.lua + store.lua, pushes without an id (the usual case)
  current-id         the same with a backend id per push (a record in the user's generation hash)
  FILE:8e72379       a store.lua of 8e72379 (one message per call, no prelude, no idempotency record)
  FILE:49a0082       a store.lua + prelude of 49a0082 (batched, generated record pg:idem:<id> per push)
                     (FILE = a directory holding store.lua and, except for 8e72379, prelude.lua)
"""
import os, random, socket, subprocess, sys, time

def enc(*parts):
    out = [b'*%d\r\n' % len(parts)]
    for p in parts:
        p = p.encode() if isinstance(p, str) else str(p).encode() if isinstance(p, int) else p
        out.append(b'$%d\r\n%s\r\n' % (len(p), p))
    return b''.join(out)

class Redis:
    def __init__(self, port):
        self.sock = socket.create_connection(('127.0.0.1', port))
        self.buf = b''
    def _line(self):
        while b'\r\n' not in self.buf:
            self.buf += self.sock.recv(1 << 20)
        i = self.buf.index(b'\r\n')
        line, self.buf = self.buf[:i], self.buf[i + 2:]
        return line
    def read(self):
        line = self._line()
        kind = line[:1]
        if kind in (b'+', b':'):
            return line[1:]
        if kind == b'-':
            return ('ERR', line[1:])
        if kind == b'$':
            n = int(line[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(1 << 20)
            value, self.buf = self.buf[:n], self.buf[n + 2:]
            return value
        n = int(line[1:])
        return None if n < 0 else [self.read() for _ in range(n)]
    def cmd(self, *parts):
        self.sock.sendall(enc(*parts))
        return self.read()
    def pipe(self, commands):
        self.sock.sendall(b''.join(commands))
        return [self.read() for _ in commands]

PAYLOAD = '{"n":12345,"text":"hello"}'

def message(layout, uid, now):
    """KEYS and ARGV of one message in a variant's layout."""
    user = [f'pg:{{u:{uid}}}:inbox', f'pg:{{u:{uid}}}:meta', f'pg:{{u:{uid}}}:sess', f'pg:{{u:{uid}}}:polls']
    head = ['1000', PAYLOAD, str(now), '604800', uid]
    gid = '%016x' % random.getrandbits(64)
    if layout == '8e72379':
        return user[:3], ['1000', PAYLOAD, str(now), '604800', '200', '604800', 'node-self', uid, '', '0']
    if layout == '49a0082':
        return user + [f'pg:idem:{gid}'], head + ['1', 'a' * 40, '300']
    if layout == 'current-id':
        gen = now // 1000 // 86400
        record = f'pg:{{u:{uid}}}:idem:86400:{gen}'
        return user + [record, record, f'pg:{{u:{uid}}}:idem:86400:{gen - 1}'], \
            head + [gid, '2', 'a' * 40, '86400', str((gen + 2) * 86400), '']
    return user, head + [''] * 6

def run(port, name, source, layout, users, total, batch, callgrind):
    redis = Redis(port)
    sha = redis.cmd('SCRIPT', 'LOAD', source).decode()
    redis.pipe([enc('HSET', f'pg:{{u:u{u}}}:sess', 'd', 'node-self|ios|1') for u in range(users)])
    redis.cmd('CONFIG', 'RESETSTAT')
    info = redis.cmd('INFO', 'server').split(b'\r\n')
    pid = int([l for l in info if l.startswith(b'process_id:')][0].split(b':')[1])
    def cpu():
        fields = open(f'/proc/{pid}/stat').read().split(')')[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')
    if callgrind:
        subprocess.run(['callgrind_control', '-z'], capture_output=True)
    cpu0, sent, errors, pending = cpu(), 0, 0, []
    order = list(range(users))
    per_call = 1 if layout == '8e72379' else batch
    while sent < total:
        random.shuffle(order)
        for start in range(0, users, per_call):
            keys, args, now = [], [], int(time.time() * 1000)
            chunk = order[start:start + per_call][:total - sent]
            for u in chunk:
                k, a = message(layout, f'u{u}', now)
                keys += k
                args += a
            if layout == '8e72379':
                pending.append(enc('EVALSHA', sha, len(keys), *keys, *args))
            else:
                pending.append(enc('EVALSHA', sha, len(keys), *keys, '200', '604800', 'node-self', len(chunk), *args))
            sent += len(chunk)
            if len(pending) >= 64 or sent >= total:
                errors += sum(isinstance(r, tuple) for r in redis.pipe(pending))
                pending = []
            if sent >= total:
                break
    cpu1 = cpu()
    if callgrind:
        subprocess.run(['callgrind_control', '-d', name.replace('/', '_').replace(':', '_')], capture_output=True)
    stats = redis.cmd('INFO', 'commandstats').decode()
    usec = int([l for l in stats.split('\r\n') if l.startswith('cmdstat_evalsha')][0].split('usec=')[1].split(',')[0])
    print(f'{name}: {sent} messages, {errors} errors, evalsha {usec / sent:.1f} us/message, '
          f'redis CPU {(cpu1 - cpu0) * 1e6 / sent:.1f} us/message')
    redis.cmd('FLUSHALL')

def main():
    args = sys.argv[1:]
    options = {'--users': 2000, '--messages': 20000, '--batch': 8}
    callgrind = '--callgrind' in args
    args = [a for a in args if a != '--callgrind']
    for key in options:
        if key in args:
            i = args.index(key)
            options[key] = int(args[i + 1])
            del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    port, variants = int(args[0]), args[1].split(',')
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'Sources', 'PushCore', 'Storage', 'Scripts')
    for variant in variants:
        if variant in ('current', 'current-id'):
            source = open(os.path.join(root, 'prelude.lua'), 'rb').read() + open(os.path.join(root, 'store.lua'), 'rb').read()
            layout = variant
        else:
            directory, layout = variant.split(':')
            prelude = os.path.join(directory, 'prelude.lua')
            source = (open(prelude, 'rb').read() if os.path.exists(prelude) else b'') + \
                open(os.path.join(directory, 'store.lua'), 'rb').read()
        run(port, variant, source, layout, options['--users'], options['--messages'], options['--batch'], callgrind)

main()
