"""The web chat page, served by aiohttp next to the Rasa server."""
