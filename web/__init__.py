"""The web app: a page to draw or photograph a number, a JSON API, an operator dashboard.

``web.app.create_app(WebConfig(...))`` builds the ASGI application ``digits web`` serves.
It shares the bot's reader, model hot swap, vision pool and storage functions, and
runs training only in a ``digits`` subprocess.
"""
