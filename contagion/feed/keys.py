"""Where the feed-signing key comes from: the environment or an encrypted keystore file, never the
repository. Nothing here prints or logs a key."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

__all__ = [
    "KEYSTORE_ENV",
    "KEY_ENV",
    "PASSWORD_ENV",
    "PASSWORD_FILE_ENV",
    "SigningKeyError",
    "create_keystore",
    "load_signer",
]

KEY_ENV = "CONTAGION_FEED_KEY"  # a 0x-prefixed private key
KEYSTORE_ENV = "CONTAGION_FEED_KEYSTORE"  # path of an encrypted (Web3 Secret Storage) keystore
PASSWORD_ENV = "CONTAGION_FEED_KEYSTORE_PASSWORD"
PASSWORD_FILE_ENV = "CONTAGION_FEED_KEYSTORE_PASSWORD_FILE"


class SigningKeyError(RuntimeError):
    """The signing key could not be loaded; the message says what to set."""


def _password(env: Mapping[str, str]) -> str:
    if PASSWORD_ENV in env:
        return env[PASSWORD_ENV]
    if PASSWORD_FILE_ENV in env:
        try:
            return Path(env[PASSWORD_FILE_ENV]).read_text().rstrip("\n")
        except (OSError, ValueError) as exc:
            raise SigningKeyError(f"cannot read the keystore password from "
                                  f"{PASSWORD_FILE_ENV}: {exc}") from None
    raise SigningKeyError(f"the keystore is encrypted: set {PASSWORD_ENV} or {PASSWORD_FILE_ENV}")


def load_signer(keystore: Path | None = None, env: Mapping[str, str] | None = None
                ) -> LocalAccount:
    """The feed signer: an explicit keystore file, else $CONTAGION_FEED_KEYSTORE, else
    $CONTAGION_FEED_KEY. A key that does not parse is an error that does not echo it."""
    env = os.environ if env is None else env
    path = keystore or (Path(env[KEYSTORE_ENV]) if env.get(KEYSTORE_ENV) else None)
    if path is not None:
        try:
            encrypted = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise SigningKeyError(f"cannot read the keystore {path}: {exc}") from None
        password = _password(env)
        try:
            key = Account.decrypt(encrypted, password)
        except (ValueError, KeyError, TypeError):  # a JSON file that is no keystore: Key/Type
            raise SigningKeyError(f"cannot decrypt the keystore {path}: wrong password or not a "
                                  "keystore") from None
        signer: LocalAccount = Account.from_key(key)
        return signer
    if env.get(KEY_ENV):
        try:
            signer = Account.from_key(env[KEY_ENV])
            return signer
        except (ValueError, TypeError):
            raise SigningKeyError(f"{KEY_ENV} is not a valid private key (0x + 64 hex "
                                  "digits)") from None
    raise SigningKeyError(f"no feed-signing key: set {KEY_ENV}, or {KEYSTORE_ENV} with "
                          f"{PASSWORD_ENV}, or create a keystore with `contagion feed new-key`")


def create_keystore(path: Path, password: str) -> str:
    """Write a new random key, encrypted with `password`, to `path` (never overwriting);
    returns its address."""
    if not password:
        raise SigningKeyError("refusing to write a keystore with an empty password")
    account = Account.create()
    encrypted = Account.encrypt(account.key, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: an existing keystore is never replaced; 0o600 from the first byte, not after it
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        json.dump(encrypted, handle)
    return str(account.address)
