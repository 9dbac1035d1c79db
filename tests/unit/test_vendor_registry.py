"""The vendor registry names only what exists: settings, secrets, adapters, configs and callback
models, so a vendor added or renamed there is checked here before any function runs."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from pydantic import SecretStr

from framesift import bootstrap
from framesift.config import Settings, Vendor
from framesift.vendors.registry import VENDORS, VendorSpec, callback_secrets, load

SPECS = list(VENDORS.values())


def test_every_vendor_is_registered_once_under_its_name():
    assert set(VENDORS) == set(Vendor)
    assert all(name is spec.name for name, spec in VENDORS.items())


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_a_vendors_secrets_are_secret_settings_and_its_callback_secret_is_one(spec: VendorSpec):
    for secret in spec.secrets:
        assert Settings.model_fields[secret.setting].annotation == SecretStr | None
    if spec.callback is not None:
        assert spec.callback.secret in spec.secrets and spec.callback.previous in spec.secrets
        assert spec.callback.previous.optional and not spec.callback.secret.optional
        assert hasattr(load(spec.callback.payload), "records")


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_a_vendors_adapter_takes_its_ports_and_a_config_of_settings(spec: VendorSpec):
    config = load(spec.config)
    assert {field.name for field in dataclasses.fields(config)} <= set(Settings.model_fields)
    parameters = list(inspect.signature(load(spec.adapter)).parameters)
    assert parameters == [*spec.ports, "config"]
    assert all(hasattr(bootstrap.Adapters, port) for port in spec.ports)
    for name in spec.settings.model_fields if spec.settings else ():
        assert name in Settings.model_fields


def test_each_calling_back_vendor_has_its_route_and_secret():
    settings = Settings.model_construct(
        scale_callback_auth_key=SecretStr("k"), scale_callback_auth_key_previous=SecretStr("old")
    )
    secrets = callback_secrets(settings)
    assert set(secrets) == {Vendor.SCALE, Vendor.LABELSTUDIO}
    assert secrets[Vendor.SCALE] == (SecretStr("k"), SecretStr("old"))
    assert secrets[Vendor.LABELSTUDIO] == ()
    assert VENDORS[Vendor.SCALE].callback_url("https://hooks.example/") == (
        "https://hooks.example/scale"
    )
