"""A release mirror that fails on demand, for the network fault tests.

usage: flaky_server.py DIR CERT KEY   (prints its port, serves HTTPS on 127.0.0.1 until killed)

The first path segment picks the behaviour, the rest is a file under DIR:
  /ok/F         serve F (Range honoured)
  /drop/F       first request: send half of F, then close; later requests: serve (Range honoured)
  /norange/F    like drop, but later requests ignore Range and send all of F with 200
  /503x3/F      answer 503 three times, then serve
  /408x2/F      answer 408 twice, then serve
  /429x2/F      answer 429 twice, then serve
  /stall/F      first request: send half, then stall (send nothing) for 300 s; later: serve
  /404/F        always 404
GET /count/<behaviour>/F returns how many requests that path got.
"""
import functools, http.server, os, ssl, sys, threading, time

directory, cert, key = sys.argv[1:4]
counts = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        parts = self.path.lstrip("/").split("/", 1)
        if parts[0] == "count":
            with lock:
                n = counts.get(parts[1], 0)
            body = str(n).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        mode, rel = parts[0], parts[1] if len(parts) > 1 else ""
        with lock:
            counts[self.path.lstrip("/")] = n = counts.get(self.path.lstrip("/"), 0) + 1
        path = os.path.join(directory, rel)
        if mode == "404" or not os.path.isfile(path):
            return self.plain(404, b"not found")
        if mode == "503x3" and n <= 3:
            return self.plain(503, b"busy")
        if mode == "408x2" and n <= 2:
            return self.plain(408, b"request timeout")
        if mode == "429x2" and n <= 2:
            return self.plain(429, b"too many requests")
        data = open(path, "rb").read()
        if mode in ("drop", "norange", "stall") and n == 1:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if mode == "stall":
                time.sleep(300)
            self.close_connection = True
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and mode != "norange" and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[len("bytes="):-1])
        if start:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def plain(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
httpd.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
