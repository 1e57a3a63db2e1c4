"""A stand-in etcd member for tests: HTTPS with a client-certificate check, answering each path
(GET or POST, the request body ignored) with what ANSWERS (a JSON file) says for it:

    {"/health": {"status": 503, "body": {"health": "false", "reason": "..."}},
     "/v3/cluster/member/list": {"body": {"members": [...]}},
     "/metrics": {"text": "process_start_time_seconds 1.7e9\\n"}}

`body` is sent as JSON, `text` as it is; `status` defaults to 200. A path it does not know gets
404. ANSWERS is read again on every request, so a test can change the member's answers while it
runs. Every request's path is appended to ANSWERS + ".log".

usage: member_api.py CA CERT KEY ANSWERS HOST PORT   (prints "serving" once it listens)
"""
import http.server, json, ssl, sys

ca, cert, key, answers, host, port = sys.argv[1:7]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        path = self.path.split("?")[0]
        with open(answers + ".log", "a") as f:
            f.write(path + "\n")
        a = json.load(open(answers)).get(path)
        if a is None:
            data, status, kind = b"404 page not found\n", 404, "text/plain"
        elif "text" in a:
            data, status, kind = a["text"].encode(), a.get("status", 200), "text/plain"
        else:
            data, status, kind = json.dumps(a.get("body", {})).encode(), a.get("status", 200), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = answer
    do_POST = answer


httpd = http.server.ThreadingHTTPServer((host, int(port)), Handler)
httpd.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print("serving", flush=True)
httpd.serve_forever()
