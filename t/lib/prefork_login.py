"""A login whose TCP connection is opened long before its TLS handshake.

Usage: prefork_login.py PORT CLIENT_DIR ROLE GO_FILE
Connects to 127.0.0.1:PORT and prints "connected"; once GO_FILE exists it
sends SSLRequest, does the TLS handshake with CLIENT_DIR's postgresql.crt /
postgresql.key (root.crt verifies the server) and the startup packet for
ROLE, and prints "login ok <backend pid>" or "refused: <why>".  A login that
succeeds stays open until stdin closes, so the caller can watch the session.
"""
import os
import socket
import ssl
import struct
import sys
import time

port, client, role, go = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
sock = socket.create_connection(('127.0.0.1', int(port)))
print('connected', flush=True)
deadline = time.time() + 60
while not os.path.exists(go):
    if time.time() > deadline:
        print('refused: never told to go', flush=True)
        sys.exit(1)
    time.sleep(0.02)


def messages(conn):
    """Backend messages as (type, body) until the connection closes."""
    buf = b''
    while True:
        while len(buf) >= 5 and len(buf) >= 1 + struct.unpack('!i', buf[1:5])[0]:
            n = 1 + struct.unpack('!i', buf[1:5])[0]
            yield buf[:1], buf[5:n]
            buf = buf[n:]
        chunk = conn.recv(65536)
        if not chunk:
            return
        buf += chunk


def login():
    sock.sendall(struct.pack('!ii', 8, 80877103))
    if sock.recv(1) != b'S':
        return 'refused: the server does not offer TLS', None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(client, 'root.crt'))
    ctx.load_cert_chain(os.path.join(client, 'postgresql.crt'), os.path.join(client, 'postgresql.key'))
    try:
        conn = ctx.wrap_socket(sock, server_hostname='localhost')
        body = struct.pack('!i', 196608) + b'user\0' + role.encode() + b'\0database\0postgres\0\0'
        conn.sendall(struct.pack('!i', len(body) + 4) + body)
        pid = None
        for kind, payload in messages(conn):
            if kind == b'K':
                pid = struct.unpack('!i', payload[:4])[0]
            elif kind == b'E':
                fields = dict((f[:1], f[1:].decode('utf-8', 'replace')) for f in payload.split(b'\0') if f)
                return 'refused: ' + fields.get(b'M', '?'), None
            elif kind == b'Z':
                return 'login ok %d' % pid, conn
        return 'refused: connection closed', None
    except (ssl.SSLError, OSError) as e:
        return 'refused: ' + str(e), None


verdict, conn = login()
print(verdict, flush=True)
if conn is not None:
    sys.stdin.read()
