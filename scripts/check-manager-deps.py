#!/usr/bin/env python3
"""Check the module graph of the manager's crates (manager/src, manager/core/src,
manager/network/src):

- no import cycle between modules of one crate (edges: `crate::a::b` paths,
  `super::` paths and paths through a child module the file declares);
- only the boxctl binary crate (manager/src) names
  clap, anyhow or a command-line type (the types cli.rs defines).

Usage: scripts/check-manager-deps.py [REPO]   (exit 1 and a list of faults on failure)
"""

import os
import re
import sys

CRATES = ["manager/src", "manager/core/src", "manager/network/src"]
CLI_TYPES = ["Cli", "Cmd", "ImageCmd", "NetworkCmd", "LimitArgs", "RunArgs",
             "FarmArgs", "ScaleArgs", "UpArgs", "DownArgs", "HealthArgs"]


def module_of(src, path):
    """`a::b` for src/a/b.rs or src/a/b/mod.rs; "" for the crate root."""
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return ""
    return "::".join(rel)


def strip(text):
    """Drop comments, string literals and `#[cfg(test)] mod tests { ... }`."""
    text = re.sub(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{.*", "", text,
                  flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def paths_in(text):
    """Every `a::b::c` path, `use x::{y, z::w}` groups expanded."""
    out = []
    for m in re.finditer(r"\b((?:\w+::)+)\{([^{}]*)\}", text):
        for item in m.group(2).split(","):
            item = item.strip().split(" as ")[0].strip()
            if item:
                out.append(m.group(1) + item)
    out += re.findall(r"\b(?:\w+::)+\w+", re.sub(r"\b(?:\w+::)+\{[^{}]*\}", "", text))
    return out


def resolve(path, here, modules, children):
    """The module `path` (as written in module `here`) points into, or None."""
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = [], parts[1:]
    elif parts[0] == "super":
        base = here.split("::")[:-1] if here else []
        rest = parts[1:]
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    elif parts[0] == "self":
        base, rest = (here.split("::") if here else []), parts[1:]
    elif parts[0] in children.get(here, set()):
        base, rest = (here.split("::") if here else []), parts
    else:
        return None
    best = "::".join(base)
    for i in range(len(rest)):
        cand = "::".join(base + rest[: i + 1])
        if cand in modules:
            best = cand
        else:
            break
    return best


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check_crate(repo, src):
    faults = []
    root = os.path.join(repo, src)
    if not os.path.isdir(root):
        return faults
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            if n.endswith(".rs"):
                p = os.path.join(d, n)
                files[module_of(root, p)] = (os.path.relpath(p, repo),
                                             strip(open(p, encoding="utf-8").read()))
    modules = set(files)
    children = {m: set(re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", t, re.M))
                for m, (_, t) in files.items()}
    graph = {m: set() for m in modules}
    for m, (name, text) in files.items():
        for p in paths_in(text):
            t = resolve(p, m, modules, children)
            if t is not None and t != m and t != "":
                graph[m].add(t)
        # Every module of the boxctl binary crate is front end (the library crates
        # cannot import it: the compiler keeps that direction).
        front = src == "manager/src"
        if not front:
            for word in ["clap", "anyhow"]:
                if re.search(r"\b%s::" % word, text):
                    faults.append("%s: library module names %s" % (name, word))
            if re.search(r"\bcrate::cli\b", text):
                faults.append("%s: library module imports crate::cli" % name)
            for ty in CLI_TYPES:
                if re.search(r"\b(?:cli|commands)::(?:\w+::)*%s\b" % ty, text):
                    faults.append("%s: library module names CLI type %s" % (name, ty))
    for comp in cycles(graph):
        faults.append("%s: import cycle between modules %s" % (src, ", ".join(comp)))
    return faults


def main():
    repo = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    faults = []
    for src in CRATES:
        faults += check_crate(repo, src)
    for f in faults:
        print("check-manager-deps: " + f)
    if faults:
        return 1
    print("check-manager-deps: no import cycle, no command-line type in a library module")
    return 0


if __name__ == "__main__":
    sys.exit(main())
