from bot.channels.ttl import TTLDict


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_entries_expire_after_their_ttl():
    clock = Clock()
    seen = TTLDict(10, clock=clock)
    seen.set("a", 1)
    clock.now = 9.9
    assert seen.get("a") == 1 and "a" in seen
    clock.now = 10.1
    assert seen.get("a") is None and "a" not in seen and len(seen) == 0


def test_oldest_entries_go_first_beyond_max_items():
    seen = TTLDict(100, max_items=2)
    for key in "abc":
        seen.set(key, key)
    assert "a" not in seen and seen.get("b") == "b" and seen.get("c") == "c"
