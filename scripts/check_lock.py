"""Fail when a lock no longer matches setup.cfg (CI runs this; no network, no resolver).

Every requirement of setup.cfg (install_requires plus the given extras, markers evaluated
for this interpreter) must be pinned in the lock at a version its range allows, and every
constraint of constraints.txt must hold. A new dependency, a tightened range or a dropped
pin therefore fails here until `bash scripts/lock.sh` is re-run.
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


def pins(lock: Path) -> dict[str, str]:
    out = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = PIN.match(line)
        if m:
            out[canonicalize_name(m[1])] = m[2]
    return out


def declared(extras: list[str], root: Path = ROOT) -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg", encoding="utf-8")
    lines = cfg.get("options", "install_requires").splitlines()
    for extra in extras:
        lines += cfg.get("options.extras_require", extra).splitlines()
    constraints = (root / "constraints.txt").read_text(encoding="utf-8").splitlines()
    reqs = [ln.split("#", 1)[0].strip() for ln in lines + constraints]
    return [Requirement(r) for r in reqs if r]


def problems(lock: Path, extras: list[str], root: Path = ROOT) -> list[str]:
    locked = pins(lock)
    out = []
    for req in declared(extras, root):
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        version = locked.get(canonicalize_name(req.name))
        if version is None:
            out.append(f"{req.name}: required by setup.cfg ({req}) but not in {lock.name}")
        elif not req.specifier.contains(version, prereleases=True):
            out.append(f"{req.name}=={version} in {lock.name} does not satisfy setup.cfg's {req}")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("lock", type=Path)
    p.add_argument("--extra", action="append", default=[])
    args = p.parse_args()
    found = problems(args.lock, args.extra)
    for line in found:
        print(f"lock out of date: {line}", file=sys.stderr)
    if found:
        print("refresh it: bash scripts/lock.sh", file=sys.stderr)
        return 1
    print(f"{args.lock}: {len(pins(args.lock))} pins, consistent with setup.cfg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
