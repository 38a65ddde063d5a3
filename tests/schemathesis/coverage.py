"""What a schemathesis run reached: per operation, the statuses its requests were answered with.

Reads the run's NDJSON report and prints one line per operation (requests, how many were
answered 2xx, the statuses seen), then the operations that never got a 2xx.

    python3 coverage.py REPORT.ndjson...
"""

import collections
import json
import sys


def main(paths):
    statuses = collections.defaultdict(collections.Counter)
    lines = (line for path in paths for line in open(path, encoding="utf-8"))
    for line in lines:
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        for interaction in (finished["recorder"].get("interactions") or {}).values():
            request = interaction["request"]
            response = interaction.get("response")
            if response is None:
                continue
            label = finished["recorder"]["label"]
            if not label.startswith(("GET ", "PUT ", "POST ", "DELETE ", "PATCH ")):
                # A stateful scenario: label the request by its own method and URL.
                label = f"{request['method']} {request['uri'].split('?')[0]}"
            elif not label.startswith(request["method"] + " "):
                # Another method on the operation's path (the 405 and OPTIONS probes).
                label = f"{request['method']} (probe) {label.split(' ', 1)[1]}"
            statuses[label][response["status_code"]] += 1
    never = []
    total = 0
    for label in sorted(statuses):
        seen = statuses[label]
        ok = sum(n for status, n in seen.items() if 200 <= status < 300)
        total += sum(seen.values())
        spread = " ".join(f"{status}x{n}" for status, n in sorted(seen.items()))
        print(f"{sum(seen.values()):5} {ok:5}  {label}  [{spread}]")
        if ok == 0:
            never.append(label)
    print(f"{total} requests to {len(statuses)} labels; without any 2xx: {len(never)}")
    for label in never:
        print(f"  no 2xx: {label}")


if __name__ == "__main__":
    main(sys.argv[1:])
