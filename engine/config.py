"""Operator settings: the validated model, where it is read from, and how its errors read."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

ENV_PREFIX = "PERPDESK_"
ENV_NESTED_DELIMITER = "__"
DEFAULT_CONFIG_PATH = Path("perpdesk.toml")
SECRET_MASK = "********"

# Every section rejects unknown keys (a typo must not silently fall back to a default), is
# frozen (engine and screen share one instance), and refuses inf/nan.
_SECTION_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

# A Hyperliquid (Ethereum) address, and a run of 64 hex digits: a private key, never echoed.
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_KEY_LIKE = re.compile(r"[0-9a-fA-F]{64}")
_HTTP_URL = re.compile(r"https?://[^/?#\s]+", re.IGNORECASE)

# Raised by cross-field checks so the error reads like any other: `section.field = value: rule`.
_CROSS_FIELD_ERROR = "cross_field"


def _cross_field_error(field: str, value: object, rule: str) -> PydanticCustomError:
    return PydanticCustomError(
        _CROSS_FIELD_ERROR,
        "{field} = {value}: {rule}",
        {"field": field, "value": value, "rule": rule},
    )


class StrategySettings(BaseModel):
    """What to quote and how wide: spread terms, size, inventory, lean, hedging, volatility."""

    model_config = _SECTION_CONFIG

    symbol: str = Field(default="BTC-PERP", min_length=1, description="market to quote")
    capital_usd: float = Field(
        default=10_000.0, gt=0, description="capital behind the book, in USD"
    )
    base_spread_bps: float = Field(
        default=5.0, ge=0, description="narrowest full spread, bid to ask, in bps of mid"
    )
    quote_size_usd: float = Field(
        default=100.0, gt=0, description="size of each quote, per side, in USD"
    )
    max_inventory_usd: float = Field(
        default=1_000.0,
        gt=0,
        description="inventory at which premium and lean reach their maximum, in USD",
    )
    inventory_premium_bps: float = Field(
        default=5.0, ge=0, description="spread added at max inventory, in bps (pro rata below it)"
    )
    # Why 0.05: the guide disagrees with itself. Its prose says "50% of the realized hourly
    # volatility expressed in bps" (0.5: 2%/h = 200 bps of vol -> +100 bps), its code computes
    # vol*100*0.5 (half the vol in percent: 2%/h -> +1 bp), and neither reproduces its own
    # worked example: quiet market ~5 bps, 2%/h -> 15-20 bps. With base 5 bps, 2%/h = 200 bps
    # of hourly vol must add 10 bps to reach 15, so 10/200 = 0.05; at max inventory the 5 bps
    # inventory premium then gives the example's 20.
    vol_premium_coeff: float = Field(
        default=0.05,
        ge=0,
        description=(
            "spread per bp of hourly realized vol, in bps/bp; 0.05: 2%/h adds 10 bps (guide's"
            " example)"
        ),
    )
    max_spread_bps: float = Field(
        default=50.0, gt=0, description="hard cap on the full spread, in bps of mid"
    )
    lean_factor: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="quote shift at max inventory, as a fraction of the half-spread (0..1)",
    )
    refresh_interval_s: float = Field(
        default=3.0, gt=0, description="stale-quote protection: cancel and repost every N s"
    )
    manual_widen_step_bps: float = Field(
        default=2.0, gt=0, description="spread added per press of the widen key, in bps"
    )
    hedge_threshold_pct: float = Field(
        default=80.0,
        gt=0,
        le=100,
        description="hedge when inventory reaches this, in % of max inventory",
    )
    hedge_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="share of the inventory each hedge sells or buys (0..1]",
    )
    auto_hedge: bool = Field(
        default=True, description="hedge automatically at the threshold (true/false)"
    )
    vol_estimator: Literal["realized", "ewma"] = Field(
        default="realized", description="hourly vol from mid returns: realized (window) or ewma"
    )
    vol_window_s: float = Field(
        default=300.0, gt=0, description="realized-vol lookback window, in s"
    )
    vol_sample_interval_s: float = Field(
        default=1.0, gt=0, description="time between mid samples for vol, in s"
    )
    vol_ewma_halflife_s: float = Field(default=60.0, gt=0, description="ewma vol half-life, in s")
    vol_min_samples: int = Field(
        default=10, ge=2, description="returns needed before vol counts (no vol premium until then)"
    )

    @model_validator(mode="after")
    def _base_below_cap(self) -> Self:
        if self.base_spread_bps >= self.max_spread_bps:
            raise _cross_field_error(
                "base_spread_bps",
                self.base_spread_bps,
                f"must be < strategy.max_spread_bps ({self.max_spread_bps})",
            )
        return self


class RiskSettings(BaseModel):
    """The guide's risk controls: position cap, breakers, loss limit, rate limits, adverse fills."""

    model_config = _SECTION_CONFIG

    position_cap_pct: float = Field(
        default=20.0,
        gt=0,
        le=100,
        description="largest position per direction, in % of capital",
    )
    vol_breaker_pct_per_hour: float = Field(
        default=5.0, gt=0, description="circuit breaker trips above this hourly vol, in % per hour"
    )
    vol_breaker_action: Literal["widen", "stop"] = Field(
        default="widen", description="breaker action: widen (to max_spread_bps) or stop quoting"
    )
    daily_loss_limit_pct: float = Field(
        default=3.0, gt=0, le=100, description="kill switch at this day's loss, in % of capital"
    )
    loss_kill_flatten: bool = Field(
        default=True,
        description="the daily loss kill also flattens the position with a taker hedge",
    )
    rate_limit_calls: int = Field(
        default=1_200, gt=0, description="venue's call budget per window, in calls"
    )
    rate_limit_window_s: float = Field(default=60.0, gt=0, description="rate-limit window, in s")
    rate_limit_warn_pct: float = Field(
        default=80.0,
        gt=0,
        le=100,
        description="warn, then throttle, at this share of the budget, in %",
    )
    adverse_fill_rate_pct: float = Field(
        default=90.0,
        gt=0,
        le=100,
        description="adverse selection: widen at or above this fill rate, in % of quotes",
    )
    adverse_widen_bps: float = Field(
        default=5.0, ge=0, description="spread added while adverse selection is on, in bps"
    )
    adverse_jitter_s: float = Field(
        default=0.5,
        ge=0,
        description="random delay on quote timing while adverse selection is on, up to s",
    )
    fill_rate_window_quotes: int = Field(
        default=50, ge=1, description="fill rate is measured over this many recent quotes"
    )
    fill_rate_min_quotes: int = Field(
        default=20, ge=1, description="quotes needed before the fill-rate check acts"
    )
    stale_feed_s: float = Field(
        default=5.0, gt=0, description="market data older than this is stale, in s"
    )
    reject_backoff_max_s: float = Field(
        default=30.0,
        gt=0,
        description="a side's wait after rejects doubles from 0.5 s up to this, in s",
    )
    reject_streak_s: float = Field(
        default=10.0,
        gt=0,
        description="rejects on a side for this long show ONE-SIDED / NOT QUOTING, in s",
    )
    journal_stall_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="kill when a fill cannot be journaled for this long, in s",
    )

    @model_validator(mode="after")
    def _min_quotes_fit_window(self) -> Self:
        # Otherwise the adverse-selection control can never act, and nothing says so.
        if self.fill_rate_min_quotes > self.fill_rate_window_quotes:
            raise _cross_field_error(
                "fill_rate_min_quotes",
                self.fill_rate_min_quotes,
                f"must be <= risk.fill_rate_window_quotes ({self.fill_rate_window_quotes})",
            )
        return self


