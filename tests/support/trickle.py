#!/usr/bin/env python3
"""A TCP relay that trickles: what the client sends goes on at once; what the server answers goes
back at full speed for the first FAST bytes (the TLS handshake passes), then one byte every DELAY
seconds. Stands between the tool and a real server to show that a peer who answers, slowly,
forever, still meets the tool's deadline.

usage: trickle.py LISTEN_ADDR LISTEN_PORT UPSTREAM_ADDR UPSTREAM_PORT FAST DELAY
Prints "ready" once listening; runs until killed."""
import socket
import sys
import threading
import time


def pump(src, dst, fast, delay):
    sent = 0
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            head = data[:max(0, fast - sent)]
            if head:
                dst.sendall(head)
                sent += len(head)
            for b in data[len(head):]:
                time.sleep(delay)
                dst.sendall(bytes([b]))
                sent += 1
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, upstream, fast, delay):
    try:
        up = socket.create_connection(upstream, timeout=10)
        up.settimeout(None)
    except OSError:
        conn.close()
        return
    threading.Thread(target=pump, args=(conn, up, 1 << 62, 0), daemon=True).start()
    threading.Thread(target=pump, args=(up, conn, fast, delay), daemon=True).start()


def main():
    addr, port, up_addr, up_port, fast, delay = sys.argv[1:7]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((addr, int(port)))
    listener.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        serve(conn, (up_addr, int(up_port)), int(fast), float(delay))


if __name__ == "__main__":
    main()
