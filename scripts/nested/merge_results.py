#!/usr/bin/env python3
"""Join the lane's results when its L1 died under a run and a fresh L1 ran
the rest (scripts/nested/lane.sh): the first L1's outcomes as conftest.py
recorded them ("<outcome> <test id>" lines, the last per test counts) and
the second L1's junit xml (if any) into one junit xml for scripts/summary.py.

    merge_results.py FIRST-RESULTS SECOND-JUNIT OUT-JUNIT
"""
import pathlib
import sys
import xml.etree.ElementTree as ET


def main():
    first, second, out = (pathlib.Path(a) for a in sys.argv[1:4])
    outcome = {}
    if first.exists():
        for line in first.read_text().splitlines():
            o, _, node = line.partition(" ")
            outcome[node] = o
    suite = ET.Element("testsuite", name="lane")
    for node, o in outcome.items():
        case = ET.SubElement(suite, "testcase", name=node, classname="lane.first-L1")
        if o == "failed":
            ET.SubElement(case, "failure", message="failed in the first L1 (see its console)")
        elif o == "skipped":
            ET.SubElement(case, "skipped")
    tests = len(outcome)
    failures = sum(o == "failed" for o in outcome.values())
    skipped = sum(o == "skipped" for o in outcome.values())
    if second.exists():
        root = ET.parse(second).getroot()
        for s in [root] if root.tag == "testsuite" else root.findall("testsuite"):
            for case in s.findall("testcase"):
                suite.append(case)
            tests += int(s.get("tests", 0))
            failures += int(s.get("failures", 0)) + int(s.get("errors", 0))
            skipped += int(s.get("skipped", 0))
    else:
        ET.SubElement(ET.SubElement(suite, "testcase", name="second L1"), "failure",
                      message="the second L1 gave no results")
        tests += 1
        failures += 1
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", str(skipped))
    ET.ElementTree(suite).write(out, encoding="utf-8", xml_declaration=True)
    print(f"lane: both L1s together: {tests - failures - skipped} passed, {failures} failed")


if __name__ == "__main__":
    main()