class VenueSettings(BaseModel):
    """Where orders go, what it charges, and how we sign in."""

    # hide_input_in_errors: a VenueSettings built directly (not by load_settings) must not put
    # a mistyped value, say a private key pasted into account_address, in its ValidationError.
    model_config = _SECTION_CONFIG | ConfigDict(hide_input_in_errors=True)

    name: Literal["sim", "purpleflea", "hyperliquid"] = Field(
        default="sim", description="venue: sim (built-in exchange), purpleflea or hyperliquid"
    )
    network: Literal["mainnet", "testnet", "local"] = Field(
        default="testnet",
        description=(
            "hyperliquid network: testnet, local (perpdesk exchange) or mainnet (only if this"
            " file says so)"
        ),
    )
    maker_fee_pct: float = Field(
        default=-0.025, description="maker fee, in % of notional; negative = rebate received"
    )
    taker_fee_pct: float = Field(default=0.025, description="taker fee, in % of notional")
    api_key: SecretStr | None = Field(
        default=None, description="API key; prefer PERPDESK_VENUE__API_KEY (never printed)"
    )
    api_url: str | None = Field(
        default=None,
        description="API base URL, overrides the network's (local: http://127.0.0.1:8800)",
    )
    account_address: str | None = Field(
        default=None,
        description="hyperliquid master account, 0x + 40 hex (the API wallet trades for it)",
    )
    secret_key_file: str | None = Field(
        default=None,
        description="file holding the API wallet's private key, hex; owner-only (chmod 600)",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="API wallet's key: from PERPDESK_VENUE__SECRET_KEY only, never a config file",
    )
    dead_mans_switch_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="hyperliquid: cancel all at the venue if we go silent this long, in s (0: off)",
    )
    slippage_bps: float = Field(
        default=50.0, gt=0, le=1000, description="a hedge's IOC limit beyond mid, in bps"
    )
    shutdown_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="at exit, wait this long for the venue to confirm every cancel, in s",
    )

    @field_validator("dead_mans_switch_s")
    @classmethod
    def _switch_far_enough(cls, value: float) -> float:
        if 0 < value < 10:
            raise PydanticCustomError(
                "dead_mans_switch",
                "must be 0 (off) or at least 10 s: the venue wants 5 s ahead, re-armed every third",
            )
        return value

    @field_validator("account_address")
    @classmethod
    def _account_is_an_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _ADDRESS.fullmatch(value):
            raise PydanticCustomError(
                "address", "must be an address: 0x and 40 hex digits (the master account's)"
            )
        return value.lower()

    @field_validator("secret_key_file")
    @classmethod
    def _key_file_is_a_path(cls, value: str | None) -> str | None:
        if value is not None and _KEY_LIKE.search(value):
            raise PydanticCustomError(
                "key_not_path",
                "is a private key, not a path: put the key in a file only you can read"
                " and name the file here",
            )
        if value is not None and not value.strip():
            raise PydanticCustomError("string_too_short", "must not be empty")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not _HTTP_URL.match(value):
            raise PydanticCustomError(
                "url", "must be an http:// or https:// URL (e.g. http://127.0.0.1:8800)"
            )
        return value


