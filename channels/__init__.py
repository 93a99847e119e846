"""Musaed's own Rasa input channels: Telegram (Rasa's connector, pointed at a
configurable Bot API server) and the WhatsApp Cloud API.

Rasa loads them by module path from the credentials file that
scripts/credentials.py writes, e.g. ``channels.telegram.TelegramInput``.
"""

from musaed import files, logsafe

# Imported by the Rasa server before it handles a message: Rasa logs what
# people type at debug level, codes and national ids included.
logsafe.install()
# And before it opens its tracker store: what it creates is 0600 (musaed/files.py).
files.private()
