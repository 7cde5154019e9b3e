"""Helpers shared by Herald's Python benchmarks (secondary-lag, rollout): loopback DNS queries,
the admin API, and Knot and NSD started as secondaries of a Herald. Stdlib only."""
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import time

TOKEN = "bench-token-0123456789abcdef0123"
KEY = "xfr.bench"
SECRET = "aGVyYWxkLWJlbmNoLXRzaWctc2VjcmV0LTAxMjM0NTY3"


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            pass
        finally:
            t.close()
            u.close()


def qname(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"


def query(port, name, qtype, timeout=0.2):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(struct.pack(">HHHHHH", 4242, 0, 1, 0, 0, 0) + qname(name) + struct.pack(">HH", qtype, 1),
                 ("127.0.0.1", port))
        return s.recv(4096)
    except OSError:
        return None
    finally:
        s.close()


def skip_name(d, off):
    while True:
        if d[off] & 0xC0 == 0xC0:
            return off + 2
        if d[off] == 0:
            return off + 1
        off += 1 + d[off]


def answers(d):
    """(type, rdata) of each answer record."""
    qd, an = struct.unpack_from(">HH", d, 4)
    off = 12
    for _ in range(qd):
        off = skip_name(d, off) + 4
    out = []
    for _ in range(an):
        off = skip_name(d, off)
        rtype, _, _, rdlen = struct.unpack_from(">HHIH", d, off)
        off += 10
        out.append((rtype, d[off:off + rdlen]))
        off += rdlen
    return out


def serial(port, zone):
    d = query(port, zone + ".", 6)
    if not d:
        return None
    for rtype, rd in answers(d):
        if rtype == 6:
            off = skip_name(rd, skip_name(rd, 0))
            return struct.unpack_from(">I", rd, off)[0]
    return None


def txt_has(port, name, needle, timeout=0.05):
    """Whether NAME's TXT answer from PORT contains the bytes NEEDLE."""
    d = query(port, name, 16, timeout=timeout)
    return bool(d) and any(rtype == 16 and needle in rd for rtype, rd in answers(d))


class Api:
    """One keep-alive connection to the admin API."""

    def __init__(self, port, timeout=30):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method, path, body=None):
        self.c.request(method, path, body=json.dumps(body) if body else None,
                       headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        r = self.c.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None


def wait(what, f, limit=60):
    start = time.time()
    while not f():
        if time.time() - start > limit:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.01)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def herald_secondary_flags(kport, nport):
    """`herald serve` flags for a TSIG-keyed Knot on KPORT and an address-allowed NSD on NPORT."""
    return ["--tsig-key", f"{KEY}:hmac-sha256:{SECRET}", "--allow-transfer", "127.0.0.1",
            "--notify", f"127.0.0.1:{kport},key={KEY}", "--notify", f"127.0.0.1:{nport}"]


def start_secondaries(tmp, zone, hport, kport, nport, cpu=None):
    """Writes configurations for Knot (NOTIFY and transfers TSIG-signed) and NSD (allowed by
    address) as secondaries of the Herald on HPORT, starts both (pinned to CPU when given) and
    returns their processes. NSD runs with `xfrd-reload-timeout: 0`: by default it waits a
    second between zone reloads, which would dominate any lag measured."""
    os.makedirs(f"{tmp}/knot")
    with open(f"{tmp}/knot/knot.conf", "w") as f:
        f.write(f"""server:
    rundir: "{tmp}/knot"
    listen: 127.0.0.1@{kport}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{tmp}/knot"
    journal-db-max-size: 8G
control:
    listen: "{tmp}/knot/knot.sock"
log:
  - target: "{tmp}/knot/knot.log"
    any: {os.environ.get("KNOT_LOG", "info")}
key:
  - id: {KEY}
    algorithm: hmac-sha256
    secret: {SECRET}
remote:
  - id: herald
    address: 127.0.0.1@{hport}
    key: {KEY}
acl:
  - id: notify
    address: 127.0.0.1
    key: {KEY}
    action: notify
template:
  - id: default
    storage: "{tmp}/knot"
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
    journal-max-usage: 4G
zone:
  - domain: {zone}
    master: herald
    acl: notify
""")
    os.makedirs(f"{tmp}/nsd")
    d = f"{tmp}/nsd"
    with open(f"{d}/nsd.conf", "w") as f:
        f.write(f"""server:
    ip-address: 127.0.0.1@{nport}
    do-ip4: yes
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd.log"
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    xfrd-reload-timeout: 0
remote-control:
    control-enable: no
zone:
    name: {zone}
    zonefile: "{d}/{zone}.zone"
    request-xfr: 127.0.0.1@{hport} NOKEY
    allow-notify: 127.0.0.1 NOKEY
""")
    pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
    return [subprocess.Popen(pin + ["knotd", "-c", f"{tmp}/knot/knot.conf"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            subprocess.Popen(pin + ["nsd", "-d", "-c", f"{tmp}/nsd/nsd.conf"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]


def stop(procs):
    for p in reversed(procs):
        p.send_signal(15)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