class SimSettings(BaseModel):
    """The built-in simulated exchange: seed, speed, fees, price grid, takers, latency."""

    model_config = _SECTION_CONFIG

    seed: int = Field(default=7, description="random seed; same seed, same market")
    speed: float = Field(default=1.0, gt=0, description="sim clock speed, in x real time")
    fees: Literal["guide", "hyperliquid-base"] = Field(
        default="guide", description="fee schedule: guide (-0.025%/0.025%) or hyperliquid-base"
    )
    start_price_usd: float = Field(default=100_000.0, gt=0, description="opening mid, in USD")
    tick_size: float = Field(default=0.1, gt=0, description="price tick, in USD")
    lot_size: float = Field(default=0.00001, gt=0, description="size step, in base units (BTC)")
    informed_share: float = Field(
        default=0.1, ge=0, le=1, description="share of takers who know the next move (0..1)"
    )
    latency_ms: float = Field(default=0.0, ge=0, description="order round-trip latency, in ms")
    reject_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of orders rejected (0..1)"
    )
    cancel_fail_rate: float = Field(
        default=0.0, ge=0, le=1, description="fault: share of cancels refused (0..1)"
    )
    latency_spike_rate: float = Field(
        default=0.0, ge=0, le=1, description="fault: share of orders hit by a latency spike"
    )
    latency_spike_ms: float = Field(
        default=2000.0, ge=0, description="fault: latency of a spiked order, in ms"
    )
    feed_gap_rate_per_hour: float = Field(
        default=0.0, ge=0, description="fault: book feed gaps per hour"
    )
    feed_gap_s: float = Field(default=10.0, gt=0, description="fault: length of a feed gap, in s")
    regime: Literal["auto", "quiet", "normal", "volatile", "crash", "flat"] = Field(
        default="auto", description="price regime: auto switches; or pin quiet..crash, flat"
    )
    funding: bool = Field(default=False, description="charge hourly funding (true/false)")


class ExchangeSettings(BaseModel):
    """The local exchange (`perpdesk exchange`): the built-in market served on loopback in
    Hyperliquid's API, with accounts, faults and limits."""

    model_config = _SECTION_CONFIG

    host: str = Field(default="127.0.0.1", min_length=1, description="address to listen on")
    port: int = Field(default=8800, ge=0, le=65535, description="TCP port (0: any free port)")
    allow_remote: bool = Field(
        default=False, description="listen on a non-loopback host (unauthenticated reads!)"
    )
    seed: int = Field(default=7, description="random seed of the market")
    speed: float = Field(default=1.0, gt=0, le=1000, description="market clock, x real time")
    network: Literal["testnet", "mainnet"] = Field(
        default="testnet",
        description="signatures accepted: testnet or mainnet (the SDK signs testnet off mainnet)",
    )
    fund: dict[str, float] = Field(
        default_factory=dict, description="accounts opened at start: address = USD"
    )
    state_dir: str | None = Field(
        default=None, description="keep accounts and open orders here across restarts"
    )
    funding: bool = Field(default=True, description="pay hourly funding into accounts")
    book_push_s: float = Field(
        default=0.5, ge=0.05, le=10, description="l2Book push interval on the WebSocket, in s"
    )
    ip_weight_per_min: int = Field(
        default=1200, ge=1, description="REST weight per IP per minute; HTTP 429 past it"
    )
    max_body_bytes: int = Field(
        default=1_000_000, ge=1024, description="largest request body accepted, in bytes"
    )
    ws_idle_s: float = Field(
        default=60.0, gt=0, description="close a WebSocket that sent nothing this long, in s"
    )
    ws_msgs_per_min: int = Field(
        default=2000, ge=1, description="messages a WebSocket may send per minute"
    )
    schedule_cancel_min_volume_usd: float = Field(
        default=0.0,
        ge=0,
        description="traded volume, in USD, an account needs to use scheduleCancel",
    )
    latency_ms: float = Field(default=0.0, ge=0, description="fault: added answer latency, ms")
    http_error_rate: float = Field(
        default=0.0, ge=0, le=1, description="fault: share of requests answered 502 (0..1)"
    )
    ws_drop_every_s: float = Field(
        default=0.0, ge=0, description="fault: drop every WebSocket this often, s (0: never)"
    )
    ws_drop_rate_per_hour: float = Field(
        default=0.0, ge=0, description="fault: random WebSocket drops per connection-hour"
    )
    status_every_s: float = Field(
        default=20.0, gt=0, description="print a status line this often, in s"
    )


