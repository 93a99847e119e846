"""Custom Rasa graph components: the NLU pipeline config.yml names.

The Rasa server (and customer care, which loads the model) imports this
package when it loads the model: it installs Musaed's patches on Rasa's
internals (rasa_patches/), which refuse to start on a Rasa they were not
written for.
"""

import rasa_patches

rasa_patches.install()
