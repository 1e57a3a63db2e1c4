"""Watches every member's /health over TLS every INTERVAL seconds, asking all members at once,
and appends one line per round to OUT:
`<unix time> <members down> <down endpoints,...> [<endpoint>: <why> (<ms> ms); ...]`.

A member is down for a round when it does not answer, or answers unhealthy, and does so again
when asked once more at once, unless it is electing a leader (below). What is not down is written
too, after the members down, and counted apart:
- `blip <endpoint>: <why>`: a failed answer that the next one contradicts. This is what a request
  in flight gets when the leadership moves (`leader changed`, or no answer within etcd's 1 s).
- `electing <endpoint>: <why>`: a member that answered unhealthy twice and whose own status
  (`/v3/maintenance/status`) then says it knows no leader. The member is up and voting; its
  cluster is between two leaders. Every restart of a leader costs one such stretch (the restart's
  leadership handover makes it one vote round; without it, an election timeout). With members
  down beside it, those are still counted down: an election does not hide a member that is gone.
  If the status names a leader again, /health is asked a third time: healthy then is a blip.

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
    """None when healthy, else (answered: etcd itself said unhealthy, why)."""
    start = time.time()
    answered = False
    try:
        with opener.open(url.rstrip("/") + "/health", timeout=timeout) as r:
            body = json.load(r)
            if body.get("health") in ("true", True):
                return None
            answered, why = True, body.get("reason") or json.dumps(body)
    except urllib.error.HTTPError as e:
        # etcd answers an unhealthy /health with 503 and (3.5 on) its reason in the body.
        answered = True
        try:
            why = f"{e.code}: {e.read().decode(errors='replace').strip()}"
        except Exception:
            why = f"{e.code}"
    except Exception as e:
        why = f"{type(e).__name__}: {e}"
    return answered, f"{why} ({(time.time() - start) * 1000:.0f} ms)"


def leader(url):
    """The leader's ID as this member knows it (0: none, an election is on); None if no answer."""
    try:
        req = urllib.request.Request(url.rstrip("/") + "/v3/maintenance/status", data=b"{}",
                                     method="POST", headers={"Content-Type": "application/json"})
        with opener.open(req, timeout=timeout) as r:
            # uint64 fields come as strings, and a zero one is left out.
            return int(json.load(r).get("leader", "0"))
    except Exception:
        return None


def member(url):
    """(what, why): what is None (healthy), "down", "electing" or "blip"."""
    first = health(url)
    if first is None:
        return None, None
    again = health(url)
    if again is None:
        return "blip", first[1]
    why = f"{first[1]}, again: {again[1]}"
    if first[0] and again[0]:
        lead = leader(url)
        if lead == 0:
            return "electing", why
        if lead is not None and health(url) is None:
            return "blip", why
    return "down", why


announced = False
with open(out, "a") as f, ThreadPoolExecutor(len(urls)) as pool:
    while True:
        start = time.time()
        answers = list(zip(urls, pool.map(member, urls)))
        down = [(u, why) for u, (what, why) in answers if what == "down"]
        parts = [f"{u}: {why}" for u, why in down] + [
            f"{what} {u}: {why}" for u, (what, why) in answers if what in ("blip", "electing")]
        line = f"{start:.3f} {len(down)} {','.join(u for u, _ in down)} {'; '.join(parts)}"
        f.write(line.rstrip(" ") + "\n")
        f.flush()
        if not announced:
            print("watching", flush=True)
            announced = True
        time.sleep(max(0.0, interval - (time.time() - start)))
