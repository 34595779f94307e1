"""Who signed an /exchange request: signature recovery for our loopback Hyperliquid server.

L1 actions (orders, cancels, ...): the action is re-serialized in Hyperliquid's canonical key
order and msgpacked; connectionId = keccak(msgpack + nonce u64 BE + vault flag/address +
optional 0x00 + expiresAfter u64 BE). The signer signed the EIP-712 "phantom agent"
Agent{source: "a" mainnet | "b" testnet, connectionId} in domain Exchange/1/1337/0x0; we hash
that fixed type by hand and recover with libsecp256k1 (coincurve), about 4x faster than the
generic eth-account path. User-signed actions (approveAgent, usdSend, withdraw3) are the EIP-712
message themselves (domain HyperliquidSignTransaction/1/signatureChainId/0x0), and go through
eth-account. This module only verifies: it never touches a private key. A wrong signature is not
an error here: it recovers some other address, and the server answers "does not exist".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgpack
from coincurve import PublicKey
from Crypto.Hash import keccak as _keccak_mod
from eth_account import Account
from eth_account.messages import encode_typed_data

__all__ = [
    "USER_SIGNED_TYPES",
    "ActionShapeError",
    "SignatureError",
    "l1_action_bytes",
    "l1_connection_id",
    "parse_signature",
    "recover_l1_signer",
    "recover_user_signed_signer",
]

# secp256k1 group order.
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX_WORD = re.compile(r"0x[0-9a-fA-F]{1,64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
_U64 = 1 << 64


class SignatureError(ValueError):
    """The signature object is malformed (not merely wrong): one line naming what is wrong."""


class ActionShapeError(ValueError):
    """The action (or nonce, vaultAddress, expiresAfter) lacks a field or has the wrong shape."""


def _keccak(data: bytes) -> bytes:
    # pycryptodome directly: eth_hash.auto wraps the same code, ~0.3 us slower a call.
    return _keccak_mod.new(data=data, digest_bits=256).digest()


# --- canonical L1 action order ----------------------------------------------------------------


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ActionShapeError(f"{where} is not an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ActionShapeError(f"{where} is not a list")
    return list(value)


def _pick(
    src: Mapping[str, Any], where: str, required: Sequence[str], optional: Sequence[str] = ()
) -> dict[str, Any]:
    """`src`'s keys in the given order, optional ones (when present) after the required ones.

    Keys outside both lists are dropped: the real server deserializes into a struct, so they
    never reach its hash. Assigning to a key of the result later keeps its position."""
    out: dict[str, Any] = {}
    for key in required:
        if key not in src:
            raise ActionShapeError(f"{where} is missing field {key!r}")
        out[key] = src[key]
    for key in optional:
        if key in src:
            out[key] = src[key]
    return out


def _order_type(value: Any, where: str) -> dict[str, Any]:
    t = _obj(value, f"{where} field 't'")
    kinds = [k for k in ("limit", "trigger") if k in t]
    if len(kinds) != 1:
        raise ActionShapeError(f"{where} field 't' must hold exactly one of 'limit', 'trigger'")
    if kinds[0] == "limit":
        return {"limit": _pick(_obj(t["limit"], f"{where} limit"), f"{where} limit", ("tif",))}
    trig = _obj(t["trigger"], f"{where} trigger")
    return {"trigger": _pick(trig, f"{where} trigger", ("isMarket", "triggerPx", "tpsl"))}


def _order_wire(value: Any, where: str) -> dict[str, Any]:
    wire = _pick(_obj(value, where), where, ("a", "b", "p", "s", "r", "t"), ("c",))
    wire["t"] = _order_type(wire["t"], where)
    return wire


def _canon_order(a: Mapping[str, Any]) -> dict[str, Any]:
    out = _pick(a, "order action", ("type", "orders", "grouping"), ("builder",))
    orders = _list(out["orders"], "orders")
    out["orders"] = [_order_wire(o, f"order {i}") for i, o in enumerate(orders)]
    if "builder" in out:
        builder = _pick(_obj(out["builder"], "builder"), "builder", ("b", "f"))
        # Documented: addresses are signed lowercase; the server re-serializes them so.
        if isinstance(builder["b"], str):
            builder["b"] = builder["b"].lower()
        out["builder"] = builder
    return out


def _canon_cancel(a: Mapping[str, Any]) -> dict[str, Any]:
    # The 2026 docs' optional fast flag "f": placement not pinned down, accepted on either level.
    out = _pick(a, "cancel action", ("type", "cancels"), ("f",))
    cancels = _list(out["cancels"], "cancels")
    out["cancels"] = [
        _pick(_obj(c, f"cancel {i}"), f"cancel {i}", ("a", "o"), ("f",))
        for i, c in enumerate(cancels)
    ]
    return out


def _canon_cancel_by_cloid(a: Mapping[str, Any]) -> dict[str, Any]:
    out = _pick(a, "cancelByCloid action", ("type", "cancels"))
    cancels = _list(out["cancels"], "cancels")
    out["cancels"] = [
        _pick(_obj(c, f"cancel {i}"), f"cancel {i}", ("asset", "cloid"))
        for i, c in enumerate(cancels)
    ]
    return out


def _modify_entry(value: Any, where: str) -> dict[str, Any]:
    entry = _pick(_obj(value, where), where, ("oid", "order"), ("a",))
    entry["order"] = _order_wire(entry["order"], f"{where} order")
    return entry


def _canon_modify(a: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": a["type"], **_modify_entry(a, "modify action")}


def _canon_batch_modify(a: Mapping[str, Any]) -> dict[str, Any]:
    out = _pick(a, "batchModify action", ("type", "modifies"))
    modifies = _list(out["modifies"], "modifies")
    out["modifies"] = [_modify_entry(m, f"modify {i}") for i, m in enumerate(modifies)]
    return out


_CANONICAL: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "order": _canon_order,
    "cancel": _canon_cancel,
    "cancelByCloid": _canon_cancel_by_cloid,
    "modify": _canon_modify,
    "batchModify": _canon_batch_modify,
    "scheduleCancel": lambda a: _pick(a, "scheduleCancel action", ("type",), ("time",)),
    "updateLeverage": lambda a: _pick(
        a, "updateLeverage action", ("type", "asset", "isCross", "leverage")
    ),
    "noop": lambda a: _pick(a, "noop action", ("type",)),
}


def l1_action_bytes(action: Mapping[str, Any]) -> bytes:
    """msgpack of `action` with keys in Hyperliquid's canonical order (unknown types as given).

    Raises ActionShapeError when a required field is missing or a container has the wrong type.
    """
    action = _obj(action, "action")
    if "type" not in action:
        raise ActionShapeError("action is missing field 'type'")
    canon = _CANONICAL.get(action["type"]) if isinstance(action["type"], str) else None
    body = canon(action) if canon else action
    try:
        packed: bytes = msgpack.packb(body)
    except (TypeError, ValueError, OverflowError) as e:
        raise ActionShapeError(f"action cannot be serialized: {e}") from None
    return packed


def _u64(value: Any, name: str) -> bytes:
    if type(value) is not int or not 0 <= value < _U64:
        raise ActionShapeError(f"{name} is not an integer in [0, 2**64)")
    return value.to_bytes(8, "big")


def l1_connection_id(
    action: Mapping[str, Any], nonce: int, vault_address: str | None, expires_after: int | None
) -> bytes:
    """keccak256(msgpack(action) + nonce + vault flag/address + optional expiresAfter)."""
    data = l1_action_bytes(action) + _u64(nonce, "nonce")
    if vault_address is None:
        data += b"\x00"
    else:
        if not isinstance(vault_address, str) or not _ADDRESS.fullmatch(vault_address):
            raise ActionShapeError("vaultAddress is not a 0x-prefixed 20-byte hex address")
        data += b"\x01" + bytes.fromhex(vault_address[2:])
    if expires_after is not None:
        data += b"\x00" + _u64(expires_after, "expiresAfter")
    return _keccak(data)


# --- signatures --------------------------------------------------------------------------------


def parse_signature(signature: Mapping[str, Any]) -> tuple[int, int, int]:
    """(v as 27/28, r, s) from {"r": "0x..", "s": "0x..", "v": 27|28|0|1}, or SignatureError.

    r and s may have fewer than 64 hex digits (the Python SDK does not pad them). High s is
    accepted, as eth-account and libsecp256k1's recovery do: (r, n - s, v ^ 1) is the same
    signature and recovers the same signer; the nonce, not the signature, stops replays.
    """
    if not isinstance(signature, Mapping):
        raise SignatureError("signature is not an object")
    values: list[int] = []
    for key in ("r", "s"):
        if key not in signature:
            raise SignatureError(f"signature is missing field {key!r}")
        text = signature[key]
        if not isinstance(text, str) or not _HEX_WORD.fullmatch(text):
            raise SignatureError(f"signature.{key} is not a 0x hex string of 1 to 64 digits")
        value = int(text, 16)
        if not 0 < value < _N:
            raise SignatureError(f"signature.{key} is zero or not below the curve order")
        values.append(value)
    if "v" not in signature:
        raise SignatureError("signature is missing field 'v'")
    v = signature["v"]
    if type(v) is not int or v not in (27, 28, 0, 1):
        raise SignatureError("signature.v is not 27 or 28 (or 0 or 1)")
    return (v if v >= 27 else v + 27), values[0], values[1]


def _recover_digest(digest: bytes, signature: Mapping[str, Any]) -> str:
    v, r, s = parse_signature(signature)
    sig65 = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v - 27,))
    try:
        pub = PublicKey.from_signature_and_message(sig65, digest, hasher=None)
    except Exception:  # libsecp256k1 refuses: r is not the x of any curve point
        raise SignatureError("signature does not recover to any public key") from None
    return "0x" + _keccak(pub.format(compressed=False)[1:])[-20:].hex()


def _hash_str(text: str) -> bytes:
    return _keccak(text.encode())


_DOMAIN_TYPE_HASH = _hash_str(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_L1_DOMAIN_SEPARATOR = _keccak(
    _DOMAIN_TYPE_HASH
    + _hash_str("Exchange")
    + _hash_str("1")
    + (1337).to_bytes(32, "big")
    + bytes(32)  # verifyingContract 0x0, left-padded to a word
)
_AGENT_TYPE_HASH = _hash_str("Agent(string source,bytes32 connectionId)")
# typeHash || keccak(source), per network: only connectionId changes per request.
_AGENT_PREFIX = {
    True: _AGENT_TYPE_HASH + _hash_str("a"),
    False: _AGENT_TYPE_HASH + _hash_str("b"),
}
_DIGEST_PREFIX = b"\x19\x01" + _L1_DOMAIN_SEPARATOR


def recover_l1_signer(
    action: Mapping[str, Any],
    nonce: int,
    vault_address: str | None,
    expires_after: int | None,
    signature: Mapping[str, Any],
    *,
    mainnet: bool,
) -> str:
    """The lowercase 0x address that signed this L1 action (the user or one of its agents).

    ActionShapeError for a malformed action/nonce/vault/expiresAfter, SignatureError for a
    malformed signature. A valid-looking but wrong signature returns some other address.
    """
    connection_id = l1_connection_id(action, nonce, vault_address, expires_after)
    struct_hash = _keccak(_AGENT_PREFIX[bool(mainnet)] + connection_id)
    return _recover_digest(_keccak(_DIGEST_PREFIX + struct_hash), signature)


# --- user-signed actions -----------------------------------------------------------------------

_CHAIN = ("hyperliquidChain", "string")
_TRANSFER_FIELDS = [_CHAIN, ("destination", "string"), ("amount", "string"), ("time", "uint64")]

# action type -> (EIP-712 primaryType, [(field, type)] in signing order)
USER_SIGNED_TYPES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "approveAgent": (
        "HyperliquidTransaction:ApproveAgent",
        [_CHAIN, ("agentAddress", "address"), ("agentName", "string"), ("nonce", "uint64")],
    ),
    "usdSend": ("HyperliquidTransaction:UsdSend", list(_TRANSFER_FIELDS)),
    "withdraw3": ("HyperliquidTransaction:Withdraw", list(_TRANSFER_FIELDS)),
}

# Fields a client may leave out of the posted action, and the value it signed for them.
_SIGNED_DEFAULTS = {"agentName": ""}  # the SDK signs "" and drops it for an unnamed agent


def recover_user_signed_signer(
    action: Mapping[str, Any],
    signature: Mapping[str, Any],
    primary_type: str,
    fields: Sequence[tuple[str, str]],
) -> str:
    """The lowercase 0x address that signed a user-signed action (EIP-712 over its fields).

    The caller checks action["hyperliquidChain"] against its network and the nonce/time field
    against the outer nonce; this only recovers.
    """
    action = _obj(action, "action")
    chain_id_text = action.get("signatureChainId")
    if not isinstance(chain_id_text, str) or not _HEX_WORD.fullmatch(chain_id_text):
        raise ActionShapeError("action field 'signatureChainId' is not a 0x hex string")
    message: dict[str, Any] = {}
    for name, _ in fields:
        if name in action:
            message[name] = action[name]
        elif name in _SIGNED_DEFAULTS:
            message[name] = _SIGNED_DEFAULTS[name]
        else:
            raise ActionShapeError(f"{action.get('type', 'action')} is missing field {name!r}")
    v, r, s = parse_signature(signature)
    typed = {
        "domain": {
            "name": "HyperliquidSignTransaction",
            "version": "1",
            "chainId": int(chain_id_text, 16),
            "verifyingContract": _ZERO_ADDRESS,
        },
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            primary_type: [{"name": n, "type": t} for n, t in fields],
        },
        "primaryType": primary_type,
        "message": message,
    }
    try:
        signable = encode_typed_data(full_message=typed)
    except Exception as e:  # eth-account/eth-abi raise several types for a bad field value
        raise ActionShapeError(f"{primary_type} fields do not encode: {e}") from None
    try:
        address: str = Account.recover_message(signable, vrs=(v, r, s))
    except Exception:
        raise SignatureError("signature does not recover to any public key") from None
    return address.lower()
