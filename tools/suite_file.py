"""Writes a bench suite file in the schema of ../shared/bench/suite.json (shared by the suite generators in tools/):
the main suite's model table, the given cases, one line per rows_per_expert list."""
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_suite(name, description, cases):
    with open(os.path.join(ROOT, "..", "shared", "bench", "suite.json")) as f:
        main_suite = json.load(f)
    suite = {"description": description, "models": main_suite["models"], "cases": cases}
    out = os.path.join(ROOT, "bench", name)
    text = json.dumps(suite, indent=1)
    # One line per rows_per_expert list instead of one line per number.
    text = re.sub(r"\[\s*(\d+(?:,\s*\d+)*)\s*\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    with open(out, "w") as f:
        f.write(text + "\n")
    print(f"wrote {out}: {len(cases)} cases")
