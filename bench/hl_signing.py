"""Benchmark: signing a Hyperliquid quote action, ours against the official SDK's.

Run `python bench/hl_signing.py [samples]`. The action is one ALO order with a cloid, as the
quoter sends it. Each signing is timed alone and the median is printed (in microseconds), for
`Signer.sign_l1` (precomputed EIP-712 domain, coincurve), for the SDK's `sign_l1_action`
(eth-account's typed-data encoder, with whichever eth-keys backend is installed), and for the
whole quote path on our side: grid rounding, wire strings, the builders, a nonce and the
signature. Prints figures only; nothing here asserts on time (the target is 100 us).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eth_account
from hyperliquid.utils.signing import sign_l1_action

from engine.venues.hyperliquid.grid import Grid
from engine.venues.hyperliquid.signing import NonceClock, Signer, order_action, order_wire

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
SAMPLES = 20_000
NONCE = 1_700_000_000_000


def median_us(samples: int, call: Callable[[int], object]) -> float:
    for i in range(min(200, samples)):  # warm up
        call(i)
    times = []
    clock = time.perf_counter_ns
    for i in range(samples):
        t0 = clock()
        call(i)
        times.append(clock() - t0)
    return statistics.median(times) / 1_000


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    samples = int(args[0]) if args else SAMPLES
    signer = Signer(KEY)
    wallet = eth_account.Account.from_key(KEY)
    action = order_action([order_wire(0, True, "97012", "0.0011", False, "Alo", "0x" + "7e" * 16)])
    assert signer.sign_l1(action, NONCE, mainnet=True) == sign_l1_action(
        wallet, action, None, NONCE, None, True
    ), "our signature differs from the SDK's"

    ours = median_us(samples, lambda i: signer.sign_l1(action, NONCE + i, mainnet=True))
    sdk_samples = max(1, samples // 10)
    theirs = median_us(
        sdk_samples, lambda i: sign_l1_action(wallet, action, None, NONCE + i, None, True)
    )

    grid = Grid(5)
    nonces = NonceClock()

    def quote(i: int) -> object:
        px = grid.wire(grid.price_bid(97_012.37 - i % 50))
        sz = grid.wire(grid.size("0.00113"))
        cloid = f"0x{i:032x}"
        act = order_action([order_wire(0, True, px, sz, False, "Alo", cloid)])
        return signer.sign_l1(act, nonces.next(), mainnet=True)

    path = median_us(samples, quote)
    print(f"one-order ALO quote action, median of {samples:,} signings "
          f"({sdk_samples:,} for the SDK)")  # fmt: skip
    print(f"ours, Signer.sign_l1:                 {ours:8.1f} us  (target <= 100 us)")
    print(f"SDK, sign_l1_action:                  {theirs:8.1f} us")
    print(f"SDK / ours:                           {theirs / ours:8.1f}x")
    print(f"ours, round + wire + build + sign:    {path:8.1f} us")


if __name__ == "__main__":
    main()
