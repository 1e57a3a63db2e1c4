"""Watches every member's /health over TLS every INTERVAL seconds, asking all members at once,
and appends one line per round to OUT:
`<unix time> <members down> <down endpoints,...> [<endpoint>: <why> (<ms> ms); ...]`.

A member is down for a round when it does not answer healthy, and again not when asked once more
at once. A single failed answer that the second one contradicts is a blip, not a member down: it is
what a request in flight gets when the leadership moves (`leader changed`, or no answer within
etcd's 1 s while a new leader is elected). Blips are written too (`blip <endpoint>: <why>`), and
counted apart.

Prints `watching` once the first round is written; runs until killed. HEALTH_TIMEOUT (seconds,
default 1) bounds each request.

usage: health_watch.py OUT INTERVAL CA CERT KEY URL...
"""
import json, os, ssl, sys, time, urllib.error, urllib.request
from concurrent.futures import ThreadPoolExecutor

out, interval, ca, cert, key, *urls = sys.argv[1:]
interval = float(interval)
timeout = float(os.environ.get("HEALTH_TIMEOUT", "1"))
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                     urllib.request.ProxyHandler({}))


def health(url):
    """None when healthy, else why not (etcd's own reason, or the error)."""
    start = time.time()
    try:
        with opener.open(url.rstrip("/") + "/health", timeout=timeout) as r:
            body = json.load(r)
            if body.get("health") in ("true", True):
                return None
            why = body.get("reason") or json.dumps(body)
    except urllib.error.HTTPError as e:
        # etcd answers an unhealthy /health with 503 and its reason in the body.
        try:
            why = f"{e.code}: {e.read().decode(errors='replace').strip()}"
        except Exception:
            why = f"{e.code}"
    except Exception as e:
        why = f"{type(e).__name__}: {e}"
    return f"{why} ({(time.time() - start) * 1000:.0f} ms)"


def member(url):
    """(down: why or None, blip: why or None)."""
    first = health(url)
    if first is None:
        return None, None
    again = health(url)
    return (f"{first}, again: {again}", None) if again else (None, first)


announced = False
with open(out, "a") as f, ThreadPoolExecutor(len(urls)) as pool:
    while True:
        start = time.time()
        answers = list(zip(urls, pool.map(member, urls)))
        down = [(u, d) for u, (d, _) in answers if d]
        blips = [(u, b) for u, (_, b) in answers if b]
        parts = [f"{u}: {why}" for u, why in down] + [f"blip {u}: {why}" for u, why in blips]
        line = f"{start:.3f} {len(down)} {','.join(u for u, _ in down)} {'; '.join(parts)}"
        f.write(line.rstrip(" ") + "\n")
        f.flush()
        if not announced:
            print("watching", flush=True)
            announced = True
        time.sleep(max(0.0, interval - (time.time() - start)))
