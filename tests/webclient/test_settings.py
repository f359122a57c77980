"""webclient_srv settings: the shipped defaults, and each invalid value rejected by name."""

from __future__ import annotations

import pytest

from servicekit.settings import SettingsError
from webclient_srv.settings import load_settings


def test_shipped_settings_load():
    settings = load_settings({})
    assert settings.oidc.client_id == "movies_mvc_client"
    assert settings.oidc.redirect_uri == "http://localhost:5002/signin-oidc"
    assert settings.oidc.post_logout_redirect_uri == "http://localhost:5002/signout-callback-oidc"
    assert settings.oidc.secure_cookies is False
    assert settings.oidc.end_session_method == "post"
    assert settings.common.redis.key_prefix == "web:"
    assert settings.gateway.url == "http://localhost:5010"
    assert settings.session.refresh_margin == 60


def test_https_public_url_makes_cookies_secure():
    settings = load_settings({"WEBCLIENT__OIDC__PUBLIC_URL": "https://movies.example/",
                              "WEBCLIENT__OIDC__CLIENT_SECRET": "a-real-secret"})
    assert settings.oidc.public_url == "https://movies.example"
    assert settings.oidc.secure_cookies is True


REJECTED = [
    ("fails because https keeps the development secret", {"WEBCLIENT__OIDC__PUBLIC_URL": "https://movies.example"},
     "oidc.public_url https://movies.example is https but oidc.client_secret is the development secret"),
    ("fails because HS256 is symmetric", {"WEBCLIENT__OIDC__ALGORITHMS": '["RS256", "HS256"]'},
     "setting 'oidc.algorithms' contains HS256"),
    ("fails because openid is not requested", {"WEBCLIENT__OIDC__SCOPE": "profile movieAPI"},
     "setting 'oidc.scope' is 'profile movieAPI'"),
    ("fails because the logout method is unknown", {"WEBCLIENT__OIDC__END_SESSION_METHOD": "put"},
     "setting 'oidc.end_session_method' is 'put'"),
    ("fails because the gateway URL is not http", {"WEBCLIENT__GATEWAY__URL": "ftp://gateway"},
     "setting 'gateway.url' is 'ftp://gateway'"),
    ("fails because the refresh lock can expire mid-refresh", {"WEBCLIENT__SESSION__REFRESH_LOCK_TIMEOUT": "5"},
     "setting 'session.refresh_lock_timeout' is 5: use more than oidc.http_timeout (5 seconds)"),
    ("fails because the session lifetime is too short", {"WEBCLIENT__SESSION__LIFETIME": "5"},
     "setting 'session.lifetime' is 5"),
]


@pytest.mark.parametrize("env, message", [case[1:] for case in REJECTED], ids=[case[0] for case in REJECTED])
def test_invalid_setting_is_rejected(env, message):
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    assert str(raised.value).startswith(message), str(raised.value)
