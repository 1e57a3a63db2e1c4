"""An HTTPS server that answers every GET with a 302 to the same path under TARGET (for the test
that a redirect from https to http is refused).

usage: redirect_server.py TARGET CERT KEY   (prints its port, serves on 127.0.0.1 until killed)
"""
import http.server, ssl, sys

target, cert, key = sys.argv[1:4]


class Redirect(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", target.rstrip("/") + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()


httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
