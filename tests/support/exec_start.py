"""Prints the ExecStart= argv of a systemd unit, one word per line (for shell scripts that start a
unit's command by hand, as the demo does without systemd as init)."""
import shlex, sys

text = open(sys.argv[1]).read().replace("\\\n", " ")
for line in text.splitlines():
    if line.startswith("ExecStart="):
        for word in shlex.split(line[len("ExecStart="):]):
            print(word.replace("%%", "%").replace("$$", "$"))
        break
