"""Musaed's custom actions: thin rasa-sdk classes over the core in `musaed`.

rasa-sdk imports every module of this package, so each flow lives in its own
module and registers its actions by defining them.
"""

from musaed import files, logsafe

# rasa-sdk logs the trackers it gets at debug level: what people typed, codes included.
logsafe.install()
# The action server creates the database and its secrets: 0600 (musaed/files.py).
files.private()
