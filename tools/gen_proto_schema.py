"""Build ``lks/kube/data/protobuf.json``: the field tables ``lks.kube.protobuf`` decodes with.

kubectl sends built-in objects as Kubernetes protobuf. Decoding that needs, per message, the
field numbers and types (from upstream's ``generated.proto`` files) and, to produce the JSON a
JSON client would have sent, each field's JSON name and Go shape: pointer or not, ``omitempty``,
``omitzero``, inlined embedded struct (from the struct tags of the Go types beside each proto
file, e.g. ``VolumeSource `json:"" protobuf:"bytes,2,opt,name=volumeSource"```). This script reads
both with simple line parsers and writes only those facts, compactly; the sources are not kept.

Sources are upstream repositories (a bare git directory or a checkout), each with the revisions
to read, newest first. A message is taken from the newest revision that has it, so types removed
upstream (old beta versions an older cluster version still serves) are kept::

    python tools/gen_proto_schema.py \\
        k8s.io/api=/work/.mirror/kubernetes+api/repo@HEAD,release-1.36,release-1.35,release-1.34 \\
        k8s.io/apimachinery=/work/.mirror/kubernetes+apimachinery/repo@HEAD \\
        k8s.io/apiextensions-apiserver=/work/.mirror/kubernetes+apiextensions-apiserver/repo@HEAD \\
        k8s.io/kube-aggregator=/work/.mirror/kubernetes+kube-aggregator/repo@HEAD

Output layout (``messages`` entries keep the proto declaration order, which is the Go struct
order and so the order Go's encoding/json writes keys in)::

    {"groupVersions": {"apps/v1": "k8s.io.api.apps.v1", ...},
     "wrappers": ["k8s.io.apimachinery.pkg.apis.meta.v1.Verbs", ...],
     "messages": {"k8s.io.api.core.v1.ConfigMap": {"1": [jsonName, kind, type, repeated, flags], ...}}}

``kind`` is a proto scalar type, ``message`` (``type`` = full message name) or ``map`` (``type`` =
[key type, value type]); ``flags`` holds ``p`` (Go pointer), ``o`` (omitempty), ``z`` (omitzero),
``i`` (embedded struct inlined into its parent's JSON), ``g`` (no Go field found: guessed).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

SCALARS = {"double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
           "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes"}
# test fixtures of apimachinery, not API types
SKIP_DIRS = ("pkg/apis/testapigroup/",)

_FIELD = re.compile(r"^(optional|repeated|required)\s+(\S+)\s+(\w+)\s*=\s*(\d+)\s*(?:\[[^\]]*\])?\s*;")
_MAP = re.compile(r"^map\s*<\s*(\w+)\s*,\s*(\S+)\s*>\s+(\w+)\s*=\s*(\d+)\s*(?:\[[^\]]*\])?\s*;")
_GO_STRUCT = re.compile(r"^type\s+(\w+)\s+struct\s*{\s*$")
_GO_FIELD = re.compile(r"^\s*(?:(\w+)\s+)?([^\s`]+)\s+`([^`]*)`\s*(?://.*)?$")
_GO_TAG = re.compile(r'(\w+):"([^"]*)"')
_GO_DEFINED = re.compile(r"^type\s+(\w+)\s+(?:\w+\.)?(\w+)\s*$")  # type MatchCondition v1.MatchCondition


class Source:
    """One upstream repository at one revision: a bare git directory or a plain checkout."""

    def __init__(self, path: Path, rev: str | None):
        self.path, self.rev = path, rev
        self.git = (path / "objects").is_dir() or (path / ".git").exists()
        self.commit = self._git("rev-parse", rev or "HEAD").strip() if self.git else None

    def _git(self, *args: str) -> str:
        gitdir = self.path / ".git" if (self.path / ".git").exists() else self.path
        return subprocess.run(["git", "--git-dir", str(gitdir), *args], check=True,
                              capture_output=True, text=True).stdout

    def files(self) -> list[str]:
        if self.git:
            return self._git("ls-tree", "-r", "--name-only", self.commit).splitlines()
        return [str(p.relative_to(self.path)) for p in self.path.rglob("*") if p.is_file()]

    def read(self, name: str) -> str:
        if self.git:
            return self._git("show", f"{self.commit}:{name}")
        return (self.path / name).read_text()


def parse_proto(text: str) -> tuple[str, dict[str, list], set[str]]:
    """(package, {message name (nested: A.B): [(number, name, kind, type, repeated)]}, wrappers).

    A wrapper is a message marked ``+protobuf.nullable=true``: a Go named slice type (``type
    ExtraValue []string``) that protobuf wraps as ``{repeated items = 1}``; its JSON is the array.
    """
    package, stack, messages, wrappers, comments = "", [], {}, set(), []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("//"):
            comments.append(line)
            continue
        if not line or line.startswith(("/*", "*")):
            continue
        if line.startswith("package "):
            package = line.split()[1].rstrip(";")
        elif m := re.match(r"^message\s+(\w+)\s*{\s*(})?", line):
            name = ".".join([*stack, m[1]])
            messages[name] = []
            if any(c.startswith("// +protobuf.nullable=true") for c in comments):
                wrappers.add(name)
            if not m[2]:
                stack.append(m[1])
        elif line.startswith("}"):
            if stack:
                stack.pop()
        elif m := _MAP.match(line):
            messages[".".join(stack)].append((int(m[4]), m[3], "map", (m[1], m[2]), False))
        elif m := _FIELD.match(line):
            messages[".".join(stack)].append((int(m[4]), m[3], "message", m[2], m[1] == "repeated"))
        elif line.startswith(("enum ", "oneof ")):
            raise SystemExit(f"unsupported proto construct: {line}")
        comments = []
    return package, messages, wrappers


def parse_go(text: str, defined: dict[str, str]) -> dict[str, dict[int, tuple[str, str]]]:
    """{struct name: {proto field number: (json name, flags)}} from the struct tags of Go source.

    Types defined from another package's struct (``type List metav1.List``) go to ``defined``
    (name -> the other struct's name): they share its fields and tags.
    """
    out: dict[str, dict[int, tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        if current is None:
            if m := _GO_STRUCT.match(line):
                current = out.setdefault(m[1], {})
            elif m := _GO_DEFINED.match(line):
                defined[m[1]] = m[2]
            continue
        if line.startswith("}"):
            current = None
            continue
        if line.lstrip().startswith("//") or "protobuf:" not in line:
            continue
        m = _GO_FIELD.match(line)
        if not m:
            continue
        go_name, go_type, tags = m[1], m[2], dict(_GO_TAG.findall(m[3]))
        pb = tags.get("protobuf", "-").split(",")
        if len(pb) < 2 or not pb[1].isdigit():
            continue
        flags = "p" if go_type.startswith("*") else ""
        if "json" in tags:
            jname, *opts = tags["json"].split(",")
            flags += ("o" if "omitempty" in opts else "") + ("z" if "omitzero" in opts else "")
            if go_name is None and jname in ("", "inline") or "inline" in opts:
                jname, flags = "", flags + "i"
        else:  # encoding/json's default: the Go field name
            jname = go_name or go_type.lstrip("*").rsplit(".", 1)[-1]
        current[int(pb[1])] = (jname, flags)
    return out


def group_name(source: Source, directory: str, names: set[str]) -> str | None:
    """The API group of a Go package: ``+groupName=`` in doc.go, else ``GroupName = "..."``."""
    for fname, pattern in (("doc.go", r"^//\s*\+groupName=(\S*)\s*$"),
                           ("register.go", r'^\s*(?:const\s+)?GroupName\s*=\s*"([^"]*)"')):
        path = f"{directory}/{fname}"
        if path in names:
            if m := re.search(pattern, source.read(path), re.M):
                return m[1]
    return None


def collect(source: Source, prefix: str, messages: dict, wrappers: set, gvs: dict, aliases: dict) -> int:
    """Add the messages of one source not already known (newer revisions come first)."""
    names = source.files()
    names_set = set(names)
    added = 0
    for proto in sorted(n for n in names if n.endswith("/generated.proto")):
        directory = proto.rsplit("/", 1)[0]
        if any(directory.startswith(s.rstrip("/")) for s in SKIP_DIRS):
            continue
        package, msgs, wraps = parse_proto(source.read(proto))
        go: dict[str, dict[int, tuple[str, str]]] = {}
        defined: dict[str, str] = {}
        for n in names:
            if (n.rsplit("/", 1)[0] == directory and n.endswith(".go") and not n.endswith("_test.go")
                    and not n.endswith(".pb.go") and "zz_generated" not in n):
                for struct, fields in parse_go(source.read(n), defined).items():
                    go.setdefault(struct, {}).update(fields)
        group = group_name(source, directory, names_set)
        if group is not None:
            version = directory.rsplit("/", 1)[-1]
            gvs.setdefault(f"{group}/{version}" if group else version, package)
        local = set(msgs)
        for name, fields in msgs.items():
            full = f"{package}.{name}"
            if full in messages:
                continue
            table = {}
            gofields = go.get(name.rsplit(".", 1)[-1], {})
            for number, pname, kind, ptype, repeated in fields:
                if kind == "map":
                    ptype = [ptype[0], resolve(ptype[1], package, name, local)]
                else:
                    ptype = resolve(ptype, package, name, local)
                    kind = ptype if ptype in SCALARS else "message"
                jname, flags = gofields.get(number, (pname, "og"))
                table[str(number)] = [jname, kind, ptype, int(repeated), flags]
            messages[full] = table
            if name in defined and name not in go:
                aliases[full] = defined[name]
            added += 1
        wrappers.update(f"{package}.{w}" for w in wraps)
    print(f"{prefix}@{source.rev or 'tree'} ({source.commit or source.path}): {added} messages",
          file=sys.stderr)
    return added


def borrow_tags(messages: dict, aliases: dict[str, str]) -> None:
    """Give fields of a defined type (``type List metav1.List``) the tags of the struct it copies."""
    for full, target in aliases.items():
        for other, table in messages.items():
            if other == full or not other.endswith("." + target):
                continue
            own = messages[full]
            if own.keys() == table.keys() and all(table[n][1:4] == own[n][1:4] and "g" not in table[n][4]
                                                  for n in own):
                for n, f in own.items():
                    f[0], f[4] = table[n][0], table[n][4]
                break


def resolve(ptype: str, package: str, scope: str, local: set[str]) -> str:
    """A proto type reference as a full name (scalars unchanged)."""
    if ptype in SCALARS:
        return ptype
    if ptype.startswith("."):
        return ptype[1:]
    parts = scope.split(".")
    for i in range(len(parts), -1, -1):  # innermost scope first, as protoc resolves
        candidate = ".".join([*parts[:i], ptype])
        if candidate in local:
            return f"{package}.{candidate}"
    return f"{package}.{ptype}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", nargs="+", help="MODULE=PATH[@REV,REV,...] (newest revision first)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "lks/kube/data/protobuf.json"))
    args = ap.parse_args(argv)
    messages: dict = {}
    wrappers: set = set()
    gvs: dict = {}
    about = {}
    aliases: dict[str, str] = {}
    for spec in args.sources:
        module, _, rest = spec.partition("=")
        path, _, revs = rest.partition("@")
        used = []
        for rev in (revs.split(",") if revs else [None]):
            src = Source(Path(path), rev)
            collect(src, module, messages, wrappers, gvs, aliases)
            used.append(f"{rev}={src.commit}" if src.commit else "tree")
        about[module] = used
    borrow_tags(messages, aliases)
    missing = [k for k, m in messages.items() for f in m.values()
               if f[1] == "message" and f[2] not in messages]
    missing += [k for k, m in messages.items() for f in m.values()
                if f[1] == "map" and f[2][1] not in SCALARS and f[2][1] not in messages]
    if missing:
        raise SystemExit(f"unresolved message types in: {sorted(set(missing))[:10]}")
    out = {"about": "generated by tools/gen_proto_schema.py from upstream generated.proto and Go "
                    "struct tags; do not edit",
           "sources": about, "groupVersions": dict(sorted(gvs.items())),
           "wrappers": sorted(wrappers), "messages": messages}
    Path(args.out).write_text(json.dumps(out, separators=(",", ":")) + "\n")
    guessed = sum(1 for m in messages.values() for f in m.values() if "g" in f[4])
    print(f"wrote {args.out}: {len(messages)} messages, {len(gvs)} group versions, "
          f"{guessed} fields without a Go tag", file=sys.stderr)


if __name__ == "__main__":
    main()