class ReplaySettings(BaseModel):
    """How a replay of a recorded tape treats our orders (`perpdesk backtest --replay`)."""

    model_config = _SECTION_CONFIG

    entry_latency_ms: float = Field(
        default=10.0, ge=0, le=10_000, description="order entry latency, core to exchange, in ms"
    )
    response_latency_ms: float = Field(
        default=10.0, ge=0, le=10_000, description="response latency, exchange to core, in ms"
    )
    queue: Literal["risk-averse", "power"] = Field(
        default="risk-averse",
        description="queue model: cancels behind us, or a power share of each from ahead",
    )
    queue_power: float = Field(
        default=2.0, gt=0, le=10, description="the power queue model's exponent n"
    )
    fill_through: Literal["full", "traded"] = Field(
        default="full",
        description="a trade beyond our price fills us in full, or up to its size",
    )


class UiSettings(BaseModel):
    """How the console looks and how often it redraws."""

    model_config = _SECTION_CONFIG

    theme: str = Field(default="perpdesk-dark", min_length=1, description="colour theme name")
    fps: float = Field(default=10.0, ge=1, le=60, description="screen redraws per second (1..60)")
    ladder_levels: int = Field(
        default=10, ge=1, le=50, description="book levels shown per side (1..50)"
    )


@dataclass(frozen=True, slots=True)
class _SourceInputs:
    toml_path: Path | None
    environ: Mapping[str, str]
    # What the file itself says, filled in as it is read: the mainnet check asks the file, not
    # the merged settings.
    file_data: dict[str, Any] = dataclasses.field(default_factory=dict)


# load_settings passes its file and environment to settings_customise_sources (a classmethod
# with a fixed signature) through this; a bare Settings() reads os.environ and no file.
_SOURCE_INPUTS: ContextVar[_SourceInputs | None] = ContextVar("_SOURCE_INPUTS", default=None)


class Settings(BaseSettings):
    """All settings. Precedence: init kwargs > PERPDESK_* environment > TOML file > defaults."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
        # str(ValidationError) never shows a value (it may be a key); load_settings' messages
        # show values, masking the secret ones.
        hide_input_in_errors=True,
    )

    strategy: StrategySettings = Field(
        default_factory=StrategySettings, description="quoting: spread, size, inventory, hedge, vol"
    )
    risk: RiskSettings = Field(
        default_factory=RiskSettings, description="risk controls and their limits"
    )
    venue: VenueSettings = Field(default_factory=VenueSettings, description="venue, fees, API")
    sim: SimSettings = Field(default_factory=SimSettings, description="the built-in exchange")
    exchange: ExchangeSettings = Field(
        default_factory=ExchangeSettings, description="the local exchange server"
    )
    replay: ReplaySettings = Field(
        default_factory=ReplaySettings, description="replays: latency, queue model"
    )
    ui: UiSettings = Field(default_factory=UiSettings, description="the console")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        inputs = _SOURCE_INPUTS.get()
        if inputs is None:
            return (init_settings, env_settings)
        return (
            init_settings,
            _MappingEnvSource(settings_cls, inputs.environ),
            _TomlFileSource(settings_cls, toml_file=inputs.toml_path, sink=inputs.file_data),
        )


class _MappingEnvSource(EnvSettingsSource):
    """The standard environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


class _TomlFileSource(TomlConfigSettingsSource):
    """The standard TOML source, with errors that name the file and a guard on secrets; what
    the file says is also copied into `sink`."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        toml_file: Path | None,
        sink: dict[str, Any] | None = None,
    ) -> None:
        self._sink = sink  # set first: the base class reads the file in its __init__
        super().__init__(settings_cls, toml_file=toml_file)

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        try:
            data = super()._read_file(file_path)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError([f"config file {file_path}: invalid TOML: {err}"]) from None
        except UnicodeDecodeError as err:
            raise ConfigError([f"config file {file_path}: not UTF-8 text: {err}"]) from None
        except OSError as err:
            raise ConfigError([f"config file {file_path}: cannot read: {err.strerror}"]) from None
        _refuse_env_only_secrets(Path(file_path), data)
        _refuse_readable_secrets(Path(file_path), data)
        if self._sink is not None:
            self._sink.update(data)
        return data


# Secrets that may come from the environment only: not even an owner-only file may hold them.
_ENV_ONLY_SECRETS = ("venue.secret_key",)


def _refuse_env_only_secrets(path: Path, data: Mapping[str, Any]) -> None:
    # DESIGN: a private key never lives in a config file (files get copied, shared, committed);
    # it comes from its own owner-only key file or the environment.
    for dotted in _ENV_ONLY_SECRETS:
        if _lookup(data, dotted) is not None:
            env_var = ENV_PREFIX + dotted.replace(".", ENV_NESTED_DELIMITER).upper()
            raise ConfigError(
                [
                    f"config file {path}: {dotted} must not be in a config file; remove it and"
                    f" set {env_var} or {dotted}_file (a key file only you can read)"
                ]
            )


def _refuse_readable_secrets(path: Path, data: Mapping[str, Any]) -> None:
    # DESIGN: secrets come from the environment or a file only its owner can read (ssh's rule).
    if os.name != "posix":
        return
    secrets_present = [p for p in _SECRET_PATHS if _lookup(data, p) is not None]
    if not secrets_present:
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            [
                f"config file {path}: holds {', '.join(secrets_present)} but other users can"
                f" read it (mode {mode:o}); run: chmod 600 {path}"
            ]
        )


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _section_models() -> Iterator[tuple[str, type[BaseModel]]]:
    for name, field in Settings.model_fields.items():
        assert isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        yield name, field.annotation


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


_SECRET_PATHS: tuple[str, ...] = tuple(
    f"{section}.{name}"
    for section, model in _section_models()
    for name, field in model.model_fields.items()
    if _is_secret(field.annotation)
)


class ConfigError(Exception):
    """Settings could not be loaded; each problem is one line an operator can act on."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


