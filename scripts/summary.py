#!/usr/bin/env python3
"""Combine cmocka (via meson's testlog.json) and pytest (junit xml) results
into one closing line: 'N passed, N failed'."""
import json
import pathlib
import re
import sys
import xml.etree.ElementTree as ET

# One line per test case: "[       OK ] name" / "[  FAILED  ] name".
CMOCKA_OK = re.compile(r"^\[       OK \] \S", re.M)
CMOCKA_FAILED = re.compile(r"^\[  FAILED  \] (?!\d+ test)\S", re.M)


def unit_counts(path):
    passed = failed = 0
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        out = (rec.get("stdout") or "") + (rec.get("stderr") or "")
        p = len(CMOCKA_OK.findall(out))
        f = len(CMOCKA_FAILED.findall(out))
        if p == 0 and f == 0:
            # a test binary that crashed before reporting counts as one failure
            if rec.get("result") == "OK":
                p = 1
            else:
                f = 1
        elif rec.get("result") != "OK" and f == 0:
            f = 1
        passed += p
        failed += f
    return passed, failed


def pytest_counts(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    passed = failed = skipped = 0
    for s in suites:
        tests = int(s.get("tests", 0))
        f = int(s.get("failures", 0)) + int(s.get("errors", 0))
        sk = int(s.get("skipped", 0))
        passed += tests - f - sk
        failed += f
        skipped += sk
    return passed, failed, skipped


def main():
    d = pathlib.Path(sys.argv[1])
    passed = failed = skipped = 0
    for kind in ("release", "asan"):
        u = d / f"unit-{kind}.json"
        s = d / f"system-{kind}.xml"
        if u.exists():
            p, f = unit_counts(u)
            print(f"{kind} unit: {p} passed, {f} failed")
            passed += p
            failed += f
        else:
            print(f"{kind} unit: no results")
            failed += 1
        if s.exists():
            p, f, sk = pytest_counts(s)
            print(f"{kind} system: {p} passed, {f} failed, {sk} skipped")
            passed += p
            failed += f
            skipped += sk
            if p + f == 0:
                failed += 1  # no system test ran: never a silent pass
        else:
            print(f"{kind} system: no results")
            failed += 1
    # the hardware-KVM lane: system tests only, against the normal build
    s = d / "system-lane.xml"
    if s.exists():
        p, f, sk = pytest_counts(s)
        print(f"lane system: {p} passed, {f} failed, {sk} skipped")
        passed += p
        failed += f
        skipped += sk
        if p + f == 0:
            failed += 1
    elif (d / "lane-requested").exists():
        print("lane system: no results")
        failed += 1
    bf = d / "build-failures"
    if bf.exists():
        failed += len(bf.read_text().split())
    tail = f", {skipped} skipped" if skipped else ""
    print(f"{passed} passed, {failed} failed{tail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
