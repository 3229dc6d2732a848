"""The Telegram bot: photos in, readings out, corrections stored for the learning loop.

``bot.app.build_application(settings)`` builds the python-telegram-bot Application that
``digits bot`` runs (long polling, or a webhook when ``DIGITS_WEBHOOK_URL`` is set).
"""
