#!/usr/bin/env bash
# Removes what an interrupted test run left: every network namespace named ebt-* (tests) and the
# processes inside it. The demo's namespaces (ebt-demo-*) are left to `make demo-clean`.
set -u
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^ebt-' | grep -v '^ebt-demo'); do
  for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  ip netns del "$ns" 2>/dev/null
done
rm -rf /tmp/ebt-root-* 2>/dev/null
exit 0
