"""Musaed's domain core: plain Python, no Rasa imports.

Channels and Rasa classes call into this package; it never imports them.
"""
