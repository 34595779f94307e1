"""Hyperliquid credentials and safety settings: the key from an owner-only file or the
environment (never a config file), never shown anywhere; the master account; mainnet only when
the config file says so; the venue's URLs; BTC-PERP as the coin BTC."""

from __future__ import annotations

import io
import os
import traceback
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.config import (
    ConfigError,
    VenueSettings,
    hyperliquid_coin,
    load_settings,
    settings_as_toml,
    venue_urls,
)
from engine.venues.hyperliquid.credentials import (
    ENV_VAR,
    CredentialsError,
    is_agent,
    load_signer,
)
from engine.venues.hyperliquid.signing import Signer
from tui.cli import main

# Two throwaway keys. The account is KEY's own address (the master key case); AGENT_KEY signs
# for it as an API wallet.
KEY = "0x" + "4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"
AGENT_KEY = "e908f86dbb4d55ac876378565aafeabc187f6690f046459397b17d9b9a19688e"
ACCOUNT = Signer(KEY).address
KEY_TEXTS = (KEY, KEY[2:], AGENT_KEY)

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def key_file(tmp_path: Path, text: str = KEY, mode: int = 0o600, name: str = "agent.key") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    assert path.stat().st_mode & 0o777 == mode  # the bits, not access: tests may run as root
    return path


def venue(**values: object) -> VenueSettings:
    return VenueSettings.model_validate(
        {"name": "hyperliquid", "account_address": ACCOUNT, **values}
    )


