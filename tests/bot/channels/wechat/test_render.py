from bot.channels.wechat.render import MAX_TEXT_BYTES, NumberedChoices, render, split_text


def test_messages_are_joined_and_buttons_numbered_across_messages():
    text, choices = render([
        {"text": "Hi! How can I help?", "buttons": [{"title": "Where is my order?", "payload": "/order_status"},
                                                     {"title": "Return an item", "payload": "/return_item"}]},
        {"text": "Or talk to us:", "buttons": [{"title": "Talk to a human", "payload": "/human_handoff"}]},
        {"image": "https://example.com/map.png"},
    ])
    assert text == ("Hi! How can I help?\n1. Where is my order?\n2. Return an item\n\n"
                    "Or talk to us:\n3. Talk to a human\n\nhttps://example.com/map.png")
    assert choices == {"1": "/order_status", "2": "/return_item", "3": "/human_handoff"}


def test_a_number_answers_the_last_buttons_of_that_customer_only():
    choices = NumberedChoices()
    choices.remember("alice", {"1": "/order_status", "2": "/return_item"})
    assert choices.resolve("alice", " 2 ") == "/return_item"
    assert choices.resolve("alice", "2.") == "/return_item"
    assert choices.resolve("alice", "3") == "3"
    assert choices.resolve("bob", "1") == "1"
    choices.remember("alice", {})
    assert choices.resolve("alice", "1") == "1"


def test_long_text_is_split_at_boundaries_within_wechats_byte_limit():
    paragraphs = ["第一段" * 200, "second paragraph " * 50, "x" * 5000]
    pieces = split_text("\n\n".join(paragraphs))
    assert all(0 < len(p.encode("utf-8")) <= MAX_TEXT_BYTES for p in pieces)
    assert pieces[0] == paragraphs[0]  # 1800 bytes: a whole paragraph fits
    assert "".join(pieces).replace("\n", "").replace(" ", "") == "".join(paragraphs).replace(" ", "")
    assert split_text("short") == ["short"] and split_text("") == []
