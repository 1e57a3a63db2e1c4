#!/usr/bin/env python3
"""The crate's import graph, checked: `make lint` runs this.

Reads every `crate::a::b` and `super::` path in src/ (tests inside `#[cfg(test)]` included: a test
that imports upward is a dependency too), maps each file to its module, and checks
  1. no import cycle between top-level modules, nor between the files of one module;
  2. each top-level module imports only modules of lower layers (see LAYERS, as in src/lib.rs);
  3. no function outside `#[cfg(test)]` code is longer than MAX_FN_LINES;
  4. no source file is longer than MAX_FILE_LINES before its `#[cfg(test)]` (files of tests alone,
     `*tests.rs`, are exempt).
`--graph` prints the module graph (one `a -> b` per line); `--functions` the longest functions.
Exit 1 with a line per violation.
"""
import os, re, sys
from collections import defaultdict

LAYERS = [
    ["util"],
    ["facts", "state"],
    ["seed"],
    ["release", "render", "etcd", "host", "cert"],
    ["install", "preflight"],
    ["cluster"],
    ["day2", "pki"],
    ["status"],
    ["cli"],
    ["commands"],
]
MAX_FN_LINES = 80
MAX_FILE_LINES = 400

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "..", "..", "src")
layer_of = {m: i for i, ms in enumerate(LAYERS) for m in ms}


def module_of(path):
    """src/seed/resolve/mod.rs -> ['seed', 'resolve']"""
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib"):
        rel = rel[:-1]
    return rel


def files():
    for d, _, fs in os.walk(src):
        for f in sorted(fs):
            if f.endswith(".rs") and f != "main.rs":
                yield os.path.join(d, f)


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def imports(path, text):
    """Module paths (lists) this file refers to."""
    me = module_of(path)
    is_mod = os.path.basename(path) == "mod.rs"
    out = set()
    # `use crate::{a, b::c}` groups: expand one level.
    for m in re.finditer(r"crate::\{([^}]*)\}", text):
        for part in m.group(1).split(","):
            part = part.strip()
            if part:
                out.add(tuple(part.split("::")[:2]))
    for m in re.finditer(r"crate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", text):
        out.add(tuple(m.group(1).split("::")[:2]))
    for m in re.finditer(r"\b((?:super::)+)((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", text):
        ups = m.group(1).count("super::")
        base = me if is_mod else me[:-1]
        base = base[: len(base) - (ups - 1)] if ups > 1 else base
        out.add(tuple((base + m.group(2).split("::"))[:2]))
    # `crate::failpoint!` is the macro `util::failpoint` exports at the crate root.
    out = {("util", "failpoint") if t[0] == "failpoint" else t for t in out}
    return {t for t in out if t and t[0] != me[0] or (len(t) > 1 and t[:2] != tuple(me[:2]))}


def find_cycles(edges):
    """Strongly connected components with more than one node."""
    index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]
    nodes = set(edges) | {b for bs in edges.values() for b in bs}

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return comps


def functions(path, text):
    """(name, first line, lines) of every fn outside #[cfg(test)] modules."""
    lines = text.split("\n")
    out, i, skip_depth, depth = [], 0, None, 0
    test_next = False
    for no, line in enumerate(lines, 1):
        s = line.strip()
        if s.startswith("#[cfg(test)]"):
            test_next = True
        m = re.match(r"(pub(\([^)]*\))? )?(const )?(unsafe )?fn ([a-z_0-9]+)", s)
        if m and skip_depth is None and not test_next:
            # find the body's end by brace depth from here
            d, started = 0, False
            for j in range(no - 1, len(lines)):
                code = strip_comments(lines[j])
                for ch in code:
                    if ch == "{":
                        d += 1
                        started = True
                    elif ch == "}":
                        d -= 1
                if started and d == 0:
                    out.append((m.group(5), no, j - no + 2))
                    break
                if not started and code.rstrip().endswith(";"):
                    break
        if test_next and ("mod " in s or s.startswith("fn") or s.startswith("pub fn")):
            test_next = False
            if "mod " in s and s.endswith(";"):
                continue
            skip_depth = depth
        depth += strip_comments(line).count("{") - strip_comments(line).count("}")
        if skip_depth is not None and depth <= skip_depth and "}" in line:
            skip_depth = None
    return out


def main():
    top_edges, sub_edges, errors, fns = defaultdict(set), defaultdict(set), [], []
    for path in files():
        text = strip_comments(open(path).read())
        me = module_of(path)
        for t in imports(path, text):
            if t[0] == me[0]:
                if len(me) > 1 and len(t) > 1 and t[1] != me[1]:
                    sub_edges[me[0] + "::" + me[1]].add(t[0] + "::" + t[1])
                continue
            top_edges[me[0]].add(t[0])
            a, b = layer_of.get(me[0]), layer_of.get(t[0])
            if a is None or b is None:
                errors.append(f"{path}: module {me[0] if a is None else t[0]} has no layer in LAYERS")
            elif b >= a:
                errors.append(
                    f"{os.path.relpath(path, src)}: {me[0]} (layer {a + 1}) imports {t[0]} (layer {b + 1}); "
                    "layers only point down"
                )
        raw = open(path).read()
        if not os.path.basename(path).endswith("tests.rs"):
            body = raw.split("\n#[cfg(test)]", 1)[0]
            if body.count("\n") > MAX_FILE_LINES:
                errors.append(f"{os.path.relpath(path, src)} is {body.count(chr(10))} lines before its tests "
                              f"(more than {MAX_FILE_LINES}): split it")
        for name, line, n in functions(path, raw):
            fns.append((n, f"{os.path.relpath(path, src)}:{line} {name}"))
    for comp in find_cycles(top_edges) + find_cycles(sub_edges):
        errors.append("import cycle: " + " -> ".join(comp))
    fns.sort(reverse=True)
    for n, where in fns:
        if n > MAX_FN_LINES:
            errors.append(f"{where} is {n} lines (more than {MAX_FN_LINES})")
    if "--graph" in sys.argv:
        for a in sorted(top_edges):
            for b in sorted(top_edges[a]):
                print(f"{a} -> {b}")
    if "--functions" in sys.argv:
        for n, where in fns[:10]:
            print(f"{n:4} {where}")
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        sys.exit(1)
    print(f"layers: {sum(1 for _ in files())} files, no cycles, every import points down; "
          f"longest function {fns[0][0]} lines ({fns[0][1]})")


if __name__ == "__main__":
    main()
