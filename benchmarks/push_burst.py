"""A burst of uploads pushed by Pub/Sub to the sampler, whose instances cap how many videos it
samples at once: a simulation (no cloud) of what the platform documents, with the deployed
settings (``framesift.topology.PUSH``, ``pubsub_max_delivery_attempts``, the sampler's
``max_instances`` x ``concurrency`` in ``framesift_infra.sizing``).

    .venv/bin/python benchmarks/push_burst.py [--uploads 1000 10000] [--seed 0]

What it models, and from where:

- a push the sampler has no free instance for is answered 429 at once (Cloud Run: "the maximum
  instances has been reached", https://cloud.google.com/run/docs/troubleshooting); Pub/Sub takes
  any answer but a success as a failed delivery, counted as an attempt, and pushes the message
  again after the subscription's retry backoff, doubling from its minimum to its maximum
  (https://cloud.google.com/pubsub/docs/handling-failures); at ``maxDeliveryAttempts`` it is
  dead-lettered;
- Pub/Sub adjusts its push rate to the rate of successes (https://cloud.google.com/pubsub/docs/push:
  a "push window" of outstanding pushes, starting small, growing on each success and shrinking
  on each failure): modelled as a window of 3 growing by one per success (doubling each round,
  as slow start does) and halved by a failure;
- ``--no-window``: the worst case, every available message pushed at once, as if Pub/Sub did not
  throttle at all;
- each video takes 30 to 300 s to sample (uniform; the sampler's timeout is 540 s); instances
  start at once (no cold start: more pushes land on a full service, so more 429s).

Prints, per burst: the time until the last video is sampled, the 429s, the most attempts any
message took and how many were dead-lettered.
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "shared"), str(REPO / "infra")]

from framesift.topology import PUSH, SAMPLER, pubsub_max_delivery_attempts  # noqa: E402
from framesift_infra.config import StackConfig  # noqa: E402
from framesift_infra.sizing import DEPLOYMENTS  # noqa: E402

INITIAL_WINDOW = 3
SAMPLE_SECONDS = (30.0, 300.0)


@dataclass(frozen=True)
class Burst:
    uploads: int
    drained_s: float
    throttled: int  # 429s
    most_attempts: int
    dead_lettered: int


def backoff(attempts: int) -> float:
    """Pub/Sub's wait before pushing a failed message again, after ``attempts`` deliveries."""
    return float(min(PUSH.maximum_backoff_s, PUSH.minimum_backoff_s * 2 ** (attempts - 1)))


def simulate(uploads: int, capacity: int, max_attempts: int, window: bool, seed: int) -> Burst:
    rng = random.Random(seed)  # noqa: S311 (a simulation, no secret)
    ready: deque[int] = deque(range(uploads))  # messages Pub/Sub may push now, oldest first
    attempts = [0] * uploads
    events: list[tuple[float, int, int]] = []  # (time, kind, message): 0 done, 1 retry due
    busy = throttled = dead = 0
    push_window = float(INITIAL_WINDOW if window else uploads)
    now = 0.0
    while ready or events:
        while ready and (busy < int(push_window)):
            message = ready.popleft()
            attempts[message] += 1
            if busy < capacity:
                busy += 1
                heapq.heappush(events, (now + rng.uniform(*SAMPLE_SECONDS), 0, message))
                continue
            throttled += 1
            if window:
                push_window = max(1.0, push_window / 2)
            if attempts[message] >= max_attempts:
                dead += 1
            else:
                heapq.heappush(events, (now + backoff(attempts[message]), 1, message))
        if not events:
            break
        now, kind, message = heapq.heappop(events)
        if kind == 0:
            busy -= 1
            if window:
                push_window += 1
        else:
            ready.append(message)
    return Burst(uploads, now, throttled, max(attempts), dead)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sampler = DEPLOYMENTS[SAMPLER.name]
    capacity = sampler.max_instances * sampler.concurrency
    max_attempts = pubsub_max_delivery_attempts(StackConfig.max_delivery_attempts)
    print(
        f"sampler: {sampler.max_instances} instances x {sampler.concurrency}; push backoff"
        f" {PUSH.minimum_backoff_s}-{PUSH.maximum_backoff_s} s; dead letter after"
        f" {max_attempts} attempts"
    )
    print("| uploads | Pub/Sub | drained in | 429s | most attempts | dead-lettered |")
    print("|---:|---|---:|---:|---:|---:|")
    for uploads in args.uploads:
        for window in (True, False):
            burst = simulate(uploads, capacity, max_attempts, window, args.seed)
            print(
                f"| {uploads:,} | {'push window' if window else 'no window (worst case)'}"
                f" | {burst.drained_s / 3600:.1f} h | {burst.throttled:,}"
                f" | {burst.most_attempts} | {burst.dead_lettered:,} |"
            )


if __name__ == "__main__":
    main()
