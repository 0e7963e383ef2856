"""How fast is the messages fast path? Calls per second, printed, never asserted.

    .venv/bin/python bench/bench_messages.py [--seconds 0.3]

Each case is compared with a plain ``str.format`` of a similar sentence measured in the same
run, so the figures mean something on any machine.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable

from tidings.messages import MessageWriter, generate_friendly_status, register_step


def rate(function: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``function``: the best of three runs of about ``seconds`` each."""
    timer = timeit.Timer(function)
    number = 1
    while (elapsed := timer.timeit(number)) < seconds / 10 and number < 10**7:
        number *= 10
    number = max(1, int(number * seconds / max(elapsed, 1e-9)))
    best = min(timer.repeat(repeat=3, number=number))
    return number / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="time per run of a case")
    args = parser.parse_args(argv)

    register_step("bench_registered", "Counting {rows:row} in {filename}...")
    writer = MessageWriter()  # no loop, no LLM: write() is the fast path plus the override
    hostile = "\u202e<b>" + "x" * 500 + ".csv"
    template = "Checking if I've seen {filename} before..."
    cases: list[tuple[str, Callable[[], object]]] = [
        ("baseline: str.format", lambda: template.format(filename="expenses.csv")),
        ("catalog, no context", lambda: generate_friendly_status("duplicate_check")),
        (
            "catalog, filename",
            lambda: generate_friendly_status("duplicate_check", {"filename": "expenses.csv"}),
        ),
        (
            "catalog, counts",
            lambda: generate_friendly_status(
                "delta_analysis_complete", {"new_rows": 42, "existing_rows": 1560}
            ),
        ),
        (
            "catalog, hostile filename",
            lambda: generate_friendly_status("duplicate_check", {"filename": hostile}),
        ),
        (
            "registered template",
            lambda: generate_friendly_status(
                "bench_registered", {"rows": 1204, "filename": "expenses.csv"}
            ),
        ),
        ("unknown step, humane", lambda: generate_friendly_status("validating_iban_checksums")),
        (
            "MessageWriter.write",
            lambda: writer.write("duplicate_check", {"filename": "expenses.csv"}),
        ),
    ]
    baseline = 0.0
    print(f"{'case':<28} {'calls/s':>12} {'us/call':>9} {'x str.format':>13}")
    for name, function in cases:
        calls = rate(function, args.seconds)
        baseline = baseline or calls
        print(f"{name:<28} {calls:>12,.0f} {1e6 / calls:>9.2f} {baseline / calls:>12.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