def find_config_file(path: Path | None = None) -> Path | None:
    """The file load_settings reads: `path` if given, else ./perpdesk.toml if it exists."""
    if path is not None:
        if not path.exists():
            raise ConfigError([f"config file {path}: not found"])
        if not path.is_file():
            raise ConfigError([f"config file {path}: not a regular file"])
        return path
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def _unknown_env_sections(environ: Mapping[str, str]) -> list[str]:
    """PERPDESK_* variables naming no section: a typo would otherwise be silently ignored (a
    mistyped key inside a known section is caught by the section's own check)."""
    known = sorted(Settings.model_fields)
    problems = []
    for name in environ:
        if not name.upper().startswith(ENV_PREFIX):
            continue
        section = name[len(ENV_PREFIX) :].split(ENV_NESTED_DELIMITER, 1)[0].lower()
        if section not in known:
            problems.append(
                f"{name}: there is no settings section {section!r} "
                f"(sections: {', '.join(known)}; the form is {ENV_PREFIX}SECTION__KEY)"
            )
    return sorted(problems)


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from defaults, the TOML file, then `env` (os.environ if None); or ConfigError."""
    environ = os.environ if env is None else env
    unknown = _unknown_env_sections(environ)
    if unknown:
        raise ConfigError(unknown)
    toml_path = find_config_file(path)
    inputs = _SourceInputs(toml_path=toml_path, environ=environ)
    token = _SOURCE_INPUTS.set(inputs)
    try:
        settings = Settings()
    except ValidationError as err:
        raise ConfigError([_describe(e, environ) for e in err.errors()]) from None
    except SettingsError as err:
        raise ConfigError([_describe_env_parse_error(err, environ)]) from None
    finally:
        _SOURCE_INPUTS.reset(token)
    check_mainnet(settings, inputs.file_data, path=toml_path, environ=environ)
    return settings


def check_mainnet(
    settings: Settings,
    file_data: Mapping[str, Any],
    *,
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Refuse mainnet unless the config file itself says `network = "mainnet"` under [venue].

    `file_data` is what the file says (empty without one). An environment variable (or an
    init keyword) alone cannot switch a desk to real money: a stray export must not do it.
    load_settings calls this; code that builds Settings another way must call it too.
    """
    if settings.venue.network != "mainnet" or _lookup(file_data, "venue.network") == "mainnet":
        return
    env_var = _env_var_for(["venue", "network"], {} if environ is None else environ)
    source = f" (from {env_var})" if env_var else ""
    where = f"in {path}" if path is not None else "in the config file (perpdesk.toml or --config)"
    raise ConfigError(
        [
            f'venue.network = "mainnet"{source}: mainnet must be set in the config file itself,'
            f' not the environment; put network = "mainnet" under [venue] {where}'
        ]
    )


# --- what the venue settings mean on Hyperliquid -------------------------------------------

HYPERLIQUID_URLS: dict[str, str] = {
    "mainnet": "https://api.hyperliquid.xyz",
    "testnet": "https://api.hyperliquid-testnet.xyz",
    "local": "http://127.0.0.1:8800",  # `perpdesk exchange` with its default host and port
}
_PERP_SUFFIX = "-PERP"
_COIN = re.compile(r"[A-Za-z0-9]+")


def venue_urls(venue: VenueSettings) -> tuple[str, str]:
    """(HTTP base URL, WebSocket URL) of the venue: `api_url` if set, else the network's.

    The WebSocket URL is the HTTP one with http -> ws (https -> wss) and /ws appended, as the
    official SDK derives it.
    """
    http_url = (venue.api_url or HYPERLIQUID_URLS[venue.network]).rstrip("/")
    scheme, sep, rest = http_url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise ConfigError(
            [f"venue.api_url = {_toml_value(http_url)}: must be an http:// or https:// URL"]
        )
    ws_scheme = "wss" if scheme.lower() == "https" else "ws"
    return http_url, f"{ws_scheme}://{rest}/ws"


