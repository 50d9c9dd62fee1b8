"""Compare the nbval-checked cells of a reference notebook with the same notebook run in Pyodide.

    python3 compare.py REFERENCE.ipynb EXECUTED.ipynb [SANITIZE.cfg]

Mirrors nbval --nbval-lax: only cells tagged ``nbval-check-output`` are compared; streams of one
name are joined; the keys nbval skips (metadata, traceback, execution_count, output_type, name,
images, widget views) are skipped; the sanitize file's regexes are applied to both sides. A cell
that raised in Pyodide fails whatever its tag. Exit status 1 on any difference.
"""

import configparser
import json
import re
import sys
from collections import defaultdict

SKIP = {"metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
        "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg"}


def sanitizers(path):
    if not path:
        return []
    cfg = configparser.ConfigParser()
    cfg.read(path)
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


def flatten(outputs, subs):
    joined = []
    for o in outputs:  # nbval joins consecutive streams of one name
        if o["output_type"] == "stream" and joined and joined[-1]["output_type"] == "stream" \
                and joined[-1]["name"] == o["name"]:
            joined[-1] = dict(joined[-1], text=joined[-1]["text"] + "".join(o["text"]))
        else:
            joined.append(dict(o, text="".join(o["text"])) if o["output_type"] == "stream" else o)
    flat = defaultdict(list)
    for o in joined:
        for key, value in o.items():
            if key in SKIP:
                continue
            items = value.items() if key == "data" else [(key, value)]
            for k, v in items:
                if k in SKIP:
                    continue
                text = "".join(v) if isinstance(v, list) else str(v)
                for rx, rep in subs:
                    text = rx.sub(rep, text)
                flat[k].append(text)
    return dict(flat)


def main(ref_path, run_path, cfg_path=None):
    subs = sanitizers(cfg_path)
    ref = [c for c in json.load(open(ref_path))["cells"] if c["cell_type"] == "code"]
    run = [c for c in json.load(open(run_path))["cells"] if c["cell_type"] == "code"]
    assert len(ref) == len(run), "not the same notebook"
    bad = 0
    for i, (a, b) in enumerate(zip(ref, run)):
        errors = [o for o in b.get("outputs", []) if o["output_type"] == "error"]
        checked = "nbval-check-output" in a.get("metadata", {}).get("tags", [])
        if errors:
            bad += 1
            print(f"cell {i}: raised {errors[0]['ename']}: {errors[0]['evalue']}")
        elif checked and flatten(a.get("outputs", []), subs) != flatten(b.get("outputs", []), subs):
            bad += 1
            print(f"cell {i}: output differs\n  expected {flatten(a['outputs'], subs)}\n  got      {flatten(b['outputs'], subs)}")
        elif checked:
            print(f"cell {i}: checked output matches")
    n_checked = sum("nbval-check-output" in c.get("metadata", {}).get("tags", []) for c in ref)
    print(f"{len(ref) - bad} passed, {bad} failed  ({len(ref)} code cells, {n_checked} checked)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
