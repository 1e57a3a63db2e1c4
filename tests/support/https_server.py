"""Serves a directory over HTTPS for the tests: the release mirror.

usage: https_server.py DIR CERT KEY [PORT]   (prints the port it listens on, then serves until killed)
"""
import functools, http.server, ssl, sys

directory, cert, key = sys.argv[1:4]
port = int(sys.argv[4]) if len(sys.argv) > 4 else 0


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=directory))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
