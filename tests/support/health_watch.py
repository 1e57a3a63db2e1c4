"""Watches every member's /health over TLS every INTERVAL seconds, asking all members at once,
and appends one line per round to OUT: `<unix time> <unhealthy count> <unhealthy endpoints,...>`.
Prints `watching` once the first round is written; runs until killed. HEALTH_TIMEOUT (seconds,
default 1) bounds each request.

usage: health_watch.py OUT INTERVAL CA CERT KEY URL...
"""
import json, os, ssl, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

out, interval, ca, cert, key, *urls = sys.argv[1:]
interval = float(interval)
timeout = float(os.environ.get("HEALTH_TIMEOUT", "1"))
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                     urllib.request.ProxyHandler({}))


def healthy(url):
    try:
        with opener.open(url.rstrip("/") + "/health", timeout=timeout) as r:
            return json.load(r).get("health") in ("true", True)
    except Exception:
        return False


announced = False
with open(out, "a") as f, ThreadPoolExecutor(len(urls)) as pool:
    while True:
        start = time.time()
        bad = [u for u, ok in zip(urls, pool.map(healthy, urls)) if not ok]
        f.write(f"{start:.3f} {len(bad)} {','.join(bad)}\n")
        f.flush()
        if not announced:
            print("watching", flush=True)
            announced = True
        time.sleep(max(0.0, interval - (time.time() - start)))
