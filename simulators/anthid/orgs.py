"""API keys -> organizations -> trading accounts, the sim's notion of tenancy.

Ids are derived with uuid5 from names, so the same configuration always gives
the same organization and account UUIDs (producers and tests can be configured
with them without reading the sim's output).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

# Fixed namespace for this simulator's uuid5 ids.
SIM_NAMESPACE = uuid.UUID("5b0c6a52-8f7e-4c1e-9d53-2f2f1d8e6a01")
DEFAULT_ORG_NAME = "default"
DEFAULT_ACCOUNTS_PER_ORG = 2


class OrgConfigError(ValueError):
    """The keys/organizations configuration is invalid (message never holds a key)."""


@dataclass(frozen=True)
class Organization:
    id: str
    name: str
    account_ids: tuple[str, ...]

    def has_account(self, account_id: str) -> bool:
        return account_id in self.account_ids


def org_id_for(name: str) -> str:
    return str(uuid.uuid5(SIM_NAMESPACE, f"org:{name}"))


def account_ids_for(org_id: str, count: int) -> tuple[str, ...]:
    return tuple(str(uuid.uuid5(uuid.UUID(org_id), f"account-{i}")) for i in range(1, count + 1))


class OrgDirectory:
    """Resolves an API key to its organization."""

    def __init__(self, organizations: list[Organization], keys: dict[str, str]):
        self.organizations = list(organizations)
        self._by_id = {org.id: org for org in organizations}
        self._org_id_by_key = dict(keys)
        if not self._org_id_by_key:
            raise OrgConfigError("at least one API key is needed")

    def for_key(self, api_key: str | None) -> Organization | None:
        org_id = self._org_id_by_key.get(api_key or "")
        return self._by_id.get(org_id) if org_id else None

    def keys(self) -> list[str]:
        return list(self._org_id_by_key)

    @classmethod
    def from_key_specs(cls, specs: list[str], accounts_per_org: int = DEFAULT_ACCOUNTS_PER_ORG) -> "OrgDirectory":
        """`KEY[:ORG]` strings; keys without ORG belong to the `default` organization."""
        names: dict[str, None] = {}
        keys: dict[str, str] = {}
        for spec in specs:
            key, _, name = spec.partition(":")
            name = name.strip() or DEFAULT_ORG_NAME
            if not key:
                raise OrgConfigError("--api-key needs a non-empty KEY (format KEY[:ORG])")
            names[name] = None
            keys[key] = org_id_for(name)
        orgs = [Organization(org_id_for(n), n, account_ids_for(org_id_for(n), accounts_per_org)) for n in names]
        return cls(orgs, keys)

    @classmethod
    def from_file(cls, path: str | Path, accounts_per_org: int = DEFAULT_ACCOUNTS_PER_ORG) -> "OrgDirectory":
        """YAML or JSON::

            organizations:
              - name: acme                 # required
                id: <uuid>                 # optional, default derived from name
                api_keys: [acme-key-1]     # required, one or more
                accounts: [<uuid>, ...]    # optional; or account_count: 3
        """
        text = Path(path).read_text()
        data = _parse_yaml_or_json(text, str(path))
        entries = data.get("organizations") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not entries:
            raise OrgConfigError(f"{path}: expected a non-empty `organizations` list")
        orgs: list[Organization] = []
        keys: dict[str, str] = {}
        for index, entry in enumerate(entries):
            where = f"{path}: organizations[{index}]"
            if not isinstance(entry, dict) or not entry.get("name"):
                raise OrgConfigError(f"{where}: `name` is required")
            name = str(entry["name"])
            org_id = _uuid_text(entry.get("id") or org_id_for(name), f"{where}.id")
            accounts = entry.get("accounts")
            if accounts:
                account_ids = tuple(_uuid_text(a, f"{where}.accounts") for a in accounts)
            else:
                account_ids = account_ids_for(org_id, int(entry.get("account_count", accounts_per_org)))
            api_keys = entry.get("api_keys") or []
            if not isinstance(api_keys, list) or not api_keys:
                raise OrgConfigError(f"{where}: `api_keys` must list at least one key")
            for key in api_keys:
                if str(key) in keys:
                    raise OrgConfigError(f"{where}: an API key is listed twice")
                keys[str(key)] = org_id
            orgs.append(Organization(org_id, name, account_ids))
        return cls(orgs, keys)


def _parse_yaml_or_json(text: str, where: str):
    try:
        import yaml  # YAML is a superset of JSON, so one parser reads both
    except ModuleNotFoundError:  # pragma: no cover - PyYAML is a pinned dependency
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise OrgConfigError(f"{where}: not valid JSON ({exc.msg})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise OrgConfigError(f"{where}: not valid YAML/JSON") from None


def _uuid_text(value, where: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise OrgConfigError(f"{where}: not a UUID") from None
