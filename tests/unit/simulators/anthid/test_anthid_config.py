"""Organizations, API keys and the `tradebus sim anthid` options."""

from __future__ import annotations

import argparse
import json

import pytest

from simulators.anthid import cli as anthid_cli
from simulators.anthid.orgs import OrgConfigError, OrgDirectory, account_ids_for, org_id_for
from tradebus.config import ConfigError


def parse(*argv):
    parser = argparse.ArgumentParser()
    anthid_cli.register(parser)
    return parser.parse_args(list(argv))


def test_key_specs_group_keys_by_organization():
    directory = OrgDirectory.from_key_specs(["k1:acme", "k2:acme", "k3:beta", "k4"], accounts_per_org=3)
    names = [o.name for o in directory.organizations]
    assert names == ["acme", "beta", "default"]
    assert directory.for_key("k1") is directory.for_key("k2")
    assert directory.for_key("k3").id == org_id_for("beta")
    assert directory.for_key("wrong") is None and directory.for_key(None) is None
    assert directory.for_key("k1").account_ids == account_ids_for(org_id_for("acme"), 3)
    assert len(set(directory.for_key("k1").account_ids)) == 3


def test_orgs_file_yaml_and_json(tmp_path):
    yaml_file = tmp_path / "orgs.yaml"
    yaml_file.write_text(
        "organizations:\n"
        "  - name: acme\n"
        "    api_keys: [secret-acme]\n"
        "    accounts: ['11111111-1111-4111-8111-111111111111']\n"
        "  - name: beta\n"
        "    id: 22222222-2222-4222-8222-222222222222\n"
        "    api_keys: [secret-beta]\n"
        "    account_count: 4\n"
    )
    directory = OrgDirectory.from_file(yaml_file)
    assert directory.for_key("secret-acme").account_ids == ("11111111-1111-4111-8111-111111111111",)
    beta = directory.for_key("secret-beta")
    assert beta.id == "22222222-2222-4222-8222-222222222222" and len(beta.account_ids) == 4
    json_file = tmp_path / "orgs.json"
    json_file.write_text(json.dumps({"organizations": [{"name": "x", "api_keys": ["kx"]}]}))
    assert OrgDirectory.from_file(json_file).for_key("kx").name == "x"


def test_orgs_file_errors_do_not_echo_keys(tmp_path):
    bad = tmp_path / "orgs.yaml"
    bad.write_text("organizations:\n  - name: a\n    api_keys: [dup-secret]\n  - name: b\n    api_keys: [dup-secret]\n")
    with pytest.raises(OrgConfigError) as info:
        OrgDirectory.from_file(bad)
    assert "dup-secret" not in str(info.value)
    bad.write_text("organizations:\n  - name: a\n    api_keys: [k]\n    accounts: [not-a-uuid]\n")
    with pytest.raises(OrgConfigError, match="not a UUID"):
        OrgDirectory.from_file(bad)


def test_options_become_config():
    args = parse("--port", "0", "--api-key", "k1:acme", "--rate", "5", "--seed", "9", "--heartbeat-seconds", "0.5",
                 "--retention-seconds", "10", "--connection-limit", "2", "--end-stream-after", "7",
                 "--stall-heartbeats-after", "3", "--unavailable-for", "1.5", "--unconvertible-every", "4")
    assert args.func is anthid_cli.run
    config = anthid_cli.config_from_args(args)
    assert (config.port, config.rate, config.seed, config.heartbeat_seconds) == (0, 5.0, 9, 0.5)
    assert (config.retention_seconds, config.connection_limit, config.end_stream_after) == (10.0, 2, 7)
    assert (config.stall_heartbeats_after, config.unavailable_for, config.unconvertible_every) == (3.0, 1.5, 4)
    assert config.directory.for_key("k1").name == "acme"
    defaults = anthid_cli.config_from_args(parse())
    assert (defaults.host, defaults.port, defaults.connection_limit, defaults.retention_seconds) == (
        "127.0.0.1", 50051, 100, 3600.0)
    assert defaults.directory.for_key("local-dev-key") is not None


@pytest.mark.parametrize("argv, option", [
    (("--connection-limit", "0"), "--connection-limit"),
    (("--rate", "-1"), "--rate"),
    (("--tls-cert", "c.pem"), "--tls-cert"),
    (("--api-key", "k", "--orgs-file", "x.yaml"), "--orgs-file"),
    (("--api-key", ":acme"), "--api-key"),
])
def test_bad_options_name_the_option(argv, option):
    with pytest.raises(ConfigError, match=option):
        anthid_cli.config_from_args(parse(*argv))
