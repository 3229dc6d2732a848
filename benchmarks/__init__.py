"""The benchmarks behind the README's numbers (the reader, the classifier, training, the
learning loop, storage under concurrent writers, the bot and the web app under load) and
the test doubles they drive: a fake Telegram Bot API server and pictures of known numbers.
"""
