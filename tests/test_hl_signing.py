"""Hyperliquid signing, client side: the official SDK's vectors reproduced exactly (written out
from the reference, section 4), random actions signed as the SDK signs them, the key kept out of
every string, and nonces that never repeat."""

from __future__ import annotations

import itertools
import pickle
import threading

import eth_account
import msgpack
import pytest
from eth_account.messages import encode_typed_data
from hyperliquid.utils import signing as sdk
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.venues.hyperliquid.signing import (
    APPROVE_AGENT_FIELDS,
    APPROVE_AGENT_TYPE,
    NonceClock,
    Signer,
    batch_modify_action,
    cancel_action,
    cancel_by_cloid_action,
    connection_id,
    keccak256,
    l1_digest,
    noop_action,
    order_action,
    order_wire,
    schedule_cancel_action,
    update_leverage_action,
)

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
ADDRESS = "0x14791697260E4c9A71f18484C9f997B308e59325"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SIGNER = Signer(KEY)
WALLET = eth_account.Account.from_key(KEY)


def sig(r: str, s: str, v: int) -> dict:
    return {"r": r, "s": s, "v": v}


# --- the vectors (reference section 4), every action written out literally ---

DUMMY = {"type": "dummy", "num": 100000000000}  # float_to_int_for_hashing(1000)
ORDER_100 = {
    "type": "order",
    "orders": [
        {"a": 1, "b": True, "p": "100", "s": "100", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    ],
    "grouping": "na",
}
ORDER_100_CLOID = {
    "type": "order",
    "orders": [
        {"a": 1, "b": True, "p": "100", "s": "100", "r": False, "t": {"limit": {"tif": "Gtc"}},
         "c": "0x00000000000000000000000000000001"},
    ],
    "grouping": "na",
}  # fmt: skip
TRIGGER = {
    "type": "order",
    "orders": [
        {"a": 1, "b": True, "p": "100", "s": "100", "r": False,
         "t": {"trigger": {"isMarket": True, "triggerPx": "103", "tpsl": "sl"}}},
    ],
    "grouping": "na",
}  # fmt: skip
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"

L1_VECTORS = [
    # name, action, vault, (mainnet r, s, v), (testnet r, s, v)
    ("V1 dummy", DUMMY, None,
     sig("0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298",
         "0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8", 27),
     sig("0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510",
         "0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613", 28)),
    ("V2 order", ORDER_100, None,
     sig("0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e",
         "0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e", 28),
     sig("0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54",
         "0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5", 27)),
    ("V3 order with cloid", ORDER_100_CLOID, None,
     sig("0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3",
         "0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da", 27),
     sig("0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d",
         "0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988", 28)),
    ("V4 dummy for a vault", DUMMY, VAULT,
     sig("0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239",
         "0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c", 28),
     sig("0xe281d2fb5c6e25ca01601f878e4d69c965bb598b88fac58e475dd1f5e56c362b",
         "0x7ddad27e9a238d045c035bc606349d075d5c5cd00a6cd1da23ab5c39d4ef0f60", 27)),
    ("V5 trigger order", TRIGGER, None,
     sig("0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9",
         "0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405", 27),
     sig("0x971c554d917c44e0e1b6cc45d8f9404f32172a9d3b3566262347d0302896a2e4",
         "0x206257b104788f80450f8e786c329daa589aa0b32ba96948201ae556d5637eac", 28)),
    ("V6 scheduleCancel, no time", {"type": "scheduleCancel"}, None,
     sig("0x6cdfb286702f5917e76cd9b3b8bf678fcc49aec194c02a73e6d4f16891195df9",
         "0x6557ac307fa05d25b8d61f21fb8a938e703b3d9bf575f6717ba21ec61261b2a0", 27),
     sig("0xc75bb195c3f6a4e06b7d395acc20bbb224f6d23ccff7c6a26d327304e6efaeed",
         "0x342f8ede109a29f2c0723bd5efb9e9100e3bbb493f8fb5164ee3d385908233df", 28)),
    ("V7 scheduleCancel with time", {"type": "scheduleCancel", "time": 123456789}, None,
     sig("0x609cb20c737945d070716dcc696ba030e9976fcf5edad87afa7d877493109d55",
         "0x16c685d63b5c7a04512d73f183b3d7a00da5406ff1f8aad33f8ae2163bab758b", 28),
     sig("0x4e4f2dbd4107c69783e251b7e1057d9f2b9d11cee213441ccfa2be63516dc5bc",
         "0x706c656b23428c8ba356d68db207e11139ede1670481a9e01ae2dfcdb0e1a678", 27)),
    ("V8 createSubAccount", {"type": "createSubAccount", "name": "example"}, None,
     sig("0x51096fe3239421d16b671e192f574ae24ae14329099b6db28e479b86cdd6caa7",
         "0xb71f7d293af92d3772572afb8b102d167a7cef7473388286bc01f52a5c5b423", 27),
     sig("0xa699e3ed5c2b89628c746d3298b5dc1cca604694c2c855da8bb8250ec8014a5b",
         "0x53f1b8153a301c72ecc655b1c315d64e1dcea3ee58921fd7507e35818fcc1584", 28)),
    ("V9 subAccountTransfer",
     {"type": "subAccountTransfer", "subAccountUser": "0x1d9470d4b963f552e6f671a81619d395877bf409",
      "isDeposit": True, "usd": 10}, None,
     sig("0x43592d7c6c7d816ece2e206f174be61249d651944932b13343f4d13f306ae602",
         "0x71a926cb5c9a7c01c3359ec4c4c34c16ff8107d610994d4de0e6430e5cc0f4c9", 28),
     sig("0xe26574013395ad55ee2f4e0575310f003c5bb3351b5425482e2969fa51543927",
         "0xefb08999196366871f919fd0e138b3a7f30ee33e678df7cfaf203e25f0a4278", 28)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("action", "vault", "mainnet", "testnet"),
    [v[1:] for v in L1_VECTORS],
    ids=[v[0] for v in L1_VECTORS],
)
def test_l1_vectors(action: dict, vault: str | None, mainnet: dict, testnet: dict):
    assert SIGNER.sign_l1(action, 0, vault_address=vault, mainnet=True) == mainnet
    assert SIGNER.sign_l1(action, 0, vault_address=vault, mainnet=False) == testnet


def test_v0_connection_id():
    action = {
        "type": "order",
        "orders": [{"a": 4, "b": True, "p": "1670.1", "s": "0.0147", "r": False,
                    "t": {"limit": {"tif": "Ioc"}}}],
        "grouping": "na",
    }  # fmt: skip
    assert connection_id(action, 1677777606040).hex() == (
        "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908"
    )
    built = order_action([order_wire(4, True, "1670.1", "0.0147", False, "Ioc")])
    assert msgpack.packb(built) == msgpack.packb(action)


def test_v2_msgpack_and_connection_id():
    assert msgpack.packb(ORDER_100).hex() == (
        "83a474797065a56f72646572a66f72646572739186a16101a162c3a170a3313030a173a3313030a172c2a17481"
        "a56c696d697481a3746966a3477463a867726f7570696e67a26e61"
    )
    assert connection_id(ORDER_100, 0).hex() == (
        "884f2c32bb6dbdd65f6033e32fb28c0cb6f5b345db0f6471fd3366d85c9252c1"
    )
    built = order_action([order_wire(1, True, "100", "100", False, "Gtc")])
    assert msgpack.packb(built) == msgpack.packb(ORDER_100)
    with_cloid = order_action(
        [order_wire(1, True, "100", "100", False, "Gtc", "0x00000000000000000000000000000001")]
    )
    assert msgpack.packb(with_cloid) == msgpack.packb(ORDER_100_CLOID)


def test_expires_after_vector():
    assert SIGNER.sign_l1(DUMMY, 0, expires_after=1000, mainnet=True) == sig(
        "0xc03cc6d997e2c4848c513247c4736a9e902d5238538cd5f293aae0ecfc78ccd9",
        "0x6be9de1144d933ab60393b638ec399fd9de6e2b56c0fcc9e075f5a963e5a812c",
        27,
    )


USD_SEND_FIELDS = [
    ("hyperliquidChain", "string"),
    ("destination", "string"),
    ("amount", "string"),
    ("time", "uint64"),
]


def _transfer(kind: str) -> dict:
    return {
        "type": kind,
        "signatureChainId": "0x66eee",
        "hyperliquidChain": "Testnet",
        "destination": "0x5e9ee1089755c3435139848e47e6635505d5a13a",
        "amount": "1",
        "time": 1687816341423,
    }


def test_v10_usd_send():
    signature = SIGNER.sign_user(
        _transfer("usdSend"), "HyperliquidTransaction:UsdSend", USD_SEND_FIELDS
    )
    assert signature == sig(
        "0x637b37dd731507cdd24f46532ca8ba6eec616952c56218baeff04144e4a77073",
        "0x11a6a24900e6e314136d2592e2f8d502cd89b7c15b198e1bee043c9589f9fad7",
        27,
    )


def test_v11_withdraw():
    signature = SIGNER.sign_user(
        _transfer("withdraw3"), "HyperliquidTransaction:Withdraw", USD_SEND_FIELDS
    )
    assert signature == sig(
        "0x8363524c799e90ce9bc41022f7c39b4e9bdba786e5f9c72b20e43e1462c37cf9",
        "0x58b1411a775938b83e29182e8ef74975f9054c8e97ebf5ec2dc8d51bfc893881",
        28,
    )


def test_address_of_the_vector_key():
    assert SIGNER.address == ADDRESS.lower()
    assert Signer(KEY[2:]).address == ADDRESS.lower()
    assert Signer(KEY.upper().replace("0X", "0x") + "\n").address == ADDRESS.lower()


def test_r_and_s_are_unpadded_hex_like_the_sdk():
    # V1 mainnet's r has 63 digits: the SDK's to_hex drops the leading zero, and so do we.
    r = SIGNER.sign_l1(DUMMY, 0, mainnet=True)["r"]
    assert len(r) == 2 + 63 and not r.startswith("0x0")


# --- the precomputed EIP-712 hashing against eth-account's own encoding ---


@pytest.mark.parametrize("mainnet", [True, False])
def test_digest_matches_eth_account_typed_data(mainnet: bool):
    vault, nonce, expires = VAULT, 1_700_000_000_123, 1_700_000_060_000
    cid = sdk.action_hash(ORDER_100_CLOID, vault, nonce, expires)
    assert connection_id(ORDER_100_CLOID, nonce, vault, expires) == cid
    payload = sdk.l1_payload(sdk.construct_phantom_agent(cid, mainnet))
    m = encode_typed_data(full_message=payload)
    expected = keccak256(b"\x19" + m.version + m.header + m.body)
    got = l1_digest(
        ORDER_100_CLOID, nonce, vault_address=vault, expires_after=expires, mainnet=mainnet
    )
    assert got == expected


# --- random actions: identical signatures to the SDK's sign_l1_action ---

cloids = st.integers(0, 2**128 - 1).map(lambda n: f"{n:#034x}")
prices = st.decimals(min_value="0.000001", max_value="1000000", places=6).map(
    lambda d: sdk.float_to_wire(float(d))
)
sizes = st.decimals(min_value="0.00001", max_value="100000", places=5).map(
    lambda d: sdk.float_to_wire(float(d))
)
wires = st.builds(
    order_wire,
    st.integers(0, 300),
    st.booleans(),
    prices,
    sizes,
    st.booleans(),
    st.sampled_from(["Alo", "Ioc", "Gtc"]),
    st.none() | cloids,
)
actions = st.one_of(
    st.lists(wires, min_size=1, max_size=4).map(order_action),
    st.lists(st.tuples(st.integers(0, 300), st.integers(0, 2**63 - 1)), max_size=4).map(
        cancel_action
    ),
    st.lists(st.tuples(st.integers(0, 300), cloids), max_size=4).map(cancel_by_cloid_action),
    st.lists(st.tuples(st.integers(0, 2**63 - 1) | cloids, wires), max_size=3).map(
        batch_modify_action
    ),
    st.none().map(lambda _: noop_action()),
    (st.none() | st.integers(0, 2**63 - 1)).map(schedule_cancel_action),
    st.builds(update_leverage_action, st.integers(0, 300), st.booleans(), st.integers(1, 50)),
)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@settings(max_examples=60, deadline=None)
@given(
    action=actions,
    nonce=st.integers(0, 2**64 - 1),
    vault=st.none() | addresses,
    expires=st.none() | st.integers(0, 2**64 - 1),
    mainnet=st.booleans(),
    key=st.integers(1, N - 1),
)
def test_random_actions_sign_as_the_sdk_does(action, nonce, vault, expires, mainnet, key):
    private = f"{key:064x}"
    ours = Signer(private).sign_l1(
        action, nonce, vault_address=vault, expires_after=expires, mainnet=mainnet
    )
    wallet = eth_account.Account.from_key("0x" + private)
    assert ours == sdk.sign_l1_action(wallet, action, vault, nonce, expires, mainnet)
    recovered = sdk.recover_agent_or_user_from_l1_action(
        action, ours, vault, nonce, expires, mainnet
    )
    assert recovered.lower() == Signer(private).address
    assert int(ours["s"], 16) <= N // 2  # low s


@settings(max_examples=30, deadline=None)
@given(
    px=st.decimals(min_value="0.000001", max_value="1000000", places=6),
    sz=st.decimals(min_value="0.00001", max_value="100000", places=5),
    asset=st.integers(0, 300),
    is_buy=st.booleans(),
    reduce_only=st.booleans(),
    tif=st.sampled_from(["Alo", "Ioc", "Gtc"]),
    cloid=st.none() | cloids,
)
def test_builders_pack_as_the_sdk_builds(px, sz, asset, is_buy, reduce_only, tif, cloid):
    request = {
        "coin": "X",
        "is_buy": is_buy,
        "sz": float(sz),
        "limit_px": float(px),
        "order_type": {"limit": {"tif": tif}},
        "reduce_only": reduce_only,
    }
    if cloid is not None:
        request["cloid"] = sdk.Cloid(cloid)
    theirs = sdk.order_wires_to_order_action([sdk.order_request_to_order_wire(request, asset)])
    px_wire, sz_wire = sdk.float_to_wire(float(px)), sdk.float_to_wire(float(sz))
    ours = order_action([order_wire(asset, is_buy, px_wire, sz_wire, reduce_only, tif, cloid)])
    assert msgpack.packb(ours) == msgpack.packb(theirs)


def test_builders_key_order():
    wire = order_wire(3, False, "1.5", "2", True, "Alo", "0x" + "ab" * 16)
    assert list(wire) == ["a", "b", "p", "s", "r", "t", "c"]
    assert list(order_action([wire])) == ["type", "orders", "grouping"]
    assert cancel_action([(3, 17)]) == {"type": "cancel", "cancels": [{"a": 3, "o": 17}]}
    assert list(cancel_by_cloid_action([(3, "0x" + "00" * 16)])["cancels"][0]) == ["asset", "cloid"]
    modify = batch_modify_action([(17, wire)])
    assert list(modify) == ["type", "modifies"] and list(modify["modifies"][0]) == ["oid", "order"]
    assert list(schedule_cancel_action(5)) == ["type", "time"]
    assert schedule_cancel_action(None) == {"type": "scheduleCancel"}
    assert noop_action() == {"type": "noop"}
    assert list(update_leverage_action(1, True, 5)) == ["type", "asset", "isCross", "leverage"]


# --- user-signed: approveAgent against the SDK's sign_agent ---


@pytest.mark.parametrize("mainnet", [True, False])
def test_approve_agent_signs_as_the_sdk_does(mainnet: bool):
    from engine.venues.hyperliquid.signing import approve_agent_action

    agent = eth_account.Account.from_key("0x" + "11" * 32).address  # checksummed, as the SDK has it
    nonce = 1_700_000_000_000
    theirs = sdk.sign_agent(
        WALLET,
        {"type": "approveAgent", "agentAddress": agent, "agentName": "perpdesk", "nonce": nonce},
        mainnet,
    )
    action = approve_agent_action(agent, "perpdesk", nonce, mainnet=mainnet)
    assert SIGNER.sign_user(action, APPROVE_AGENT_TYPE, APPROVE_AGENT_FIELDS) == theirs


def test_user_signed_action_missing_a_field_is_refused():
    action = _transfer("usdSend")
    del action["amount"]
    with pytest.raises(ValueError, match="amount"):
        SIGNER.sign_user(action, "HyperliquidTransaction:UsdSend", USD_SEND_FIELDS)


# --- the key stays secret ---


def _forms(key: str) -> list[str]:
    bare = key.removeprefix("0x")
    return [bare.lower(), bare.upper(), bare[:16].lower(), bare[-16:].lower()]


def test_key_not_in_repr_or_str():
    for text in (repr(SIGNER), str(SIGNER), f"{SIGNER}", repr([SIGNER])):
        assert ADDRESS.lower() in text
        assert not any(form in text.lower() for form in _forms(KEY))
    assert not hasattr(SIGNER, "__dict__")


def test_signer_is_not_pickled():
    with pytest.raises(TypeError):
        pickle.dumps(SIGNER)


@pytest.mark.parametrize(
    "bad",
    [
        KEY[:-1] + "g",  # not hex
        KEY + "00",  # too long
        KEY[:-2],  # too short
        "0x" + "00" * 32,  # zero
        f"0x{N:064x}",  # the group order
        f"0x{N + 5:064x}",  # above it
        KEY[:10] + " " + KEY[11:],  # a space inside
    ],
    ids=["not-hex", "long", "short", "zero", "order", "above-order", "space"],
)
def test_bad_key_errors_name_the_problem_not_the_key(bad: str):
    with pytest.raises(ValueError) as info:
        Signer(bad)
    message = str(info.value)
    assert message.startswith("private key:") and "\n" not in message
    assert not any(form in message.lower() for form in _forms(bad))
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_non_text_key_is_refused():
    with pytest.raises(ValueError, match="expected hex text, got bytes"):
        Signer(bytes.fromhex(KEY[2:]))  # type: ignore[arg-type]


# --- nonces ---


def test_nonce_clock_follows_the_clock_and_never_repeats():
    now = [1_000]
    clock = NonceClock(lambda: now[0])
    assert clock.next() == 1_000
    assert clock.next() == 1_001  # same millisecond
    now[0] = 5_000
    assert clock.next() == 5_000
    now[0] = 2_000  # the wall clock steps back
    assert [clock.next() for _ in range(3)] == [5_001, 5_002, 5_003]
    now[0] = 5_002  # comes back, still behind the counter
    assert clock.next() == 5_004
    now[0] = 9_000
    assert clock.next() == 9_000
    assert clock.last == 9_000


def test_nonce_clock_resumes_after_last():
    assert NonceClock(lambda: 100, last=500).next() == 501


@given(st.lists(st.integers(0, 10**13), min_size=1, max_size=200))
def test_nonce_clock_is_strictly_increasing_for_any_clock(readings: list[int]):
    it = iter(readings)
    clock = NonceClock(lambda: next(it))
    nonces = [clock.next() for _ in readings]
    assert all(b > a for a, b in itertools.pairwise(nonces))
    assert all(n >= r for n, r in zip(nonces, readings, strict=True))


def test_nonce_clock_unique_across_threads():
    clock = NonceClock()
    seen: list[list[int]] = [[] for _ in range(4)]

    def take(out: list[int]) -> None:
        for _ in range(5_000):
            out.append(clock.next())

    threads = [threading.Thread(target=take, args=(out,)) for out in seen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [n for out in seen for n in out]
    assert len(set(everything)) == len(everything)
    assert all(out == sorted(out) for out in seen)