def hyperliquid_coin(symbol: str) -> str:
    """The Hyperliquid perp coin for `strategy.symbol`: "BTC" -> "BTC", "BTC-PERP" -> "BTC".

    Hyperliquid names a perp by its coin (meta.universe); the guide writes BTC-PERP for the same
    market. Only the form is checked here (case is kept: kPEPE is a coin); whether the venue
    lists the coin is for its meta to say.
    """
    coin = symbol[: -len(_PERP_SUFFIX)] if symbol.endswith(_PERP_SUFFIX) else symbol
    if _COIN.fullmatch(coin):
        return coin
    shown = SECRET_MASK if _KEY_LIKE.search(symbol) else _toml_value(symbol)
    if "/" in symbol or symbol.startswith("@"):
        rule = "a spot market; perpdesk quotes perps: the coin name (BTC) or BTC-PERP"
    else:
        rule = "on hyperliquid, must be a perp's coin name (BTC) or the coin and -PERP (BTC-PERP)"
    raise ConfigError([f"strategy.symbol = {shown}: {rule}"])


# --- validation errors as `setting = value: what is allowed` -------------------------------

_RULES: dict[str, str] = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "literal_error": "must be {expected}",
    "finite_number": "must be a finite number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text in quotes",
    "string_too_short": "must not be empty",
}


def _describe(error: ErrorDetails, environ: Mapping[str, str]) -> str:
    loc = [str(part) for part in error["loc"]]
    kind = error["type"]
    ctx = error.get("ctx", {})
    value: object = error["input"]
    if kind == _CROSS_FIELD_ERROR:
        loc.append(str(ctx["field"]))
        value, rule = ctx["value"], str(ctx["rule"])
    elif kind == "extra_forbidden":
        # No value: an unknown key may be a misspelt secret (apikey = "...").
        return _with_source(f"{'.'.join(loc)}: {_unknown_key(loc)}", loc, environ)
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        rule = f"must be a [{'.'.join(loc)}] table"
    elif kind in _RULES:
        rule = _RULES[kind].format(**{k: _plain_number(v) for k, v in ctx.items()})
    else:
        message = error["msg"]
        rule = message[:1].lower() + message[1:]
    env_var = _env_var_for(loc, environ)
    if ".".join(loc) in _SECRET_PATHS or (isinstance(value, str) and _KEY_LIKE.search(value)):
        shown = SECRET_MASK
    elif env_var is not None and isinstance(value, str) and value:
        shown = mask_url(value)  # as the operator typed it in the shell, credentials masked
    else:
        shown = _toml_value(value)
    return _with_source(f"{'.'.join(loc)} = {shown}: {rule}", loc, environ)


def _describe_env_parse_error(err: SettingsError, environ: Mapping[str, str]) -> str:
    # A whole section given as JSON that does not parse (PERPDESK_RISK='{bad'). pydantic-settings
    # names only the field, in its message, so that is where the section comes from.
    match = re.search(r'field "(\w+)"', str(err))
    env_var = _env_var_for([match.group(1)], environ) if match else None
    if match is None or env_var is None:
        return f"environment: {err}"
    cause = f" ({err.__cause__})" if err.__cause__ else ""
    return f"{match.group(1)}: not a valid JSON table{cause} (from {env_var})"


def _unknown_key(loc: list[str]) -> str:
    known: list[str]
    if len(loc) == 1:
        what, known = "section", list(Settings.model_fields)
    else:
        sections = dict(_section_models())
        model = sections.get(loc[0])
        what, known = "setting", list(model.model_fields) if model else []
    close = difflib.get_close_matches(loc[-1], known, n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(known)}"
    return f"unknown {what}{hint}"


def _env_var_for(loc: list[str], environ: Mapping[str, str]) -> str | None:
    """The PERPDESK_* variable that supplied the value at `loc`, if one did."""
    names = {name.upper(): name for name in environ}
    for depth in range(len(loc), 0, -1):
        candidate = ENV_PREFIX + ENV_NESTED_DELIMITER.join(loc[:depth]).upper()
        if candidate in names:
            return names[candidate]
    return None


def _with_source(line: str, loc: list[str], environ: Mapping[str, str]) -> str:
    env_var = _env_var_for(loc, environ)
    return f"{line} (from {env_var})" if env_var else line


# --- settings as TOML ----------------------------------------------------------------------

_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>.*)$", re.DOTALL)
_CREDENTIAL_PARAM = re.compile(
    r"(?i)(?P<key>[^?&#=]*(?:key|token|secret|pass|auth|signature|sig|credential)[^?&#=]*)="
    r"(?P<value>[^&#]*)"
)


