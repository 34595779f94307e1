"""Server-side Hyperliquid signature recovery: the SDK's published vectors, canonical key order,
agreement with the official SDK's signer and eth-account's generic EIP-712 path, and clear
errors for malformed signatures and actions."""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hyperliquid.utils.signing import sign_agent, sign_l1_action

from engine.exchange import signing
from engine.exchange.signing import (
    USER_SIGNED_TYPES,
    ActionShapeError,
    SignatureError,
    l1_action_bytes,
    l1_connection_id,
    parse_signature,
    recover_l1_signer,
    recover_user_signed_signer,
)

# Key 0x0123456789012345678901234567890123456789012345678901234567890123 (SDK tests).
SIGNER = "0x14791697260e4c9a71f18484c9f997b308e59325"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
NUM = 1000 * 10**8  # float_to_int_for_hashing(1000)
DUMMY = {"type": "dummy", "num": NUM}
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"


def gtc_order(**extra: Any) -> dict[str, Any]:
    wire = {"a": 1, "b": True, "p": "100", "s": "100", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    wire.update(extra)
    return {"type": "order", "orders": [wire], "grouping": "na"}


def sig(r: str, s: str, v: int) -> dict[str, Any]:
    return {"r": r, "s": s, "v": v}


# (name, action, vault, expiresAfter, mainnet signature, testnet signature); nonce 0.
L1_VECTORS = [
    (
        "V1 dummy",
        DUMMY,
        None,
        sig(
            "0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
            "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8",
            27,
        ),
        sig(
            "0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
            "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613",
            28,
        ),
    ),
    (
        "V2 order",
        gtc_order(),
        None,
        sig(
            "0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
            "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e",
            28,
        ),
        sig(
            "0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
            "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5",
            27,
        ),
    ),
    (
        "V3 order with cloid",
        gtc_order(c="0x00000000000000000000000000000001"),
        None,
        sig(
            "0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
            "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da",
            27,
        ),
        sig(
            "0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
            "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988",
            28,
        ),
    ),
    (
        "V4 dummy with vault",
        DUMMY,
        VAULT,
        sig(
            "0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
            "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c",
            28,
        ),
        sig(
            "0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
            "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60",
            27,
        ),
    ),
    (
        "V5 trigger order",
        {
            "type": "order",
            "orders": [
                {
                    "a": 1,
                    "b": True,
                    "p": "100",
                    "s": "100",
                    "r": False,
                    "t": {"trigger": {"isMarket": True, "triggerPx": "103", "tpsl": "sl"}},
                }
            ],
            "grouping": "na",
        },
        None,
        sig(
            "0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9",
            "0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405",
            27,
        ),
        sig(
            "0x971c554d917c44e0e1b6cc45d8f9404f32172a9d3b3566262347d0302896a2e4",
            "0x206257b104788f80450f8e786c329daa589aa0b32ba96948201ae556d5637eac",
            28,
        ),
    ),
    (
        "V6 scheduleCancel without time",
        {"type": "scheduleCancel"},
        None,
        sig(
            "0x6cdfb286702f5917e76cd9b3b8bf678fcc49aec194c02a73e6d4f16891195df9",
            "0x6557ac307fa05d25b8d61f21fb8a938e703b3d9bf575f6717ba21ec61261b2a0",
            27,
        ),
        sig(
            "0xc75bb195c3f6a4e06b7d395acc20bbb224f6d23ccff7c6a26d327304e6efaeed",
            "0x342f8ede109a29f2c0723bd5efb9e9100e3bbb493f8fb5164ee3d385908233df",
            28,
        ),
    ),
    (
        "V7 scheduleCancel with time",
        {"type": "scheduleCancel", "time": 123456789},
        None,
        sig(
            "0x609cb20c737945d070716dcc696ba030e9976fcf5edad87afa7d877493109d55",
            "0x16c685d63b5c7a04512d73f183b3d7a00da5406ff1f8aad33f8ae2163bab758b",
            28,
        ),
        sig(
            "0x4e4f2dbd4107c69783e251b7e1057d9f2b9d11cee213441ccfa2be63516dc5bc",
            "0x706c656b23428c8ba356d68db207e11139ede1670481a9e01ae2dfcdb0e1a678",
            27,
        ),
    ),
    (
        "V8 createSubAccount",
        {"type": "createSubAccount", "name": "example"},
        None,
        sig(
            "0x51096fe3239421d16b671e192f574ae24ae14329099b6db28e479b86cdd6caa7",
            "0xb71f7d293af92d3772572afb8b102d167a7cef7473388286bc01f52a5c5b423",
            27,
        ),
        sig(
            "0xa699e3ed5c2b89628c746d3298b5dc1cca604694c2c855da8bb8250ec8014a5b",
            "0x53f1b8153a301c72ecc655b1c315d64e1dcea3ee58921fd7507e35818fcc1584",
            28,
        ),
    ),
    (
        "V9 subAccountTransfer",
        {
            "type": "subAccountTransfer",
            "subAccountUser": "0x1d9470d4b963f552e6f671a81619d395877bf409",
            "isDeposit": True,
            "usd": 10,
        },
        None,
        sig(
            "0x43592d7c6c7d816ece2e206f174be61249d651944932b13343f4d13f306ae602",
            "0x71a926cb5c9a7c01c3359ec4c4c34c16ff8107d610994d4de0e6430e5cc0f4c9",
            28,
        ),
        sig(
            "0xe26574013395ad55ee2f4e0575310f003c5bb3351b5425482e2969fa51543927",
            "0xefb08999196366871f919fd0e138b3a7f30ee33e678df7cfaf203e25f0a4278",
            28,
        ),
    ),
]


# --- the published vectors ---------------------------------------------------------------------


def test_v0_connection_id():
    action = {
        "type": "order",
        "orders": [
            {"a": 4, "b": True, "p": "1670.1", "s": "0.0147", "r": False,
             "t": {"limit": {"tif": "Ioc"}}},
        ],
        "grouping": "na",
    }  # fmt: skip
    assert (
        l1_connection_id(action, 1677777606040, None, None).hex()
        == "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908"
    )


def test_v2_msgpack_bytes_and_connection_id():
    assert l1_action_bytes(gtc_order()).hex() == (
        "83a474797065a56f72646572a66f72646572739186a16101a162c3a170a3313030a173a3313030a172c2"
        "a17481a56c696d697481a3746966a3477463a867726f7570696e67a26e61"
    )
    assert (
        l1_connection_id(gtc_order(), 0, None, None).hex()
        == "884f2c32bb6dbdd65f6033e32fb28c0cb6f5b345db0f6471fd3366d85c9252c1"
    )


@pytest.mark.parametrize(("name", "action", "vault", "main", "test"), L1_VECTORS)
def test_l1_vectors_recover_the_sdk_test_key(name, action, vault, main, test):
    assert recover_l1_signer(action, 0, vault, None, main, mainnet=True) == SIGNER, name
    assert recover_l1_signer(action, 0, vault, None, test, mainnet=False) == SIGNER, name
    # and the network matters: the other network's signature recovers someone else
    assert recover_l1_signer(action, 0, vault, None, main, mainnet=False) != SIGNER, name


def test_expires_after_vector():
    signature = sig(
        "0xc03cc6d997e2c4848c513247c4736a9e902d5238538cd5f293aae0ecfc78ccd9",
        "0x6be9de1144d933ab60393b638ec399fd9de6e2b56c0fcc9e075f5a963e5a812c",
        27,
    )
    assert recover_l1_signer(DUMMY, 0, None, 1000, signature, mainnet=True) == SIGNER
    assert recover_l1_signer(DUMMY, 0, None, None, signature, mainnet=True) != SIGNER


TRANSFER = {
    "destination": "0x5e9ee1089755c3435139848e47e6635505d5a13a",
    "amount": "1",
    "time": 1687816341423,
    "signatureChainId": "0x66eee",
    "hyperliquidChain": "Testnet",
}


def test_v10_usd_send():
    action = {"type": "usdSend", **TRANSFER}
    signature = sig(
        "0x637b37dd731507cdd24f46532ca8ba6eec616952c56218baeff04144e4a77073",
        "0x11a6a24900e6e314136d2592e2f8d502cd89b7c15b198e1bee043c9589f9fad7",
        27,
    )
    primary, fields = USER_SIGNED_TYPES["usdSend"]
    assert primary == "HyperliquidTransaction:UsdSend"
    assert recover_user_signed_signer(action, signature, primary, fields) == SIGNER
    mainnet = {**action, "hyperliquidChain": "Mainnet"}  # replay on the other network
    assert recover_user_signed_signer(mainnet, signature, primary, fields) != SIGNER


def test_v11_withdraw():
    action = {"type": "withdraw3", **TRANSFER}
    signature = sig(
        "0x8363524c799e90ce9bc41022f7c39b4e9bdba786e5f9c72b20e43e1462c37cf9",
        "0x58b1411a775938b83e29182e8ef74975f9054c8e97ebf5ec2dc8d51bfc893881",
        28,
    )
    primary, fields = USER_SIGNED_TYPES["withdraw3"]
    assert primary == "HyperliquidTransaction:Withdraw"
    assert recover_user_signed_signer(action, signature, primary, fields) == SIGNER


# --- canonical key order -----------------------------------------------------------------------

V2_MAINNET = L1_VECTORS[1][3]


def test_key_order_as_posted_does_not_matter_for_typed_actions():
    reordered = {
        "grouping": "na",
        "orders": [
            {"t": {"limit": {"tif": "Gtc"}}, "r": False, "s": "100", "p": "100", "b": True, "a": 1}
        ],
        "type": "order",
    }
    assert l1_action_bytes(reordered) == l1_action_bytes(gtc_order())
    assert recover_l1_signer(reordered, 0, None, None, V2_MAINNET, mainnet=True) == SIGNER


def test_a_changed_field_recovers_someone_else():
    changed = gtc_order()
    changed["orders"][0]["p"] = "101"
    other = recover_l1_signer(changed, 0, None, None, V2_MAINNET, mainnet=True)
    assert other != SIGNER
    assert other.startswith("0x") and len(other) == 42 and other == other.lower()
    assert recover_l1_signer(gtc_order(), 1, None, None, V2_MAINNET, mainnet=True) != SIGNER


def test_unknown_keys_of_typed_actions_are_not_hashed():
    # the real server deserializes into a struct; an extra key never reaches its hash
    extra = gtc_order(zz=1)
    extra["extra"] = True
    assert l1_action_bytes(extra) == l1_action_bytes(gtc_order())


def test_untyped_actions_are_hashed_as_received():
    name, _, _, main, _ = L1_VECTORS[7]
    assert name.startswith("V8")
    swapped = {"name": "example", "type": "createSubAccount"}
    assert recover_l1_signer(swapped, 0, None, None, main, mainnet=True) != SIGNER


def test_canonical_orders_of_the_other_types():
    def keys(action: dict[str, Any]) -> Any:
        import msgpack

        return msgpack.unpackb(l1_action_bytes(action))

    cancel = keys({"cancels": [{"f": True, "o": 5, "a": 1}], "type": "cancel"})
    assert list(cancel) == ["type", "cancels"] and list(cancel["cancels"][0]) == ["a", "o", "f"]
    by_cloid = keys({"cancels": [{"cloid": "0x01", "asset": 2}], "type": "cancelByCloid"})
    assert list(by_cloid["cancels"][0]) == ["asset", "cloid"]
    order = gtc_order()["orders"][0]
    modify = keys({"order": order, "oid": 7, "type": "modify"})
    assert list(modify) == ["type", "oid", "order"]
    batch = keys({"modifies": [{"a": True, "order": order, "oid": 7}], "type": "batchModify"})
    assert list(batch["modifies"][0]) == ["oid", "order", "a"]
    lev = keys({"leverage": 5, "isCross": True, "asset": 0, "type": "updateLeverage"})
    assert list(lev) == ["type", "asset", "isCross", "leverage"]
    assert list(keys({"time": 1, "type": "scheduleCancel"})) == ["type", "time"]
    trigger = {"trigger": {"tpsl": "tp", "triggerPx": "1", "isMarket": False}}
    wire = keys({**gtc_order(), "orders": [{"c": "0x01", **order, "t": trigger}]})["orders"][0]
    assert list(wire) == ["a", "b", "p", "s", "r", "t", "c"]
    assert list(wire["t"]["trigger"]) == ["isMarket", "triggerPx", "tpsl"]
    built = keys({"builder": {"f": 10, "b": "0xABCDEF0000000000000000000000000000000001"},
                  **gtc_order()})  # fmt: skip
    assert list(built) == ["type", "orders", "grouping", "builder"]
    assert built["builder"] == {"b": "0xabcdef0000000000000000000000000000000001", "f": 10}


# --- agreement with the official SDK's signer --------------------------------------------------


def random_wire(rng: random.Random, cloid: bool) -> dict[str, Any]:
    if rng.random() < 0.7:
        t: dict[str, Any] = {"limit": {"tif": rng.choice(["Alo", "Ioc", "Gtc"])}}
    else:
        t = {"trigger": {"isMarket": rng.random() < 0.5, "triggerPx": str(rng.randint(1, 9999)),
                         "tpsl": rng.choice(["tp", "sl"])}}  # fmt: skip
    wire = {
        "a": rng.randint(0, 200),
        "b": rng.random() < 0.5,
        "p": f"{rng.randint(1, 99999)}.{rng.randint(0, 9)}",
        "s": f"0.{rng.randint(1, 9999)}",
        "r": rng.random() < 0.2,
        "t": t,
    }
    if cloid:
        wire["c"] = f"0x{rng.getrandbits(128):032x}"
    return wire


def random_action(rng: random.Random, kind: int) -> dict[str, Any]:
    if kind == 0:
        n = rng.randint(1, 4)
        return {"type": "order", "orders": [random_wire(rng, False) for _ in range(n)],
                "grouping": "na"}  # fmt: skip
    if kind == 1:
        action = {"type": "order", "orders": [random_wire(rng, True)], "grouping": "na"}
        if rng.random() < 0.5:
            action["builder"] = {"b": f"0x{rng.getrandbits(160):040x}", "f": rng.randint(0, 100)}
        return action
    if kind == 2:
        n = rng.randint(1, 5)
        cancels = [{"a": rng.randint(0, 200), "o": rng.getrandbits(40)} for _ in range(n)]
        return {"type": "cancel", "cancels": cancels}
    if kind == 3:
        cloid = f"0x{rng.getrandbits(128):032x}"
        return {
            "type": "cancelByCloid",
            "cancels": [{"asset": rng.randint(0, 200), "cloid": cloid}],
        }
    if kind == 4:
        return {"type": "scheduleCancel"}
    if kind == 5:
        return {"type": "scheduleCancel", "time": rng.getrandbits(41)}
    if kind == 6:
        wire = random_wire(rng, rng.random() < 0.5)
        return {"type": "batchModify", "modifies": [{"oid": rng.getrandbits(40), "order": wire}]}
    if kind == 7:
        return {"type": "updateLeverage", "asset": rng.randint(0, 200), "isCross": True,
                "leverage": rng.randint(1, 50)}  # fmt: skip
    return {"type": "noop"}


def shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON with every object's keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def test_recovers_what_the_sdk_signed():
    rng = random.Random(20260822)
    for i in range(60):
        wallet = Account.create()
        action = random_action(rng, i % 9)
        nonce = 1_700_000_000_000 + rng.getrandbits(30)
        vault = f"0x{rng.getrandbits(160):040x}" if rng.random() < 0.3 else None
        expires = nonce + rng.randint(1, 60_000) if rng.random() < 0.3 else None
        mainnet = rng.random() < 0.5
        signature = sign_l1_action(wallet, action, vault, nonce, expires, mainnet)
        want = wallet.address.lower()
        got = recover_l1_signer(action, nonce, vault, expires, signature, mainnet=mainnet)
        assert got == want, action
        posted = shuffled(action, rng)  # as a client with another JSON key order posts it
        assert recover_l1_signer(posted, nonce, vault, expires, signature, mainnet=mainnet) == want
        assert recover_l1_signer(action, nonce, vault, expires, signature,
                                 mainnet=not mainnet) != want  # fmt: skip


def test_recovers_an_sdk_approve_agent_named_or_not():
    primary, fields = USER_SIGNED_TYPES["approveAgent"]
    assert primary == "HyperliquidTransaction:ApproveAgent"
    for name, mainnet in [("", True), ("bot valid_until 1790000000000", False), ("", False)]:
        master, agent = Account.create(), Account.create()
        action = {"type": "approveAgent", "agentAddress": agent.address, "agentName": name,
                  "nonce": 1_700_000_000_123}  # fmt: skip
        signature = sign_agent(master, action, mainnet)  # adds signatureChainId, hyperliquidChain
        if name == "":
            del action["agentName"]  # the SDK posts an unnamed agent without the field
        got = recover_user_signed_signer(action, signature, primary, fields)
        assert got == master.address.lower()


# --- agreement with eth-account's generic EIP-712 path -----------------------------------------


def agent_typed_data(connection_id: bytes, mainnet: bool) -> dict[str, Any]:
    return {
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
        "message": {"source": "a" if mainnet else "b", "connectionId": connection_id},
    }  # fmt: skip


def test_agrees_with_eth_accounts_generic_path():
    rng = random.Random(5)
    vectors = [(a, vault, m, True) for _, a, vault, m, _ in L1_VECTORS]
    vectors += [(a, vault, t, False) for _, a, vault, _, t in L1_VECTORS]
    for i in range(6):  # signatures from unrelated keys too
        action = random_action(rng, i)
        wallet = Account.create()
        vectors.append((action, None, sign_l1_action(wallet, action, None, 0, None, True), True))
    for action, vault, signature, mainnet in vectors:
        typed = agent_typed_data(l1_connection_id(action, 0, vault, None), mainnet)
        v, r, s = parse_signature(signature)
        generic = Account.recover_message(encode_typed_data(full_message=typed), vrs=(v, r, s))
        assert recover_l1_signer(action, 0, vault, None, signature, mainnet=mainnet) == (
            generic.lower()
        )


# --- signature formats -------------------------------------------------------------------------


def test_r_and_s_may_be_short_or_padded_and_v_may_be_0_or_1():
    _, action, _, main, _ = L1_VECTORS[0]  # V1 mainnet r has 63 digits
    assert len(main["r"]) == 65
    padded = {**main, "r": "0x" + main["r"][2:].rjust(64, "0")}
    assert recover_l1_signer(action, 0, None, None, padded, mainnet=True) == SIGNER
    upper = {**main, "s": "0x" + main["s"][2:].upper()}
    assert recover_l1_signer(action, 0, None, None, upper, mainnet=True) == SIGNER
    zero_one = {**main, "v": main["v"] - 27}
    assert recover_l1_signer(action, 0, None, None, zero_one, mainnet=True) == SIGNER


def test_high_s_is_recovered_like_eth_account_does():
    # (r, n - s, v ^ 1) is the same signature: it recovers the same signer (eth-account and
    # libsecp256k1 recovery accept it); with v unchanged it recovers someone else.
    action, main = gtc_order(), V2_MAINNET
    v, _, s = parse_signature(main)
    high = {"r": main["r"], "s": hex(N - s), "v": 27 if v == 28 else 28}
    assert recover_l1_signer(action, 0, None, None, high, mainnet=True) == SIGNER
    same_v = {**high, "v": v}
    assert recover_l1_signer(action, 0, None, None, same_v, mainnet=True) != SIGNER


def _not_an_x_coordinate() -> int:
    p = 2**256 - 2**32 - 977
    x = 1
    while pow((x**3 + 7) % p, (p - 1) // 2, p) == 1:
        x += 1
    return x


GOOD = {"r": "0x1", "s": "0x2", "v": 27}


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("0x" + "00" * 65, "signature is not an object"),
        ({"s": "0x2", "v": 27}, "signature is missing field 'r'"),
        ({"r": "0x1", "v": 27}, "signature is missing field 's'"),
        ({"r": "0x1", "s": "0x2"}, "signature is missing field 'v'"),
        ({**GOOD, "r": "0xzz"}, "signature.r is not a 0x hex string"),
        ({**GOOD, "r": "12ab"}, "signature.r is not a 0x hex string"),
        ({**GOOD, "r": "0x"}, "signature.r is not a 0x hex string"),
        ({**GOOD, "r": "0x" + "1" * 65}, "signature.r is not a 0x hex string"),
        ({**GOOD, "r": "0x_1"}, "signature.r is not a 0x hex string"),
        ({**GOOD, "s": 2}, "signature.s is not a 0x hex string"),
        ({**GOOD, "r": "0x0"}, "signature.r is zero or not below the curve order"),
        ({**GOOD, "s": "0x" + "0" * 64}, "signature.s is zero"),
        ({**GOOD, "s": hex(N)}, "signature.s is zero or not below the curve order"),
        ({**GOOD, "r": "0x" + "f" * 64}, "signature.r is zero or not below the curve order"),
        ({**GOOD, "v": 29}, "signature.v is not 27 or 28"),
        ({**GOOD, "v": "27"}, "signature.v is not 27 or 28"),
        ({**GOOD, "v": True}, "signature.v is not 27 or 28"),
        ({**GOOD, "r": hex(_not_an_x_coordinate())}, "does not recover to any public key"),
    ],
)
def test_malformed_signatures_say_what_is_wrong(signature, message):
    with pytest.raises(SignatureError, match=message.replace(".", r"\.")):
        recover_l1_signer(gtc_order(), 0, None, None, signature, mainnet=True)
    primary, fields = USER_SIGNED_TYPES["usdSend"]
    with pytest.raises(SignatureError, match=message.replace(".", r"\.")):
        recover_user_signed_signer({"type": "usdSend", **TRANSFER}, signature, primary, fields)