def refused(settings: VenueSettings, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(CredentialsError) as caught:
        load_signer(settings, environ={} if environ is None else environ)
    err = caught.value
    # Nothing chained: above all not the key parser's error, whose frames held the key.
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    if "not a private key" in str(err):
        assert err.__context__ is None
    line = one_line_without_keys(err)
    # Nor in the traceback from load_signer on, even one showing every frame's local variables
    # (the first frame is this test's, which holds the key in plain text itself).
    assert err.__traceback__ is not None
    shown = "".join(
        traceback.TracebackException(
            type(err), err, err.__traceback__.tb_next, capture_locals=True
        ).format()
    )
    assert "load_signer" in shown
    assert not any(key.lower() in shown.lower() for key in KEY_TEXTS), shown
    return line


def one_line_without_keys(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and text
    assert not any(key.lower() in text.lower() for key in KEY_TEXTS), text
    return text


def problem(path: Path | None, env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env)
    assert len(caught.value.problems) == 1
    return one_line_without_keys(caught.value)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "perpdesk.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


# --- the key file --------------------------------------------------------------------------


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_an_owner_only_key_file_gives_the_signer(tmp_path: Path, mode: int) -> None:
    path = key_file(tmp_path, KEY + "\n", mode)
    signer = load_signer(venue(secret_key_file=str(path)), environ={})
    assert signer.address == ACCOUNT
    assert not is_agent(signer, ACCOUNT)  # the master key itself is fine


def test_a_key_file_may_hold_the_key_without_0x(tmp_path: Path) -> None:
    path = key_file(tmp_path, AGENT_KEY)
    signer = load_signer(venue(secret_key_file=str(path)), environ={})
    assert signer.address == Signer(AGENT_KEY).address
    assert is_agent(signer, ACCOUNT)  # an API wallet signing for the account


def test_a_key_file_path_may_start_with_the_home_directory(
    tmp_path: Path, _private_home: Path
) -> None:
    key_file(_private_home, KEY, name="hl.key")
    signer = load_signer(venue(secret_key_file="~/hl.key"), environ={})
    assert signer.address == ACCOUNT


@posix_only
@pytest.mark.parametrize(("mode", "access"), [(0o640, "read"), (0o644, "read"), (0o620, "change")])
def test_a_key_file_others_can_access_is_refused_with_the_chmod_to_run(
    tmp_path: Path, mode: int, access: str
) -> None:
    path = key_file(tmp_path, mode=mode)
    line = refused(venue(secret_key_file=str(path)))
    assert line == (
        f"venue.secret_key_file = {path}: other users can {access} it (mode {mode:o});"
        f" a private key must be its owner's only: run chmod 600 {path}"
    )


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.key"
    assert refused(venue(secret_key_file=str(path))) == (
        f"venue.secret_key_file = {path}: not found"
    )


def test_a_directory_is_not_a_key_file(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir(mode=0o700)
    line = refused(venue(secret_key_file=str(tmp_path / "keys")))
    assert line == f"venue.secret_key_file = {tmp_path / 'keys'}: not a regular file"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("my seed words are hunter2 and more", "expected 64 hex digits, got 34 characters"),
        (KEY[2:-1] + "z", "not hexadecimal"),
        (KEY + "\n" + AGENT_KEY + "\n", "expected 64 hex digits, got 129 characters"),
        ("0" * 64, "out of range for secp256k1"),
        ("\u00e9" * 32, "not hexadecimal"),  # 64 bytes of UTF-8, not ASCII
    ],
)
def test_a_key_file_without_a_key_is_refused_without_echoing_it(
    tmp_path: Path, content: str, reason: str
) -> None:
    path = key_file(tmp_path, content)
    line = refused(venue(secret_key_file=str(path)))
    assert line.startswith(f"venue.secret_key_file = {path}: not a private key ({reason}")
    assert "hunter2" not in line and "\u00e9" not in line


def test_an_empty_or_huge_key_file_is_refused(tmp_path: Path) -> None:
    empty = key_file(tmp_path, "", name="empty.key")
    assert refused(venue(secret_key_file=str(empty))) == (
        f"venue.secret_key_file = {empty}: empty; it must hold the key, 64 hex digits"
    )
    huge = key_file(tmp_path, KEY * 100, name="huge.key")
    assert refused(venue(secret_key_file=str(huge))) == (
        f"venue.secret_key_file = {huge}: 6600 bytes, not a private key (64 hex digits)"
    )


# --- the environment -----------------------------------------------------------------------


def test_the_key_from_the_environment_gives_the_signer(tmp_path: Path) -> None:
    assert load_signer(venue(), environ={ENV_VAR: AGENT_KEY}).address == Signer(AGENT_KEY).address
    assert load_signer(venue(), environ={ENV_VAR.lower(): KEY}).address == ACCOUNT
    # Through load_settings, as the console reads it: the variable lands in venue.secret_key.
    env = {ENV_VAR: KEY, "PERPDESK_VENUE__NAME": "hyperliquid"}
    env["PERPDESK_VENUE__ACCOUNT_ADDRESS"] = ACCOUNT.upper().replace("0X", "0x")
    settings = load_settings(None, env=env)
    assert settings.venue.account_address == ACCOUNT  # stored lowercase
    assert load_signer(settings.venue, environ={}).address == ACCOUNT


def test_a_bad_key_in_the_environment_names_the_variable_not_the_key() -> None:
    line = refused(venue(), environ={ENV_VAR: AGENT_KEY[:-2] + "xx"})
    assert line == f"{ENV_VAR}: not a private key (not hexadecimal)"
    settings = load_settings(None, env={ENV_VAR: KEY[:40]})
    assert refused(settings.venue.model_copy(update={"account_address": ACCOUNT})) == (
        f"{ENV_VAR}: not a private key (expected 64 hex digits, got 38 characters)"
    )


def test_os_environ_is_read_when_no_environment_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, AGENT_KEY)
    assert load_signer(venue()).address == Signer(AGENT_KEY).address


# --- exactly one key, and the account ------------------------------------------------------


def test_two_keys_are_refused(tmp_path: Path) -> None:
    path = key_file(tmp_path)
    line = refused(venue(secret_key_file=str(path)), environ={ENV_VAR: AGENT_KEY})
    assert line == f"two private keys: venue.secret_key_file and {ENV_VAR} are both set; keep one"


def test_no_key_names_both_ways_to_give_one() -> None:
    line = refused(venue())
    assert "venue.secret_key_file" in line and ENV_VAR in line
    assert line.startswith("no private key for hyperliquid: ")


def test_the_account_address_is_required(tmp_path: Path) -> None:
    path = key_file(tmp_path)
    line = refused(venue(secret_key_file=str(path), account_address=None))
    assert line.startswith("venue.account_address is not set: ")


