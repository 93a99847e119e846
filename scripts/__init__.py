"""The checkout's programs: the development servers, the cluster, the terminal chat and the generators.

Run each from the checkout as a module (the Makefile does): ``python -m scripts.run``,
``python -m scripts.cluster``, ``python -m scripts.chat`` … Tests and the bench import
them the same way (``from scripts.servers import Servers``).
"""