# --- malformed actions -------------------------------------------------------------------------


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({**gtc_order(), "orders": [_without(gtc_order()["orders"][0], "p")]},
         "order 0 is missing field 'p'"),
        ({**gtc_order(), "orders": [gtc_order()["orders"][0], {"a": 1}]},
         "order 1 is missing field 'b'"),
        (_without(gtc_order(), "grouping"), "order action is missing field 'grouping'"),
        ({**gtc_order(), "orders": "x"}, "orders is not a list"),
        ({**gtc_order(), "orders": [5]}, "order 0 is not an object"),
        ({**gtc_order(), "orders": [{**gtc_order()["orders"][0], "t": {}}]},
         "order 0 field 't' must hold exactly one of"),
        ({**gtc_order(), "orders": [{**gtc_order()["orders"][0], "t": {"trigger": {}}}]},
         "order 0 trigger is missing field 'isMarket'"),
        ({"type": "order", "orders": [], "grouping": "na", "builder": {"b": "0x1"}},
         "builder is missing field 'f'"),
        ({"type": "cancel", "cancels": [{"a": 1}]}, "cancel 0 is missing field 'o'"),
        ({"type": "cancelByCloid", "cancels": [{"asset": 1}]}, "cancel 0 is missing field 'cloid'"),
        ({"type": "modify", "oid": 1}, "modify action is missing field 'order'"),
        ({"type": "batchModify", "modifies": [{"oid": 1, "order": {}}]},
         "modify 0 order is missing field 'a'"),
        ({"type": "updateLeverage", "asset": 1, "isCross": True},
         "updateLeverage action is missing field 'leverage'"),
        ({"orders": []}, "action is missing field 'type'"),
        (["order"], "action is not an object"),
        ({"type": "dummy", "x": object()}, "action cannot be serialized"),
    ],
)  # fmt: skip
def test_malformed_actions_say_what_is_missing(action, message):
    with pytest.raises(ActionShapeError, match=message):
        recover_l1_signer(action, 0, None, None, V2_MAINNET, mainnet=True)


