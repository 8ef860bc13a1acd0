"""Fail when a lock no longer matches setup.cfg, or no longer resolves (CI runs both).

Static (no network): every requirement of setup.cfg (install_requires plus the given extras,
markers evaluated for this interpreter) must be pinned in the lock at a version its range
allows, and every constraint of the given constraint files (-c) must hold. A new dependency, a
tightened range or a dropped pin therefore fails here until `bash scripts/lock.sh PROFILE` is
re-run.

--resolved FILE compares the lock with a fresh resolution of the same inputs (made by
`bash scripts/lock.sh PROFILE --check`, which prefers the lock's pins): the same packages at the
same versions, and every hash the lock records still among those the index offers. New files
for a pinned version (a wheel added later) are reported, not failed: the lock still installs.
"""

from __future__ import annotations

import argparse
import configparser
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")
HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


def pins(lock: Path) -> dict[str, str]:
    out = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = PIN.match(line)
        if m:
            out[canonicalize_name(m[1])] = m[2]
    return out


def hashes(lock: Path) -> dict[str, set[str]]:
    """The recorded hashes of each pinned package."""
    out: dict[str, set[str]] = {}
    current = None
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = PIN.match(line)
        if m:
            current = out.setdefault(canonicalize_name(m[1]), set())
        elif not line.startswith((" ", "\t")):
            current = None
        if current is not None:
            current.update(HASH.findall(line))
    return out


def declared(
    extras: list[str], constraints: list[str] | tuple[str, ...] = (), root: Path = ROOT
) -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg", encoding="utf-8")
    lines = cfg.get("options", "install_requires").splitlines()
    for extra in extras:
        lines += cfg.get("options.extras_require", extra).splitlines()
    for name in constraints:
        lines += (root / name).read_text(encoding="utf-8").splitlines()
    reqs = [ln.split("#", 1)[0].strip() for ln in lines]
    return [Requirement(r) for r in reqs if r]


def problems(
    lock: Path,
    extras: list[str],
    constraints: list[str] | tuple[str, ...] = (),
    root: Path = ROOT,
) -> list[str]:
    locked = pins(lock)
    out = []
    for req in declared(extras, constraints, root):
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        version = locked.get(canonicalize_name(req.name))
        if version is None:
            out.append(f"{req.name}: required by setup.cfg ({req}) but not in {lock.name}")
        elif not req.specifier.contains(version, prereleases=True):
            out.append(f"{req.name}=={version} in {lock.name} does not satisfy setup.cfg's {req}")
    return out


def drift(lock: Path, resolved: Path) -> tuple[list[str], list[str]]:
    """(problems, notes) of the lock against a fresh resolution that preferred its pins."""
    old, new = pins(lock), pins(resolved)
    old_h, new_h = hashes(lock), hashes(resolved)
    out, notes = [], []
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            out.append(f"{name}=={old[name]} is pinned but no longer part of the resolution")
        elif name not in old:
            out.append(f"{name}=={new[name]} is now required but not pinned")
        elif old[name] != new[name]:
            out.append(f"{name}=={old[name]} no longer resolves: the index now gives {new[name]}")
        else:
            gone = old_h.get(name, set()) - new_h.get(name, set())
            added = new_h.get(name, set()) - old_h.get(name, set())
            if gone:
                out.append(f"{name}=={old[name]}: {len(gone)} recorded hash(es) no longer offered")
            if added:
                notes.append(f"{name}=={old[name]}: {len(added)} file(s) added since the lock")
    return out, notes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("lock", type=Path)
    p.add_argument("--extra", action="append", default=[])
    p.add_argument("-c", "--constraint", action="append", default=[], help="relative to the repo")
    p.add_argument("--resolved", type=Path, help="a fresh resolution to compare the lock with")
    args = p.parse_args()
    profile = args.lock.stem
    if args.resolved is not None:
        found, notes = drift(args.lock, args.resolved)
        for line in notes:
            print(f"note: {line}")
        for line in found:
            print(f"lock does not resolve as recorded: {line}", file=sys.stderr)
        if found:
            print(f"refresh it: bash scripts/lock.sh {profile}", file=sys.stderr)
            return 1
        n = sum(len(h) for h in hashes(args.lock).values())
        print(f"{args.lock}: {len(pins(args.lock))} pins and {n} hashes resolve as recorded")
        return 0
    found = problems(args.lock, args.extra, args.constraint)
    for line in found:
        print(f"lock out of date: {line}", file=sys.stderr)
    if found:
        print(f"refresh it: bash scripts/lock.sh {profile}", file=sys.stderr)
        return 1
    print(f"{args.lock}: {len(pins(args.lock))} pins, consistent with setup.cfg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
