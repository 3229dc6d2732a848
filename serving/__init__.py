"""What the bot and the web app share to serve readings: the read-and-record service, the
model hot swap, the vision worker pool, the rate limiter and the `digits` subprocesses
(retrain, export) they start. Uses `vision` and `db`; knows nothing of Telegram or HTTP."""