@pytest.mark.parametrize("bad", ["0x12ab", "12ab" * 10, "0x" + "g" * 40, KEY])
def test_a_bad_account_address_is_one_line(tmp_path: Path, bad: str) -> None:
    path = write_config(tmp_path, f'[venue]\naccount_address = "{bad}"\n')
    line = problem(path, {})
    assert line.startswith("venue.account_address = ")
    assert line.endswith(": must be an address: 0x and 40 hex digits (the master account's)")
    if bad == KEY:  # a private key pasted in the wrong place is not echoed
        assert line == (
            "venue.account_address = ********: must be an address: 0x and 40 hex digits"
            " (the master account's)"
        )


def test_a_key_pasted_as_the_key_file_path_is_refused_and_not_echoed() -> None:
    line = problem(None, {"PERPDESK_VENUE__SECRET_KEY_FILE": KEY})
    assert line == (
        "venue.secret_key_file = ********: is a private key, not a path: put the key in a file"
        " only you can read and name the file here (from PERPDESK_VENUE__SECRET_KEY_FILE)"
    )
    with pytest.raises(ValidationError) as caught:  # built directly, not by load_settings
        VenueSettings(account_address=KEY)
    assert KEY[2:] not in str(caught.value)


# --- never a config file, never shown ------------------------------------------------------


@posix_only
@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_a_config_file_may_not_hold_the_key(tmp_path: Path, mode: int) -> None:
    path = write_config(tmp_path, f'[venue]\nname = "hyperliquid"\nsecret_key = "{KEY}"\n')
    path.chmod(mode)
    assert problem(path, {}) == (
        f"config file {path}: venue.secret_key must not be in a config file; remove it and set"
        f" {ENV_VAR} or venue.secret_key_file (a key file only you can read)"
    )


def test_perpdesk_config_never_shows_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_VAR, KEY)
    monkeypatch.setenv("PERPDESK_VENUE__ACCOUNT_ADDRESS", ACCOUNT)
    monkeypatch.setenv("PERPDESK_VENUE__SECRET_KEY_FILE", str(tmp_path / "agent.key"))
    assert main(["config"]) == 0
    out, err = capsys.readouterr()
    assert not any(key in out + err for key in KEY_TEXTS)
    assert '# secret_key = "********" (set)' in out
    assert f'secret_key_file = "{tmp_path / "agent.key"}"' in out  # a path may show
    assert f'account_address = "{ACCOUNT}"' in out


def test_settings_never_show_the_key_in_repr_or_dump() -> None:
    settings = load_settings(None, env={ENV_VAR: KEY})
    assert settings.venue.secret_key is not None
    assert settings.venue.secret_key.get_secret_value() == KEY
    for text in (
        repr(settings),
        str(settings),
        repr(settings.venue),
        settings.model_dump_json(),
        str(settings.model_dump()),
        settings_as_toml(settings),
        repr(load_signer(settings.venue.model_copy(update={"account_address": ACCOUNT}), {})),
    ):
        assert not any(key in text for key in KEY_TEXTS), text


def test_a_crash_screen_showing_locals_never_shows_the_key(tmp_path: Path) -> None:
    # Textual's crash screen is a rich traceback with show_locals: render one.
    from rich.console import Console
    from rich.traceback import Traceback

    cases = [
        (venue(secret_key_file=str(key_file(tmp_path, KEY[:-1] + "z"))), {}),
        (venue(), {ENV_VAR: AGENT_KEY[:-1] + "z", "OTHER": "x"}),
        (venue(secret_key_file=str(tmp_path / "agent.key")), {ENV_VAR: AGENT_KEY}),
    ]
    for settings, environ in cases:
        with pytest.raises(CredentialsError) as caught:
            load_signer(settings, environ=environ)
        assert caught.value.__traceback__ is not None
        screen = io.StringIO()
        Console(file=screen, width=200).print(
            Traceback.from_exception(
                type(caught.value),
                caught.value,
                caught.value.__traceback__.tb_next,  # from load_signer on
                show_locals=True,
            )
        )
        shown = screen.getvalue().lower()
        assert "load_signer" in shown
        assert not any(key[2:].lower()[:20] in shown for key in KEY_TEXTS), shown


# --- mainnet only when the file says so ----------------------------------------------------


