"""Where Rasa keeps conversations and their locks: the stores endpoints.yml names.

- tracker_store.py  Rasa's SQL tracker store on SQLite (one machine) or PostgreSQL (the cluster),
                    with checkpoints, protected events and erasure
- lock_store.py     a Redis lock store whose lock holds across Rasa servers (the cluster)

Rasa loads these by module path from endpoints.yml, before the model: Rasa's
patches are installed here too (rasa_patches/), so they apply, and the Rasa
version is checked, whichever Rasa loads first.
"""

import rasa_patches

rasa_patches.install()
