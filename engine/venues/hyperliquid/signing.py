"""Hyperliquid signing, client side: L1 actions on the hot path, user-signed actions, nonces.

L1 actions (order, cancel, cancelByCloid, batchModify, scheduleCancel, noop, updateLeverage, ...):

    connectionId = keccak256(msgpack(action) + nonce as 8 bytes big-endian
                             + (0x00 | 0x01 + vault address as 20 bytes)
                             + (nothing | 0x00 + expiresAfter as 8 bytes big-endian))

then the EIP-712 "phantom agent" {source: "a" mainnet | "b" testnet, connectionId} of the fixed type
Agent(string source,bytes32 connectionId) in the domain Exchange / 1 / 1337 / 0x0 is signed. The
domain separator and the type hash are computed once at import, so signing is three keccaks and
one secp256k1 signature made by libsecp256k1 through coincurve: RFC 6979 nonces and low s, which
is what eth-account makes, so the official SDK's test vectors come out byte for byte.

msgpack keeps the dict's insertion order, and the hash covers it: the action must be built with
its keys in Hyperliquid's order. The builders here (`order_wire`, `order_action`, `cancel_action`,
...) produce that order; an action built by hand must follow it (type first, then the keys in
the order of the reference).

Signatures are returned as the SDK returns them: r and s as `hex(int)` (no zero padding, so
about one signature in sixteen has a 63-digit r or s), v 27 or 28.

User-signed actions (approveAgent, usdSend, withdraw3, ...) are rare and signed with eth-account
(`encode_typed_data` + `sign_message`) in the domain HyperliquidSignTransaction.

The private key never leaves the `Signer`: it is not in its repr or str, in any error message,
and a Signer refuses to be pickled.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NotRequired, TypedDict

import coincurve
import msgpack
from Crypto.Hash import keccak as _keccak

Tif = Literal["Alo", "Ioc", "Gtc"]
Action = dict[str, Any]

# The order of secp256k1's group: a private key is an integer in [1, N).
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class Signature(TypedDict):
    r: str
    s: str
    v: int


class LimitType(TypedDict):
    tif: Tif


class OrderTypeWire(TypedDict):
    limit: LimitType


class OrderWire(TypedDict):
    a: int
    b: bool
    p: str
    s: str
    r: bool
    t: OrderTypeWire
    c: NotRequired[str]


def keccak256(data: bytes) -> bytes:
    return _keccak.new(data=data, digest_bits=256).digest()


_DOMAIN_TYPEHASH = keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_EXCHANGE_DOMAIN = keccak256(
    _DOMAIN_TYPEHASH
    + keccak256(b"Exchange")
    + keccak256(b"1")
    + (1337).to_bytes(32, "big")
    + bytes(32)  # verifyingContract 0x0000000000000000000000000000000000000000
)
_AGENT_TYPEHASH = keccak256(b"Agent(string source,bytes32 connectionId)")
# The Agent struct's hash begins with the type hash and the hash of `source`: fixed per network.
_AGENT_PREFIX = {
    True: _AGENT_TYPEHASH + keccak256(b"a"),  # mainnet
    False: _AGENT_TYPEHASH + keccak256(b"b"),  # testnet (and the local exchange)
}
_DIGEST_PREFIX = b"\x19\x01" + _EXCHANGE_DOMAIN


def connection_id(
    action: Mapping[str, Any],
    nonce: int,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> bytes:
    """keccak256 of msgpack(action), the nonce, the vault and expiresAfter (32 bytes)."""
    data = msgpack.packb(action) + nonce.to_bytes(8, "big")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + _address_bytes(vault_address)
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak256(data)


def l1_digest(
    action: Mapping[str, Any],
    nonce: int,
    *,
    vault_address: str | None = None,
    expires_after: int | None = None,
    mainnet: bool,
) -> bytes:
    """The EIP-712 digest of the phantom agent for this action: what the signature covers."""
    struct = keccak256(
        _AGENT_PREFIX[mainnet] + connection_id(action, nonce, vault_address, expires_after)
    )
    return keccak256(_DIGEST_PREFIX + struct)


def _address_bytes(address: str) -> bytes:
    if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
        raise ValueError(f"not an address (0x and 40 hex digits): {address!r}")
    return bytes.fromhex(address[2:])


def _parse_key(private_key: object) -> coincurve.PrivateKey:
    """A coincurve key from hex text; errors name the problem, never the key."""
    if not isinstance(private_key, str):
        raise ValueError(f"private key: expected hex text, got {type(private_key).__name__}")
    text = private_key.strip()
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    if len(text) != 64:
        raise ValueError(f"private key: expected 64 hex digits, got {len(text)} characters")
    if not _HEX64.fullmatch(text):
        raise ValueError("private key: not hexadecimal")
    raw = bytes.fromhex(text)
    if not 0 < int.from_bytes(raw, "big") < _N:
        raise ValueError("private key: out of range for secp256k1 (zero, or not below the order)")
    return coincurve.PrivateKey(raw)


class Signer:
    """Signs Hyperliquid actions with one private key (an API wallet's, usually).

    `address` is the signer's address in lowercase hex with 0x (not checksummed), the form
    Hyperliquid recommends and the local exchange compares.
    """

    __slots__ = ("_key", "address")

    def __init__(self, private_key: str) -> None:
        self._key = _parse_key(private_key)
        public = self._key.public_key.format(compressed=False)[1:]
        self.address: str = "0x" + keccak256(public)[-20:].hex()

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Signer holds a private key and is not pickled")

    def sign_l1(
        self,
        action: Mapping[str, Any],
        nonce: int,
        *,
        vault_address: str | None = None,
        expires_after: int | None = None,
        mainnet: bool,
    ) -> Signature:
        """Sign an L1 action (order, cancel, ...) as sent with this nonce, vault and expiry."""
        digest = l1_digest(
            action, nonce, vault_address=vault_address, expires_after=expires_after, mainnet=mainnet
        )
        return self._sign_digest(digest)

    def _sign_digest(self, digest: bytes) -> Signature:
        # r (32) || s (32, already low-s) || recovery id (0 or 1)
        sig = self._key.sign_recoverable(digest, hasher=None)
        return {
            "r": hex(int.from_bytes(sig[:32], "big")),
            "s": hex(int.from_bytes(sig[32:64], "big")),
            "v": 27 + sig[64],
        }

    def sign_user(
        self, action: Mapping[str, Any], primary_type: str, fields: list[tuple[str, str]]
    ) -> Signature:
        """Sign a user-signed action: `fields` (name, EIP-712 type) of `action` are the message.

        `primary_type` is the full name ("HyperliquidTransaction:ApproveAgent"); the chain id
        is `int(action["signatureChainId"], 16)`; keys of `action` not in `fields` (type,
        signatureChainId) are not signed, as in the SDK.
        """
        from eth_account import Account
        from eth_account.messages import encode_typed_data

        missing = [name for name, _ in fields if name not in action]
        if missing or "signatureChainId" not in action:
            raise ValueError(f"user-signed action lacks {missing or ['signatureChainId']}")
        typed = {
            "domain": {
                "name": "HyperliquidSignTransaction",
                "version": "1",
                "chainId": int(action["signatureChainId"], 16),
                "verifyingContract": "0x0000000000000000000000000000000000000000",
            },
            "types": {
                primary_type: [{"name": name, "type": kind} for name, kind in fields],
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
            },
            "primaryType": primary_type,
            "message": {name: action[name] for name, _ in fields},
        }
        signed = Account.sign_message(encode_typed_data(full_message=typed), self._key.secret)
        return {"r": hex(signed.r), "s": hex(signed.s), "v": signed.v}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class NonceClock:
    """Nonces for one signer: milliseconds, strictly increasing, never repeated.

    next() = max(now in ms, last + 1): a wall clock that steps back, or two actions in one
    millisecond, give last + 1. Keep one clock per signing address (Hyperliquid tracks nonces
    per signer). `clock` returns milliseconds (injectable for tests); `last` resumes after it.
    """

    __slots__ = ("_clock", "_last", "_lock")

    def __init__(self, clock: Callable[[], int] = _now_ms, last: int = 0) -> None:
        self._clock = clock
        self._last = last
        self._lock = threading.Lock()

    @property
    def last(self) -> int:
        return self._last

    def next(self) -> int:
        with self._lock:
            nonce = max(self._clock(), self._last + 1)
            self._last = nonce
            return nonce


# Action builders: keys in Hyperliquid's order (msgpack, and so the hash, follows it).


def order_wire(
    asset: int,
    is_buy: bool,
    px: str,
    sz: str,
    reduce_only: bool,
    tif: Tif,
    cloid: str | None = None,
) -> OrderWire:
    """One limit order; px and sz are wire strings (`Grid.wire`), cloid "0x" + 32 hex."""
    wire: OrderWire = {
        "a": asset,
        "b": is_buy,
        "p": px,
        "s": sz,
        "r": reduce_only,
        "t": {"limit": {"tif": tif}},
    }
    if cloid is not None:
        wire["c"] = cloid
    return wire


def order_action(orders: list[OrderWire], grouping: str = "na") -> Action:
    return {"type": "order", "orders": orders, "grouping": grouping}


def cancel_action(cancels: Iterable[tuple[int, int]]) -> Action:
    """Cancel by order id: (asset, oid) pairs."""
    return {"type": "cancel", "cancels": [{"a": asset, "o": oid} for asset, oid in cancels]}


def cancel_by_cloid_action(cancels: Iterable[tuple[int, str]]) -> Action:
    """Cancel by client order id: (asset, cloid) pairs (note the long key names)."""
    return {
        "type": "cancelByCloid",
        "cancels": [{"asset": asset, "cloid": cloid} for asset, cloid in cancels],
    }


def batch_modify_action(modifies: Iterable[tuple[int | str, OrderWire]]) -> Action:
    """Replace orders: (oid or cloid of the order to replace, the new order) pairs."""
    return {
        "type": "batchModify",
        "modifies": [{"oid": oid, "order": order} for oid, order in modifies],
    }


def schedule_cancel_action(time_ms: int | None) -> Action:
    """Arm the dead man's switch at `time_ms` (>= 5 s ahead), or clear it with None."""
    if time_ms is None:
        return {"type": "scheduleCancel"}
    return {"type": "scheduleCancel", "time": time_ms}


def noop_action() -> Action:
    """Burns a nonce: sent with an in-flight action's nonce, voids it if it lands first."""
    return {"type": "noop"}


def update_leverage_action(asset: int, is_cross: bool, leverage: int) -> Action:
    return {"type": "updateLeverage", "asset": asset, "isCross": is_cross, "leverage": leverage}


APPROVE_AGENT_TYPE = "HyperliquidTransaction:ApproveAgent"
APPROVE_AGENT_FIELDS = [
    ("hyperliquidChain", "string"),
    ("agentAddress", "address"),
    ("agentName", "string"),
    ("nonce", "uint64"),
]


def approve_agent_action(
    agent_address: str,
    agent_name: str,
    nonce: int,
    *,
    mainnet: bool,
    signature_chain_id: str = "0x66eee",
) -> Action:
    """approveAgent (signed by the master account with `sign_user`, APPROVE_AGENT_TYPE and
    APPROVE_AGENT_FIELDS); the nonce must also be the request's nonce."""
    return {
        "type": "approveAgent",
        "signatureChainId": signature_chain_id,
        "hyperliquidChain": "Mainnet" if mainnet else "Testnet",
        "agentAddress": agent_address.lower(),
        "agentName": agent_name,
        "nonce": nonce,
    }
