"""Load benchmarks and the test doubles they drive (a fake Telegram Bot API server).

Used by `digits bench bot` and by the bot's end-to-end tests; needs the `dev` extra
(aiohttp).
"""
