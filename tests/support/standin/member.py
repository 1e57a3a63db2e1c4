"""The stand-in etcd server: a one-member cluster answering etcd's v3 JSON gateway over TLS as the
etcd version it stands in for would (run by the stand-in `etcd` binary, see standin.c).

usage: python3 -c <this> VERSION etcd-flags...   (STANDIN_HELP: the help text of that version)

Like etcd it refuses a flag its version does not define ("flag provided but not defined"), and
3.6 or later refuses to start on a v2 store holding custom data (the tests mark it with
`v2-custom-data` in a file under member/). It keeps the cluster version, a downgrade and its raft
index in DATA_DIR/member/standin.json, and logs every request to DATA_DIR/member/standin-requests.log as
"<unix time> <path> <downgrade action and version>".
"""
import ctypes, http.server, json, os, re, socket, ssl, sys, threading, time

# The process is etcd, as /proc/<pid>/comm says (what holds the client port).
ctypes.CDLL(None).prctl(15, b"etcd", 0, 0, 0)  # PR_SET_NAME

version, args = sys.argv[1], sys.argv[2:]
known = set(re.findall(r"^\s+--([a-z0-9.-]+)", os.environ.get("STANDIN_HELP", ""), re.M))
flags = {}
for a in args:
    if not a.startswith("-"):
        continue
    name, _, value = a.lstrip("-").partition("=")
    if name not in known:
        sys.stderr.write(f"flag provided but not defined: -{name}\n")
        sys.exit(2)
    flags[name] = value or "true"


def minor(v):
    return int(v.split(".")[1])


def cluster_minor(v):
    return ".".join(v.split(".")[:2])


data = flags.get("data-dir", "default.etcd")
member = os.path.join(data, "member")
state_path = os.path.join(member, "standin.json")
os.makedirs(os.path.join(member, "snap"), exist_ok=True)
os.makedirs(os.path.join(member, "wal"), exist_ok=True)
wal = os.path.join(member, "wal", "0000000000000000-0000000000000000.wal")
if not os.path.exists(wal):
    open(wal, "w").write("stand-in wal: membership entries only\n")


def custom_v2():
    for d, _, files in os.walk(member):
        for f in files:
            try:
                if b"v2-custom-data" in open(os.path.join(d, f), "rb").read():
                    return True
            except OSError:
                pass
    return False


state = json.load(open(state_path)) if os.path.exists(state_path) else {
    "cluster": cluster_minor(version), "downgrade": None, "raft_index": 1, "id": 0x8e9e05c52164694d}
mine = cluster_minor(version)
if minor(version) >= 6 and custom_v2():
    sys.stderr.write('{"level":"fatal","msg":"failed to start etcd","error":"detected disallowed custom '
                     'content in v2store for stage --v2-deprecation=write-only"}\n')
    sys.exit(1)
if state["downgrade"] and state["downgrade"] == mine:
    state["downgrade"] = None  # every member (this one) runs the target: etcd ends the downgrade
elif minor(version) < minor(state["cluster"] + ".0"):
    if state["downgrade"] != mine:
        sys.stderr.write(f'{{"level":"fatal","msg":"cluster cannot be downgraded (current version: {version} '
                         f'is lower than determined cluster version: {state["cluster"]})."}}\n')
        sys.exit(1)
elif not state["downgrade"]:
    state["cluster"] = mine  # one member: the cluster runs what it runs
state["raft_index"] += 1
started = time.time()
lock = threading.Lock()


def save():
    tmp = state_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.replace(tmp, state_path)


save()
name = flags.get("name", "default")
client_urls = [u for u in flags.get("listen-client-urls", "").split(",") if u]
peer = flags.get("initial-advertise-peer-urls", "https://127.0.0.1:2380")
advertised = flags.get("advertise-client-urls", ",".join(client_urls)).split(",")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body, kind="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.handle_path({})

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            body = {}
        self.handle_path(body)

    def handle_path(self, body):
        path = self.path.split("?")[0]
        with lock:
            extra = f" {body.get('action', 'VALIDATE')} {body.get('version', '')}" if path.endswith("downgrade") else ""
            with open(os.path.join(member, "standin-requests.log"), "a") as f:
                f.write(f"{time.time():.3f} {path}{extra}\n")
            self.answer(path, body)

    def header(self):
        return {"cluster_id": "1", "member_id": str(state["id"]), "revision": "1", "raft_term": "2"}

    def answer(self, path, body):
        cv = state["cluster"] + ".0"
        if path == "/health":
            return self.reply(200, {"health": "true", "reason": ""})
        if path == "/version":
            v = {"etcdserver": version, "etcdcluster": cv}
            if minor(version) >= 6:
                v["storage"] = cv
            return self.reply(200, v)
        if path == "/metrics":
            return self.reply(200, f"# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {started}\n".encode(), "text/plain")
        if path == "/v3/maintenance/status":
            st = {"header": self.header(), "version": version, "dbSize": "20480", "dbSizeInUse": "16384",
                  "leader": str(state["id"]), "raftIndex": str(state["raft_index"]), "raftTerm": "2",
                  "raftAppliedIndex": str(state["raft_index"]), "isLearner": False}
            if minor(version) >= 6:
                st["storageVersion"] = cv
                st["dbSizeQuota"] = "2147483648"
                st["downgradeInfo"] = {"enabled": bool(state["downgrade"]),
                                       "targetVersion": (state["downgrade"] + ".0") if state["downgrade"] else ""}
            return self.reply(200, st)
        if path == "/v3/cluster/member/list":
            return self.reply(200, {"header": self.header(), "members": [
                {"ID": str(state["id"]), "name": name, "peerURLs": peer.split(","), "clientURLs": advertised}]})
        if path == "/v3/kv/range":
            return self.reply(200, {"header": self.header()})
        if path == "/v3/maintenance/downgrade" and minor(version) >= 6:
            action, target = body.get("action", "VALIDATE"), body.get("version", "")
            if action == "CANCEL":
                state["downgrade"] = None
                save()
                return self.reply(200, {"header": self.header(), "version": cv})
            if action == "ENABLE" and state["downgrade"]:
                return self.reply(400, {"error": "etcdserver: cluster has a downgrade job in progress", "code": 9})
            if cluster_minor(target + ".0") != f"3.{minor(cv) - 1}":
                return self.reply(400, {"error": "etcdserver: invalid downgrade target version", "code": 9})
            if action == "ENABLE":
                state["downgrade"] = cluster_minor(target + ".0")
                state["cluster"] = state["downgrade"]
                save()
            return self.reply(200, {"header": self.header(), "version": cv})
        return self.reply(404, b"404 page not found\n", "text/plain")


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(flags["cert-file"], flags["key-file"])
if flags.get("client-cert-auth") == "true":
    ctx.load_verify_locations(flags["trusted-ca-file"])
    ctx.verify_mode = ssl.CERT_REQUIRED
servers = []
for u in client_urls:
    host, port = u.split("://", 1)[1].rsplit(":", 1)
    httpd = http.server.ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
    httpd.daemon_threads = True
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    servers.append(httpd)
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
notify = os.environ.get("NOTIFY_SOCKET")
if notify:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.sendto(b"READY=1", "\0" + notify[1:] if notify.startswith("@") else notify)
sys.stderr.write(f"stand-in etcd {version} serving {','.join(client_urls)} (cluster {state['cluster']})\n")
servers[0].serve_forever()