def mask_url(text: str) -> str:
    """A URL with any credentials in it masked: `user:pass@` and key/token/secret query
    parameters. Text that is not a URL comes back unchanged."""
    match = _URL.match(text)
    if match is None:
        return text
    rest = match["rest"]
    authority, sep, tail = rest.partition("/") if "/" in rest else (rest, "", "")
    if "@" in authority:
        authority = f"{SECRET_MASK}@{authority.rpartition('@')[2]}"
    tail = _CREDENTIAL_PARAM.sub(lambda m: f"{m['key']}={SECRET_MASK}", tail)
    if not sep and "?" in authority:  # https://host?token=x
        host, _, query = authority.partition("?")
        authority = host + "?" + _CREDENTIAL_PARAM.sub(lambda m: f"{m['key']}={SECRET_MASK}", query)
    return f"{match['scheme']}{authority}{sep}{tail}"


def _plain_number(value: object) -> object:
    """0.0 -> 0 in rules: pydantic hands float fields' bounds back as floats."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:  # 1e-05 is valid TOML, but 0.00001 is what an operator writes
            text = format(Decimal(text), "f")
            text = text if "." in text else text + ".0"
        return text
    if isinstance(value, str):
        value = mask_url(value)  # an operator may paste a URL with a key in it
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def settings_as_toml(settings: Settings, *, defaults: bool = False) -> str:
    """The effective settings as TOML, one commented line per key; secrets never shown. With
    `defaults`, a value that differs from its default has the default in its comment."""
    blocks: list[str] = []
    for section, model in _section_models():
        values: BaseModel = getattr(settings, section)
        rows: list[tuple[str, str]] = []
        for name, field in model.model_fields.items():
            value = getattr(values, name)
            if value is None:
                assignment = f"# {name} = (not set)"
            elif isinstance(value, SecretStr):
                # Commented out: pasting this output into a file must not set the key to the mask.
                assignment = f'# {name} = "{SECRET_MASK}" (set)'
            else:
                assignment = f"{name} = {_toml_value(value)}"
            description = field.description or ""
            default = field.get_default(call_default_factory=True)
            if defaults and value != default and not isinstance(value, SecretStr):
                shown = "not set" if default is None else _toml_value(default)
                description = f"default {shown}; {description}".removesuffix("; ")
            rows.append((assignment, description))
        width = max(len(assignment) for assignment, _ in rows)
        header = f"[{section}]"
        section_doc = Settings.model_fields[section].description
        lines = [f"{header}  # {section_doc}" if section_doc else header]
        lines += [f"{a.ljust(width)}  # {d}" if d else a for a, d in rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


# --- settings changed while the desk runs --------------------------------------------------

# What an operator tunes during a shift: the core reads each of these afresh for the next
# quote, hedge or check. Left out: what the core builds its machinery from at start (the vol
# estimator and its window, the fill-rate window, the rate budget, which the live shell also
# sizes from the venue's own limit), the symbol and capital the session is journaled under,
# auto_hedge (the `a` key turns it on and off), and every other section.
RUNTIME_SETTINGS: tuple[str, ...] = (
    "strategy.base_spread_bps",
    "strategy.quote_size_usd",
    "strategy.max_inventory_usd",
    "strategy.inventory_premium_bps",
    "strategy.vol_premium_coeff",
    "strategy.max_spread_bps",
    "strategy.lean_factor",
    "strategy.refresh_interval_s",
    "strategy.manual_widen_step_bps",
    "strategy.hedge_threshold_pct",
    "strategy.hedge_fraction",
    "risk.position_cap_pct",
    "risk.daily_loss_limit_pct",
    "risk.loss_kill_flatten",
    "risk.vol_breaker_pct_per_hour",
    "risk.vol_breaker_action",
    "risk.rate_limit_warn_pct",
    "risk.adverse_fill_rate_pct",
    "risk.adverse_widen_bps",
    "risk.adverse_jitter_s",
    "risk.fill_rate_min_quotes",
    "risk.stale_feed_s",
    "risk.reject_backoff_max_s",
    "risk.reject_streak_s",
)

_KINDS: dict[Any, str] = {float: "number", int: "whole number", bool: "true/false"}
_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class TunableSetting:
    """A setting the operator may change while the desk runs (`set NAME VALUE`)."""

    name: str
    """Dotted: `strategy.base_spread_bps`."""
    kind: str
    """What a value must be: number, whole number, true/false, or the choices (widen | stop)."""
    description: str
    default: object

    @property
    def field(self) -> str:
        return self.name.partition(".")[2]


def tunable_settings() -> tuple[TunableSetting, ...]:
    """Every setting `set` may change, in RUNTIME_SETTINGS order."""
    models = dict(_section_models())
    tunables = []
    for dotted in RUNTIME_SETTINGS:
        section, _, name = dotted.partition(".")
        field = models[section].model_fields[name]
        args = getattr(field.annotation, "__args__", ())
        kind = _KINDS.get(field.annotation) or " | ".join(str(arg) for arg in args)
        tunables.append(TunableSetting(dotted, kind, field.description or "", field.get_default()))
    return tuple(tunables)


def resolve_setting(name: str) -> tuple[str, str]:
    """(section, setting) for a name an operator typed: dotted (`strategy.base_spread_bps`) or
    bare (`base_spread_bps`). ConfigError, one line, for an unknown name or one that cannot be
    changed while the desk runs."""
    text = name.strip()
    models = dict(_section_models())
    if "." in text:
        section, _, field = text.partition(".")
        if section not in models:
            raise ConfigError([f"{text}: {_unknown_key([section])}"])
        if field not in models[section].model_fields:
            raise ConfigError([f"{text}: {_unknown_key([section, field])}"])
    else:
        tunable = [dotted for dotted in RUNTIME_SETTINGS if dotted.partition(".")[2] == text]
        anywhere = [f"{s}.{text}" for s, model in models.items() if text in model.model_fields]
        found = tunable or anywhere
        if not found:
            bare = [dotted.partition(".")[2] for dotted in RUNTIME_SETTINGS]
            close = difflib.get_close_matches(text, bare, n=1)
            hint = f"did you mean {close[0]}?" if close else "type `set` to list them"
            raise ConfigError([f"{text or '(no name)'}: unknown setting; {hint}"])
        section, _, field = found[0].partition(".")
    dotted = f"{section}.{field}"
    if dotted not in RUNTIME_SETTINGS:
        raise ConfigError(
            [
                f"{dotted}: cannot be changed while perpdesk runs; set it in the config file"
                " and restart"
            ]
        )
    return section, field


def parse_setting_value(text: str) -> object:
    """A typed value as TOML reads it (7 -> 7, 7.5, true, "stop"); text that is not one TOML
    value is taken as a string (stop), so `widen` needs no quotes and `abc` for a number is
    refused the way the config file refuses `"abc"`."""
    text = text.strip()
    if "\n" not in text and "\r" not in text:
        try:
            parsed = tomllib.loads(f"value = {text}")
        except tomllib.TOMLDecodeError:
            pass
        else:
            if list(parsed) == ["value"]:
                return parsed["value"]
    return text


def with_setting(values: _Model, section: str, name: str, value: object) -> _Model:
    """`values` (one section's model) with one setting changed, validated by the same model
    and cross-field checks as the config file; ConfigError with the file's message if not."""
    data = values.model_dump()
    data[name] = value
    try:
        return type(values).model_validate(data)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            error["loc"] = (section, *error["loc"])
            problems.append(_describe(error, {}))
        raise ConfigError(problems) from None


def apply_setting(settings: Settings, name: str, value: str) -> Settings:
    """`settings` with the setting `name` (dotted or bare) set to `value` as typed (TOML:
    7, 7.5, true, stop); ConfigError, one line, with the config file's message for the same
    bad value, or for a name `set` cannot change."""
    section, field = resolve_setting(name)
    updated = with_setting(getattr(settings, section), section, field, parse_setting_value(value))
    return settings.model_copy(update={section: updated})


def setting_text(value: object) -> str:
    """A setting's value as an operator reads it: 5.0 -> 5, true, "stop"."""
    return _toml_value(_plain_number(value))


def changed_settings(before: Settings, after: Settings) -> dict[str, object]:
    """The runtime settings whose value differs, dotted name -> the value in `after`."""
    changed: dict[str, object] = {}
    for dotted in RUNTIME_SETTINGS:
        section, _, name = dotted.partition(".")
        value = getattr(getattr(after, section), name)
        if value != getattr(getattr(before, section), name):
            changed[dotted] = value
    return changed


def env_override(dotted: str, env: Mapping[str, str] | None = None) -> str | None:
    """The PERPDESK_* variable that sets `dotted`, which wins over the config file, if any."""
    return _env_var_for(dotted.split("."), os.environ if env is None else env)


def save_settings(changes: Mapping[str, object], path: Path | None = None) -> Path:
    """Write `changes` (dotted name -> value) into the config file, keeping its comments and
    layout; every other line stays as it was. `path` is the file in use; None writes the one
    the next start reads (./perpdesk.toml), created if needed. Returns the file written;
    ConfigError, one line, if it cannot be read or written."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    target = DEFAULT_CONFIG_PATH if path is None else path
    real = target.resolve()  # a symlinked config file is updated, not replaced by a copy
    try:
        text = real.read_text(encoding="utf-8") if real.exists() else ""
        document = tomlkit.parse(text)
        for dotted, value in changes.items():
            section, _, name = dotted.partition(".")
            if section not in document:
                document[section] = tomlkit.table()
            table = document[section]
            if not isinstance(table, MutableMapping):
                raise ConfigError([f"config file {target}: {section} is not a [{section}] table"])
            table[name] = value
        output = tomlkit.dumps(document)
    except (TOMLKitError, ValueError) as err:
        raise ConfigError([f"config file {target}: invalid TOML: {err}"]) from None
    except OSError as err:
        raise ConfigError([f"config file {target}: cannot read: {err.strerror}"]) from None
    # Written beside it and renamed over it: a crash mid-write never leaves half a file.
    temporary = real.with_name(f".{real.name}.{os.getpid()}.tmp")
    try:
        mode = real.stat().st_mode & 0o777 if real.exists() else None
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(output)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, real)
    except OSError as err:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise ConfigError([f"config file {target}: cannot write: {err.strerror}"]) from None
    return target
