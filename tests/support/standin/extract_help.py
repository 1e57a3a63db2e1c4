"""Renders etcd's `etcd --help` text from server/etcdmain/help.go of a tag (usageline + flagsline),
resolving the few Go expressions in it to the values that tag's etcd prints."""
import re, subprocess, sys
tag, minor = sys.argv[1], sys.argv[2]
src = subprocess.run(["git", "show", f"{tag}:server/etcdmain/help.go"], capture_output=True, text=True, check=True).stdout
feats = subprocess.run(["git", "show", f"{tag}:server/features/etcd_features.go"], capture_output=True, text=True).stdout
gates = []
for name, default, stage in re.findall(r"^\s+(\w+):\s+\{Default: (true|false), PreRelease: featuregate\.(\w+)", feats, re.M):
    gates.append(f"{name}=true|false ({stage.upper()} - default={default})")
gates.sort()
known = "\n    ".join(["AllAlpha=true|false (ALPHA - default=false)", "AllBeta=true|false (BETA - default=false)"] + gates)
values = {
    "strconv.Itoa(embed.DefaultMaxSnapshots)": "5",
    "strconv.Itoa(embed.DefaultMaxWALs)": "5",
    "rafthttp.DefaultConnReadTimeout.String()": "5s",
    "rafthttp.DefaultConnWriteTimeout.String()": "5s",
    "strconv.FormatBool(embed.DefaultStrictReconfigCheck)": "true",
    "string(cconfig.V2DeprDefault)": "write-only",
    'fmt.Sprintf("%d", bcrypt.DefaultCost)': "10",
    "strconv.FormatBool(embed.DefaultEnableV2)": "false",
    "string(cconfig.V2_DEPR_DEFAULT)": "not-yet",
    'fmt.Sprintf("%d", bcrypt.MinCost)': "4",
    'fmt.Sprintf("%d", bcrypt.MaxCost)': "31",
    '"\\n    " + strings.Join(features.NewDefaultServerFeatureGate("", nil).KnownFeatures(), "\\n    ")': "\n    " + known,
}
def block(name):
    m = re.search(name + r" = `(.*?)`\n(\s*\)|\s*flagsline|$)", src, re.S)
    body = src[src.index(name + " = `") + len(name) + 4:]
    out, i = "", 0
    while True:
        j = body.index("`", i)
        out += body[i:j]
        rest = body[j + 1:]
        m = re.match(r"\s*\+\s*(.*?)\s*\+\s*`", rest, re.S)
        if not m:
            return out
        expr = m.group(1)
        if expr not in values:
            sys.exit(f"unknown expression in {tag}: {expr}")
        out += values[expr]
        i = j + 1 + m.end()
print(block("usageline") + block("flagsline"), end="")
