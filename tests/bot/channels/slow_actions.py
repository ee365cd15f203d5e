"""The bot's actions for the channel tests, with `action_order_status` slowed down.

The action server of the channel tests loads this module instead of
`bot.actions`, so an order-status question takes longer than WeChat's
passive-reply window (KEFU_TEST_SLOW_ACTION_S seconds, default 5) and the
channel has to answer through the customer-service API.
"""

import asyncio
import os

from bot.actions import *  # noqa: F401,F403  (every real action, registered by the action server)
from bot.actions.order_actions import ActionOrderStatus


class SlowActionOrderStatus(ActionOrderStatus):
    async def run(self, dispatcher, tracker, domain):
        await asyncio.sleep(float(os.environ.get("KEFU_TEST_SLOW_ACTION_S", "5")))
        return await super().run(dispatcher, tracker, domain)
