#!/bin/sh
# Prints the Debian mirror this host's apt uses (debootstrap then fetches from the same place, which
# may be a local or proxied mirror); deb.debian.org when none is configured.
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -r "$f" ] || continue
  url=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; exit } }' "$f")
  case "$url" in *security*|"") ;; *) echo "${url%/}"; exit 0 ;; esac
done
for f in /etc/apt/sources.list.d/*.sources; do
  [ -r "$f" ] || continue
  url=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; exit } }' "$f")
  case "$url" in *security*|"") ;; *) echo "${url%/}"; exit 0 ;; esac
done
echo http://deb.debian.org/debian
