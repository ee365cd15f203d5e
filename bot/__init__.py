"""Rasa adapters for kefu: graph components, custom actions, channels, the chat page."""
