"""A hostile release mirror that never stops sending, for the download-bound tests.

  /symlink/F   a gzip stream whose tar starts with a symlink entry named etcd, then incompressible
               bytes for as long as the client reads (no Content-Length, the body ends at close)
  /huge/F      announces Content-Length: 3 GiB, then sends the same endless stream

After each response ends (the client hung up), the bytes it got are appended to SENT, one number
per line.

usage: endless_server.py SENT CERT KEY   (prints its port, serves HTTPS on 127.0.0.1 until killed)
"""
import http.server, io, os, ssl, sys, tarfile, zlib

sent_file, cert, key = sys.argv[1:4]


def symlink_tar_header():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        info = tarfile.TarInfo("etcd-v3.5.1-linux-amd64/etcd")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/shadow"
        t.addfile(info)
    return buf.getvalue()[:512]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        mode = self.path.lstrip("/").split("/", 1)[0]
        self.send_response(200)
        if mode == "huge":
            self.send_header("Content-Length", str(3 << 30))
        self.end_headers()
        z = zlib.compressobj(6, zlib.DEFLATED, 31)
        sent = 0
        try:
            chunk = z.compress(symlink_tar_header()) + z.flush(zlib.Z_SYNC_FLUSH)
            while True:
                self.wfile.write(chunk)
                sent += len(chunk)
                chunk = z.compress(os.urandom(256 * 1024)) + z.flush(zlib.Z_SYNC_FLUSH)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        with open(sent_file, "a") as f:
            f.write(f"{sent}\n")


httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
httpd.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
