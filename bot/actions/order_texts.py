"""What the customer is told about an order, in English or Chinese.

These texts depend on the order's fields (carrier, tracking number, date), so
they are composed here rather than in domain.yml responses; the customer's
language comes from their latest message (kefu.core.text.conversation_language).
"""

from __future__ import annotations

from datetime import date
from typing import Optional, Text

from rasa_sdk import Tracker

from bot.actions.orders_db import CANCELLED, DELIVERED, PROCESSING, SHIPPED, Order
from kefu.core.text import conversation_language, conversation_script, to_script


def _user_texts(tracker: Tracker):
    return (e.get("text") for e in reversed(tracker.events) if e.get("event") == "user")


def customer_language(tracker: Tracker) -> str:
    return conversation_language(_user_texts(tracker))


def in_customer_script(text: str, tracker: Tracker) -> str:
    """A Chinese text in the script the customer writes (Traditional for Hong Kong and Taiwan customers)."""
    return to_script(text, conversation_script(_user_texts(tracker)))


def _day(iso: Optional[str], language: str) -> Optional[str]:
    """'2025-03-07' -> 'Friday, March 7' / '3月7日'."""
    if not iso:
        return None
    try:
        d = date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{d.month}月{d.day}日" if language == "zh" else f"{d:%A}, {d:%B} {d.day}"


def describe_order(order: Order, language: str = "en") -> Text:
    return _describe_zh(order) if language == "zh" else _describe_en(order)


def _describe_en(order: Order) -> Text:
    head = f"Order {order.order_number} ({order.item})"
    eta = _day(order.eta, "en")
    if order.status == PROCESSING:
        text = f"{head} is being prepared in our warehouse and hasn't shipped yet."
        if eta:
            text += f" It should arrive by {eta}; you'll get an email with tracking as soon as it ships."
        return text
    if order.status == SHIPPED:
        text = f"Good news: your order {order.order_number} ({order.item}) has shipped"
        if order.carrier:
            text += f" with {order.carrier}"
        if order.tracking_number:
            text += f", tracking number {order.tracking_number}"
        return text + (f". Expected delivery: {eta}." if eta else ".")
    if order.status == DELIVERED:
        return (f"{head} was delivered{f' on {eta}' if eta else ''}"
                f"{f' by {order.carrier}' if order.carrier else ''}. "
                "If you can't find it, check with neighbours or your building's reception, "
                "then let me know and I'll help.")
    if order.status == CANCELLED:
        return (f"{head} was cancelled. If you had already paid, the refund reaches your "
                "original payment method within 5-10 business days.")
    return f"{head} has the status '{order.status}'."


def _describe_zh(order: Order) -> Text:
    head = f"订单 {order.order_number}（{order.item}）"
    eta = _day(order.eta, "zh")
    if order.status == PROCESSING:
        text = f"{head}正在仓库备货，还没有发货。"
        if eta:
            text += f"预计{eta}前送达；发货后我们会发邮件告诉您物流单号。"
        return text
    if order.status == SHIPPED:
        text = f"好消息：您的{head}已经发货"
        if order.carrier:
            text += f"，承运商 {order.carrier}"
        if order.tracking_number:
            text += f"，物流单号 {order.tracking_number}"
        return text + (f"。预计送达：{eta}。" if eta else "。")
    if order.status == DELIVERED:
        return (f"{head}已于{eta or '近日'}送达"
                f"{f'（{order.carrier}）' if order.carrier else ''}。"
                "如果没找到包裹，请先问问邻居或前台，然后告诉我，我来帮您处理。")
    if order.status == CANCELLED:
        return f"{head}已取消。如果您已付款，退款会在5-10个工作日内退回原支付方式。"
    return f"{head}的状态是「{order.status}」。"


def order_kept(number: Text, language: str = "en") -> Text:
    if language == "zh":
        return f"好的，订单 {number} 保持不变，没有取消。"
    return f"No problem, order {number} stays as it is. Nothing was cancelled."


def cancel_outcome(number: Text, cancelled_now: bool, order: Optional[Order], language: str = "en") -> Text:
    return _cancel_zh(number, cancelled_now, order) if language == "zh" else _cancel_en(number, cancelled_now, order)


def _cancel_en(number: Text, cancelled_now: bool, order: Optional[Order]) -> Text:
    if order is None:
        return f"I couldn't find order {number}, so nothing was cancelled."
    if cancelled_now:
        return (f"Done: order {number} ({order.item}) is cancelled. You'll get a confirmation email, "
                "and if you already paid, the refund reaches your original payment method "
                "within 5-10 business days.")
    if order.status == CANCELLED:
        return f"Order {number} ({order.item}) was already cancelled, so there's nothing more to do."
    if order.status == SHIPPED:
        return (f"Order {number} ({order.item}) has already shipped with {order.carrier or 'the carrier'}, "
                "so I can't cancel it anymore. Once it arrives you can return it within 30 days "
                "for a full refund. Just ask me how returns work.")
    if order.status == DELIVERED:
        return (f"Order {number} ({order.item}) has already been delivered, so it can't be cancelled. "
                "You can return it within 30 days of delivery for a full refund. "
                "Just ask me how returns work.")
    return f"Order {number} has the status '{order.status}' and can't be cancelled online."


def _cancel_zh(number: Text, cancelled_now: bool, order: Optional[Order]) -> Text:
    if order is None:
        return f"没有找到订单 {number}，所以没有取消任何订单。"
    if cancelled_now:
        return (f"已完成：订单 {number}（{order.item}）已取消。您会收到确认邮件；"
                "如果已付款，退款会在5-10个工作日内退回原支付方式。")
    if order.status == CANCELLED:
        return f"订单 {number}（{order.item}）之前已经取消了，不需要再操作。"
    if order.status == SHIPPED:
        return (f"订单 {number}（{order.item}）已经由{order.carrier or '快递'}发出，无法再取消。"
                "收到后30天内可以退货并全额退款，问我“怎么退货”就行。")
    if order.status == DELIVERED:
        return (f"订单 {number}（{order.item}）已经送达，不能取消。"
                "送达后30天内可以退货并全额退款，问我“怎么退货”就行。")
    return f"订单 {number} 的状态是「{order.status}」，无法在线取消。"
