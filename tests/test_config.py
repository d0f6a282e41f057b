"""Settings: defaults < TOML file < LOKET_* variables < explicit config; one line per bad value."""

from __future__ import annotations

import os
import stat

import pytest

from core.config import CORE_SETTINGS, ConfigError, ensure_instance, resolve


def test_defaults_need_no_configuration(tmp_path):
    config = resolve(CORE_SETTINGS, {"instance_path": str(tmp_path)}, environ={})
    ensure_instance(config)
    assert config["database_url"] == f"sqlite:///{tmp_path / 'loket.db'}"
    assert config["attachments_path"] == str(tmp_path / "attachments")
    assert config["plugins"] == ["email_intake", "billing_desk", "social", "livechat",
                                 "knowledge_base"]
    assert config.sources["upload_max_bytes"] == "default"


def test_secret_key_is_generated_once_private_and_reused(tmp_path):
    first = resolve(CORE_SETTINGS, {"instance_path": str(tmp_path)}, environ={})
    ensure_instance(first)
    second = resolve(CORE_SETTINGS, {"instance_path": str(tmp_path)}, environ={})
    ensure_instance(second)
    assert len(first["secret_key"]) >= 40 and first["secret_key"] == second["secret_key"]
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


def test_toml_file_then_environment_then_explicit(tmp_path):
    toml = tmp_path / "loket.toml"
    toml.write_text('upload_max_files = 3\npublic_url = "https://help.example.id"\n'
                    '[plugins]\nenabled = ["social"]\n'
                    '[plugins.social]\ntelegram_bot = "desk_bot"\n')
    env = {"LOKET_CONFIG": str(toml), "LOKET_UPLOAD_MAX_FILES": "4"}
    config = resolve(CORE_SETTINGS, {}, environ=env, strict=False)
    assert config["upload_max_files"] == 4 and config.sources["upload_max_files"] == \
        "LOKET_UPLOAD_MAX_FILES"
    assert config["public_url"] == "https://help.example.id"
    assert config["plugins"] == ["social"]
    assert resolve(CORE_SETTINGS, {"upload_max_files": 1}, environ=env,
                   strict=False)["upload_max_files"] == 1


@pytest.mark.parametrize("name, value, fragment", [
    ("LOKET_UPLOAD_MAX_BYTES", "ten", "expected a whole number"),
    ("LOKET_UPLOAD_MAX_BYTES", "-1", "must not be negative"),
    ("LOKET_DATABASE_URL", "mysql://root@localhost/loket", "sqlite:/// or postgresql://"),
    ("LOKET_REDIS_URL", "http://localhost", "redis://"),
    ("LOKET_PUBLIC_URL", "help.example.id", "http(s)://"),
    ("LOKET_SECURE_COOKIES", "maybe", "true or false"),
    ("LOKET_LANGUAGES", "en,de", "some of en, id, fil"),
    ("LOKET_JOBS", "celery", "auto, sqlite, redis or immediate"),
])
def test_bad_value_gives_one_line_naming_the_setting(name, value, fragment):
    with pytest.raises(ConfigError) as info:
        resolve(CORE_SETTINGS, {}, environ={name: value})
    message = str(info.value)
    assert message.startswith(f"{name}:") and fragment in message and "\n" not in message


def test_unknown_key_in_file_is_refused(tmp_path):
    toml = tmp_path / "loket.toml"
    toml.write_text("databse_url = 'sqlite:///x.db'\n")
    with pytest.raises(ConfigError, match="databse_url: unknown setting"):
        resolve(CORE_SETTINGS, {}, environ={"LOKET_CONFIG": str(toml)})


def test_broken_toml_and_missing_file_are_one_line(tmp_path):
    toml = tmp_path / "loket.toml"
    toml.write_text("upload_max_files = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve(CORE_SETTINGS, {}, environ={"LOKET_CONFIG": str(toml)})
    with pytest.raises(ConfigError, match="no such file"):
        resolve(CORE_SETTINGS, {}, environ={"LOKET_CONFIG": str(tmp_path / "nope.toml")})


def test_default_language_must_be_offered(tmp_path):
    config = resolve(CORE_SETTINGS, {"instance_path": str(tmp_path), "languages": "en,id",
                                     "default_language": "fil"}, environ={})
    with pytest.raises(ConfigError, match="LOKET_DEFAULT_LANGUAGE"):
        ensure_instance(config)


def test_create_app_refuses_bad_config(make_app):
    with pytest.raises(ConfigError, match="LOKET_UPLOAD_MAX_FILES"):
        make_app(upload_max_files="many")