def test_mainnet_from_the_environment_alone_is_refused(tmp_path: Path) -> None:
    env = {"PERPDESK_VENUE__NETWORK": "mainnet"}
    assert problem(None, env) == (
        'venue.network = "mainnet" (from PERPDESK_VENUE__NETWORK): mainnet must be set in the'
        ' config file itself, not the environment; put network = "mainnet" under [venue] in'
        " the config file (perpdesk.toml or --config)"
    )
    path = write_config(tmp_path, '[venue]\nname = "hyperliquid"\nnetwork = "testnet"\n')
    line = problem(path, env)
    assert line.endswith(f'put network = "mainnet" under [venue] in {path}')
    assert problem(path, {"PERPDESK_VENUE": '{"network": "mainnet"}'}).startswith(
        'venue.network = "mainnet" (from PERPDESK_VENUE): '
    )


def test_mainnet_in_the_file_is_accepted(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[venue]\nname = "hyperliquid"\nnetwork = "mainnet"\n')
    assert load_settings(path, env={}).venue.network == "mainnet"
    again = load_settings(path, env={"PERPDESK_VENUE__NETWORK": "mainnet"})
    assert again.venue.network == "mainnet"
    # The environment may still step down from it.
    assert load_settings(path, env={"PERPDESK_VENUE__NETWORK": "testnet"}).venue.network == (
        "testnet"
    )


def test_perpdesk_refuses_mainnet_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PERPDESK_VENUE__NETWORK", "mainnet")
    assert main(["config"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith('perpdesk: venue.network = "mainnet" (from PERPDESK_VENUE__NETWORK)')


def test_the_network_defaults_to_testnet() -> None:
    assert VenueSettings().network == "testnet"
    assert problem(None, {"PERPDESK_VENUE__NETWORK": "main"}) == (
        "venue.network = main: must be 'mainnet', 'testnet' or 'local'"
        " (from PERPDESK_VENUE__NETWORK)"
    )


# --- URLs and the coin ---------------------------------------------------------------------


def test_venue_urls_per_network_and_the_override() -> None:
    assert venue_urls(VenueSettings(network="mainnet")) == (
        "https://api.hyperliquid.xyz",
        "wss://api.hyperliquid.xyz/ws",
    )
    assert venue_urls(VenueSettings()) == (
        "https://api.hyperliquid-testnet.xyz",
        "wss://api.hyperliquid-testnet.xyz/ws",
    )
    assert venue_urls(VenueSettings(network="local")) == (
        "http://127.0.0.1:8800",
        "ws://127.0.0.1:8800/ws",
    )
    override = VenueSettings(network="local", api_url="http://127.0.0.1:9911/")
    assert venue_urls(override) == ("http://127.0.0.1:9911", "ws://127.0.0.1:9911/ws")
    mainnet_proxy = VenueSettings(network="mainnet", api_url="https://hl.example/api")
    assert venue_urls(mainnet_proxy) == ("https://hl.example/api", "wss://hl.example/api/ws")


def test_an_api_url_that_is_not_http_is_one_line() -> None:
    assert problem(None, {"PERPDESK_VENUE__API_URL": "127.0.0.1:8800"}) == (
        "venue.api_url = 127.0.0.1:8800: must be an http:// or https:// URL"
        " (e.g. http://127.0.0.1:8800) (from PERPDESK_VENUE__API_URL)"
    )


@pytest.mark.parametrize(
    ("symbol", "coin"),
    [("BTC-PERP", "BTC"), ("BTC", "BTC"), ("ETH-PERP", "ETH"), ("kPEPE", "kPEPE")],
)
def test_the_guides_symbol_and_the_coin_name_are_the_same_market(symbol: str, coin: str) -> None:
    assert hyperliquid_coin(symbol) == coin


@pytest.mark.parametrize(
    ("symbol", "rule"),
    [
        ("BTC-USD", "must be a perp's coin name (BTC) or the coin and -PERP (BTC-PERP)"),
        ("-PERP", "must be a perp's coin name (BTC) or the coin and -PERP (BTC-PERP)"),
        ("BTC-PERP-PERP", "must be a perp's coin name (BTC) or the coin and -PERP (BTC-PERP)"),
        (" BTC", "must be a perp's coin name (BTC) or the coin and -PERP (BTC-PERP)"),
        ("PURR/USDC", "a spot market; perpdesk quotes perps"),
        ("@107", "a spot market; perpdesk quotes perps"),
    ],
)
def test_any_other_symbol_is_a_clear_error(symbol: str, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        hyperliquid_coin(symbol)
    [line] = caught.value.problems
    assert line.startswith(f'strategy.symbol = "{symbol}": ')
    assert rule in line
