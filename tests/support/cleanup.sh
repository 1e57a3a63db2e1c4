#!/usr/bin/env bash
# Removes what an interrupted test run left: network namespaces named ebt-<tag>-<pid>-... (and the
# processes inside them), scratch roots /tmp/ebt-*-<pid>-*, and tmpfs mounts /tmp/ebt-tmpfs-<pid>-*,
# but only those whose test process <pid> is gone: a run still going on is left alone. The demo's
# namespaces (ebt-demo-*) are left to `make demo-clean`.
set -u
gone() { [ -n "$1" ] && ! kill -0 "$1" 2>/dev/null; }
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^ebt-' | grep -v '^ebt-demo'); do
  pid=$(echo "$ns" | cut -d- -f3)
  gone "$pid" || continue
  for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
done
for m in $(findmnt -rn -o TARGET 2>/dev/null | grep '^/tmp/ebt-tmpfs-'); do
  pid=$(basename "$m" | cut -d- -f3)
  gone "$pid" && umount -l "$m" 2>/dev/null
done
for d in /tmp/ebt-root-* /tmp/ebt-node-* /tmp/ebt-tmpfs-*; do
  [ -e "$d" ] || continue
  pid=$(basename "$d" | cut -d- -f3)
  gone "$pid" && ! findmnt -rn "$d" >/dev/null 2>&1 && rm -rf "$d"
done
exit 0
