"""Benchmark: recovering the signer of an L1 action, ours against eth-account's generic path.

Run `python bench/signing.py [calls]`. Signs a one-order action with the official SDK and a fresh
key, then times, one call at a time, `recover_l1_signer` (fixed-type EIP-712 hashing by hand and
libsecp256k1 recovery through coincurve), the same through eth-account's `encode_typed_data` and
`Account.recover_message`, and the pieces: the canonical msgpack, the connectionId, one keccak and
the bare coincurve recovery. Prints medians; nothing here asserts on time.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coincurve import PublicKey
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak as eth_keccak
from hyperliquid.utils.signing import sign_l1_action

from engine.exchange import signing
from engine.exchange.signing import l1_action_bytes, l1_connection_id, recover_l1_signer

CALLS = 20_000
NONCE = 1_760_000_000_000
ACTION = {
    "type": "order",
    "orders": [
        {"a": 0, "b": True, "p": "104250", "s": "0.0012", "r": False,
         "t": {"limit": {"tif": "Alo"}}, "c": "0x0000000000000000000000000000002a"},
    ],
    "grouping": "na",
}  # fmt: skip


def median_us(call: Callable[[], Any], calls: int) -> float:
    """Median wall time of one call, in microseconds (after a short warm-up)."""
    for _ in range(min(200, calls)):
        call()
    times = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        t0 = clock()
        call()
        times.append(clock() - t0)
    return statistics.median(times) / 1e3


def generic(signature: dict[str, Any]) -> str:
    """The same recovery the way the SDK's own recover helper does it: eth-account, any type."""
    typed = {
        "domain": {"name": "Exchange", "version": "1", "chainId": 1337,
                   "verifyingContract": "0x0000000000000000000000000000000000000000"},
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"},
                             {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "Agent": [{"name": "source", "type": "string"},
                      {"name": "connectionId", "type": "bytes32"}],
        },
        "primaryType": "Agent",
        "message": {"source": "a", "connectionId": l1_connection_id(ACTION, NONCE, None, None)},
    }  # fmt: skip
    vrs = (signature["v"], signature["r"], signature["s"])
    address: str = Account.recover_message(encode_typed_data(full_message=typed), vrs=vrs)
    return address.lower()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    calls = int(args[0]) if args else CALLS
    wallet = Account.create()
    signature = sign_l1_action(wallet, ACTION, None, NONCE, None, True)
    want = wallet.address.lower()
    assert recover_l1_signer(ACTION, NONCE, None, None, signature, mainnet=True) == want
    assert generic(signature) == want

    v, r, s = signing.parse_signature(signature)
    sig65 = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v - 27,))
    digest = signing._keccak(b"any digest: recovery costs the same whoever it yields")
    blob = l1_action_bytes(ACTION) + bytes(9)

    print(f"one-order action, {len(l1_action_bytes(ACTION))} bytes of msgpack; "
          f"median of {calls:,} calls each")  # fmt: skip
    ours = median_us(
        lambda: recover_l1_signer(ACTION, NONCE, None, None, signature, mainnet=True), calls
    )
    slow = median_us(lambda: generic(signature), max(1_000, calls // 10))
    raw = median_us(lambda: PublicKey.from_signature_and_message(sig65, digest, hasher=None), calls)
    print(f"recover_l1_signer (ours):             {ours:8.1f} us  (target <= 100 us)")
    print(f"eth-account encode_typed_data+recover: {slow:7.1f} us")
    print(f"coincurve recovery alone:             {raw:8.1f} us")
    print(f"eth-account / ours: {slow / ours:.1f}x; ours minus raw recovery: {ours - raw:.1f} us")
    pieces = [
        ("canonical msgpack (l1_action_bytes)", lambda: l1_action_bytes(ACTION)),
        ("connectionId (msgpack + keccak)", lambda: l1_connection_id(ACTION, NONCE, None, None)),
        ("one keccak256 (pycryptodome)", lambda: signing._keccak(blob)),
        ("one keccak256 (eth_hash.auto)", lambda: eth_keccak(blob)),
        ("parse_signature", lambda: signing.parse_signature(signature)),
    ]
    for name, call in pieces:
        print(f"  {name + ':':37s}{median_us(call, calls):6.1f} us")


if __name__ == "__main__":
    main()
