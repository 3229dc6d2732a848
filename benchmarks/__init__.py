"""The benchmarks behind the README's numbers: the reader, the classifier, training, the
learning loop, storage under concurrent writers and the bot under load."""
