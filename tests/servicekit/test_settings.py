"""Settings: files merged, environment overrides, and one-line errors naming the key."""

from __future__ import annotations

import pytest

from identity_srv.settings import load_settings as load_identity
from servicekit.settings import Reader, SettingsError, environment_overrides, load_raw
from webclient_srv.settings import load_settings as load_webclient


def test_defaults_from_conf():
    settings = load_identity({})
    assert settings.common.http.port == 5005
    assert settings.common.issuer == "http://localhost:5005"
    assert settings.common.redis.url == "redis://127.0.0.1:6391/0"
    assert settings.common.redis.key_prefix == "idp:"
    assert settings.common.mongo.database == "identity"


def test_event_loop_defaults_to_uvloop():
    assert load_identity({}).common.http.event_loop == "uvloop"
    assert load_identity({"IDENTITY__HTTP__EVENT_LOOP": "asyncio"}).common.http.event_loop == "asyncio"


def test_webclient_has_no_mongo():
    assert load_webclient({}).common.mongo is None


def test_well_known_variables_override():
    env = {
        "REDIS_URL": "redis://cache.internal:6380/2",
        "MONGO_URL": "mongodb://db1,db2/?replicaSet=rs0",
        "ISSUER": "https://id.example.com/",
        "IDENTITY_PORT": "7005",
        "LOG_LEVEL": "DEBUG",
    }
    common = load_identity(env).common
    assert common.redis.url == "redis://cache.internal:6380/2"
    assert common.mongo.url == "mongodb://db1,db2/?replicaSet=rs0"
    assert common.issuer == "https://id.example.com"
    assert common.http.port == 7005
    assert common.log_level == "debug"


def test_generic_variable_overrides_nested_key():
    env = {"IDENTITY__REDIS__COMMAND_TIMEOUT": "0.5", "IDENTITY__HTTP__TRUST_PROXY_HEADERS": "true"}
    common = load_identity(env).common
    assert common.redis.command_timeout == 0.5
    assert common.http.trust_proxy_headers is True


def test_generic_variable_of_other_service_ignored():
    overrides = environment_overrides("IDENTITY", {"MOVIES__HTTP__PORT": "1"})
    assert overrides == {}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"IDENTITY_PORT": "abc"}, "setting 'http.port' is 'abc': set it to a whole number",
                     id="port-not-a-number"),
        pytest.param({"IDENTITY_PORT": "70000"}, "setting 'http.port' is 70000: use a value from 1 to 65535",
                     id="port-out-of-range"),
        pytest.param({"REDIS_URL": "http://localhost:6379"},
                     "setting 'redis.url' is 'http://localhost:6379': use a redis:// or rediss:// or unix:// or "
                     "redis+sentinel:// or rediss+sentinel:// or redis+cluster:// or rediss+cluster:// URL",
                     id="redis-url-wrong-scheme"),
        pytest.param({"ISSUER": "localhost:5005"},
                     "setting 'issuer' is 'localhost:5005': use a http:// or https:// URL",
                     id="issuer-without-scheme"),
        pytest.param({"LOG_LEVEL": "loud"},
                     "setting 'log_level' is 'loud': use one of debug, info, warning, error",
                     id="unknown-log-level"),
        pytest.param({"IDENTITY__HTTP__EVENT_LOOP": "trio"},
                     "setting 'http.event_loop' is 'trio': use one of uvloop, asyncio",
                     id="unknown-event-loop"),
    ],
)
def test_invalid_value_names_key_and_fix(env, message):
    with pytest.raises(SettingsError) as caught:
        load_identity(env)
    assert str(caught.value) == f"{message} in conf/identity.toml or the environment"


def test_missing_key_names_key():
    reader = Reader({"redis": {}}, "conf/x.toml")
    with pytest.raises(SettingsError) as caught:
        reader.url("redis.url", ("redis",))
    assert str(caught.value) == "setting 'redis.url' is missing: set it in conf/x.toml"


def test_conf_dir_must_exist(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_raw("identity.toml", "IDENTITY", {"CONF_DIR": str(tmp_path / "absent")})
    assert "is not a directory" in str(caught.value)


def test_invalid_toml_names_file(tmp_path):
    (tmp_path / "common.toml").write_text("issuer = ")
    (tmp_path / "identity.toml").write_text("")
    with pytest.raises(SettingsError) as caught:
        load_raw("identity.toml", "IDENTITY", {"CONF_DIR": str(tmp_path)})
    assert str(caught.value).startswith(f"{tmp_path / 'common.toml'} is not valid TOML")


def test_service_file_overrides_common(tmp_path):
    (tmp_path / "common.toml").write_text('log_level = "info"\n[http]\nport = 1\nhost = "h"\n')
    (tmp_path / "identity.toml").write_text("[http]\nport = 2\n")
    raw = load_raw("identity.toml", "IDENTITY", {"CONF_DIR": str(tmp_path)})
    assert raw["http"] == {"port": 2, "host": "h"}
