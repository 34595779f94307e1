"""Hyperliquid credentials: the API wallet's private key and the master account it trades for.

The key comes from exactly one of two places: `venue.secret_key_file`, a file only its owner
can read (refused, with the chmod to run, if its group or other users have any access, as ssh
does with its keys), or the environment variable PERPDESK_VENUE__SECRET_KEY (which
load_settings puts in `venue.secret_key`; a config file may not hold it). `venue.account_address`
is the master account: orders are placed for it and queries ask about it. A key whose address is
the account's is the master key itself; any other key is an API (agent) wallet approved by it.

The key never appears in a message, a repr or a traceback: errors are one line naming the
source (the file's path or the variable's name) and what is wrong with it, never its content;
the key's plain text is only ever held, briefly, in frames that have returned before anything
is raised (a crash screen that shows local variables, as Textual's does, shows none), and
everything else holds it as a SecretStr.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from engine.config import ENV_NESTED_DELIMITER, ENV_PREFIX, VenueSettings
from engine.venues.hyperliquid.signing import Signer

ENV_VAR = f"{ENV_PREFIX}VENUE{ENV_NESTED_DELIMITER}SECRET_KEY"
# A key file holds 64 hex digits, perhaps with 0x and a newline: anything much bigger is not one.
_MAX_KEY_FILE_BYTES = 4096


class CredentialsError(ValueError):
    """The credentials cannot be used: one line naming what is wrong (never the key)."""


def load_signer(venue: VenueSettings, environ: Mapping[str, str] | None = None) -> Signer:
    """The Signer for `venue`'s key, from its key file or the environment (`environ`, else
    os.environ; `venue.secret_key`, set by load_settings from that variable, counts as it).

    Exactly one source must be set, and `venue.account_address` too; otherwise, or if the file
    is not owner-only, missing, or does not hold a key, CredentialsError.
    """
    env_key = _env_key(venue, os.environ if environ is None else environ)
    # The environment holds the key in plain text: keep it out of this frame's locals.
    del environ
    if venue.account_address is None:
        raise CredentialsError(
            "venue.account_address is not set: hyperliquid needs the master account's address"
            " (0x and 40 hex digits), the account the API wallet trades for"
        )
    key_file = venue.secret_key_file
    if key_file is not None and env_key is not None:
        raise CredentialsError(
            f"two private keys: venue.secret_key_file and {ENV_VAR} are both set; keep one"
        )
    if key_file is not None:
        path = Path(key_file).expanduser()
        return _signer(_read_key_file(path), f"venue.secret_key_file = {path}")
    if env_key is not None:
        return _signer(env_key, ENV_VAR)
    raise CredentialsError(
        "no private key for hyperliquid: set venue.secret_key_file (a key file only you can"
        f" read) or the environment variable {ENV_VAR}"
    )


def is_agent(signer: Signer, account_address: str) -> bool:
    """True if `signer` is an API (agent) wallet, False if it is the account's own key."""
    return signer.address.lower() != account_address.lower()


def _env_key(venue: VenueSettings, environ: Mapping[str, str]) -> SecretStr | None:
    if venue.secret_key is not None:
        return venue.secret_key
    # Matched as pydantic-settings matches it: case-insensitively.
    for name, value in environ.items():
        if name.upper() == ENV_VAR:
            return SecretStr(value)
    return None


def _read_key_file(path: Path) -> SecretStr:
    where = f"venue.secret_key_file = {path}"
    try:
        # O_NONBLOCK: a FIFO at the path must not hang the start; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise CredentialsError(f"{where}: not found") from None
    except OSError as err:
        raise CredentialsError(f"{where}: cannot open: {err.strerror}") from None
    try:
        info = os.fstat(fd)  # the file opened, not whatever the path names a moment later
        if not stat.S_ISREG(info.st_mode):
            raise CredentialsError(f"{where}: not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if os.name == "posix" and mode & 0o077:
            access = "read" if mode & 0o044 else "change"
            raise CredentialsError(
                f"{where}: other users can {access} it (mode {mode:o}); a private key must be"
                f" its owner's only: run chmod 600 {path}"
            )
        if info.st_size == 0:
            raise CredentialsError(f"{where}: empty; it must hold the key, 64 hex digits")
        if info.st_size > _MAX_KEY_FILE_BYTES:
            raise CredentialsError(
                f"{where}: {info.st_size} bytes, not a private key (64 hex digits)"
            )
        secret = _read_secret(fd)
    finally:
        os.close(fd)
    if secret is None:
        raise CredentialsError(f"{where}: cannot read")
    return secret


def _read_secret(fd: int) -> SecretStr | None:
    # The file's plain text lives only in this frame, and nothing is raised while it does.
    try:
        data = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
    except OSError:
        return None
    # Not ASCII: replaced, so the key's parser says "not hexadecimal" and no decode error
    # carries the bytes.
    return SecretStr(data.decode("ascii", errors="replace"))


def _signer(secret: SecretStr, where: str) -> Signer:
    try:
        return Signer(secret.get_secret_value())
    except ValueError as err:
        # Signer's messages name the problem, never the key.
        reason = str(err).removeprefix("private key: ")
    # Raised outside the except block: no chained exception, and so no frame of the parser
    # (which held the key) in the traceback.
    raise CredentialsError(f"{where}: not a private key ({reason})") from None
