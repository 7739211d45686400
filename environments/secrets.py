"""Secret references instead of secrets: `@keyvault(vault, name[, version])` and `@env(NAME)`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from environments import redaction
from environments.errors import InvalidInput, ProviderError

REFERENCE = re.compile(r"@(?P<kind>keyvault|env)\((?P<args>[^()]*)\)")
SECRET_WORDS = frozenset({"password", "passwd", "pwd", "secret", "key", "token", "credential"})
SECRET_ENDINGS = (
    *SECRET_WORDS,
    *(f"{word}s" for word in SECRET_WORDS),
    "passphrase",
)
NOT_SECRET = frozenset({"monkey", "donkey", "turkey", "hockey", "jockey", "whiskey", "hotkey"})
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VAULT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]")
SECRET_NAME = re.compile(r"[A-Za-z0-9-]{1,127}")


@dataclass(frozen=True)
class KeyVaultRef:
    """A secret in Azure Key Vault: the vault (name or resource id), the secret, maybe a version."""

    vault: str
    name: str
    version: str | None = None

    @property
    def text(self) -> str:
        parts = [self.vault, self.name, *([self.version] if self.version else [])]
        return f"@keyvault({', '.join(parts)})"

    @property
    def vault_name(self) -> str:
        return self.vault.rstrip("/").rsplit("/", 1)[-1]

    def vault_id(self, subscription: str, resource_group: str) -> str:
        """The vault's ARM resource id (as given, or built from the shared resource group)."""
        if self.vault.startswith("/subscriptions/"):
            return self.vault
        return (
            f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.KeyVault/vaults/{self.vault}"
        )

    @property
    def uri(self) -> str:
        """The secret identifier URL, as Service Fabric's KeyVaultReference settings take it."""
        tail = f"/{self.version}" if self.version else ""
        return f"https://{self.vault_name}.vault.azure.net/secrets/{self.name}{tail}"


@dataclass(frozen=True)
class EnvRef:
    """A secret the local provider takes from Shipyard's own environment when it deploys."""

    variable: str

    @property
    def text(self) -> str:
        return f"@env({self.variable})"

    def resolve(self, key: str) -> str:
        value = os.environ.get(self.variable)
        if value is None:
            raise ProviderError(
                f"parameter {key} refers to ${self.variable}, which is not set",
                hint=f"export {self.variable} where Shipyard runs (its worker and its server)",
            )
        redaction.remember(value)
        return value


SecretRef = KeyVaultRef | EnvRef


def remember_env_values(values: Mapping[str, object]) -> None:
    """Mask, from the start, the values of the `@env` references these parameters make.

    A value is otherwise remembered when the local provider resolves it; remembering the ones
    the configuration names up front also covers texts made before any deployment ran.
    """
    for key, value in values.items():
        try:
            reference = parse_reference(key, str(value))
        except InvalidInput:
            continue
        if isinstance(reference, EnvRef) and reference.variable in os.environ:
            redaction.remember(os.environ[reference.variable])


def parse_reference(key: str, value: str) -> SecretRef | None:
    """`@keyvault(...)`/`@env(...)` → a reference; any other text → None; malformed → refused."""
    text = value.strip()
    if not text.startswith("@"):
        return None
    match = REFERENCE.fullmatch(text)
    if match is None:
        raise InvalidInput(
            f"parameter {key}: '{text}' is not a secret reference",
            hint="write @keyvault(VAULT, SECRET[, VERSION]) or @env(VARIABLE)",
        )
    args = [a.strip() for a in match["args"].split(",")] if match["args"].strip() else []
    if match["kind"] == "env":
        if len(args) != 1 or not ENV_NAME.fullmatch(args[0]):
            raise InvalidInput(
                f"parameter {key}: {text} needs one variable name",
                hint="write @env(VARIABLE), e.g. @env(GAME_DB_PASSWORD)",
            )
        return EnvRef(args[0])
    if len(args) not in (2, 3) or not all(args):
        raise InvalidInput(
            f"parameter {key}: {text} needs a vault and a secret name",
            hint="write @keyvault(VAULT, SECRET) or @keyvault(VAULT, SECRET, VERSION)",
        )
    vault, name = args[0], args[1]
    if not (vault.startswith("/subscriptions/") or VAULT_NAME.fullmatch(vault)):
        raise InvalidInput(
            f"parameter {key}: '{vault}' is not a Key Vault name or resource id",
            hint="use the vault's name (3-24 letters, digits, -) or its resource id",
        )
    if not SECRET_NAME.fullmatch(name):
        raise InvalidInput(
            f"parameter {key}: '{name}' is not a Key Vault secret name",
            hint="secret names are 1-127 letters, digits and -",
        )
    return KeyVaultRef(vault, name, args[2] if len(args) == 3 else None)


def words(key: str) -> list[str]:
    """GameDbPassword, GAME_DB_PASSWORD, game-db.password → ['game', 'db', 'password']."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def looks_secret(key: str) -> bool:
    """A key whose name says password, secret, key, token or connection string.

    Words run together count too (APIKEY, AUTHTOKEN, ACCESSTOKEN, AWS_SECRETKEY): a word that
    ends in one of the secret words is taken as one, except ordinary words like "monkey".
    """
    parts = words(key)
    if any(part in SECRET_WORDS for part in parts):
        return True
    joined = "".join(parts)
    return "connectionstring" in joined or any(
        part.endswith(SECRET_ENDINGS) and part not in NOT_SECRET for part in parts
    )


def check_not_literal_secret(key: str, value: str, where: str) -> None:
    """A secret-looking key must hold a reference: a literal there is refused, naming the key."""
    if looks_secret(key) and parse_reference(key, value) is None:
        raise InvalidInput(
            f"{where}: {key} looks like a secret, so it must be a reference, not a value",
            hint=f"store it in Key Vault and write {key}=@keyvault(VAULT, SECRET), "
            f"or for local environments {key}=@env(VARIABLE)",
        )
