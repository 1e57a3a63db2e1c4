"""A client writing to the cluster at RATE puts a second while something happens to it (a rolling
upgrade, a defragmentation), through every member's client URL in turn, over TLS.

Each put writes key `writer/<seq>` = `<seq>` through the v3 JSON API (`/v3/kv/put`). It goes
first to URL number seq % len(URLs), and on any failure (no answer within 1 s, an error) at once
to the next, until one acknowledges it; then the next put waits for its slot. Appends to OUT:

    start <unix time>
    ack <seq> <unix time> <url>       one per acknowledged put
    fail <seq> <unix time> <url>: <why>

Prints `writing` once it has started; runs until killed. What was acknowledged must be in the
cluster afterwards (the test reads every `writer/` key back); the gaps between acknowledgements
say how long a client waited.

usage: writer.py OUT RATE CA CERT KEY URL...
"""
import base64, json, ssl, sys, time, urllib.request

out, rate, ca, cert, key, *urls = sys.argv[1:]
period = 1.0 / float(rate)
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                     urllib.request.ProxyHandler({}))


def b64(s):
    return base64.b64encode(s.encode()).decode()


def put(url, seq):
    body = json.dumps({"key": b64(f"writer/{seq:08d}"), "value": b64(str(seq))}).encode()
    req = urllib.request.Request(url.rstrip("/") + "/v3/kv/put", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with opener.open(req, timeout=1) as r:
        answer = json.load(r)
    # A put the gateway acknowledges carries the revision it was committed at.
    if "header" not in answer:
        raise RuntimeError(f"no header in {answer}")


with open(out, "a", buffering=1) as f:
    f.write(f"start {time.time():.3f}\n")
    print("writing", flush=True)
    seq = 0
    slot = time.time()
    while True:
        n = len(urls)
        k = 0
        while True:
            url = urls[(seq + k) % n]
            try:
                put(url, seq)
                f.write(f"ack {seq} {time.time():.3f} {url}\n")
                break
            except Exception as e:
                f.write(f"fail {seq} {time.time():.3f} {url}: {type(e).__name__}: {e}\n")
                k += 1
                if k % n == 0:
                    time.sleep(0.05)  # every member refused at once: not a busy loop
        seq += 1
        slot += period
        time.sleep(max(0.0, slot - time.time()))
        slot = max(slot, time.time() - period)