@pytest.mark.parametrize(
    ("nonce", "vault", "expires", "message"),
    [
        (-1, None, None, "nonce is not an integer"),
        (2**64, None, None, "nonce is not an integer"),
        (True, None, None, "nonce is not an integer"),
        ("0", None, None, "nonce is not an integer"),
        (0, "0x1234", None, "vaultAddress is not a 0x-prefixed 20-byte hex address"),
        (0, VAULT[2:], None, "vaultAddress is not"),
        (0, None, 1.5, "expiresAfter is not an integer"),
    ],
)
def test_malformed_nonce_vault_and_expiry(nonce, vault, expires, message):
    with pytest.raises(ActionShapeError, match=message):
        recover_l1_signer(gtc_order(), nonce, vault, expires, V2_MAINNET, mainnet=True)


def test_malformed_user_signed_actions():
    primary, fields = USER_SIGNED_TYPES["usdSend"]
    signature = {"r": "0x1", "s": "0x2", "v": 27}
    with pytest.raises(ActionShapeError, match="usdSend is missing field 'destination'"):
        recover_user_signed_signer(
            {"type": "usdSend", **_without(TRANSFER, "destination")}, signature, primary, fields
        )
    with pytest.raises(ActionShapeError, match="'signatureChainId' is not a 0x hex string"):
        recover_user_signed_signer(
            {"type": "usdSend", **_without(TRANSFER, "signatureChainId")}, signature, primary,
            fields,
        )  # fmt: skip
    primary, fields = USER_SIGNED_TYPES["approveAgent"]
    bad_address = {"type": "approveAgent", "agentAddress": "0x12", "nonce": 1,
                   "signatureChainId": "0x66eee", "hyperliquidChain": "Mainnet"}  # fmt: skip
    with pytest.raises(ActionShapeError, match="ApproveAgent fields do not encode"):
        recover_user_signed_signer(bad_address, signature, primary, fields)


def test_the_module_only_recovers():
    public = {n for n, v in vars(signing).items() if callable(v) and not n.startswith("_")}
    imported = {"Account", "PublicKey", "encode_typed_data", "Any", "Callable", "Mapping"}
    public -= imported | {"Sequence"}
    assert public == {
        "ActionShapeError",
        "SignatureError",
        "l1_action_bytes",
        "l1_connection_id",
        "parse_signature",
        "recover_l1_signer",
        "recover_user_signed_signer",
    }
    assert set(signing.__all__) == public | {"USER_SIGNED_TYPES"}
    assert not hasattr(signing, "PrivateKey")
