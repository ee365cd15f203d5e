import pytest
from rasa.shared.exceptions import InvalidConfigException

from bot.channels.disabled import DisabledInput
from bot.channels.wechat import WeChatInput, WeComInput
from bot.channels.wechat.config import OFFICIAL_ACCOUNT_ENV, WECOM_ENV, load

AES_KEY = "a" * 43
URL = "https://api.weixin.qq.com/cgi-bin/"


@pytest.fixture(autouse=True)
def no_wechat_environment(monkeypatch):
    for var in list(OFFICIAL_ACCOUNT_ENV.values()) + list(WECOM_ENV.values()):
        monkeypatch.delenv(var, raising=False)


def test_channels_are_off_without_a_token_so_the_server_still_starts():
    assert isinstance(WeChatInput.from_credentials(None), DisabledInput)
    assert isinstance(WeComInput.from_credentials(None), DisabledInput)


def test_environment_configures_and_credentials_win(monkeypatch):
    monkeypatch.setenv("WECHAT_TOKEN", "t")
    monkeypatch.setenv("WECHAT_APPID", "wx1")
    monkeypatch.setenv("WECHAT_SECRET", "s")
    monkeypatch.setenv("WECHAT_PASSIVE_TIMEOUT_S", "2.5")
    settings = load({"app_id": "wx2"}, OFFICIAL_ACCOUNT_ENV, ("app_id", "secret"), URL)
    assert (settings.token, settings.app_id, settings.passive_timeout_s, settings.api_url) == ("t", "wx2", 2.5, URL)
    assert WeChatInput.from_credentials(None).name() == "wechat"


@pytest.mark.parametrize("credentials,message", [
    ({"token": "t", "app_id": "wx1"}, "secret"),
    ({"token": "t", "app_id": "wx1", "secret": "s", "aes_key": "short"}, "43 characters"),
    ({"token": "t", "app_id": "wx1", "secret": "s", "passive_timeout_s": 6}, "between 0 and 5"),
    ({"token": "t", "app_id": "wx1", "secret": "s", "passive_timeout_s": "soon"}, "not a number"),
    ({"token": "t", "app_id": "wx1", "secret": "s", "tokken": "x"}, "unknown WeChat channel setting 'tokken'"),
])
def test_half_or_wrong_configuration_fails_with_the_reason(credentials, message):
    with pytest.raises(InvalidConfigException, match=message):
        WeChatInput.from_credentials(credentials)


def test_wecom_needs_its_aes_key_and_agent_id():
    with pytest.raises(InvalidConfigException, match="agent_id.*aes_key"):
        WeComInput.from_credentials({"token": "t", "corp_id": "ww1", "secret": "s"})
    channel = WeComInput.from_credentials({"token": "t", "corp_id": "ww1", "secret": "s", "agent_id": "1000002",
                                           "aes_key": AES_KEY})
    assert channel.name() == "wecom" and channel.settings.agent_id == 1000002
