"""WeChat Official Account and WeCom channels, built on wechatpy.

credentials.yml names them `bot.channels.wechat.WeChatInput` and
`bot.channels.wechat.WeComInput`; modules: `protocol` (signatures, AES, XML via
wechatpy), `channel` (the 5-second rule, retries), `api` (customer-service
messages, access token), `render` (bot messages as text), `config`.
"""

from bot.channels.wechat.channel import WeChatInput, WeComInput

__all__ = ["WeChatInput", "WeComInput"]
