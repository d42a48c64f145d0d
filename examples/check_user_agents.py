"""Check a list of SIP User-Agent strings (one per line, e.g. from a registrar log) against the catalogue.

    python examples/check_user_agents.py agents.txt

Prints one line per string: the verdict, the vendor and model, the firmware and the reason. Uses the
library directly, as any script of a lab engineer can.
"""

from __future__ import annotations

import sys
from collections import Counter

from device_profiles.verdict import check_user_agent


def main(path: str) -> int:
    counts: Counter[str] = Counter()
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            ua = line.strip()
            if not ua or ua.startswith("#"):
                continue
            v = check_user_agent(ua)
            counts[v.verdict.value] += 1
            print(f"{v.verdict.value:20} {v.vendor or '-':12} {v.model or '-':14} {v.found or '-':18} {v.reason}")
    print(", ".join(f"{n} {verdict}" for verdict, n in counts.most_common()) or "no User-Agent strings")
    return 0 if set(counts) <= {"supported", "newer_than_approved"} else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
