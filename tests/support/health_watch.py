"""Watches every member's /health over TLS every INTERVAL seconds, asking all members at once,
and appends one line per round to OUT:

    <unix time> <members down> <members healthy> <members> <ok|unavailable> [<what> <endpoint>: <why>; ...]

- A member is **down** for a round when it does not answer: neither the request nor one more
  asked at once gets an HTTP answer within HEALTH_TIMEOUT (seconds, default 1).
- A member that answers, but not healthy (no leader, an alarm, a failed read), is up and
  **unhealthy**; a failed answer that the second one contradicts is a **blip** and counts healthy
  (a request in flight when the leadership moves gets one).
- A round is **unavailable** when fewer than a quorum of the members (more than half) answer
  healthy: the cluster could not serve a write then, whatever the reason.

The details name every member not healthy, as `down`, `unhealthy` or `blip`. Prints `watching`
once the first round is written; runs until killed.

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
    """(answered, healthy, why)."""
    start = time.time()
    try:
        with opener.open(url.rstrip("/") + "/health", timeout=timeout) as r:
            body = json.load(r)
            if body.get("health") in ("true", True):
                return True, True, ""
            why = body.get("reason") or json.dumps(body)
            answered = True
    except urllib.error.HTTPError as e:
        # etcd answers an unhealthy /health with 503 and (3.5 on) its reason in the body.
        answered = True
        try:
            why = f"{e.code}: {e.read().decode(errors='replace').strip()}"
        except Exception:
            why = f"{e.code}"
    except Exception as e:
        answered, why = False, f"{type(e).__name__}: {e}"
    return answered, False, f"{why} ({(time.time() - start) * 1000:.0f} ms)"


def member(url):
    """(what, why): what is "healthy", "blip", "unhealthy" or "down"."""
    first = health(url)
    if first[1]:
        return "healthy", ""
    again = health(url)
    if again[1]:
        return "blip", first[2]
    why = f"{first[2]}, again: {again[2]}"
    return ("unhealthy" if first[0] or again[0] else "down"), why


quorum = len(urls) // 2 + 1
announced = False
with open(out, "a") as f, ThreadPoolExecutor(len(urls)) as pool:
    while True:
        start = time.time()
        answers = list(zip(urls, pool.map(member, urls)))
        down = sum(1 for _, (what, _) in answers if what == "down")
        healthy = sum(1 for _, (what, _) in answers if what in ("healthy", "blip"))
        state = "ok" if healthy >= quorum else "unavailable"
        parts = [f"{what} {u}: {why}" for u, (what, why) in answers if what != "healthy"]
        line = f"{start:.3f} {down} {healthy} {len(urls)} {state} {'; '.join(parts)}"
        f.write(line.rstrip(" ") + "\n")
        f.flush()
        if not announced:
            print("watching", flush=True)
            announced = True
        time.sleep(max(0.0, interval - (time.time() - start)))
